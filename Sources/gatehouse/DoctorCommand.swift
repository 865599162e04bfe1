import GatehouseChecks
import GatehouseCore
import ArgumentParser

/// `gatehouse doctor …`: diagnose any 401/403/429, whoever sent it.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Pinpoint why a request was denied: responses, HAR files, tokens, live probes, nginx/Apache configs, logs."
    )
}

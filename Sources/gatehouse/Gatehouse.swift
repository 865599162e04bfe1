import GatehouseChecks
import GatehouseCore
import ArgumentParser

/// The `gatehouse` command: the gateway, its operator tools, and the doctor.
@main
struct Gatehouse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "An API gateway whose every denial explains itself, and a doctor for any 403.",
        version: GatehouseVersion.string,
        subcommands: [
            ServeCommand.self,
            CheckCommand.self,
            ExplainCommand.self,
            LogsCommand.self,
            SimulateCommand.self,
            ConsumersCommand.self,
            KeysCommand.self,
            TenantsCommand.self,
            ServicesCommand.self,
            SubscriptionsCommand.self,
            AdminsCommand.self,
            DeveloperCommand.self,
            ClusterCommand.self,
            ReasonsCommand.self,
            VersionCommand.self,
            DemoUpstreamCommand.self,
            DoctorCommand.self,
            WAFCommand.self,
            TokenCommand.self,
        ]
    )
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")
    func run() { print("gatehouse \(GatehouseVersion.string)") }
}

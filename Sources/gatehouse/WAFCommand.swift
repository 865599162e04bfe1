import GatehouseChecks
import GatehouseCore
import ArgumentParser

/// `gatehouse waf …`: run requests through the WAF offline.
struct WAFCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "waf",
        abstract: "Run requests through the web application firewall offline and show what fires."
    )
}

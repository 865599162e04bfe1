import GatehouseChecks
import GatehouseCore
import ArgumentParser
import GatehouseConfig
import GatehouseProxy
import GatehouseServer

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate a configuration file without serving.",
        discussion: "Prints every problem as file:line:column: key: what was expected. Exits 0 when valid, 2 when not."
    )

    @Argument(help: "Configuration file (YAML).")
    var file: String?

    @Flag(help: "Print the embedded default configuration and exit.")
    var printDefaults = false

    func run() throws {
        if printDefaults {
            print(DefaultConfig.yaml)
            return
        }
        guard let file else { throw ValidationError("give a configuration file to check, or --print-defaults") }
        do {
            // Read and validated only: no check is built, nothing is fetched.
            let document = try Gateway.readConfig(file)
            let config = document.settings
            print(
                "\(file): OK — listen \(config.listen), \(document.routes.count) route(s), \(config.policyNames.count) polic\(config.policyNames.count == 1 ? "y" : "ies"), \(config.upstreams.count) upstream(s)"
            )
            for route in document.routes {
                let checks = route.policies.map { $0.mode == .shadow ? "\($0.policy) (shadow)" : $0.policy }
                let methods = route.methods.isEmpty ? "ANY" : route.methods.joined(separator: ",")
                print("  \(route.name): \(methods) \(route.path) → \(route.upstream) [\(checks.joined(separator: ", "))]")
            }
            for w in document.warnings { print("warning: \(w)") }
        } catch let e as ConfigError {
            printError(e.description)
            printError("\(e.issues.count) problem\(e.issues.count == 1 ? "" : "s") found; the configuration is invalid.")
            throw ExitCode(2)
        }
    }
}

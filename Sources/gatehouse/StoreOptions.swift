import GatehouseChecks
import GatehouseCore
import ArgumentParser
import Foundation
import GatehouseConfig
import GatehouseProxy
import GatehouseServer
import GatehouseStore

/// Where operator commands find the store: `--store PATH`, else the store named by `--config FILE`,
/// else by `./gatehouse.yaml` if present, else the embedded defaults' `./gatehouse.db`.
struct StoreOptions: ParsableArguments {
    @Option(name: [.short, .customLong("config")], help: "Configuration file whose store to use.")
    var config: String?

    @Option(name: .customLong("store"), help: "SQLite store file (overrides --config).")
    var store: String?

    func storePath() throws -> String {
        if let store { return store }
        let file = config ?? (FileManager.default.fileExists(atPath: "gatehouse.yaml") ? "gatehouse.yaml" : nil)
        do {
            return try Gateway.readConfig(file).settings.storePath
        } catch let e as ConfigError {
            throw ValidationError("the configuration is invalid:\n\(e)")
        }
    }

    func open() throws -> SQLiteStore {
        let path = try storePath()
        do {
            return try SQLiteStore(path: path)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

/// Writes a line to standard error.
func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

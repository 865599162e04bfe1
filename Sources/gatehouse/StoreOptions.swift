import GatehouseChecks
import GatehouseCore
import ArgumentParser
import Foundation
import GatehouseConfig
import GatehouseProxy
import GatehouseServer
import GatehouseStore
import GatehouseControl
import GatehousePostgres

/// Where operator commands find the store: `--store PATH`, else the store named by `--config FILE`,
/// else by `./gatehouse.yaml` if present, else the embedded defaults' `./gatehouse.db`.
struct StoreOptions: ParsableArguments {
    @Option(name: [.short, .customLong("config")], help: "Configuration file whose store to use.")
    var config: String?

    @Option(name: .customLong("store"), help: "SQLite store file (overrides --config).")
    var store: String?

    @Option(
        name: .customLong("admin"),
        help: ArgumentHelp(
            "A running gateway's admin listener (e.g. http://127.0.0.1:9901): the control commands go through its admin API, as the admin whose token is in GATEHOUSE_ADMIN_TOKEN.",
            valueName: "url"))
    var admin: String?

    func storePath() throws -> String {
        if let store { return store }
        return try settings().storePath
    }

    func settings() throws -> GatewayConfig {
        let file = config ?? (FileManager.default.fileExists(atPath: "gatehouse.yaml") ? "gatehouse.yaml" : nil)
        do {
            return try Gateway.readConfig(file).settings
        } catch let e as ConfigError {
            throw ValidationError("the configuration is invalid:\n\(e)")
        }
    }

    /// The cluster store the configuration names (`store: { postgres: … }`), unless `--store`
    /// picks a SQLite file; nil for a standalone gateway.
    /// Only commands that change the store apply its migrations (`migrate`): reading with a
    /// newer binary must not upgrade a schema the running nodes still read.
    func clusterStore(migrate: Bool = false) throws -> PGStore? {
        guard store == nil, let c = try settings().cluster else { return nil }
        do {
            let pg = try PGStore(url: c.postgres, maxConnections: 2)
            if migrate { try pg.migrate() }
            return pg
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// The call log: the cluster store's (every node's calls) in cluster mode, else the SQLite store's.
    func callLog() throws -> any CallLogReading {
        if admin != nil { _ = try open() }  // the same refusal as open()
        return try clusterStore() ?? open()
    }

    func open() throws -> SQLiteStore {
        if admin != nil {
            throw ValidationError(
                "--admin applies to consumers, keys, tenants, services, subscriptions and admins; this command reads the store (--store or --config)"
            )
        }
        let path = try storePath()
        do {
            return try SQLiteStore(path: path)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

extension StoreOptions {
    /// The control plane over the store: the CLI's changes go through it as the local owner
    /// (`ControlActor.cli`), audited like the admin API's.
    func control() throws -> ControlPlane {
        if let pg = try clusterStore(migrate: true) { return ControlPlane(database: pg.database) }
        let local = try open()
        // A cluster node's file is a copy of the cluster store: a change made there would be
        // overwritten by the next copy and missing from the cluster's audit log.
        if try local.replicaState() != nil {
            throw ValidationError(
                "\(local.path) is a cluster node's local copy of the cluster store: make changes in the cluster (-c with the node's configuration, or --admin URL)"
            )
        }
        return ControlPlane(store: local)
    }
}

extension ControlPlane {
    /// Runs a CLI operation; a refusal becomes the command's error message.
    func cli<T>(_ body: (ControlPlane) throws -> T) throws -> T {
        do { return try body(self) } catch let e as ControlError { throw ValidationError(e.description) } catch let e as StoreError {
            throw ValidationError(e.description)
        }
    }

    /// Every page of a list.
    func all<T>(_ read: (PageRequest) throws -> Page<T>) throws -> [T] {
        var out: [T] = []
        var request = PageRequest(limit: PageRequest.maximumLimit)
        while true {
            let page = try read(request)
            out += page.items
            guard let next = page.nextCursor else { return out }
            request.cursor = next
        }
    }
}

/// Writes a line to standard error.
func printError(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

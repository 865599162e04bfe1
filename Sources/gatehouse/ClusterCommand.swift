import ArgumentParser
import Foundation
import GatehouseCore
import GatehousePostgres

struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "Cluster mode: the gateway nodes sharing a PostgreSQL store.",
        subcommands: [ClusterStatusCommand.self, ClusterResyncCommand.self]
    )
}

struct ClusterStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "List the nodes: id, address, version, configuration revision, snapshot age, spooled records, last heartbeat.",
        discussion:
            "A node heartbeats every second while it reaches the store; one whose last heartbeat is older than 5 s is marked stale (stopped, or cut off from the store and serving from its local snapshot)."
    )

    @OptionGroup var storeOptions: StoreOptions

    @Flag(help: "Print the nodes as a JSON array.")
    var json = false

    func run() throws {
        guard let pg = try storeOptions.clusterStore() else {
            throw ValidationError("the configuration names no cluster store: set store.postgres (see docs/cluster.md)")
        }
        let nodes = try pg.nodes()
        let current = try pg.revision()
        if json {
            let enc = JSONEncoder()
            enc.keyEncodingStrategy = .convertToSnakeCase
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(TerminalSafe.json(String(decoding: try enc.encode(nodes), as: UTF8.self)))
            return
        }
        let now = Date().timeIntervalSince1970
        print("store revision \(current); \(nodes.count) node(s)")
        var rows = [["NODE", "ADDRESS", "VERSION", "REVISION", "SNAPSHOT AGE", "SPOOLED", "HEARTBEAT", "STATE"]]
        for n in nodes {
            let age = now - n.heartbeatAt
            let state = age > 5 ? "stale" : (n.revision == current ? "current" : "behind")
            rows.append([
                n.id, n.address ?? "-", n.version ?? "-", n.revision.map(String.init) ?? "-",
                n.snapshotAge.map { String(format: "%.1fs", $0) } ?? "-", n.spooled.map(String.init) ?? "-",
                String(format: "%.1fs ago", age), state,
            ])
        }
        let widths = (0..<rows[0].count).map { i in rows.map { $0[i].count }.max() ?? 0 }
        for r in rows {
            // Padded to the column's width, but for the last column (no trailing spaces).
            let cells = r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            print(TerminalSafe.line(cells.joined(separator: "  ")))
        }
    }
}

struct ClusterResyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resync",
        abstract: "Make every node copy the cluster store again (after restoring a backup or failing over to a standby).",
        discussion:
            "Nodes copy when the store's revision moves. A restored or failed-over store can reach a revision a node has seen with other contents; a new epoch makes every node copy at once, whatever its revision."
    )

    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        guard let pg = try storeOptions.clusterStore() else {
            throw ValidationError("the configuration names no cluster store: set store.postgres (see docs/cluster.md)")
        }
        let epoch = try pg.newEpoch()
        print("new epoch \(epoch): every node copies the store again")
    }
}

import Foundation
import GatehousePostgres
import GatehouseStore
import GatehouseTestSupport
import Synchronization
import Testing

/// What an operator does around a cluster store: naming it, its retention, leaving a cluster, and
/// the CLI on a node's file.
@Suite struct ClusterOperationsTests {
    @Test func addressesAreReadOrRefusedWithWhatWasExpected() throws {
        let v6 = try PostgresLocation.parse("postgres://gh@[::1]:6543/gatehouse", environment: [:])
        #expect(v6.host == "::1" && v6.port == 6543 && v6.database == "gatehouse" && v6.hostIsAddress)
        #expect(v6.sslMode == "disable", "loopback needs no TLS by default")
        let remote = try PostgresLocation.parse(
            "postgresql://gh@db.example.net/gatehouse", environment: ["GATEHOUSE_POSTGRES_PASSWORD": "from-env"])
        #expect(remote.password == "from-env" && remote.sslMode == "require" && !remote.hostIsAddress && remote.port == 5432)
        #expect(try PostgresLocation.parse("postgres://gh@10.0.0.7/g?sslmode=prefer", environment: [:]).sslMode == "prefer")
        #expect(try PostgresLocation.parse("postgres://gh:pw@10.0.0.7/g", environment: [:]).hostIsAddress)

        for (url, says) in [
            ("mysql://gh@h/g", "not a postgres:// URL"), ("postgres://h/g", "names no user"), ("postgres://gh@h/", "names no database"),
            ("postgres://gh@h/g?sslmode=verify-full", "sslmode \"verify-full\" is not supported"),
            ("postgres://gh@h/g?timeout=3", "unknown parameter \"timeout\""),
        ] {
            #expect(throws: (any Error).self) { try PostgresLocation.parse(url, environment: [:]) }
            do { _ = try PostgresLocation.parse(url, environment: [:]) } catch {
                #expect("\(error)".contains(says), "\(url): \(error)")
            }
        }
        // A password in the address is never echoed.
        do { _ = try PostgresLocation.parse("postgres://gh:s3cret@h/g?x=1", environment: [:]) } catch {
            #expect(!"\(error)".contains("s3cret"))
        }
    }

    /// Retention drops the days it made (`calls_YYYYMMDD`) before the cutoff, and nothing else:
    /// not today's, not a partition someone attached under another name.
    @Test func retentionDropsOnlyItsOwnOldPartitions() throws {
        let t = try TempStore(.postgres)
        let pg = try #require(t.pg)
        let now = Date().timeIntervalSince1970
        let old = now - 10 * 86400
        try t.insertCalls([
            ClusterStoreTests.record("old", time: old), ClusterStoreTests.record("new", time: now),
        ])
        _ = try pg.database.write { tx in
            try tx.execute("CREATE TABLE calls_archive PARTITION OF calls FOR VALUES FROM (0) TO (86400)", [])
        }
        let dropped = try pg.dropPartitions(before: now - 2 * 86400)
        let oldDay = Int64((old / 86400).rounded(.down))
        let name =
            "calls_"
            + { () -> String in
                let f = DateFormatter()
                f.dateFormat = "yyyyMMdd"
                f.timeZone = TimeZone(identifier: "UTC")
                f.locale = Locale(identifier: "en_US_POSIX")
                return f.string(from: Date(timeIntervalSince1970: Double(oldDay) * 86400))
            }()
        #expect(dropped == [name])
        let left = try pg.database.read { tx in
            try tx.rows(
                "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'calls'::regclass",
                []
            ).map { $0["name"] as String }
        }
        #expect(left.contains("calls_archive"))
        #expect(!left.contains(name))
        let ids = try pg.database.read { tx in try tx.rows("SELECT request_id FROM calls", []).map { $0["request_id"] as String } }
        #expect(ids == ["new"])
    }

    /// A node's file served by a standalone gateway stops being a copy: its spool mark and its
    /// record of the cluster's revision go, and the CLI may change it again.
    @Test func aFormerNodesFileIsAStoreOfItsOwnAgain() throws {
        let dir = try TempDir()
        let path = dir.path + "/node.db"
        let store = try SQLiteStore(path: path)
        try store.replaceReplica([], revision: 7, epoch: 2, at: Date().timeIntervalSince1970)
        try store.startSpool()
        _ = try store.insertCalls([ClusterStoreTests.record("undelivered", time: Date().timeIntervalSince1970)])
        #expect(try store.replicaState()?.revision == 7)

        // While it is a copy, the CLI refuses to change it (the next copy would undo the change).
        let refused = try gatehouse(["consumers", "create", "web", "--store", path])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("is a cluster node's local copy of the cluster store"), "\(refused.stderr)")

        #expect(try store.stopSpool() == 1, "the undelivered record is reported")
        #expect(try store.replicaState() == nil)
        #expect(try store.spooledCount() == 0)
        let made = try gatehouse(["consumers", "create", "web", "--store", path])
        #expect(made.status == 0, "\(made.stderr)")
    }
}

extension ClusterOperationsTests {
    /// `gatehouse cluster resync` draws a new epoch (every node copies again, whatever the
    /// revision); on a configuration without a cluster store it says what is missing.
    @Test func resyncDrawsANewEpoch() throws {
        let url = try PostgresServer.sharedServer().newDatabase()
        let pg = try PGStore(url: url, maxConnections: 1)
        defer { pg.database.closeConnections() }
        try pg.migrate()
        let before = try pg.version()
        let dir = try TempDir()
        let cfg = dir.path + "/node.yaml"
        try "store: { sqlite: \(dir.path)/a.db, postgres: \"\(url)\", node: a }\nroutes: []\n".write(
            toFile: cfg, atomically: true, encoding: .utf8)
        let r = try gatehouse(["cluster", "resync", "-c", cfg])
        #expect(r.status == 0, "\(r.stderr)")
        let after = try pg.version()
        #expect(after.epoch != before.epoch, "a new epoch is drawn")
        #expect(after.revision == before.revision)
        #expect(r.stdout.contains("new epoch \(after.epoch)"))

        let standalone = dir.path + "/standalone.yaml"
        try "store: { sqlite: \(dir.path)/b.db }\nroutes: []\n".write(toFile: standalone, atomically: true, encoding: .utf8)
        let refused = try gatehouse(["cluster", "resync", "-c", standalone])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("names no cluster store"), "\(refused.stderr)")
    }
}

extension ClusterOperationsTests {
    /// `gatehouse logs --follow` on a cluster: a node's delivery can commit after another's that
    /// took later ids. The follower prints such a record when it arrives, and prints nothing twice.
    @Test func followingACLusterLogPrintsALateCommitOnce() async throws {
        let url = try PostgresServer.sharedServer().newDatabase()
        let pg = try PGStore(url: url, maxConnections: 1)
        defer { pg.database.closeConnections() }
        try pg.migrate()
        let now = Date().timeIntervalSince1970
        let local = try SQLiteStore(path: NSTemporaryDirectory() + "gh-follow-" + UUID().uuidString.prefix(8) + ".db")
        defer { try? FileManager.default.removeItem(atPath: local.path) }
        try local.startSpool()
        func deliver(_ ids: [String]) throws {
            _ = try local.insertCalls(ids.map { ClusterStoreTests.record($0, time: now) })
            let rows = try local.spooledCalls(limit: 1000)
            _ = try pg.deliverCalls(node: "a", rows)
            if let last = rows.last { try local.setShippedRow(last["rid"]) }
        }
        try deliver(["first-1", "first-2"])
        // Ids far ahead: the late record below takes one between.
        _ = try pg.database.write { tx in try tx.rows("SELECT setval('calls_id_seq', 1000)", []) }

        let dir = try TempDir()
        let cfg = dir.path + "/node.yaml"
        try "store: { sqlite: \(dir.path)/a.db, postgres: \"\(url)\", node: a }\nroutes: []\n".write(
            toFile: cfg, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Binary.path)
        p.arguments = ["logs", "--follow", "--json", "-c", cfg]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        let printed = Mutex("")
        out.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            printed.withLock { $0 += String(decoding: d, as: UTF8.self) }
        }
        try p.run()
        defer {
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            out.fileHandleForReading.readabilityHandler = nil
        }
        func waitFor(_ id: String) async throws {
            for _ in 0..<100 where !printed.withLock({ $0.contains("\"\(id)\"") }) { try await Task.sleep(for: .milliseconds(200)) }
        }
        try deliver(["next-1"])
        try await waitFor("next-1")
        // A delivery that took its ids before "next-1" and committed after it.
        _ = try pg.database.write { tx in
            try tx.execute(
                "INSERT INTO calls (id, node, request_id, time, method, path, status, total_ms, trace) VALUES (500, 'b', 'late-1', ?, 'GET', '/r', 200, 1, '{}')",
                [now])
        }
        try deliver(["next-2"])
        try await waitFor("next-2")
        try await waitFor("late-1")
        let lines = printed.withLock { $0 }.split(separator: "\n")
        for id in ["first-1", "first-2", "next-1", "late-1", "next-2"] {
            #expect(lines.filter { $0.contains("\"\(id)\"") }.count == 1, "\(id) in \(lines)")
        }
    }
}

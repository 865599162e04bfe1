import Foundation
import GatehouseChecks
import GatehouseControl
import GatehouseCore
import GatehouseIdentity
import GatehousePostgres
import GatehouseStore
import Logging
import Testing

/// The cluster store's pieces on a PostgreSQL of the tests' own, without gateway processes: call
/// delivery, the node's copy, the shared rate-limit counters.
@Suite struct ClusterStoreTests {
    static func record(_ id: String, time: Double, path: String = "/r") -> CallRecord {
        CallRecord(
            requestID: id, time: time, route: "r", consumer: nil, keyID: nil, client: "10.0.0.1", method: "GET", path: path, host: nil,
            status: 200, upstreamMillis: nil, totalMillis: 1, decidingCheck: nil, reason: nil, detail: nil, hint: nil, required: [],
            presented: [], trace: DecisionTrace(), upstreamTarget: nil)
    }

    /// A node that delivered its records and failed before it could note so delivers them again:
    /// the store keeps each once. A NUL, which SQLite stores and PostgreSQL's text refuses, does
    /// not stop the delivery.
    @Test func aRepeatedDeliveryStoresEachRecordOnce() throws {
        let t = try TempStore(.postgres)
        let pg = try #require(t.pg)
        try t.store.startSpool()
        let now = Date().timeIntervalSince1970
        _ = try t.store.insertCalls((0..<50).map { Self.record("req-\($0)", time: now + Double($0) / 1000) })
        _ = try t.store.insertCalls([Self.record("nul", time: now, path: "/a\u{0}b")])
        let rows = try t.store.spooledCalls(limit: 1000)
        #expect(rows.count == 51)
        #expect(try pg.deliverCalls(node: "n1", rows) == 51)
        // The mark was never moved (the node stopped here): the next round sends them again.
        #expect(try t.store.spooledCalls(limit: 1000).count == 51)
        #expect(try pg.deliverCalls(node: "n1", rows) == 0)
        #expect(try pg.callCount() == 51)
        let stored = try #require(try pg.calls(requestID: "nul").first)
        #expect(stored.path.hasPrefix("/a") && !stored.path.contains("\u{0}"))
        // Another node's record with the same request id and time is its own.
        #expect(try pg.deliverCalls(node: "n2", Array(rows.prefix(1))) == 1)
        #expect(try pg.calls(requestID: "req-0").count == 2)
    }

    /// A store restored from a backup (or a failed-over standby) can be at the revision a node
    /// last copied with other contents; after `gatehouse cluster resync` (a new epoch) the node
    /// copies it again.
    @Test func aRestoredStoreIsCopiedEvenAtTheSameRevision() throws {
        let t = try TempStore(.postgres)
        let pg = try #require(t.pg)
        let control = ControlPlaneFor(t)
        _ = try control.plane.createApplication(.cli, name: "shop")
        let key = try control.plane.createKey(.cli, application: "shop")
        let directory = StoreDirectory(store: t.store, refreshInterval: 3600)
        let node = try ClusterNode(
            settings: .init(nodeID: "n1", address: nil, version: "test"), store: pg, local: t.store, directory: directory,
            logger: Logger(label: "test"))
        try node.prepare()
        #expect(directory.key(id: key.info.id)?.revokedAt == nil)
        // The "restore": the key revoked and the revision set back to the one the node holds;
        // the node, checking the revision, sees nothing to copy.
        let revision = try pg.revision()
        _ = try control.plane.revokeKey(.cli, id: key.info.id)
        _ = try pg.database.write { tx in try tx.execute("UPDATE meta SET value = ? WHERE key = 'revision'", [revision]) }
        #expect(try pg.revision() == revision)
        node.step()
        #expect(directory.key(id: key.info.id)?.revokedAt == nil)
        // What the operator runs after a restore (`gatehouse cluster resync`): a new epoch.
        try pg.newEpoch()
        node.step()
        #expect(directory.key(id: key.info.id)?.revokedAt != nil)
    }

    /// Two limits of one policy whose windows start together (here two per-day limits) count
    /// apart, and the tighter one holds: at most its limit plus one (this node's first request of
    /// the window, allowed before its lease is known).
    @Test func twoLimitsOfOnePolicyCountApart() async throws {
        let t = try TempStore(.postgres)
        let pg = try #require(t.pg)
        let limiter = ClusterRateLimiter(database: pg.database, interval: 0.02, logger: Logger(label: "test"))
        defer { limiter.stop() }
        // Day windows: both start at midnight UTC, and the test stays in one of them.
        let rule = RateLimitRule(windows: [
            RateWindow(count: 5, period: 86400, name: "p.5-per-day"), RateWindow(count: 100, period: 86400, name: "p.100-per-day"),
        ])
        let store = limiter.store(policy: "p", rule: rule, onStoreError: .deny, local: InProcessRateLimitStore())
        // Wait for the next day if this one is about to end: one window for the whole test.
        let second = Date().timeIntervalSince1970.truncatingRemainder(dividingBy: 86400)
        if second > 86400 - 300 { try await Task.sleep(for: .seconds(86401 - second)) }
        var allowed = 0
        var refusals: [RateLimitDecision] = []
        for _ in 0..<100 {
            switch store.consume(key: "k", rule: rule, now: Date().timeIntervalSince1970) {
            case .allowed: allowed += 1
            case let d: refusals.append(d)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect((5...6).contains(allowed), "\(allowed) allowed by a limit of 5")
        #expect(refusals.allSatisfy { if case .rateLimited(let w, _, _, _) = $0 { w == 0 } else { false } })
        let rows = try pg.database.read { try $0.rows("SELECT key, used FROM rate_counters ORDER BY key", []) }
        #expect(rows.map { $0["key"] as String } == ["0|k", "1|k"])
    }
}

/// A control plane over a test store's database.
struct ControlPlaneFor {
    let plane: GatehouseControl.ControlPlane
    init(_ t: TempStore) { plane = ControlPlane(database: t.database) }
}

import Foundation
import GatehouseChecks
import GatehousePostgres
import GatehouseTestSupport
import Logging
import Testing

/// S40: a caller that has used up a cluster-wide limit floods the node with fresh keys (addresses
/// of a large IPv6 block, or many cheap API keys), so that the node's table of keys (`max_keys`)
/// fills with keys holding leases and its own refused key is pushed out. Back, the key must not be
/// counted afresh: at most the limit plus one (the first request a node allows before its lease)
/// per node, whatever the flood.
///
/// Driven against the node's limiter itself, on a PostgreSQL of the test's own: the flood needs
/// more distinct client keys than a loopback test can send from real addresses.
@Suite(.serialized) struct S40_ClusterRateLimitKeyFlood {
    @Test(arguments: [StoreErrorMode.allow, .deny])
    func aFloodOfNewKeysDoesNotBuyARefusedKeyAFreshLimit(_ mode: StoreErrorMode) async throws {
        let pg = try PGStore(url: try PostgresServer.sharedServer().newDatabase(), maxConnections: 2)
        defer { pg.database.closeConnections() }
        try pg.migrate()
        let limiter = ClusterRateLimiter(database: pg.database, interval: 0.02, logger: Logger(label: "S40"))
        defer { limiter.stop() }
        // Day windows: the whole test stays in one of them.
        let second = Date().timeIntervalSince1970.truncatingRemainder(dividingBy: 86400)
        if second > 86400 - 300 { try await Task.sleep(for: .seconds(86401 - second)) }
        let rule = RateLimitRule(windows: [RateWindow(count: 5, period: 86400, name: "s40.5-per-day")])
        // A table of 16 keys (one shard), so that a flood of a few hundred fills it many times.
        let store = limiter.store(
            policy: "s40", rule: rule, onStoreError: mode, local: InProcessRateLimitStore(maxKeys: 16, shards: 1))
        func call(_ key: String) -> Bool {
            if case .allowed = store.consume(key: key, rule: rule, now: Date().timeIntervalSince1970) { return true }
            return false
        }

        // The attacker's key, until the cluster refuses it (leases arrive between calls).
        var allowed = 0
        for _ in 0..<40 {
            if call("attacker") { allowed += 1 }
            try await Task.sleep(for: .milliseconds(25))
        }
        #expect((5...6).contains(allowed), "\(allowed) allowed by a limit of 5 before the flood")

        // The flood: 400 fresh keys, a few at a time, each leased before the next few come, and
        // the attacker's key tried after every batch.
        for batch in 0..<50 {
            for i in 0..<8 { _ = call("flood-\(batch)-\(i)") }
            try await Task.sleep(for: .milliseconds(40))
            for i in 0..<8 { _ = call("flood-\(batch)-\(i)") }
            if call("attacker") { allowed += 1 }
        }
        #expect(allowed <= 6, "the attacker's key was allowed \(allowed) times by a limit of 5 on one node (\(mode))")
    }
}

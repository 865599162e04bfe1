import Foundation
import GRDB
import GatehouseCore
@testable import GatehouseStore
import Testing

@Suite struct CallRollupTests {
    static func rollups(_ store: SQLiteStore, _ table: CallRollups.Table = .full) throws -> [[DatabaseValue]] {
        try store.database.read { db in
            // The sums of times rounded: the two add them in an order of their own.
            let keys = table == .full ? ["minute", "route", "status", "reason", "application_id"] : ["minute", "status", "reason"]
            let columns = (keys + ["count", "denied", "shadow_would_deny"] + (0..<CallRollups.bucketCount).map { "h\($0)" })
                .joined(separator: ", ")
            return try Row.fetchAll(
                db, sql: "SELECT \(columns), round(total_ms_sum, 6) FROM \(table.rawValue) ORDER BY \(keys.joined(separator: ", "))"
            ).map { Array($0.databaseValues) }
        }
    }

    /// The writer's in-memory sums and the migration's SQL (which PostgreSQL also runs on
    /// delivery) give the same rows: same buckets at their edges, same denials and shadow
    /// would-denies.
    @Test func theWriterAndTheSQLRollUpAlike() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t0 = 1_800_000_000.0
        var records: [CallRecord] = []
        // Times on and around the histogram's edges, and beyond the last.
        let millis = [0, 0.05, 0.1, 0.1000001, 0.2, 0.4, 0.8, 1.6, 3.2, 100, 26214.4, 26214.5, 90_000]
        for (i, ms) in millis.enumerated() {
            var r = record("e\(i)", time: t0 + Double(i) * 7, status: i % 3 == 0 ? 403 : 200, reason: i % 3 == 0 ? "not_owner" : nil)
            r.totalMillis = ms
            r.applicationID = i % 2 == 0 ? "c_app" : nil
            r.route = i % 4 == 0 ? nil : "r"
            if i % 5 == 0 { r.trace = DecisionTrace() }  // no shadow entry
            records.append(r)
        }
        var failed = record("up", time: t0 + 5, status: 502, reason: "upstream_unavailable")
        failed.totalMillis = 30
        records.append(failed)
        try store.insertCalls(records)
        let written = try Self.rollups(store)
        #expect(!written.isEmpty)
        let counted = try store.database.read { db in
            try Int.fetchOne(db, sql: "SELECT sum(count) FROM call_rollups")
        }
        #expect(counted == records.count)
        let denied = try store.database.read { db in try Int.fetchOne(db, sql: "SELECT sum(denied) FROM call_rollups") }
        #expect(denied == 5)  // not_owner ×5; the upstream failure is no denial

        let writtenOutcomes = try Self.rollups(store, .outcomes)
        #expect(writtenOutcomes.count < written.count)
        // The same rows from the calls, by the migration's SQL.
        try store.database.write { db in
            for t in CallRollups.Table.allCases {
                try db.execute(sql: "DELETE FROM \(t.rawValue)")
                try db.execute(sql: CallRollups.insertFromCalls("calls", dialect: .sqlite, into: t))
            }
        }
        #expect(try Self.rollups(store) == written)
        #expect(try Self.rollups(store, .outcomes) == writtenOutcomes)
        // Buckets: edges belong to the bucket below.
        #expect(CallRollups.bucket(0.1) == 0 && CallRollups.bucket(0.1000001) == 1 && CallRollups.bucket(90_000) == 19)
    }

    /// A batch's rows are added to those already there, minute by minute.
    @Test func batchesAddUp() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t0 = 1_800_000_000.0
        try store.insertCalls([record("a", time: t0), record("b", time: t0 + 1)])
        try store.insertCalls([record("c", time: t0 + 2), record("d", time: t0 + 61)])
        let rows = try store.database.read { db in
            try Row.fetchAll(db, sql: "SELECT minute, count, shadow_would_deny FROM call_rollups ORDER BY minute")
        }
        #expect(rows.map { $0["count"] as Int } == [3, 1])
        #expect(rows.map { $0["shadow_would_deny"] as Int } == [3, 1])
        #expect(rows.first?["minute"] == Int64(t0 / 60))
    }

    @Test func percentilesInterpolateWithinABucket() {
        var h = [Int64](repeating: 0, count: CallRollups.bucketCount)
        h[5] = 100  // 1.6 to 3.2 ms
        let p50 = CallRollups.percentile(0.5, of: h)!
        #expect(p50 > 1.6 && p50 < 3.2)
        #expect(CallRollups.percentile(0.5, of: [Int64](repeating: 0, count: CallRollups.bucketCount)) == nil)
    }
}

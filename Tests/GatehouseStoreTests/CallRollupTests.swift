import Foundation
import GRDB
import GatehouseCore
@testable import GatehouseStore
import Testing

@Suite struct CallRollupTests {
    static func rollups(_ store: SQLiteStore, _ table: CallRollups.Table = .full) throws -> [[DatabaseValue]] {
        try store.database.read { db in
            // The sums of times rounded: the two add them in an order of their own.
            let keys = table.keyColumns
            let values = table.valueColumns.map { $0 == "total_ms_sum" ? "round(total_ms_sum, 6)" : $0 }
            return try Row.fetchAll(
                db, sql: "SELECT \((keys + values).joined(separator: ", ")) FROM \(table.rawValue) ORDER BY \(keys.joined(separator: ", "))"
            ).map { Array($0.databaseValues) }
        }
    }

    /// Every table's rows.
    static func allRollups(_ store: SQLiteStore) throws -> [CallRollups.Table: [[DatabaseValue]]] {
        Dictionary(uniqueKeysWithValues: try CallRollups.Table.allCases.map { ($0, try rollups(store, $0)) })
    }

    /// Records over three hours and a half, from 17 minutes past an hour: every outcome, two
    /// applications and none, two routes and none, shadow would-denies, a repeated request id.
    static func hoursOfRecords(_ t0: Double) -> [CallRecord] {
        var records: [CallRecord] = []
        for i in 0..<420 {
            let outcomes: [(Int, String?)] = [
                (200, nil), (403, "not_owner"), (429, "rate_limited"), (502, "upstream_unavailable"), (201, nil),
            ]
            let outcome = outcomes[i % 5]
            var r = record("h\(i)", time: t0 + 17 * 60 + Double(i) * 30, status: outcome.0, reason: outcome.1)
            r.totalMillis = Double(i % 40) * 0.7
            r.applicationID = ["c_one", "c_two", nil][i % 3]
            r.route = ["a", "b", nil][(i / 3) % 3]
            if i % 7 == 0 { r.trace = DecisionTrace() }  // no shadow entry
            records.append(r)
        }
        records.append(record("h7", time: t0 + 3600 + 5, status: 403, reason: "not_owner"))  // stored as h7~2
        return records
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
        try store.insertCalls(Self.hoursOfRecords(t0 + 600))
        let all = try Self.allRollups(store)
        #expect(try Self.rollups(store, .hourlyDenials).count > 0)
        // The same rows from the calls, by the migration's SQL (and PostgreSQL's on delivery).
        try store.database.write { db in
            for t in CallRollups.Table.allCases {
                try db.execute(sql: "DELETE FROM \(t.rawValue)")
                try db.execute(sql: CallRollups.insertFromCalls("calls", dialect: .sqlite, into: t))
            }
        }
        #expect(try Self.allRollups(store) == all)
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

    /// An hour's rows are the sums of its minute rows, as the writer adds them batch by batch.
    @Test func hourlyRowsAreTheSumsOfTheMinuteRows() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t0 = 1_800_000_000.0  // a whole hour
        let records = Self.hoursOfRecords(t0)
        for chunk in stride(from: 0, to: records.count, by: 50) {
            try store.insertCalls(Array(records[chunk..<min(records.count, chunk + 50)]))
        }
        let written = try Self.allRollups(store)
        #expect(written[.hourlyOutcomes]!.count < written[.outcomes]!.count)
        try store.sqlDatabase.write { tx in try CallRollups.rebuildHourly(tx) }
        #expect(try Self.allRollups(store) == written)
        let hours = try store.database.read { db in try Int64.fetchAll(db, sql: "SELECT DISTINCT minute FROM call_rollup_outcomes_hourly") }
        #expect(Set(hours) == Set((0..<4).map { Int64(t0 / 60) + 60 * $0 }))
    }

    /// A store from before the hourly rollups gets them from its minute rows when it opens:
    /// the rows the writer would have written.
    @Test func theMigrationSumsTheHoursOfAnExistingStore() throws {
        let dir = NSTemporaryDirectory() + "gh-store-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var written: [CallRollups.Table: [[DatabaseValue]]] = [:]
        do {
            let store = try SQLiteStore(path: dir + "/s.db")
            try store.insertCalls(Self.hoursOfRecords(1_800_000_000))
            written = try Self.allRollups(store)
            // Back to the schema before v6-hourly-rollups.
            try store.database.write { db in
                for t in CallRollups.Table.hourlyTables { try db.execute(sql: "DROP TABLE \(t.rawValue)") }
                try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v6-hourly-rollups'")
            }
        }
        let reopened = try SQLiteStore(path: dir + "/s.db")
        #expect(try Self.allRollups(reopened) == written)
        #expect(!(written[.hourlyApplications] ?? []).isEmpty)
    }

    /// Retention cutting an hour leaves that hour's rows the sums of the minutes that remain.
    @Test func retentionSumsAgainTheHourItCuts() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t0 = 1_800_000_000.0
        try store.insertCalls(Self.hoursOfRecords(t0))
        try store.purgeCalls(before: t0 + 3600 + 25 * 60)
        let kept = try Self.allRollups(store)
        let counted = try store.database.read { db in try Int.fetchOne(db, sql: "SELECT sum(count) FROM call_rollup_outcomes_hourly") }
        #expect(counted == (try store.callCount()))
        try store.sqlDatabase.write { tx in try CallRollups.rebuildHourly(tx) }
        #expect(try Self.allRollups(store) == kept)
    }

    @Test func percentilesInterpolateWithinABucket() {
        var h = [Int64](repeating: 0, count: CallRollups.bucketCount)
        h[5] = 100  // 1.6 to 3.2 ms
        let p50 = CallRollups.percentile(0.5, of: h)!
        #expect(p50 > 1.6 && p50 < 3.2)
        #expect(CallRollups.percentile(0.5, of: [Int64](repeating: 0, count: CallRollups.bucketCount)) == nil)
    }
}

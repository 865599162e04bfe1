import Foundation
import GRDB
import GRDBSQLite
import GatehouseCore

/// Per-minute totals of the call log, kept beside it so that analytics (the console's overview,
/// `ControlPlane.overview`) read a few rows per minute instead of every call.
///
/// One row per (minute, route, status, reason, application): how many calls, how many of them
/// were denials, how many a shadow check would have denied, the sum of their total times and a
/// latency histogram. A missing route, reason or application is stored as the empty string (the
/// upsert's key must not hold NULL, which no unique constraint matches). `call_rollup_outcomes`
/// holds the same by (minute, status, reason) alone (`Table`).
///
/// The embedded store's call-log writer adds a batch's rows in the transaction that inserts the
/// batch (`SQLiteStore.insertCalls`); a cluster's PostgreSQL adds them from the rows a node
/// delivers, in the statement that inserts them, counting only the rows actually inserted
/// (`PGStore.deliverCalls`). Retention removes rollups with the calls they count.
public enum CallRollups {
    /// Buckets of the latency histogram, columns `h0`…`h19`: bucket `i` < 19 holds total times
    /// up to `upperBounds[i]` ms (0.1 ms doubled each step, to 26.2 s); the last holds the rest.
    /// Doubling keeps a percentile within a factor of √2 of the truth after interpolation, and
    /// 20 integer columns sum in plain SQL on both dialects.
    public static let bucketCount = 20
    public static let upperBounds: [Double] = (0..<(bucketCount - 1)).map { 0.1 * Double(1 << $0) }
    static let histogramColumns = (0..<bucketCount).map { "h\($0)" }

    /// The histogram bucket of a total time in milliseconds.
    @inline(__always)
    public static func bucket(_ millis: Double) -> Int {
        // At most 19 comparisons, and exactly the SQL's (`insertFromCalls`), so that the rows
        // written here and those the migration or PostgreSQL computes agree.
        var i = 0
        while i < bucketCount - 1 && !(millis <= upperBounds[i]) { i += 1 }
        return i
    }

    /// Reasons that are failures of the upstream, not denials by a check.
    public static let upstreamFailures: Set<String> = [ReasonCode.upstreamUnavailable.rawValue, ReasonCode.upstreamTimeout.rawValue]

    /// Whether a call with this reason was denied by the gateway (rather than forwarded, answered,
    /// or failed upstream).
    public static func isDenial(reason: String?) -> Bool {
        guard let reason, !reason.isEmpty else { return false }
        return !upstreamFailures.contains(reason)
    }

    /// The minute (since 1970) of a call's time.
    @inline(__always)
    public static func minute(_ time: Double) -> Int64 { Int64((time / 60).rounded(.down)) }

    /// The `p`-quantile (0...1) of a histogram in milliseconds, interpolated geometrically within
    /// its bucket (linearly in the first); nil for an empty histogram.
    public static func percentile(_ p: Double, of buckets: [Int64]) -> Double? {
        let total = buckets.reduce(0, +)
        guard total > 0 else { return nil }
        let rank = max(1, (p * Double(total)).rounded(.up))
        var seen = 0.0
        for (i, n) in buckets.enumerated() where n > 0 {
            if seen + Double(n) >= rank {
                let fraction = (rank - seen) / Double(n)
                let upper = i < upperBounds.count ? upperBounds[i] : upperBounds[upperBounds.count - 1] * 2
                if i == 0 { return upper * fraction }
                let lower = upperBounds[i - 1]
                return lower * Foundation.pow(upper / lower, fraction)
            }
            seen += Double(n)
        }
        return upperBounds[upperBounds.count - 1] * 2
    }

    // MARK: Schema

    /// The two tables: `call_rollups` by (minute, route, status, reason, application id), and
    /// `call_rollup_outcomes` by (minute, status, reason) alone, for what needs neither the
    /// route nor the application (an unscoped overview's totals, series and percentiles): with
    /// traffic spread over many applications and routes the first has nearly a row per call, the
    /// second a few rows a minute.
    public enum Table: String, Sendable, CaseIterable {
        case full = "call_rollups"
        case outcomes = "call_rollup_outcomes"

        var keyColumns: [String] {
            switch self {
            case .full: ["minute", "route", "status", "reason", "application_id"]
            case .outcomes: ["minute", "status", "reason"]
            }
        }
    }

    /// A table, for either dialect (`real` is the floating-point type's name).
    static func createTable(_ table: Table, real: String, integer: String, withoutRowID: Bool) -> String {
        let keys: String =
            switch table {
            case .full:
                "minute \(integer) NOT NULL, route TEXT NOT NULL, status INTEGER NOT NULL, reason TEXT NOT NULL, application_id TEXT NOT NULL"
            case .outcomes: "minute \(integer) NOT NULL, status INTEGER NOT NULL, reason TEXT NOT NULL"
            }
        return """
            CREATE TABLE \(table.rawValue) (
                \(keys), count \(integer) NOT NULL, denied \(integer) NOT NULL,
                shadow_would_deny \(integer) NOT NULL, total_ms_sum \(real) NOT NULL,
                \(histogramColumns.map { "\($0) \(integer) NOT NULL DEFAULT 0" }.joined(separator: ", ")),
                PRIMARY KEY (\(table.keyColumns.joined(separator: ", "))))\(withoutRowID ? " WITHOUT ROWID" : "")
            """
    }

    /// The embedded store's migration: both tables, the index, and the rollups of the calls
    /// already logged.
    static var sqliteSchema: [String] {
        Table.allCases.map { createTable($0, real: "REAL", integer: "INTEGER", withoutRowID: true) } + [createDenialsIndex]
            + Table.allCases.map { insertFromCalls("calls", dialect: .sqlite, into: $0) }
    }

    /// The cluster store's migration: the same in PostgreSQL's types.
    package static var postgresSchema: [String] {
        Table.allCases.map { createTable($0, real: "DOUBLE PRECISION", integer: "BIGINT", withoutRowID: false) } + [createDenialsIndex]
            + Table.allCases.map { insertFromCalls("calls", dialect: .postgres, into: $0) }
    }

    /// The denial rows alone, with what the overview's most-denied lists read, so that those
    /// lists do not scan the allowed traffic.
    static let createDenialsIndex =
        "CREATE INDEX call_rollups_denials ON call_rollups(minute, application_id, route, denied) WHERE denied > 0"

    static let valueColumns = ["count", "denied", "shadow_would_deny", "total_ms_sum"] + histogramColumns

    /// The upsert's conflict clause: every value column adds to the row already there.
    static func onConflict(_ table: Table) -> String {
        " ON CONFLICT (\(table.keyColumns.joined(separator: ", "))) DO UPDATE SET "
            + valueColumns.map { "\($0) = \(table.rawValue).\($0) + excluded.\($0)" }.joined(separator: ", ")
    }

    /// Upserts one row (placeholders: the key columns, then the value columns).
    static func upsertSQL(_ table: Table) -> String {
        "INSERT INTO \(table.rawValue) (\((table.keyColumns + valueColumns).joined(separator: ", "))) VALUES ("
            + Array(repeating: "?", count: table.keyColumns.count + valueColumns.count).joined(separator: ", ") + ")" + onConflict(table)
    }

    /// `INSERT … SELECT` of the rollups of the call rows `source` yields (a table or a CTE with
    /// the call log's columns `time`, `route`, `status`, `reason`, `application_id`, `total_ms`,
    /// `trace`), grouped and upserted in one statement. The same expressions as `Batch.add`.
    /// The rows are upserted in key order, so that two nodes delivering at once lock the rows
    /// they share in the same order (rather than deadlock).
    package static func insertFromCalls(_ source: String, dialect: SQLDialect, into table: Table = .full) -> String {
        let minute =
            switch dialect {
            case .sqlite: "CAST(time / 60 AS INTEGER)"
            case .postgres: "CAST(floor(time / 60) AS BIGINT)"
            }
        let failures = upstreamFailures.sorted().map { "'\($0)'" }.joined(separator: ", ")
        let denied = "CASE WHEN reason IS NOT NULL AND reason <> '' AND reason NOT IN (\(failures)) THEN 1 ELSE 0 END"
        // The stored trace's outcome key (and the older Codable form's): a note quoting the text
        // holds it JSON-escaped, so it cannot match.
        let shadow = #"CASE WHEN trace LIKE '%"o":"shadow_deny"%' OR trace LIKE '%"outcome":"shadow_deny"%' THEN 1 ELSE 0 END"#
        var buckets: [String] = []
        for i in 0..<bucketCount {
            let cond =
                i == 0
                ? "total_ms <= \(upperBounds[0])"
                : i == bucketCount - 1
                    ? "NOT (total_ms <= \(upperBounds[i - 1]))"
                    : "NOT (total_ms <= \(upperBounds[i - 1])) AND total_ms <= \(upperBounds[i])"
            buckets.append("sum(CASE WHEN \(cond) THEN 1 ELSE 0 END)")
        }
        let keys =
            switch table {
            case .full:
                (
                    select:
                        "\(minute) AS m, coalesce(route, '') AS ro, status, coalesce(reason, '') AS re, coalesce(application_id, '') AS a",
                    group: "m, ro, status, re, a"
                )
            case .outcomes: (select: "\(minute) AS m, status, coalesce(reason, '') AS re", group: "m, status, re")
            }
        return """
            INSERT INTO \(table.rawValue) (\((table.keyColumns + valueColumns).joined(separator: ", ")))
            SELECT \(keys.select), count(*), sum(\(denied)), sum(\(shadow)), sum(total_ms), \(buckets.joined(separator: ", "))
            FROM \(source) WHERE true GROUP BY \(keys.group) ORDER BY \(keys.group)
            """ + onConflict(table)
    }

    /// Deletes the rollups of minutes wholly before `time`; returns how many rows.
    @discardableResult
    package static func purge(before time: Double, _ tx: any SQLTransaction) throws -> Int {
        var n = 0
        for t in Table.allCases { n += try tx.execute("DELETE FROM \(t.rawValue) WHERE minute < ?", [Int64((time / 60).rounded(.down))]) }
        return n
    }

    // MARK: Accumulating a batch

    /// The rollups of one batch of records, summed in memory before they are upserted (one
    /// statement per distinct key, not per record).
    struct Batch {
        struct Key: Hashable {
            var minute: Int64
            var route: String
            var status: Int
            var reason: String
            var application: String
        }

        struct Totals {
            var count: Int64 = 0
            var denied: Int64 = 0
            var shadow: Int64 = 0
            var totalMillis: Double = 0
            var buckets = [Int64](repeating: 0, count: CallRollups.bucketCount)
        }

        var rows: [Key: Totals] = [:]

        mutating func add(_ r: borrowing CallRecord) {
            let key = Key(
                minute: CallRollups.minute(r.time), route: r.route ?? "", status: r.status, reason: r.reason ?? "",
                application: r.applicationID ?? "")
            let denied: Int64 = CallRollups.isDenial(reason: r.reason) ? 1 : 0
            var shadow: Int64 = 0
            for e in r.trace.entries where e.outcome == .shadowDeny {
                shadow = 1
                break
            }
            let bucket = CallRollups.bucket(r.totalMillis)
            let ms = r.totalMillis
            rows[key, default: Totals()].add(denied: denied, shadow: shadow, millis: ms, bucket: bucket)
        }

        /// Upserts the rows through the connection's cached statement, bound with the sqlite3 C
        /// API as the call rows are (`CallRowBinder`): through `StatementArguments` an upsert cost
        /// about 9 µs, most of it boxing its 29 values.
        func write(_ db: Database) throws {
            guard !rows.isEmpty else { return }
            let stmt = try db.cachedStatement(sql: CallRollups.upsertSQL(.full)).sqliteStatement
            // SQLITE_TRANSIENT: sqlite copies each text (a few short strings per row).
            let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
            defer {
                sqlite3_reset(stmt)
                sqlite3_clear_bindings(stmt)
            }
            for (k, t) in rows {
                sqlite3_bind_int64(stmt, 1, k.minute)
                _ = k.route.withCString { sqlite3_bind_text(stmt, 2, $0, -1, transient) }
                sqlite3_bind_int64(stmt, 3, Int64(k.status))
                _ = k.reason.withCString { sqlite3_bind_text(stmt, 4, $0, -1, transient) }
                _ = k.application.withCString { sqlite3_bind_text(stmt, 5, $0, -1, transient) }
                try Self.step(stmt, totals: t, from: 6, table: .full)
            }
            try writeOutcomes(db)
        }

        /// The batch's rows summed by (minute, status, reason) into `call_rollup_outcomes`: a
        /// few upserts a batch.
        private func writeOutcomes(_ db: Database) throws {
            struct OutcomeKey: Hashable {
                var minute: Int64
                var status: Int
                var reason: String
            }
            var outcomes: [OutcomeKey: Totals] = [:]
            for (k, t) in rows {
                outcomes[OutcomeKey(minute: k.minute, status: k.status, reason: k.reason), default: Totals()].merge(t)
            }
            let stmt = try db.cachedStatement(sql: CallRollups.upsertSQL(.outcomes)).sqliteStatement
            let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
            defer {
                sqlite3_reset(stmt)
                sqlite3_clear_bindings(stmt)
            }
            for (k, t) in outcomes {
                sqlite3_bind_int64(stmt, 1, k.minute)
                sqlite3_bind_int64(stmt, 2, Int64(k.status))
                _ = k.reason.withCString { sqlite3_bind_text(stmt, 3, $0, -1, transient) }
                try Self.step(stmt, totals: t, from: 4, table: .outcomes)
            }
        }

        /// Binds a row's totals from parameter `from` on (count, denied, shadow, total time, the
        /// histogram's buckets), runs the upsert and resets it for the next row.
        private static func step(_ stmt: OpaquePointer, totals t: Totals, from first: Int32, table: Table) throws {
            sqlite3_bind_int64(stmt, first, t.count)
            sqlite3_bind_int64(stmt, first + 1, t.denied)
            sqlite3_bind_int64(stmt, first + 2, t.shadow)
            sqlite3_bind_double(stmt, first + 3, t.totalMillis)
            for (i, n) in t.buckets.enumerated() { sqlite3_bind_int64(stmt, first + 4 + Int32(i), n) }
            let rc = sqlite3_step(stmt)
            guard rc == SQLITE_DONE else {
                let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(stmt)))
                throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: message, sql: CallRollups.upsertSQL(table))
            }
            sqlite3_reset(stmt)
        }
    }
}

extension CallRollups.Batch.Totals {
    mutating func merge(_ other: Self) {
        count += other.count
        denied += other.denied
        shadow += other.shadow
        totalMillis += other.totalMillis
        for i in buckets.indices { buckets[i] += other.buckets[i] }
    }

    @inline(__always)
    mutating func add(denied: Int64, shadow: Int64, millis: Double, bucket: Int) {
        count += 1
        self.denied += denied
        self.shadow += shadow
        totalMillis += millis
        buckets[bucket] += 1
    }
}

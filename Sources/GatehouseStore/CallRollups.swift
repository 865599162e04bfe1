import Foundation
import GRDB
import GRDBSQLite
import GatehouseCore

/// Per-minute and per-hour totals of the call log, kept beside it so that analytics (the
/// console's overview, `ControlPlane.overview`) read a few rows per minute or hour instead of
/// every call.
///
/// One row per (minute, route, status, reason, application): how many calls, how many of them
/// were denials, how many a shadow check would have denied, the sum of their total times and a
/// latency histogram. A missing route, reason or application is stored as the empty string (the
/// upsert's key must not hold NULL, which no unique constraint matches). `call_rollup_outcomes`
/// holds the same by (minute, status, reason) alone; three hourly tables hold what periods of
/// hours and days read (`Table`).
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

    /// The tables. Per minute: `call_rollups` by (minute, route, status, reason, application
    /// id), and `call_rollup_outcomes` by (minute, status, reason) alone, for what needs neither
    /// the route nor the application (an unscoped overview's totals, series and percentiles):
    /// with traffic spread over many applications and routes the first has nearly a row per
    /// call, the second a few rows a minute.
    ///
    /// Per hour, for periods of hours and days (`minute` is then the hour's first minute, so the
    /// queries read both levels alike): `call_rollup_outcomes_hourly` by (minute, status,
    /// reason); `call_rollup_applications_hourly` by (application id, minute, status, reason),
    /// what a tenant-scoped overview reads (its tenant's applications, each a range of the
    /// primary key); `call_rollup_denials_hourly`, the denials alone by (minute, application id,
    /// route), what the most-denied lists read. An hour's rows are always the sum of its minute
    /// rows: both are written in the same transaction, and retention sums again the hour it cuts.
    public enum Table: String, Sendable, CaseIterable {
        case full = "call_rollups"
        case outcomes = "call_rollup_outcomes"
        case hourlyOutcomes = "call_rollup_outcomes_hourly"
        case hourlyApplications = "call_rollup_applications_hourly"
        case hourlyDenials = "call_rollup_denials_hourly"

        /// The per-minute tables (migration v5-call-rollups, pg-3-call-rollups).
        public static let minuteTables: [Table] = [.full, .outcomes]
        /// The per-hour tables (migration v6-hourly-rollups, pg-4-hourly-rollups).
        public static let hourlyTables: [Table] = [.hourlyOutcomes, .hourlyApplications, .hourlyDenials]

        /// Minutes a row covers: 1, or 60.
        public var minutes: Int64 {
            switch self {
            case .full, .outcomes: 1
            case .hourlyOutcomes, .hourlyApplications, .hourlyDenials: 60
            }
        }

        var keys: [KeyColumn] {
            switch self {
            case .full: [.minute, .route, .status, .reason, .application]
            case .outcomes, .hourlyOutcomes: [.minute, .status, .reason]
            case .hourlyApplications: [.application, .minute, .status, .reason]
            case .hourlyDenials: [.minute, .application, .route]
            }
        }

        var keyColumns: [String] { keys.map(\.rawValue) }

        /// The denials table keeps the number of denials alone, and only rows with one.
        var valueColumns: [String] { self == .hourlyDenials ? ["denied"] : CallRollups.valueColumns }

        /// The per-minute table an hourly one is the sum of.
        var minuteSource: Table {
            switch self {
            case .outcomes, .hourlyOutcomes: .outcomes
            case .full, .hourlyApplications, .hourlyDenials: .full
            }
        }
    }

    /// A column of a rollup table's key, with the alias the `INSERT … SELECT`s give it.
    enum KeyColumn: String {
        case minute
        case route
        case status
        case reason
        case application = "application_id"

        var alias: String {
            switch self {
            case .minute: "m"
            case .route: "ro"
            case .status: "status"
            case .reason: "re"
            case .application: "a"
            }
        }

        /// The expression of the key in a row of the call log (a missing value: the empty string).
        func fromCall(_ minute: String) -> String {
            switch self {
            case .minute: "\(minute) AS m"
            case .route: "coalesce(route, '') AS ro"
            case .status: "status"
            case .reason: "coalesce(reason, '') AS re"
            case .application: "coalesce(application_id, '') AS a"
            }
        }
    }

    /// A table, for either dialect (`real` is the floating-point type's name).
    static func createTable(_ table: Table, real: String, integer: String, withoutRowID: Bool) -> String {
        let keys = table.keys.map { k -> String in
            switch k {
            case .minute: "minute \(integer) NOT NULL"
            case .status: "status INTEGER NOT NULL"
            case .route, .reason, .application: "\(k.rawValue) TEXT NOT NULL"
            }
        }.joined(separator: ", ")
        let values =
            table == .hourlyDenials
            ? "denied \(integer) NOT NULL"
            : """
            count \(integer) NOT NULL, denied \(integer) NOT NULL,
                shadow_would_deny \(integer) NOT NULL, total_ms_sum \(real) NOT NULL,
                \(histogramColumns.map { "\($0) \(integer) NOT NULL DEFAULT 0" }.joined(separator: ", "))
            """
        return """
            CREATE TABLE \(table.rawValue) (
                \(keys), \(values),
                PRIMARY KEY (\(table.keyColumns.joined(separator: ", "))))\(withoutRowID ? " WITHOUT ROWID" : "")
            """
    }

    /// The embedded store's migration v5: the per-minute tables, the index, and the rollups of
    /// the calls already logged.
    static var sqliteSchema: [String] {
        Table.minuteTables.map { createTable($0, real: "REAL", integer: "INTEGER", withoutRowID: true) } + [createDenialsIndex]
            + Table.minuteTables.map { insertFromCalls("calls", dialect: .sqlite, into: $0) }
    }

    /// The cluster store's migration pg-3: the same in PostgreSQL's types.
    package static var postgresSchema: [String] {
        Table.minuteTables.map { createTable($0, real: "DOUBLE PRECISION", integer: "BIGINT", withoutRowID: false) } + [createDenialsIndex]
            + Table.minuteTables.map { insertFromCalls("calls", dialect: .postgres, into: $0) }
    }

    /// The embedded store's migration v6: the hourly tables, summed from the minute rows already
    /// there.
    static var sqliteHourlySchema: [String] {
        Table.hourlyTables.map { createTable($0, real: "REAL", integer: "INTEGER", withoutRowID: true) } + [createApplicationsMinuteIndex]
            + Table.hourlyTables.map { insertFromMinutes(into: $0) }
    }

    /// The cluster store's migration pg-4: the same in PostgreSQL's types.
    package static var postgresHourlySchema: [String] {
        Table.hourlyTables.map { createTable($0, real: "DOUBLE PRECISION", integer: "BIGINT", withoutRowID: false) }
            + [createApplicationsMinuteIndex] + Table.hourlyTables.map { insertFromMinutes(into: $0) }
    }

    /// The denial rows alone, with what the overview's most-denied lists read, so that those
    /// lists do not scan the allowed traffic.
    static let createDenialsIndex =
        "CREATE INDEX call_rollups_denials ON call_rollups(minute, application_id, route, denied) WHERE denied > 0"

    /// Retention deletes `call_rollup_applications_hourly`'s rows by hour; its key starts with the
    /// application. Only a new row adds to this index (an hour's row is created once, then
    /// updated), so the writer barely pays for it.
    static let createApplicationsMinuteIndex =
        "CREATE INDEX call_rollup_applications_hourly_minute ON call_rollup_applications_hourly(minute)"

    static let valueColumns = ["count", "denied", "shadow_would_deny", "total_ms_sum"] + histogramColumns

    /// The upsert's conflict clause: every value column adds to the row already there.
    static func onConflict(_ table: Table) -> String {
        " ON CONFLICT (\(table.keyColumns.joined(separator: ", "))) DO UPDATE SET "
            + table.valueColumns.map { "\($0) = \(table.rawValue).\($0) + excluded.\($0)" }.joined(separator: ", ")
    }

    /// Upserts one row (placeholders: the key columns, then the value columns).
    static func upsertSQL(_ table: Table) -> String {
        "INSERT INTO \(table.rawValue) (\((table.keyColumns + table.valueColumns).joined(separator: ", "))) VALUES ("
            + Array(repeating: "?", count: table.keyColumns.count + table.valueColumns.count).joined(separator: ", ") + ")"
            + onConflict(table)
    }

    /// `INSERT … SELECT` of the rollups of the call rows `source` yields (a table or a CTE with
    /// the call log's columns `time`, `route`, `status`, `reason`, `application_id`, `total_ms`,
    /// `trace`), grouped and upserted in one statement. The same expressions as `Batch.add`.
    /// The rows are upserted in key order, so that two nodes delivering at once lock the rows
    /// they share in the same order (rather than deadlock).
    package static func insertFromCalls(_ source: String, dialect: SQLDialect, into table: Table = .full) -> String {
        let minute =
            switch (dialect, table.minutes) {
            case (.sqlite, 1): "CAST(time / 60 AS INTEGER)"
            case (.postgres, 1): "CAST(floor(time / 60) AS BIGINT)"
            case (.sqlite, _): "CAST(time / 3600 AS INTEGER) * 60"
            case (.postgres, _): "CAST(floor(time / 3600) AS BIGINT) * 60"
            }
        let failures = upstreamFailures.sorted().map { "'\($0)'" }.joined(separator: ", ")
        let denied = "CASE WHEN reason IS NOT NULL AND reason <> '' AND reason NOT IN (\(failures)) THEN 1 ELSE 0 END"
        let group = table.keys.map(\.alias).joined(separator: ", ")
        let select = table.keys.map { $0.fromCall(minute) }.joined(separator: ", ")
        if table == .hourlyDenials {
            return """
                INSERT INTO \(table.rawValue) (\((table.keyColumns + table.valueColumns).joined(separator: ", ")))
                SELECT \(select), count(*)
                FROM \(source) WHERE \(denied) = 1 GROUP BY \(group) ORDER BY \(group)
                """ + onConflict(table)
        }
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
        return """
            INSERT INTO \(table.rawValue) (\((table.keyColumns + valueColumns).joined(separator: ", ")))
            SELECT \(select), count(*), sum(\(denied)), sum(\(shadow)), sum(total_ms), \(buckets.joined(separator: ", "))
            FROM \(source) WHERE true GROUP BY \(group) ORDER BY \(group)
            """ + onConflict(table)
    }

    /// `INSERT … SELECT` of an hourly table's rows summed from its per-minute table, all of it
    /// (the migration's backfill) or, with `between`, the minutes bound as `minute >= ? AND
    /// minute < ?` (retention summing again the hour it cut).
    static func insertFromMinutes(into table: Table, between: Bool = false) -> String {
        let select = table.keys.map { $0 == .minute ? "(minute / 60) * 60 AS m" : $0.rawValue }.joined(separator: ", ")
        let group = table.keys.map { $0 == .minute ? "m" : $0.rawValue }.joined(separator: ", ")
        let values = table.valueColumns.map { $0 == "total_ms_sum" ? "sum(total_ms_sum)" : "CAST(sum(\($0)) AS BIGINT)" }
        var conditions: [String] = [table == .hourlyDenials ? "denied > 0" : "true"]
        if between { conditions += ["minute >= ?", "minute < ?"] }
        return """
            INSERT INTO \(table.rawValue) (\((table.keyColumns + table.valueColumns).joined(separator: ", ")))
            SELECT \(select), \(values.joined(separator: ", "))
            FROM \(table.minuteSource.rawValue) WHERE \(conditions.joined(separator: " AND ")) GROUP BY \(group) ORDER BY \(group)
            """ + onConflict(table)
    }

    /// Sums every hourly row again from the minute rows (what migration v6 did to the rows of
    /// an existing store): for tools and benchmarks that write minute rows themselves.
    public static func rebuildHourly(_ tx: any SQLTransaction) throws {
        for t in Table.hourlyTables {
            try tx.execute("DELETE FROM \(t.rawValue)")
            try tx.execute(insertFromMinutes(into: t))
        }
    }

    /// Deletes the rollups of minutes wholly before `time`, and of hours wholly before it; the
    /// hour `time` falls in is summed again from the minutes that remain of it, so that an
    /// hour's rows stay the sum of its minutes'. Returns how many rows were deleted.
    @discardableResult
    package static func purge(before time: Double, _ tx: any SQLTransaction) throws -> Int {
        let cutoff = minute(time)
        let hour = Int64((Double(cutoff) / 60).rounded(.down)) * 60
        var n = 0, minutesRemoved = 0
        for t in Table.minuteTables { minutesRemoved += try tx.execute("DELETE FROM \(t.rawValue) WHERE minute < ?", [cutoff]) }
        for t in Table.hourlyTables { n += try tx.execute("DELETE FROM \(t.rawValue) WHERE minute < ?", [hour]) }
        if cutoff > hour && minutesRemoved > 0 {
            for t in Table.hourlyTables {
                try tx.execute("DELETE FROM \(t.rawValue) WHERE minute = ?", [hour])
                try tx.execute(insertFromMinutes(into: t, between: true), [hour, hour + 60])
            }
        }
        return n + minutesRemoved
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

        /// Upserts the rows, then their sums by each other table's key, through the connection's
        /// cached statements, bound with the sqlite3 C API as the call rows are (`CallRowBinder`):
        /// through `StatementArguments` an upsert cost about 9 µs, most of it boxing its 29 values.
        func write(_ db: Database) throws {
            guard !rows.isEmpty else { return }
            try Self.upsert(rows, into: .full, db)
            for table in Table.allCases where table != .full {
                var sums: [Key: Totals] = [:]
                for (k, t) in rows where table != .hourlyDenials || t.denied > 0 {
                    sums[Self.key(k, of: table), default: Totals()].merge(t)
                }
                try Self.upsert(sums, into: table, db)
            }
        }

        /// A row's key in `table`: the minute of its hour in an hourly table, columns not in the
        /// table's key left empty.
        static func key(_ k: Key, of table: Table) -> Key {
            let columns = table.keys
            return Key(
                minute: table.minutes == 1 ? k.minute : Int64((Double(k.minute) / 60).rounded(.down)) * 60,
                route: columns.contains(.route) ? k.route : "", status: columns.contains(.status) ? k.status : 0,
                reason: columns.contains(.reason) ? k.reason : "",
                application: columns.contains(.application) ? k.application : "")
        }

        /// One upsert per row, its key bound in the table's column order.
        private static func upsert(_ rows: [Key: Totals], into table: Table, _ db: Database) throws {
            guard !rows.isEmpty else { return }
            let stmt = try db.cachedStatement(sql: CallRollups.upsertSQL(table)).sqliteStatement
            // SQLITE_TRANSIENT: sqlite copies each text (a few short strings per row).
            let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
            defer {
                sqlite3_reset(stmt)
                sqlite3_clear_bindings(stmt)
            }
            let columns = table.keys
            for (k, t) in rows {
                for (i, column) in columns.enumerated() {
                    let n = Int32(i + 1)
                    switch column {
                    case .minute: sqlite3_bind_int64(stmt, n, k.minute)
                    case .status: sqlite3_bind_int64(stmt, n, Int64(k.status))
                    case .route: _ = k.route.withCString { sqlite3_bind_text(stmt, n, $0, -1, transient) }
                    case .reason: _ = k.reason.withCString { sqlite3_bind_text(stmt, n, $0, -1, transient) }
                    case .application: _ = k.application.withCString { sqlite3_bind_text(stmt, n, $0, -1, transient) }
                    }
                }
                try step(stmt, totals: t, from: Int32(columns.count + 1), table: table)
            }
        }

        /// Binds a row's totals from parameter `from` on (count, denied, shadow, total time, the
        /// histogram's buckets; the denials table: denied alone), runs the upsert and resets it
        /// for the next row.
        private static func step(_ stmt: OpaquePointer, totals t: Totals, from first: Int32, table: Table) throws {
            if table == .hourlyDenials {
                sqlite3_bind_int64(stmt, first, t.denied)
            } else {
                sqlite3_bind_int64(stmt, first, t.count)
                sqlite3_bind_int64(stmt, first + 1, t.denied)
                sqlite3_bind_int64(stmt, first + 2, t.shadow)
                sqlite3_bind_double(stmt, first + 3, t.totalMillis)
                for (i, n) in t.buckets.enumerated() { sqlite3_bind_int64(stmt, first + 4 + Int32(i), n) }
            }
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

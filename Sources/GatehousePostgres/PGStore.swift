import Foundation
import GatehouseCore
import GatehouseStore
import Synchronization

/// The cluster's shared store on PostgreSQL: what the control plane writes (through
/// `database`, the same `ControlPlane` as on SQLite), the call log every node delivers to, and
/// the nodes' heartbeats.
public final class PGStore: CallLogReading, Sendable {
    public var logLocation: String { "the cluster store \(database.location)" }

    public let database: PGDatabase

    public init(_ location: PostgresLocation, maxConnections: Int = 4) throws {
        database = try PGDatabase(location, maxConnections: maxConnections)
    }

    public convenience init(url: String, maxConnections: Int = 4) throws {
        try self.init(PostgresLocation.parse(url), maxConnections: maxConnections)
    }

    /// Applies the schema's migrations (under an advisory lock); returns those applied.
    @discardableResult
    public func migrate() throws -> [String] { try PGSchema.migrate(database) }

    public func revision() throws -> Int64 {
        try database.read { try $0.scalar("SELECT value FROM meta WHERE key = 'revision'") ?? 0 }
    }

    /// Draws a new epoch and tells every node: each copies the store again, whatever its
    /// revision (after restoring a backup or failing over to a standby, whose revision a node may
    /// have seen with other contents). Returns the new epoch.
    @discardableResult
    public func newEpoch() throws -> Int64 {
        try database.write { tx in
            let epoch: Int64 =
                try tx.scalar("UPDATE meta SET value = (random() * 9.0e18)::bigint WHERE key = 'epoch' RETURNING value") ?? 0
            try tx.execute("SELECT pg_notify('gatehouse_changes', ?)", ["epoch \(epoch)"])
            return epoch
        }
    }

    /// The store's revision and epoch (see `PGSchema`), read together.
    public func version() throws -> (revision: Int64, epoch: Int64) {
        try database.read { tx in
            (
                try tx.scalar("SELECT value FROM meta WHERE key = 'revision'") ?? 0,
                try tx.scalar("SELECT value FROM meta WHERE key = 'epoch'") ?? 0
            )
        }
    }

    /// Everything the data plane reads, in one transaction (as `SQLiteStore.snapshot()`).
    public func snapshot() throws -> StoreSnapshot {
        try database.read { try SQLiteStore.snapshot($0) }
    }

    /// The rows of the tables a node replicates (`ReplicatedTables`) and the revision they are
    /// at, read in one transaction.
    public func replicaRows() throws -> (revision: Int64, epoch: Int64, tables: [(String, [SQLRow])]) {
        try database.read { tx in
            let rev: Int64 = try tx.scalar("SELECT value FROM meta WHERE key = 'revision'") ?? 0
            let epoch: Int64 = try tx.scalar("SELECT value FROM meta WHERE key = 'epoch'") ?? 0
            var tables: [(String, [SQLRow])] = []
            for t in ReplicatedTables.parentsFirst { tables.append((t, try tx.rows("SELECT * FROM \(t)", []))) }
            return (rev, epoch, tables)
        }
    }

    // MARK: Call log

    /// The call-log columns a node delivers, in the SQLite store's order.
    static let callColumns = [
        "request_id", "time", "route", "consumer", "key_id", "client", "method", "path", "host", "status", "upstream_ms", "total_ms",
        "check_id", "reason", "detail", "hint", "required", "presented", "trace", "upstream_target", "facts", "audit_entry",
        "application_id",
    ]

    /// Stores a node's records (rows of its local call log, columns as stored, so nothing is
    /// re-encoded), creating the day partitions they need. A record already delivered (same node,
    /// request id and time: a retry after a failure that hid a commit) is skipped. The new ones
    /// are added to the rollups (`CallRollups`) in the same statement. Returns how many were new.
    @discardableResult
    public func deliverCalls(node: String, _ rows: [SQLRow]) throws -> Int {
        guard !rows.isEmpty else { return 0 }
        let days = Set(rows.map { Self.day(($0["time"] as Double?) ?? 0) })
        try ensurePartitions(days)
        var total = 0
        // 24 parameters a row; PostgreSQL takes at most 65,535 in a statement.
        for chunk in stride(from: 0, to: rows.count, by: 1000) {
            let part = rows[chunk..<min(rows.count, chunk + 1000)]
            var args: [SQLValue] = []
            args.reserveCapacity(part.count * (Self.callColumns.count + 1))
            var tuples: [String] = []
            let tuple = "(" + Array(repeating: "?", count: Self.callColumns.count + 1).joined(separator: ", ") + ")"
            for r in part {
                args.append(.text(node))
                for c in Self.callColumns { args.append(Self.storable(r.value(c))) }
                tuples.append(tuple)
            }
            // The rows actually inserted (a re-delivered one is skipped by ON CONFLICT and returns
            // nothing) feed the per-minute and per-hour rollups in the same statement, so a record
            // is counted once, exactly when it is stored.
            let sql =
                "WITH ins AS (INSERT INTO calls (node, \(Self.callColumns.joined(separator: ", "))) VALUES \(tuples.joined(separator: ", "))"
                + " ON CONFLICT (node, request_id, time) DO NOTHING"
                + " RETURNING time, route, status, reason, application_id, total_ms, trace),"
                + CallRollups.Table.allCases.enumerated().map { i, table in
                    " r\(i) AS (\(CallRollups.insertFromCalls("ins", dialect: .postgres, into: table)))"
                }.joined(separator: ",")
                + " SELECT count(*) FROM ins"
            // One statement, committed on its own at READ COMMITTED: nodes delivering at once add
            // to the same rollup rows, which SERIALIZABLE would make fail and retry.
            total += try database.autocommit { tx in try tx.scalar(sql, SQLArguments(args)) ?? 0 }
        }
        return total
    }

    /// PostgreSQL's text cannot hold U+0000 (SQLite's can): it is stored as U+FFFD.
    static func storable(_ v: SQLValue) -> SQLValue {
        if case .text(let t) = v, t.utf8.contains(0) { return .text(t.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}")) }
        return v
    }

    /// Forgets which day partitions exist (after a delivery failed: another node's retention may
    /// have dropped one); the next delivery creates what it needs again.
    public func forgetPartitions() { knownDays.withLock { $0.removeAll() } }

    /// Days (UTC, seconds since 1970 / 86400) with a partition.
    private let knownDays = Mutex<Set<Int64>>([])

    static func day(_ time: Double) -> Int64 { Int64((time / 86400).rounded(.down)) }

    static func partitionName(_ day: Int64) -> String {
        let d = Date(timeIntervalSince1970: Double(day) * 86400)
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        let c = cal.dateComponents([.year, .month, .day], from: d)
        return String(format: "calls_%04d%02d%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0)
    }

    /// Creates the day partitions not known to exist (under the migrations' advisory lock, so
    /// two nodes do not race on the same day).
    public func ensurePartitions(_ days: Set<Int64>) throws {
        let missing = days.subtracting(knownDays.withLock { $0 })
        guard !missing.isEmpty else { return }
        try database.write { tx in
            try tx.execute("SELECT pg_advisory_xact_lock(?)", [PGSchema.lockKey])
            for d in missing.sorted() {
                let lo = Double(d) * 86400
                try tx.execute(
                    "CREATE TABLE IF NOT EXISTS \(Self.partitionName(d)) PARTITION OF calls FOR VALUES FROM (\(lo)) TO (\(lo + 86400))")
            }
        }
        knownDays.withLock { $0.formUnion(missing) }
    }

    /// Drops the day partitions wholly older than `time`, and the rollups of those days; returns
    /// the partitions' names.
    @discardableResult
    public func dropPartitions(before time: Double) throws -> [String] {
        let cutoff = Self.day(time)
        let names = try database.read { tx in
            try tx.rows(
                "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'calls'::regclass",
                []
            )
            .map { $0["name"] as String }
        }
        var dropped: [String] = []
        for n in names.sorted() {
            // Only names this store gives its partitions (calls_YYYYMMDD), digits only.
            guard let day = Self.dayOf(partition: n), day < cutoff else { continue }
            _ = try database.write { tx in try tx.execute("DROP TABLE IF EXISTS \"\(n)\"") }
            knownDays.withLock { _ = $0.remove(day) }
            dropped.append(n)
        }
        try database.write { tx in try CallRollups.purge(before: Double(cutoff) * 86400, tx) }
        return dropped
    }

    static func dayOf(partition name: String) -> Int64? {
        let digits = name.dropFirst(6)
        guard name.hasPrefix("calls_"), name.count == 14, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let y = Int(digits.prefix(4)),
            let m = Int(digits.dropFirst(4).prefix(2)),
            let d = Int(digits.suffix(2))
        else { return nil }
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        guard let date = cal.date(from: DateComponents(year: y, month: m, day: d)) else { return nil }
        return day(date.timeIntervalSince1970)
    }

    public func callCount() throws -> Int {
        try database.read { try $0.scalar("SELECT count(*) FROM calls") ?? 0 }
    }

    /// The records of a request id (and of its repeats, `ID~N`), oldest first, from every node.
    public func calls(requestID: String) throws -> [CallRecord] {
        try database.read { tx in
            // Byte order (the index's), whatever the database's collation.
            var sql = "SELECT * FROM calls WHERE request_id COLLATE \"C\" = ?"
            var args: [any SQLBindable] = [requestID]
            if !requestID.contains("~") {
                sql += " OR (request_id COLLATE \"C\" > ? AND request_id COLLATE \"C\" < ?)"
                args += [requestID + "~", requestID + "\u{7F}"]
            }
            return try tx.rows(sql + " ORDER BY id", SQLArguments(args)).map(CallRecord.init(row:))
        }
    }

    /// The newest matching records, oldest first, with their ids (`gatehouse logs`).
    public func calls(_ f: CallFilter) throws -> [(row: Int64, record: CallRecord)] {
        var clauses: [String] = []
        var args: [any SQLBindable] = []
        if let s = f.status { clauses.append("status = ?"); args.append(s) }
        if let s = f.reason { clauses.append("reason = ?"); args.append(s) }
        if let s = f.route { clauses.append("route = ?"); args.append(s) }
        if let s = f.consumer { clauses.append("consumer = ?"); args.append(s) }
        if let s = f.since { clauses.append("time >= ?"); args.append(s) }
        if let s = f.afterRow { clauses.append("id > ?"); args.append(s) }
        let whereSQL = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        // After a cursor (following), the oldest first: ids that committed late are read in turn
        // rather than cut off by newer ones. Otherwise the newest `limit`, oldest first.
        let sql =
            f.afterRow != nil
            ? "SELECT * FROM calls\(whereSQL) ORDER BY id LIMIT \(max(1, f.limit))"
            : "SELECT * FROM (SELECT * FROM calls\(whereSQL) ORDER BY id DESC LIMIT \(max(1, f.limit))) AS page ORDER BY id"
        return try database.read { tx in
            try tx.rows(sql, SQLArguments(args)).map { ($0["id"], CallRecord(row: $0)) }
        }
    }

    public func auditEntry(id: Int64) throws -> AuditEntry? {
        try database.read { try $0.row("SELECT * FROM audit_log WHERE id = ?", [id]).map(AuditEntry.init(row:)) }
    }

    // MARK: Nodes

    /// Records a node's heartbeat.
    public func heartbeat(_ n: NodeStatus) throws {
        try database.write { tx in
            try tx.execute(
                """
                INSERT INTO nodes (id, address, version, revision, snapshot_age, spooled, store_reachable, started_at, heartbeat_at)
                VALUES (?, ?, ?, ?, ?, ?, true, ?, ?)
                ON CONFLICT (id) DO UPDATE SET address = excluded.address, version = excluded.version, revision = excluded.revision,
                    snapshot_age = excluded.snapshot_age, spooled = excluded.spooled, store_reachable = true,
                    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
                """,
                [n.id, n.address, n.version, n.revision, n.snapshotAge, n.spooled, n.startedAt, n.heartbeatAt])
        }
    }

    public func nodes() throws -> [NodeStatus] {
        try database.read { tx in
            try tx.rows("SELECT * FROM nodes ORDER BY id", []).map {
                NodeStatus(
                    id: $0["id"], address: $0["address"], version: $0["version"], revision: $0["revision"], snapshotAge: $0["snapshot_age"],
                    spooled: $0["spooled"], startedAt: $0["started_at"], heartbeatAt: $0["heartbeat_at"])
            }
        }
    }
}

/// A node as its last heartbeat described it.
public struct NodeStatus: Sendable, Codable, Equatable {
    public var id: String
    public var address: String?
    public var version: String?
    /// The store revision the node's snapshot is at.
    public var revision: Int64?
    /// Seconds since the node's snapshot was last confirmed current.
    public var snapshotAge: Double?
    /// Call-log records waiting on the node's disk.
    public var spooled: Int64?
    public var startedAt: Double?
    public var heartbeatAt: Double

    public init(
        id: String, address: String?, version: String?, revision: Int64?, snapshotAge: Double?, spooled: Int64?, startedAt: Double?,
        heartbeatAt: Double
    ) {
        self.id = id
        self.address = address
        self.version = version
        self.revision = revision
        self.snapshotAge = snapshotAge
        self.spooled = spooled
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
    }
}

/// The tables a node copies from the cluster store into its local SQLite file: what the data
/// plane reads (credentials, services, subscriptions, token subjects). Their columns are the same
/// in both schemas.
public enum ReplicatedTables {
    public static let parentsFirst = ["consumers", "api_keys", "services", "subscriptions", "jwt_subjects"]
}

import Foundation
import GRDB
import GatehouseCore
import GatehouseIdentity
import Synchronization

/// Errors from store operations, each naming what was wrong.
public struct StoreError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The embedded store: consumers, API keys and the call log in one SQLite file (WAL).
public final class SQLiteStore: Sendable {
    public let path: String
    let pool: DatabasePool
    /// The last suffix given to each recently repeated request id, so that a long run of repeats
    /// costs one lookup each, not a count of the earlier ones (see `freeRequestID`).
    private let lastRepeat = Mutex<[String: Int]>([:])

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // For a new store only (an existing file keeps its page size): the call log appends
            // about 0.5 KB per request, and with 16 KiB pages SQLite writes a quarter as many WAL
            // frames and checkpoint pages (two pwrite calls per frame) as with the default 4 KiB.
            try db.execute(sql: "PRAGMA page_size = 16384")
            // A WAL that a burst grew beyond this is truncated back to it at the next checkpoint,
            // so the store's files on disk stay near the call log's `max_bytes`.
            try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
        }
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch {
            throw StoreError("cannot open the store at \(path): \(error)")
        }
        try Self.migrator.migrate(pool)
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE consumers (
                        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, status TEXT NOT NULL DEFAULT 'active',
                        tenant TEXT, roles TEXT NOT NULL DEFAULT '', scopes TEXT NOT NULL DEFAULT '',
                        password_hash TEXT, created_at REAL NOT NULL);
                    CREATE TABLE api_keys (
                        id TEXT PRIMARY KEY, consumer_id TEXT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,
                        hash BLOB NOT NULL, created_at REAL NOT NULL, expires_at REAL, revoked_at REAL);
                    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                    INSERT INTO meta VALUES ('revision', 0);
                    CREATE TRIGGER consumers_ai AFTER INSERT ON consumers BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    CREATE TRIGGER consumers_au AFTER UPDATE ON consumers BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    CREATE TRIGGER consumers_ad AFTER DELETE ON consumers BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    CREATE TRIGGER keys_ai AFTER INSERT ON api_keys BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    CREATE TRIGGER keys_au AFTER UPDATE ON api_keys BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    CREATE TRIGGER keys_ad AFTER DELETE ON api_keys BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    CREATE TABLE calls (
                        request_id TEXT NOT NULL, time REAL NOT NULL, route TEXT, consumer TEXT, key_id TEXT, client TEXT,
                        method TEXT NOT NULL, path TEXT NOT NULL, host TEXT, status INTEGER NOT NULL, upstream_ms REAL,
                        total_ms REAL NOT NULL, check_id TEXT, reason TEXT, detail TEXT, hint TEXT, required TEXT, presented TEXT,
                        trace TEXT NOT NULL, upstream_target TEXT);
                    CREATE UNIQUE INDEX calls_request_id ON calls(request_id);
                    CREATE INDEX calls_time ON calls(time);
                    """)
        }
        // The call log's time index cost about 0.45 µs of the writer's CPU per record (a b-tree
        // descent with a dozen REAL comparisons per insert). `call_batches` replaces it at one row
        // per written batch: the rowid span of the batch and the least and greatest time in it.
        // Every call row lies in the span of a batch whose times bound its own, so `since` becomes
        // a rowid range (from the first batch with max_time >= since) and retention deletes
        // within the spans of batches with min_time < cutoff (see purgeCalls). The table has one
        // row per 512 records or so, and is scanned rather than indexed: an index would add a
        // page to every commit's WAL frames.
        m.registerMigration("v2-call-batches") { db in
            try db.execute(
                sql: """
                    CREATE TABLE call_batches (
                        first_row INTEGER PRIMARY KEY, last_row INTEGER NOT NULL, min_time REAL NOT NULL, max_time REAL NOT NULL);
                    INSERT INTO call_batches (first_row, last_row, min_time, max_time)
                        SELECT min(rowid), max(rowid), min(time), max(time) FROM calls GROUP BY rowid >> 12;
                    DROP INDEX calls_time;
                    """)
        }
        // What `simulate --replay-log` needs beyond the first columns: the TLS flag and the
        // non-secret request fields checks read (`RequestFacts`). Older rows keep NULL.
        m.registerMigration("call-replay-fields") { db in
            try db.execute(sql: "ALTER TABLE calls ADD COLUMN facts TEXT")
        }
        registerControlMigrations(&m)
        // Per-minute totals for analytics (`CallRollups`), filled from the calls already logged.
        m.registerMigration("v5-call-rollups") { db in
            for statement in CallRollups.sqliteSchema { try db.execute(sql: statement) }
        }
        // Per-hour totals for long periods and tenant-scoped reads, summed from the minute rows.
        m.registerMigration("v6-hourly-rollups") { db in
            for statement in CallRollups.sqliteHourlySchema { try db.execute(sql: statement) }
        }
        // Server-side sessions of the console (and the developer portal): `WebSessionSchema`.
        m.registerMigration("v7-web-sessions") { db in
            for statement in WebSessionSchema.sqliteSchema { try db.execute(sql: statement) }
        }
        // The developer portal's accounts.
        registerDeveloperMigrations(&m)
        return m
    }

    // MARK: Consumers

    // The writes below are the store's primitives, unaudited: for tests and tools that seed a
    // store. Operators' changes (the CLI, the admin API) go through `ControlPlane`
    // (GatehouseControl), which authorises them and appends their audit entries.

    @discardableResult
    public func createConsumer(name: String, tenant: String? = nil, roles: [String] = [], scopes: [String] = []) throws -> ConsumerRecord {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@".contains($0) }) else {
            throw StoreError("consumer name \"\(name)\" is invalid: use letters, digits, - _ . @")
        }
        let record = ConsumerRecord(
            id: "c_" + UUID().uuidString.lowercased().prefix(12), name: name, tenant: tenant, roles: roles, scopes: scopes)
        do {
            try pool.write { db in
                try db.execute(
                    sql: "INSERT INTO consumers (id, name, status, tenant, roles, scopes, created_at) VALUES (?, ?, 'active', ?, ?, ?, ?)",
                    arguments: [
                        record.id, name, tenant, roles.joined(separator: " "), scopes.joined(separator: " "), Date().timeIntervalSince1970,
                    ])
            }
        } catch let e as DatabaseError where e.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw StoreError("consumer \"\(name)\" already exists")
        }
        return record
    }

    public func consumers() throws -> [ConsumerRecord] {
        try pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM consumers ORDER BY name").map(Self.consumer) }
    }

    public func consumer(named name: String) throws -> ConsumerRecord? {
        try pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM consumers WHERE name = ?", arguments: [name]).map(Self.consumer) }
    }

    public func setConsumerStatus(name: String, status: String) throws {
        guard ["active", "suspended"].contains(status) else {
            throw StoreError("status \"\(status)\" is invalid: expected active or suspended")
        }
        let changed = try pool.write { db -> Int in
            try db.execute(sql: "UPDATE consumers SET status = ? WHERE name = ?", arguments: [status, name])
            return db.changesCount
        }
        if changed == 0 { throw StoreError("no consumer named \"\(name)\"") }
    }

    public func setConsumerGrants(name: String, roles: [String]?, scopes: [String]?, tenant: String??) throws {
        try pool.write { db in
            guard try Row.fetchOne(db, sql: "SELECT 1 FROM consumers WHERE name = ?", arguments: [name]) != nil else {
                throw StoreError("no consumer named \"\(name)\"")
            }
            if let roles {
                try db.execute(sql: "UPDATE consumers SET roles = ? WHERE name = ?", arguments: [roles.joined(separator: " "), name])
            }
            if let scopes {
                try db.execute(sql: "UPDATE consumers SET scopes = ? WHERE name = ?", arguments: [scopes.joined(separator: " "), name])
            }
            if let tenant { try db.execute(sql: "UPDATE consumers SET tenant = ? WHERE name = ?", arguments: [tenant, name]) }
        }
    }

    static func consumer(_ row: Row) -> ConsumerRecord { consumer(SQLRow(grdb: row)) }

    package static func consumer(_ row: SQLRow) -> ConsumerRecord {
        ConsumerRecord(
            id: row["id"], name: row["name"], status: row["status"], tenant: row["tenant"],
            roles: (row["roles"] as String? ?? "").split(separator: " ").map(String.init),
            scopes: (row["scopes"] as String? ?? "").split(separator: " ").map(String.init),
            passwordHash: row["password_hash"])
    }

    /// Sets (or, with nil, clears) a consumer's bcrypt password hash for `basic` authentication.
    public func setPasswordHash(name: String, hash: String?) throws {
        let changed = try pool.write { db -> Int in
            try db.execute(sql: "UPDATE consumers SET password_hash = ? WHERE name = ?", arguments: [hash, name])
            return db.changesCount
        }
        if changed == 0 { throw StoreError("no consumer named \"\(name)\"") }
    }

    // MARK: Keys

    /// Creates a key for a consumer. The key is returned once; only its hash is stored.
    public func createKey(consumer name: String, expiresAt: Double? = nil) throws -> (key: String, record: KeyRecord) {
        guard let consumer = try consumer(named: name) else {
            throw StoreError("no consumer named \"\(name)\"; create it with `gatehouse consumers create \(name)`")
        }
        let (key, id) = APIKeyFormat.generate()
        let record = KeyRecord(
            keyID: id, consumerID: consumer.id, hash: APIKeyFormat.hash(key), createdAt: Date().timeIntervalSince1970, expiresAt: expiresAt)
        try pool.write { db in
            try db.execute(
                sql: "INSERT INTO api_keys (id, consumer_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [record.keyID, record.consumerID, Data(record.hash), record.createdAt, record.expiresAt])
        }
        return (key, record)
    }

    public func revokeKey(id: String, at time: Double = Date().timeIntervalSince1970) throws {
        let changed = try pool.write { db -> Int in
            try db.execute(sql: "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", arguments: [time, id])
            return db.changesCount
        }
        if changed == 0 { throw StoreError("no active key with id \"\(id)\"") }
    }

    /// Sets or clears a key's expiry (used by tests and `keys expire`).
    public func setKeyExpiry(id: String, expiresAt: Double?) throws {
        try pool.write { db in try db.execute(sql: "UPDATE api_keys SET expires_at = ? WHERE id = ?", arguments: [expiresAt, id]) }
    }

    public func keys(consumer name: String? = nil) throws -> [(KeyRecord, consumer: String)] {
        try pool.read { db in
            let sql =
                "SELECT k.*, c.name AS consumer_name FROM api_keys k JOIN consumers c ON c.id = k.consumer_id"
                + (name == nil ? "" : " WHERE c.name = ?") + " ORDER BY k.created_at"
            return try Row.fetchAll(db, sql: sql, arguments: name.map { [$0] } ?? []).map { (Self.key($0), $0["consumer_name"]) }
        }
    }

    static func key(_ row: Row) -> KeyRecord { key(SQLRow(grdb: row)) }

    package static func key(_ row: SQLRow) -> KeyRecord {
        KeyRecord(
            keyID: row["id"], consumerID: row["consumer_id"], hash: Array(row["hash"] as Data),
            createdAt: row["created_at"], expiresAt: row["expires_at"], revokedAt: row["revoked_at"])
    }

    /// A change counter bumped by every write to consumers or keys.
    public func revision() throws -> Int64 {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'revision'") ?? 0 }
    }

    /// Everything the request path needs, read in one transaction.
    public func credentialSnapshot() throws -> (revision: Int64, consumers: [ConsumerRecord], keys: [KeyRecord]) {
        let s = try snapshot()
        return (s.revision, s.consumers, s.keys)
    }

    /// Everything the request path needs, read in one transaction: credentials, services and
    /// subscriptions.
    public func snapshot() throws -> StoreSnapshot {
        try pool.read { db in try Self.snapshot(GRDBDatabase.Transaction(db: db)) }
    }

    /// The snapshot read in the caller's transaction, of either dialect.
    package static func snapshot(_ db: any SQLTransaction) throws -> StoreSnapshot {
        let rev: Int64 = try db.scalar("SELECT value FROM meta WHERE key = 'revision'") ?? 0
        let consumers = try db.rows("SELECT * FROM consumers", []).map(Self.consumer as (SQLRow) -> ConsumerRecord)
        let keys = try db.rows("SELECT * FROM api_keys", []).map(Self.key as (SQLRow) -> KeyRecord)
        let subs = try Self.subscriptionSnapshot(db)
        return StoreSnapshot(
            revision: rev, consumers: consumers, keys: keys, services: subs.services, subscriptions: subs.subscriptions,
            jwtSubjects: subs.jwtSubjects)
    }

    // MARK: Call log

    /// Inserts the records in one transaction. Pass the array's last use (it is consumed): an
    /// array still referenced elsewhere is copied first. Returns the records stored under another
    /// request id than they came with (see `insertCalls(_:_:)`).
    @discardableResult
    public func insertCalls(_ records: consuming [CallRecord]) throws -> [(from: String, to: String)] {
        var records = records
        return try insertCalls(&records, records.indices)
    }

    /// Inserts `records[range]` in one transaction (`records` is left as it was, but for ids
    /// changed on a conflict; it is `inout` so that the writer's array is not copied).
    ///
    /// Every field is cut to its `CallLogLimits` cap. A record never replaces another: one whose
    /// request id is already in the log is stored as `ID~N` (the next free N from 2), and listed
    /// in the result.
    @discardableResult
    func insertCalls(_ records: inout [CallRecord], _ range: Range<Int>) throws -> [(from: String, to: String)] {
        guard !range.isEmpty else { return [] }
        return try pool.write { db in
            var binder = CallRowBinder(try db.cachedStatement(sql: CallRowBinder.sql), resolveConflict: { try self.freeRequestID($0, db) })
            try binder.insert(&records, range)
            // The batch's per-minute totals, in the same transaction: a record is counted once,
            // exactly when it is stored.
            var rollups = CallRollups.Batch()
            records.withUnsafeBufferPointer { buffer in
                for i in range { rollups.add(buffer[i]) }
            }
            try rollups.write(db)
            // Rows of one transaction get consecutive rowids: nothing else writes meanwhile.
            try db.cachedStatement(sql: Self.addBatchSQL).execute(arguments: [
                binder.firstRow, binder.lastRow, binder.minTime, binder.maxTime,
            ])
            return binder.renamed
        }
    }

    /// A request id not yet in the log for a record whose id `taken` is: `BASE~N`, where BASE is
    /// `taken` without any suffix (incoming ids never contain `~`: `RequestIDGenerator.isAcceptable`,
    /// nor do generated ones) and N the first free number after the repeats stored so far.
    func freeRequestID(_ taken: String, _ db: Database) throws -> String {
        let base = taken.firstIndex(of: "~").map { String(taken[..<$0]) } ?? taken
        var n: Int
        if let last = lastRepeat.withLock({ $0[base] }) {
            n = last + 1
        } else {
            n =
                2
                + (try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM calls WHERE request_id > ? AND request_id < ?",
                    arguments: [base + "~", base + "\u{7F}"]) ?? 0)
        }
        var id = base + "~r" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        for _ in 0..<64 {
            let candidate = base + "~\(n)"
            if try Int.fetchOne(db, sql: "SELECT 1 FROM calls WHERE request_id = ?", arguments: [candidate]) == nil {
                id = candidate
                break
            }
            n += 1
        }
        lastRepeat.withLock { cache in
            if cache.count >= 1024 { cache.removeAll() }
            cache[base] = n
        }
        return id
    }

    /// Adds a batch's span to `call_batches`; a span that starts where one already does (rowids
    /// reused after deletes) widens it.
    static let addBatchSQL = """
        INSERT INTO call_batches (first_row, last_row, min_time, max_time) VALUES (?, ?, ?, ?)
        ON CONFLICT (first_row) DO UPDATE SET last_row = max(last_row, excluded.last_row),
            min_time = min(min_time, excluded.min_time), max_time = max(max_time, excluded.max_time)
        """

    public func call(requestID: String) throws -> CallRecord? {
        try pool.read { db in try Row.fetchOne(db, sql: "SELECT * FROM calls WHERE request_id = ?", arguments: [requestID]).map(Self.call) }
    }

    /// The record with this request id and those stored for repeats of it (`ID~2`, `ID~3`, …),
    /// in the order they were written. With a suffixed id, only that record.
    public func calls(requestID: String) throws -> [CallRecord] {
        try pool.read { db in
            var sql = "SELECT * FROM calls WHERE request_id = ?"
            var args: [any DatabaseValueConvertible] = [requestID]
            if !requestID.contains("~") {
                sql += " OR (request_id > ? AND request_id < ?)"
                args += [requestID + "~", requestID + "\u{7F}"]
            }
            return try Row.fetchAll(db, sql: sql + " ORDER BY rowid", arguments: StatementArguments(args)).map(Self.call)
        }
    }

    /// Copies the WAL into the database and truncates it (at shutdown: the store is left as one
    /// file of its real size). Fails harmlessly while another process reads.
    public func checkpoint() throws {
        try pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
    }

    /// The bytes of the database's pages in use (the file is this large, plus pages freed by
    /// deletes, which later writes reuse).
    public func usedBytes() throws -> Int {
        try pool.read { db in try Self.usedBytes(db) }
    }

    static func usedBytes(_ db: Database) throws -> Int {
        let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
        let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
        let free = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
        return (pages - free) * pageSize
    }

    /// When the database's pages in use exceed `maxBytes`, deletes the oldest call records (a
    /// written batch at a time, lowest rowids first) until they are under nine tenths of it, or
    /// `maxBatches` batches are gone. Returns how many records it deleted and the bytes in use after.
    @discardableResult
    public func trimCalls(toBytes maxBytes: Int, maxBatches: Int = 256) throws -> (removed: Int, usedBytes: Int) {
        try pool.write { db in
            var used = try Self.usedBytes(db)
            guard used > maxBytes else { return (0, used) }
            let target = maxBytes - maxBytes / 10
            var removed = 0
            for _ in 0..<maxBatches where used > target {
                guard let span = try Row.fetchOne(db, sql: "SELECT first_row, last_row FROM call_batches ORDER BY first_row LIMIT 1") else {
                    break
                }
                let first: Int64 = span[0], last: Int64 = span[1]
                // A cluster node's spool: records not yet delivered (and the last delivered one) stay.
                if let keep = try Self.keptFromRow(db), last >= keep { break }
                try db.execute(sql: "DELETE FROM calls WHERE rowid BETWEEN ? AND ?", arguments: [first, last])
                removed += db.changesCount
                try db.execute(sql: "DELETE FROM call_batches WHERE first_row = ?", arguments: [first])
                used = try Self.usedBytes(db)
            }
            return (removed, used)
        }
    }

    /// Matching records, oldest first, with their row ids (for following).
    public func calls(_ f: CallFilter) throws -> [(row: Int64, record: CallRecord)] {
        var clauses: [String] = []
        var args: [any DatabaseValueConvertible] = []
        if let s = f.status { clauses.append("status = ?"); args.append(s) }
        if let s = f.reason { clauses.append("reason = ?"); args.append(s) }
        if let s = f.route { clauses.append("route = ?"); args.append(s) }
        if let s = f.consumer { clauses.append("consumer = ?"); args.append(s) }
        if let s = f.since {
            clauses.append("time >= ?")
            args.append(s)
            // Narrows the scan to the batches that can hold such a row (there is no time index).
            clauses.append("rowid >= (SELECT min(first_row) FROM call_batches WHERE max_time >= ?)")
            args.append(s)
        }
        if let s = f.afterRow { clauses.append("rowid > ?"); args.append(s) }
        let whereSQL = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        let sql = "SELECT * FROM (SELECT rowid AS rid, * FROM calls\(whereSQL) ORDER BY rowid DESC LIMIT \(max(1, f.limit))) ORDER BY rid"
        return try pool.read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map { ($0["rid"], Self.call($0)) }
        }
    }

    /// Calls `body` with every record whose time is in `since..<until` (either bound may be
    /// absent), of `route` when given, oldest first. The records are read through a cursor, one
    /// at a time, in pages of `pageSize` rows, each page in a read transaction of its own: a
    /// period of any size costs the memory of one record (and whatever `body` keeps), and a long
    /// replay beside a running gateway never holds one snapshot for long (which would keep the
    /// gateway's checkpoints from resetting the WAL).
    public func forEachCall(
        since: Double? = nil, until: Double? = nil, route: String? = nil, pageSize: Int = 1000, _ body: (CallRecord) throws -> Void
    ) throws {
        var clauses = ["rowid > ?"]
        var args: [any DatabaseValueConvertible] = []
        if let since {
            clauses.append("time >= ?")
            args.append(since)
            // Narrows the scan to the batches that can hold such a row (there is no time index).
            clauses.append("rowid >= (SELECT min(first_row) FROM call_batches WHERE max_time >= ?)")
            args.append(since)
        }
        if let until { clauses.append("time < ?"); args.append(until) }
        if let route { clauses.append("route = ?"); args.append(route) }
        let sql = "SELECT rowid AS rid, * FROM calls WHERE \(clauses.joined(separator: " AND ")) ORDER BY rowid LIMIT \(max(1, pageSize))"
        var after: Int64 = 0
        while true {
            var last: Int64?
            try pool.read { db in
                let rows = try Row.fetchCursor(db, sql: sql, arguments: StatementArguments([after] + args))
                while let row = try rows.next() {
                    last = row["rid"]
                    try body(Self.call(row))
                }
            }
            guard let last else { return }
            after = last
        }
    }

    public func callCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM calls") ?? 0 }
    }

    /// Deletes records older than `time`; returns how many.
    @discardableResult
    public func purgeCalls(before time: Double) throws -> Int {
        try pool.write { db in
            // Only batches with a record older than `time` can hold one; each is trimmed and its
            // bounds recomputed (or it is dropped once empty), so a batch that still holds newer
            // records (a long request is logged when it ends, with the time it began) is revisited
            // only until those expire too.
            var removed = 0
            // A cluster node's spool: records not yet delivered (and the last delivered one) stay.
            let keep = try Self.keptFromRow(db) ?? Int64.max
            let spans = try Row.fetchAll(db, sql: "SELECT first_row, last_row FROM call_batches WHERE min_time < ?", arguments: [time])
            for span in spans {
                let first: Int64 = span[0], last: Int64 = span[1]
                try db.execute(
                    sql: "DELETE FROM calls WHERE rowid BETWEEN ? AND ? AND time < ? AND rowid < ?", arguments: [first, last, time, keep])
                removed += db.changesCount
                let bounds = try Row.fetchOne(
                    db, sql: "SELECT min(rowid), max(rowid), min(time), max(time) FROM calls WHERE rowid BETWEEN ? AND ?",
                    arguments: [first, last])
                try db.execute(sql: "DELETE FROM call_batches WHERE first_row = ?", arguments: [first])
                if let lo: Int64 = bounds?[0], let hi: Int64 = bounds?[1], let minTime: Double = bounds?[2],
                    let maxTime: Double = bounds?[3]
                {
                    try db.execute(sql: Self.addBatchSQL, arguments: [lo, hi, minTime, maxTime])
                }
            }
            // The totals of the minutes wholly before `time` go with their calls.
            try CallRollups.purge(before: time, GRDBDatabase.Transaction(db: db))
            return removed
        }
    }

    package static func call(_ row: Row) -> CallRecord { CallRecord(row: SQLRow(grdb: row)) }
}

extension CallRecord {
    /// A call-log row (the SQLite store's or a cluster's PostgreSQL's).
    public init(row: SQLRow) {
        let decoder = JSONDecoder()
        func list(_ s: String?) -> [String] {
            guard let s, let d = s.data(using: .utf8) else { return [] }
            return (try? decoder.decode([String].self, from: d)) ?? []
        }
        let trace = (row["trace"] as String?).flatMap { StoredTrace.read($0, decoder: decoder) }
        self.init(
            requestID: row["request_id"], time: row["time"], route: row["route"], consumer: row["consumer"], keyID: row["key_id"],
            client: row["client"], method: row["method"], path: row["path"], host: row["host"], status: row["status"],
            upstreamMillis: row["upstream_ms"], totalMillis: row["total_ms"], decidingCheck: row["check_id"], reason: row["reason"],
            detail: row["detail"], hint: row["hint"], required: list(row["required"]), presented: list(row["presented"]),
            trace: trace ?? DecisionTrace(), upstreamTarget: row["upstream_target"],
            facts: (row["facts"] as String?).flatMap { RequestFacts.read($0, decoder: decoder) }, auditEntry: row["audit_entry"],
            applicationID: row["application_id"])
    }
}

/// What the request path reads of the store in one transaction (`SQLiteStore.snapshot()`).
public struct StoreSnapshot: Sendable {
    public var revision: Int64
    public var consumers: [ConsumerRecord]
    public var keys: [KeyRecord]
    public var services: [ServiceRecord]
    public var subscriptions: [SubscriptionRecord]
    /// Token issuers and subjects that act as an application.
    public var jwtSubjects: [(issuer: String, subject: String, applicationID: String)]
}

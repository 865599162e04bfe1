import Foundation
import GRDB

/// What a cluster node keeps in its local SQLite file besides its own call log:
///
/// - a replica of the tables the data plane reads, copied from the cluster store whenever its
///   revision changes (`replaceReplica`). The node's data plane reads them as a standalone
///   gateway reads its store, so it keeps enforcing the last good copy while PostgreSQL is away,
///   and starts from it after a restart;
/// - the spool: the local call log's records not yet delivered to the cluster store, those after
///   `meta.shipped_row`. Retention never removes an undelivered record, nor the last delivered
///   one (which keeps SQLite from reusing row numbers below the mark).
extension SQLiteStore {
    /// The cluster store's revision the replica was copied at, and when the replica was last
    /// confirmed current (seconds since 1970); nil before the first copy.
    public func replicaState() throws -> (revision: Int64, epoch: Int64, confirmedAt: Double)? {
        try pool.read { db in
            guard let rev = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'cluster_revision'") else { return nil }
            let epoch = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'cluster_epoch'") ?? 0
            let at = try Double.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'cluster_confirmed_at'") ?? 0
            return (rev, epoch, at)
        }
    }

    /// Notes that the replica is current at `time` (the cluster store's revision was read and
    /// matched it).
    public func confirmReplica(at time: Double) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('cluster_confirmed_at', ?)", arguments: [time])
        }
    }

    /// Replaces the replicated tables with `tables` (name → rows, parents first, columns by name)
    /// in one transaction, and records the cluster revision they are at.
    public func replaceReplica(_ tables: [(String, [SQLRow])], revision: Int64, epoch: Int64, at time: Double) throws {
        try pool.write { db in
            for (name, _) in tables.reversed() { try db.execute(sql: "DELETE FROM \(name)") }
            for (name, rows) in tables {
                guard let first = rows.first else { continue }
                let cols = first.columns
                let sql =
                    "INSERT INTO \(name) (\(cols.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: cols.count).joined(separator: ", ")))"
                let stmt = try db.cachedStatement(sql: sql)
                for r in rows {
                    try stmt.execute(arguments: GRDBDatabase.Transaction.arguments(SQLArguments(r.values)))
                }
            }
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('cluster_revision', ?)", arguments: [revision])
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('cluster_epoch', ?)", arguments: [epoch])
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('cluster_confirmed_at', ?)", arguments: [time])
        }
    }

    /// The last call-log row delivered to the cluster store (0 before any).
    public func shippedRow() throws -> Int64 {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'shipped_row'") ?? 0 }
    }

    /// Starts the spool: from now on retention keeps every record after `shipped_row`. Records
    /// already in the log when a node first joins a cluster are delivered too.
    public func startSpool() throws {
        try pool.write { db in try db.execute(sql: "INSERT OR IGNORE INTO meta (key, value) VALUES ('shipped_row', 0)") }
    }

    /// Ends the spool and the copy (a node's file served by a standalone gateway): retention
    /// applies to every record again, and the file is a store of its own (its copied tables as
    /// they were). Returns how many records were never delivered (they stay in the local log
    /// until its retention removes them).
    @discardableResult
    public func stopSpool() throws -> Int {
        try pool.write { db in
            guard let after = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'shipped_row'") else { return 0 }
            let n = try Int.fetchOne(db, sql: "SELECT count(*) FROM calls WHERE rowid > ?", arguments: [after]) ?? 0
            // No longer a copy of a cluster store either: the file is the store now.
            try db.execute(
                sql: "DELETE FROM meta WHERE key IN ('shipped_row', 'cluster_revision', 'cluster_epoch', 'cluster_confirmed_at')")
            return n
        }
    }

    public func setShippedRow(_ row: Int64) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('shipped_row', ?)", arguments: [row])
        }
    }

    /// Undelivered records, oldest first, as stored (with `rid`, their row number).
    public func spooledCalls(limit: Int) throws -> [SQLRow] {
        try pool.read { db in
            let after = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'shipped_row'") ?? 0
            return try Row.fetchAll(
                db, sql: "SELECT rowid AS rid, * FROM calls WHERE rowid > ? ORDER BY rowid LIMIT ?", arguments: [after, max(1, limit)]
            ).map(SQLRow.init(grdb:))
        }
    }

    /// How many records wait in the spool.
    public func spooledCount() throws -> Int {
        try pool.read { db in
            guard let after = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'shipped_row'") else { return 0 }
            return try Int.fetchOne(db, sql: "SELECT count(*) FROM calls WHERE rowid > ?", arguments: [after]) ?? 0
        }
    }

    /// The lowest row retention must keep: the last delivered one, when the log is a spool.
    static func keptFromRow(_ db: Database) throws -> Int64? {
        try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'shipped_row'")
    }
}

import Foundation
import GRDB

/// `SQLDatabase` over the embedded store's GRDB pool (WAL: reads run beside the writer).
public struct GRDBDatabase: SQLDatabase {
    let pool: DatabasePool
    public var dialect: SQLDialect { .sqlite }

    public init(_ pool: DatabasePool) { self.pool = pool }

    public func write<T>(_ body: (any SQLTransaction) throws -> T) throws -> T {
        try Self.mapErrors { try pool.write { db in try body(Transaction(db: db)) } }
    }

    public func read<T>(_ body: (any SQLTransaction) throws -> T) throws -> T {
        try Self.mapErrors { try pool.read { db in try body(Transaction(db: db)) } }
    }

    static func mapErrors<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as DatabaseError {
            switch e.extendedResultCode {
            case .SQLITE_CONSTRAINT_UNIQUE, .SQLITE_CONSTRAINT_PRIMARYKEY: throw SQLError.uniqueViolation(e.message ?? "\(e)")
            default: throw SQLError.other("\(e)")
            }
        }
    }

    struct Transaction: SQLTransaction {
        let db: Database
        var dialect: SQLDialect { .sqlite }

        func execute(_ sql: String, _ arguments: SQLArguments) throws -> Int {
            try db.execute(sql: sql, arguments: Self.arguments(arguments))
            return db.changesCount
        }

        func rows(_ sql: String, _ arguments: SQLArguments) throws -> [SQLRow] {
            try Row.fetchAll(db, sql: sql, arguments: Self.arguments(arguments)).map(SQLRow.init(grdb:))
        }

        static func arguments(_ a: SQLArguments) -> StatementArguments {
            StatementArguments(
                a.values.map { v -> (any DatabaseValueConvertible)? in
                    switch v {
                    case .null: nil
                    case .integer(let i): i
                    case .double(let d): d
                    case .text(let s): s
                    case .blob(let b): Data(b)
                    }
                })
        }
    }
}

extension SQLRow {
    /// A GRDB row's columns and values.
    package init(grdb row: Row) {
        var values: [SQLValue] = []
        values.reserveCapacity(row.count)
        for dbv in row.databaseValues {
            switch dbv.storage {
            case .null: values.append(.null)
            case .int64(let i): values.append(.integer(i))
            case .double(let d): values.append(.double(d))
            case .string(let s): values.append(.text(s))
            case .blob(let d): values.append(.blob(Array(d)))
            }
        }
        self.init(columns: Array(row.columnNames), values: values)
    }
}

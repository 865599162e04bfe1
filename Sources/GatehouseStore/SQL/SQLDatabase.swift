import Foundation

// The control plane's view of a SQL database, so that the same service layer (GatehouseControl),
// with the same SQL, runs on the embedded SQLite store and on a cluster's PostgreSQL.
//
// Written by hand because neither GRDB nor postgres-nio offers a shared interface, and sql-kit
// (the one library that spans both) brings an async query builder the control plane's
// synchronous, transaction-per-operation code does not need. The SQL is a common subset
// (`?` placeholders, `RETURNING`, `ON CONFLICT`, `LIKE … ESCAPE`); the few things the two dialects
// spell differently are `SQLDialect`'s.

/// A value bound to a statement or read from a row.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])
}

/// A Swift value that binds as a statement argument.
public protocol SQLBindable: Sendable {
    var sqlValue: SQLValue { get }
}

extension String: SQLBindable { public var sqlValue: SQLValue { .text(self) } }
extension Substring: SQLBindable { public var sqlValue: SQLValue { .text(String(self)) } }
extension Int: SQLBindable { public var sqlValue: SQLValue { .integer(Int64(self)) } }
extension Int64: SQLBindable { public var sqlValue: SQLValue { .integer(self) } }
extension Double: SQLBindable { public var sqlValue: SQLValue { .double(self) } }
extension Bool: SQLBindable { public var sqlValue: SQLValue { .integer(self ? 1 : 0) } }
extension Data: SQLBindable { public var sqlValue: SQLValue { .blob(Array(self)) } }
extension SQLValue: SQLBindable { public var sqlValue: SQLValue { self } }
extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// A statement's arguments, in placeholder order.
public struct SQLArguments: Sendable, ExpressibleByArrayLiteral {
    public var values: [SQLValue]
    public init(_ values: [any SQLBindable]) { self.values = values.map(\.sqlValue) }
    public init(arrayLiteral elements: (any SQLBindable)?...) { values = elements.map { $0?.sqlValue ?? .null } }
    public static func + (a: SQLArguments, b: SQLArguments) -> SQLArguments {
        var r = a
        r.values += b.values
        return r
    }
}

/// A Swift value read from a column. Reading NULL into a non-optional type is a programming error
/// (the schema says NOT NULL) and traps, as GRDB's rows do.
public protocol SQLDecodable {
    static func decode(_ value: SQLValue) -> Self?
}

extension String: SQLDecodable {
    public static func decode(_ value: SQLValue) -> String? {
        switch value {
        case .text(let s): s
        case .integer(let i): String(i)
        case .double(let d): String(d)
        case .blob(let b): String(decoding: b, as: UTF8.self)
        case .null: nil
        }
    }
}

extension Int64: SQLDecodable {
    public static func decode(_ value: SQLValue) -> Int64? {
        switch value {
        case .integer(let i): i
        case .double(let d): Int64(exactly: d.rounded(.towardZero))
        case .text(let s): Int64(s)
        default: nil
        }
    }
}

extension Int: SQLDecodable {
    public static func decode(_ value: SQLValue) -> Int? { Int64.decode(value).map { Int($0) } }
}

extension Double: SQLDecodable {
    public static func decode(_ value: SQLValue) -> Double? {
        switch value {
        case .double(let d): d
        case .integer(let i): Double(i)
        case .text(let s): Double(s)
        default: nil
        }
    }
}

extension Bool: SQLDecodable {
    public static func decode(_ value: SQLValue) -> Bool? { Int64.decode(value).map { $0 != 0 } }
}

extension Data: SQLDecodable {
    public static func decode(_ value: SQLValue) -> Data? {
        switch value {
        case .blob(let b): Data(b)
        case .text(let s): Data(s.utf8)
        default: nil
        }
    }
}

extension SQLValue: SQLDecodable {
    public static func decode(_ value: SQLValue) -> SQLValue? { value }
}

extension Optional: SQLDecodable where Wrapped: SQLDecodable {
    public static func decode(_ value: SQLValue) -> Wrapped?? {
        if case .null = value { return .some(nil) }
        return Wrapped.decode(value).map { .some($0) }
    }
}

/// One result row: values by column name (the first column of that name) or position.
public struct SQLRow: Sendable {
    public let columns: [String]
    public let values: [SQLValue]

    public init(columns: [String], values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    public func value(_ name: String) -> SQLValue {
        guard let i = columns.firstIndex(of: name) else { return .null }
        return values[i]
    }

    public subscript<T: SQLDecodable>(_ name: String) -> T {
        Self.read(value(name), name)
    }

    public subscript<T: SQLDecodable>(_ index: Int) -> T {
        Self.read(index < values.count ? values[index] : .null, "#\(index)")
    }

    static func read<T: SQLDecodable>(_ v: SQLValue, _ name: String) -> T {
        guard let t = T.decode(v) else { preconditionFailure("column \(name) holds \(v), not a \(T.self)") }
        return t
    }
}

/// What a statement failed on, in terms the service layer answers to (a unique name taken is a
/// 409, not a 500).
public enum SQLError: Error, CustomStringConvertible {
    /// A UNIQUE or PRIMARY KEY constraint refused the row.
    case uniqueViolation(String)
    /// The database cannot be reached or cannot work now (down, out of disk, read-only during a
    /// failover, past a deadline): the operation did not happen, or may not have.
    case unavailable(String)
    /// The database refused the values themselves (a string it cannot hold, a value out of
    /// range): retrying the same row fails the same way.
    case rejectedData(String)
    case other(String)

    /// Whether the database could not be reached (rather than refusing the statement).
    public var isUnavailable: Bool {
        if case .unavailable = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .uniqueViolation(let s): "unique constraint: \(s)"
        case .unavailable(let s): "the store is unavailable: \(s)"
        case .rejectedData(let s): "the store refused the data: \(s)"
        case .other(let s): s
        }
    }
}

/// The spellings the two dialects do not share.
public enum SQLDialect: Sendable {
    case sqlite
    case postgres

    /// A condition true when `column` starts with the bound argument `pattern(prefix)`,
    /// case-sensitively, able to use an index on `column`.
    public func prefixCondition(_ column: String) -> String {
        switch self {
        case .sqlite: "\(column) GLOB ?"
        case .postgres: "starts_with(\(column), ?)"
        }
    }

    /// The argument for `prefixCondition`.
    public func prefixPattern(_ prefix: String) -> String {
        switch self {
        case .sqlite:
            var out = ""
            for c in prefix {
                switch c {
                case "*", "?", "[": out += "[\(c)]"
                default: out.append(c)
                }
            }
            return out + "*"
        case .postgres: return prefix
        }
    }

    /// The call log's ordering key: its row number in the SQLite store, its id in PostgreSQL.
    public var callKey: String {
        switch self {
        case .sqlite: "rowid"
        case .postgres: "id"
        }
    }
}

/// A transaction's statements. Placeholders are `?`.
public protocol SQLTransaction {
    var dialect: SQLDialect { get }
    /// Runs a statement; returns the number of rows it changed.
    @discardableResult func execute(_ sql: String, _ arguments: SQLArguments) throws -> Int
    func rows(_ sql: String, _ arguments: SQLArguments) throws -> [SQLRow]
}

extension SQLTransaction {
    @discardableResult public func execute(_ sql: String) throws -> Int { try execute(sql, []) }
    public func row(_ sql: String, _ arguments: SQLArguments = []) throws -> SQLRow? { try rows(sql, arguments).first }
    /// The first column of the first row, or nil when there is no row or it is NULL.
    public func scalar<T: SQLDecodable>(_ sql: String, _ arguments: SQLArguments = [], as: T.Type = T.self) throws -> T? {
        guard let r = try rows(sql, arguments).first, let v = r.values.first else { return nil }
        if case .null = v { return nil }
        return T.decode(v)
    }
}

/// A database the control plane runs its operations on, each in a transaction of its own.
public protocol SQLDatabase: Sendable {
    var dialect: SQLDialect { get }
    func write<T>(_ body: (any SQLTransaction) throws -> T) throws -> T
    func read<T>(_ body: (any SQLTransaction) throws -> T) throws -> T
}

/// What `explain`, `logs` and `waf exclude` read: a standalone gateway's SQLite store, or a
/// cluster's PostgreSQL (every node's calls).
public protocol CallLogReading: Sendable {
    /// The record of a request id and those of its repeats (`ID~N`), oldest first.
    func calls(requestID: String) throws -> [CallRecord]
    /// The newest matching records, oldest first, with the keys `afterRow` follows.
    func calls(_ f: CallFilter) throws -> [(row: Int64, record: CallRecord)]
    /// The audit entry a denial cites.
    func auditEntry(id: Int64) throws -> AuditEntry?
    /// Where the log is, for messages.
    var logLocation: String { get }
}

extension SQLiteStore: CallLogReading {
    public var logLocation: String { path }
}

import Foundation
import GatehouseStore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// Where a cluster's PostgreSQL is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…]`.
///
/// `sslmode` is `disable` (the default on loopback), `require` (TLS, the server's certificate
/// verified against the system's roots and its name; the default elsewhere) or `prefer`. The
/// password may instead come from `GATEHOUSE_POSTGRES_PASSWORD`, which keeps it out of the
/// configuration file. `description` never shows the password.
public struct PostgresLocation: Sendable, CustomStringConvertible, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var sslMode: String

    public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String, sslMode: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.sslMode = sslMode ?? (["127.0.0.1", "localhost", "::1"].contains(host) ? "disable" : "require")
    }

    /// Parses a URL; the error says what is wrong and what was expected (never echoing a password).
    public static func parse(_ url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PostgresLocation
    {
        let expected = "expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require|prefer]"
        guard let c = URLComponents(string: url), c.scheme == "postgres" || c.scheme == "postgresql" else {
            throw SQLError.other("the PostgreSQL address is not a postgres:// URL: \(expected)")
        }
        // Foundation keeps an IPv6 literal's brackets in `host`.
        guard let bracketed = c.host, !bracketed.isEmpty else {
            throw SQLError.other("the PostgreSQL address names no host: \(expected)")
        }
        let host = bracketed.hasPrefix("[") && bracketed.hasSuffix("]") ? String(bracketed.dropFirst().dropLast()) : bracketed
        guard let user = c.user, !user.isEmpty else { throw SQLError.other("the PostgreSQL address names no user: \(expected)") }
        let db = String(c.path.drop(while: { $0 == "/" }))
        guard !db.isEmpty, !db.contains("/") else { throw SQLError.other("the PostgreSQL address names no database: \(expected)") }
        var sslMode: String?
        for item in c.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let v = item.value, ["disable", "require", "prefer"].contains(v) else {
                    throw SQLError.other("sslmode \"\(item.value ?? "")\" is not supported: expected disable, require or prefer")
                }
                sslMode = v
            default: throw SQLError.other("the PostgreSQL address has an unknown parameter \"\(item.name)\": \(expected)")
            }
        }
        let password = c.password ?? environment["GATEHOUSE_POSTGRES_PASSWORD"]
        return PostgresLocation(host: host, port: c.port ?? 5432, user: user, password: password, database: db, sslMode: sslMode)
    }

    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    /// Whether `host` is an IP address rather than a DNS name.
    public var hostIsAddress: Bool {
        host.contains(":") || (host.split(separator: ".").count == 4 && host.split(separator: ".").allSatisfy { UInt8($0) != nil })
    }
}

/// `SQLDatabase` over PostgreSQL (postgres-nio), for the control plane's synchronous operations.
///
/// A few connections are kept open and reused; a statement's future is waited for on the
/// caller's thread, as GRDB's calls block on SQLite (never call from an event loop). Every
/// statement has a deadline (`statementTimeout`): a server that stops answering costs the caller
/// that long, then the connection is dropped and the error says the store is unavailable.
/// Writes run SERIALIZABLE (the isolation SQLite's single writer gives) and are retried when
/// PostgreSQL reports a serialization failure; their bodies must be free of outside effects.
public final class PGDatabase: SQLDatabase, Sendable {
    public let location: PostgresLocation
    public var dialect: SQLDialect { .postgres }
    let group: MultiThreadedEventLoopGroup
    let logger: Logger
    let idle = Mutex<[PostgresConnection]>([])
    let permits: DispatchSemaphore
    let connectionCount = Atomic<Int>(0)
    let statementTimeout: TimeAmount
    let connectTimeout: TimeAmount
    let tlsContext: NIOSSLContext?

    public init(
        _ location: PostgresLocation, maxConnections: Int = 4, statementTimeout: TimeAmount = .seconds(10),
        connectTimeout: TimeAmount = .seconds(3), logger: Logger = Logger(label: "gatehouse.postgres")
    ) throws {
        self.location = location
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.logger = logger
        self.permits = DispatchSemaphore(value: max(1, maxConnections))
        self.statementTimeout = statementTimeout
        self.connectTimeout = connectTimeout
        if location.sslMode == "disable" {
            tlsContext = nil
        } else {
            tlsContext = try NIOSSLContext(configuration: .makeClientConfiguration())
        }
    }

    deinit {
        // Never blocks: the last reference can go on one of the group's own threads (a callback
        // that held the database). Shutting the group down closes its connections.
        let group = self.group
        let closing = idle.withLock { $0 }.map { Self.close($0) }
        guard let loop = closing.first?.eventLoop else {
            group.shutdownGracefully(queue: .global()) { _ in }
            return
        }
        EventLoopFuture.andAllComplete(closing, on: loop).whenComplete { _ in group.shutdownGracefully(queue: .global()) { _ in } }
    }

    /// Closes `c` without waiting; the connection is kept until it has closed (postgres-nio
    /// requires a connection to be closed before it is released).
    @discardableResult
    static func close(_ c: PostgresConnection) -> EventLoopFuture<Void> {
        let f: EventLoopFuture<Void> = c.close()
        f.whenComplete { _ in withExtendedLifetime(c) {} }
        return f
    }

    /// Closes the open connections (they reopen on the next use).
    public func closeConnections() {
        let all = idle.withLock { conns in
            defer { conns.removeAll() }
            return conns
        }
        for c in all { try? c.close().wait() }
    }

    func configuration() -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS =
            switch (location.sslMode, tlsContext) {
            case ("require", let ctx?): .require(ctx)
            case ("prefer", let ctx?): .prefer(ctx)
            default: .disable
            }
        var c = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password, database: location.database,
            tls: tls)
        c.options.connectTimeout = connectTimeout
        // The server ends a statement past the deadline too (the client's deadline only drops the
        // connection; the query would go on running).
        c.options.additionalStartupParameters = [
            ("statement_timeout", String(statementTimeout.nanoseconds / 1_000_000)), ("application_name", "gatehouse"),
        ]
        // The name sent and checked is the host's when it is a DNS name; an address cannot be sent
        // as a TLS server name, and NIOSSL then checks the certificate's IP addresses against the
        // peer's instead.
        if tls.isAllowed, !location.hostIsAddress { c.options.tlsServerName = location.host }
        return c
    }

    func connect() throws -> PostgresConnection {
        let id = connectionCount.add(1, ordering: .relaxed).newValue
        do {
            return try PostgresConnection.connect(on: group.next(), configuration: configuration(), id: id, logger: logger).wait()
        } catch {
            throw SQLError.unavailable("cannot connect to PostgreSQL at \(location): \(Self.describe(error))")
        }
    }

    /// A connection for `body`: an idle one, or a new one; returned to the idle list unless the
    /// body failed on the connection itself.
    public func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        guard permits.wait(timeout: .now() + .seconds(5)) == .success else {
            throw SQLError.unavailable("every connection to PostgreSQL at \(location) stayed busy for 5 s")
        }
        defer { permits.signal() }
        var conn = idle.withLock { $0.popLast() }
        while let c = conn, c.isClosed { conn = idle.withLock { $0.popLast() } }
        let c = try conn ?? connect()
        do {
            let r = try body(c)
            idle.withLock { $0.append(c) }
            return r
        } catch {
            if c.isClosed || Self.isConnectionError(error) {
                _ = Self.close(c)
            } else {
                idle.withLock { $0.append(c) }
            }
            throw error
        }
    }

    public func write<T>(_ body: (any SQLTransaction) throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                return try withConnection { c in try transaction(c, begin: "BEGIN ISOLATION LEVEL SERIALIZABLE", body) }
            } catch let e as SQLError {
                if case .other(let s) = e, s.hasPrefix(Self.retryMarker) {
                    guard attempt < 8 else {
                        throw SQLError.unavailable("PostgreSQL at \(location): concurrent changes kept conflicting (\(s))")
                    }
                    attempt += 1
                    Thread.sleep(forTimeInterval: Double.random(in: 0.001...0.01) * Double(attempt))
                    continue
                }
                throw e
            }
        }
    }

    public func read<T>(_ body: (any SQLTransaction) throws -> T) throws -> T {
        try withConnection { c in try transaction(c, begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body) }
    }

    func transaction<T>(_ c: PostgresConnection, begin: String, _ body: (any SQLTransaction) throws -> T) throws -> T {
        let tx = Transaction(connection: c, database: self)
        _ = try tx.run(begin, [])
        do {
            let r = try body(tx)
            _ = try tx.run("COMMIT", [])
            return r
        } catch {
            if !c.isClosed { _ = try? tx.run("ROLLBACK", []) }
            throw error
        }
    }

    static let retryMarker = "serialization failure: "

    /// Runs `body`'s statements outside an explicit transaction: each commits on its own, at READ
    /// COMMITTED (for single-statement upserts that many nodes run on the same rows, which
    /// SERIALIZABLE would make fail and retry).
    public func autocommit<T>(_ body: (any SQLTransaction) throws -> T) throws -> T {
        try withConnection { c in try body(Transaction(connection: c, database: self)) }
    }

    /// Runs one statement outside a transaction (DDL that must not be in one, LISTEN).
    public func execute(_ sql: String) throws {
        try withConnection { c in _ = try Transaction(connection: c, database: self).run(sql, []) }
    }

    struct Transaction: SQLTransaction {
        let connection: PostgresConnection
        let database: PGDatabase
        var dialect: SQLDialect { .postgres }

        func execute(_ sql: String, _ arguments: SQLArguments) throws -> Int {
            try run(sql, arguments.values).metadata.rows ?? 0
        }

        func rows(_ sql: String, _ arguments: SQLArguments) throws -> [SQLRow] {
            try run(sql, arguments.values).rows.map(PGDatabase.row)
        }

        func run(_ sql: String, _ values: [SQLValue]) throws -> PostgresQueryResult {
            var binds = PostgresBindings(capacity: values.count)
            for v in values {
                switch v {
                case .null: binds.appendNull()
                case .integer(let i): binds.append(i)
                case .double(let d): binds.append(d)
                case .text(let s): binds.append(s)
                case .blob(let b): binds.append(ByteBuffer(bytes: b))
                }
            }
            let query = PostgresQuery(unsafeSQL: PGDatabase.numberedPlaceholders(sql), binds: binds)
            let el = connection.eventLoop
            let promise = el.makePromise(of: PostgresQueryResult.self)
            connection.query(query, logger: database.logger).cascade(to: promise)
            let conn = connection
            let timeout = database.statementTimeout
            let deadline = el.scheduleTask(in: timeout) {
                promise.fail(SQLError.unavailable("PostgreSQL did not answer within \(timeout.nanoseconds / 1_000_000) ms"))
                _ = PGDatabase.close(conn)
            }
            defer { deadline.cancel() }
            do {
                return try promise.futureResult.wait()
            } catch {
                throw PGDatabase.map(error, database.location)
            }
        }
    }

    /// `?` placeholders as `$1`, `$2`, …; a `?` inside a quoted literal or identifier stays.
    static func numberedPlaceholders(_ sql: String) -> String {
        guard sql.contains("?") else { return sql }
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var n = 0
        var quote: Character?
        for ch in sql {
            if let q = quote {
                if ch == q { quote = nil }
                out.append(ch)
            } else if ch == "'" || ch == "\"" {
                quote = ch
                out.append(ch)
            } else if ch == "?" {
                n += 1
                out += "$\(n)"
            } else {
                out.append(ch)
            }
        }
        return out
    }

    static func row(_ r: PostgresRow) -> SQLRow {
        var columns: [String] = []
        var values: [SQLValue] = []
        columns.reserveCapacity(r.count)
        values.reserveCapacity(r.count)
        for cell in r {
            columns.append(cell.columnName)
            values.append(value(cell))
        }
        return SQLRow(columns: columns, values: values)
    }

    static func value(_ cell: PostgresCell) -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8, .oid: return (try? cell.decode(Int64.self)).map(SQLValue.integer) ?? .null
        case .float4, .float8: return (try? cell.decode(Double.self)).map(SQLValue.double) ?? .null
        case .bool: return (try? cell.decode(Bool.self)).map { .integer($0 ? 1 : 0) } ?? .null
        case .bytea:
            guard var b = cell.bytes else { return .null }
            return .blob(b.readBytes(length: b.readableBytes) ?? [])
        default: return (try? cell.decode(String.self)).map(SQLValue.text) ?? .null
        }
    }

    static func isConnectionError(_ error: any Error) -> Bool {
        if let e = error as? SQLError, case .unavailable = e { return true }
        if let e = error as? PSQLError { return e.code != .server }
        return false
    }

    static func map(_ error: any Error, _ location: PostgresLocation) -> any Error {
        if error is SQLError { return error }
        guard let e = error as? PSQLError else { return SQLError.unavailable("PostgreSQL at \(location): \(error)") }
        guard e.code == .server, let info = e.serverInfo else {
            return SQLError.unavailable("PostgreSQL at \(location): \(e.code)")
        }
        let state = info[.sqlState] ?? ""
        let message = info[.message] ?? "\(e.code)"
        switch state {
        case "23505": return SQLError.uniqueViolation(message)
        case "40001", "40P01": return SQLError.other(retryMarker + message)
        // Connection failures (08), operator intervention and shutdown (57, incl. 57014 statement
        // timeout), insufficient resources (53: disk, memory, connections), a read-only standby
        // (25006), lock timeouts (55P03), system and internal errors (58, XX): the store cannot
        // work now, whatever the statement.
        case let s
        where s.hasPrefix("08") || s.hasPrefix("57") || s.hasPrefix("53") || s.hasPrefix("58") || s.hasPrefix("XX") || s == "25006"
            || s == "55P03":
            return SQLError.unavailable("PostgreSQL at \(location): \(message) [SQLSTATE \(state)]")
        // Data exceptions (22), integrity constraints (23) and values too large (54000).
        case let s where s.hasPrefix("22") || s.hasPrefix("23") || s == "54000":
            let detail = info[.detail].map { " (\($0))" } ?? ""
            return SQLError.rejectedData("PostgreSQL: \(message)\(detail) [SQLSTATE \(state)]")
        default:
            let detail = info[.detail].map { " (\($0))" } ?? ""
            return SQLError.other("PostgreSQL: \(message)\(detail) [SQLSTATE \(state)]")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? PSQLError {
            if let m = e.serverInfo?[.message] { return m }
            if let u = e.underlying { return "\(e.code): \(u)" }
            return "\(e.code)"
        }
        return "\(error)"
    }
}

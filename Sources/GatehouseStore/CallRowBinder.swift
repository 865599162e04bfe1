import GRDB
import GRDBSQLite
import GatehouseCore

/// Binds call records to the prepared `INSERT INTO calls` statement with the sqlite3 C API and
/// steps it: the call-log writer's inner loop.
///
/// Per record, every text value (and the JSON of the trace, `required` and `presented`) is written
/// into one byte buffer that lives for the whole batch, sized for the record before anything is
/// written, and bound from there without a further copy (`SQLITE_STATIC`). The buffer is only
/// rewritten for the next record, whose values are all bound anew before the next step. No
/// `StatementArguments`, no `DatabaseValue`, no `String` per record.
///
/// The insert is a plain `INSERT`: a record never replaces another. A request id already in the
/// log (a trusted proxy repeating its `X-Request-Id`, or one seen before a restart) is stored with
/// a suffix, `ID~N`, chosen by `resolveConflict`; the record then holds that id, and `renamed`
/// lists the change for the writer to report.
struct CallRowBinder: ~Copyable {
    static let sql = """
        INSERT INTO calls (request_id, time, route, consumer, key_id, client, method, path, host, status, upstream_ms,
        total_ms, check_id, reason, detail, hint, required, presented, trace, upstream_target, facts, audit_entry,
        application_id)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    /// SQLITE_CONSTRAINT_UNIQUE (a C macro Swift does not import).
    static let constraintUnique = SQLITE_CONSTRAINT | 8 << 8
    private let stmt: OpaquePointer
    private var out: RowBuffer
    /// Given a request id already in the log, a free one (see `SQLiteStore.freeRequestID`).
    private let resolveConflict: (String) throws -> String
    /// Records stored under another id than they came with, in order.
    private(set) var renamed: [(from: String, to: String)] = []
    /// The rowids and times of the records inserted so far (for `call_batches`).
    private(set) var firstRow: Int64 = 0
    private(set) var lastRow: Int64 = 0
    private(set) var minTime = Double.infinity
    private(set) var maxTime = -Double.infinity

    init(_ statement: Statement, resolveConflict: @escaping (String) throws -> String) {
        stmt = statement.sqliteStatement
        self.resolveConflict = resolveConflict
        out = RowBuffer(capacity: 4096)
    }

    deinit {
        // No parameter may point into the buffer once it is freed.
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
        out.deallocate()
    }

    /// Inserts `records[range]`, in order; `records` is the same afterwards.
    ///
    /// Each record is moved out of the array, bound, and moved back: read in place (by index or
    /// through a buffer pointer) it would be copied, a retain and a release of each of its strings
    /// and arrays, objects that the event loops allocated on other cores.
    mutating func insert(_ records: inout [CallRecord], _ range: Range<Int>) throws {
        try records.withUnsafeMutableBufferPointer { buffer in
            precondition(range.lowerBound >= 0 && range.upperBound <= buffer.count, "range \(range) outside \(buffer.count) records")
            for i in range {
                let slot = buffer.baseAddress! + i
                var r = slot.move()
                var failure: (any Error)?
                do { try insert(&r) } catch { failure = error }
                slot.initialize(to: consume r)
                if let failure { throw failure }
            }
        }
    }

    /// Inserts one record. `inout` only so that the trace's entries can be moved out and back
    /// in the same way (see `StoredTrace.write`); the record is the same afterwards.
    mutating func insert(_ r: inout CallRecord) throws {
        // Records from the writer are capped already (`submit`): this only measures them.
        r.capFields()
        out.reset(minimumCapacity: Self.maximumBytes(r))
        let stmt = self.stmt
        bindText(1, r.requestID)
        sqlite3_bind_double(stmt, 2, r.time)
        bindText(3, r.route)
        bindText(4, r.consumer)
        bindText(5, r.keyID)
        bindText(6, r.client)
        bindText(7, r.method)
        bindText(8, r.path)
        bindText(9, r.host)
        sqlite3_bind_int64(stmt, 10, Int64(r.status))
        if let u = r.upstreamMillis { sqlite3_bind_double(stmt, 11, u) } else { sqlite3_bind_null(stmt, 11) }
        sqlite3_bind_double(stmt, 12, r.totalMillis)
        bindText(13, r.decidingCheck)
        bindText(14, r.reason)
        bindText(15, r.detail)
        bindText(16, r.hint)
        bindList(17, r.required)
        bindList(18, r.presented)
        let start = out.count
        StoredTrace.write(&r.trace, to: &out)
        bind(19, from: start)
        bindText(20, r.upstreamTarget)
        if let facts = r.facts {
            let start = out.count
            facts.write(to: &out)
            bind(21, from: start)
        } else {
            sqlite3_bind_null(stmt, 21)
        }
        if let a = r.auditEntry { sqlite3_bind_int64(stmt, 22, a) } else { sqlite3_bind_null(stmt, 22) }
        bindText(23, r.applicationID)

        var rc = sqlite3_step(stmt)
        var attempts = 0
        let original: String? = rc == SQLITE_DONE ? nil : r.requestID
        // (GRDB turns extended result codes on: the step returns SQLITE_CONSTRAINT_UNIQUE itself.)
        while rc & 0xFF == SQLITE_CONSTRAINT && sqlite3_extended_errcode(sqlite3_db_handle(stmt)) == Self.constraintUnique && attempts < 4 {
            // The request id is taken: store this record under a free suffixed id. The other
            // parameters stay bound across the reset.
            sqlite3_reset(stmt)
            attempts += 1
            r.requestID = try resolveConflict(r.requestID)
            // SQLITE_TRANSIENT: sqlite copies the new id (a rare path).
            r.requestID.withCString { sqlite3_bind_text(stmt, 1, $0, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self)) }
            rc = sqlite3_step(stmt)
        }
        if attempts > 0, rc == SQLITE_DONE, let original { renamed.append((original, r.requestID)) }
        if rc != SQLITE_DONE {
            let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(stmt)))
            sqlite3_reset(stmt)
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: message, sql: Self.sql)
        }
        sqlite3_reset(stmt)
        lastRow = sqlite3_last_insert_rowid(sqlite3_db_handle(stmt))
        if firstRow == 0 { firstRow = lastRow }
        minTime = min(minTime, r.time)
        maxTime = max(maxTime, r.time)
    }

    /// The most bytes `insert` writes for `r`: every text as is, every JSON string escaped at worst.
    static func maximumBytes(_ r: borrowing CallRecord) -> Int {
        func len(_ s: String?) -> Int { s?.utf8.count ?? 0 }
        var n =
            len(r.requestID) + len(r.route) + len(r.consumer) + len(r.keyID) + len(r.client) + len(r.method) + len(r.path)
            + len(r.host) + len(r.decidingCheck) + len(r.reason) + len(r.detail) + len(r.hint) + len(r.upstreamTarget)
        for s in r.required { n += 6 * s.utf8.count + 3 }
        for s in r.presented { n += 6 * s.utf8.count + 3 }
        n += StoredTrace.maximumBytes(r.trace)
        if let facts = r.facts { n += facts.maximumBytes }
        return n + 16
    }

    private mutating func bind(_ parameter: Int32, from start: Int) {
        // nil destructor: SQLITE_STATIC, sqlite reads the bytes in place during the step.
        sqlite3_bind_text(
            stmt, parameter, UnsafeRawPointer(out.base + start).assumingMemoryBound(to: CChar.self), Int32(out.count - start), nil)
    }

    private mutating func bindText(_ parameter: Int32, _ s: String?) {
        guard let s else { sqlite3_bind_null(stmt, parameter); return }
        let start = out.count
        out.append(s)
        bind(parameter, from: start)
    }

    private mutating func bindList(_ parameter: Int32, _ items: [String]) {
        // An empty list is stored as NULL and read back as []: it is the common case.
        guard !items.isEmpty else { sqlite3_bind_null(stmt, parameter); return }
        let start = out.count
        out.append(UInt8(ascii: "["))
        for (i, s) in items.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.appendQuoted(s)
        }
        out.append(UInt8(ascii: "]"))
        bind(parameter, from: start)
    }
}

/// A byte buffer written through a pointer, without bounds or uniqueness checks: the caller
/// reserves the most it will write first (`reset(minimumCapacity:)`).
struct RowBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
    }

    func deallocate() { base.deallocate() }

    /// Empties the buffer and makes room for at least `minimumCapacity` bytes. Invalidates pointers into it.
    mutating func reset(minimumCapacity: Int) {
        count = 0
        if minimumCapacity > capacity {
            base.deallocate()
            capacity = max(minimumCapacity, capacity * 2)
            base = .allocate(capacity: capacity)
        }
    }

    @inline(__always) mutating func append(_ b: UInt8) {
        assert(count < capacity)
        base[count] = b
        count += 1
    }

    @inline(__always) mutating func append(_ s: StaticString) {
        assert(count + s.utf8CodeUnitCount <= capacity)
        (base + count).update(from: s.utf8Start, count: s.utf8CodeUnitCount)
        count += s.utf8CodeUnitCount
    }

    mutating func append(_ s: String) {
        // Borrows the string's UTF-8 (no copy of the String, so no retain); the fallback is for
        // strings whose storage is not contiguous UTF-8 (bridged ones, on Apple platforms).
        if s.utf8.withContiguousStorageIfAvailable({ u in appendBytes(u) }) == nil {
            var s = s
            s.withUTF8 { appendBytes($0) }
        }
    }

    @inline(__always) mutating func appendBytes(_ u: UnsafeBufferPointer<UInt8>) {
        assert(count + u.count <= capacity)
        if let p = u.baseAddress { (base + count).update(from: p, count: u.count) }
        count += u.count
    }

    /// Appends the decimal digits of `i`.
    mutating func appendDecimal(_ i: Int) {
        if i >= 0 && i < 10 { append(UInt8(ascii: "0") + UInt8(i)); return }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch
        withUnsafeMutableBytes(of: &digits) { d in
            let n = ASCIIDigits.decimal(i, endingAt: d)
            assert(count + n <= capacity)
            (base + count).update(from: d.baseAddress!.assumingMemoryBound(to: UInt8.self) + (d.count - n), count: n)
            count += n
        }
    }

    /// Appends `s` as a JSON string (`JSONString`). Needs at most 6 × `s.utf8.count` + 2 bytes.
    mutating func appendQuoted(_ s: String) { JSONString.appendQuoted(s, to: &self) }
}

extension RowBuffer: JSONOutput {
    @inline(__always) mutating func appendByte(_ b: UInt8) { append(b) }
}

import Foundation
import GatehouseCore
import GatehouseIdentity
@testable import GatehouseStore
import GRDB
import Testing

func tempStore() throws -> (SQLiteStore, String) {
    let dir = NSTemporaryDirectory() + "gh-store-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return (try SQLiteStore(path: dir + "/s.db"), dir)
}

func record(_ id: String, time: Double, status: Int = 200, reason: String? = nil) -> CallRecord {
    CallRecord(
        requestID: id, time: time, route: "r", consumer: nil, keyID: nil, client: "127.0.0.1", method: "GET", path: "/x", host: "h",
        status: status, upstreamMillis: 1, totalMillis: 2, decidingCheck: reason == nil ? nil : "c", reason: reason, detail: nil,
        hint: nil, required: ["a\"b"], presented: [],
        trace: DecisionTrace(entries: [
            TraceEntry(check: "c", type: "ip", mode: .shadow, outcome: .shadowDeny, note: "n\u{1}", reason: "ip_denied", micros: 3)
        ]),
        upstreamTarget: nil)
}

@Suite struct StoreTests {
    /// A key created after the directory's last poll works at once: a miss re-reads the store.
    @Test func aKeyCreatedJustNowIsFoundWithoutWaitingForThePoll() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let directory = StoreDirectory(store: store, refreshInterval: 3600)  // no poll during the test
        try store.createConsumer(name: "acme")
        let (_, record) = try store.createKey(consumer: "acme")
        #expect(directory.key(id: record.keyID)?.consumerID == record.consumerID)
        #expect(directory.consumer(id: record.consumerID)?.name == "acme")
        // Unknown ids do not re-read the store more than once per interval.
        #expect(directory.key(id: "nosuchkey000") == nil)
    }

    /// The gateway builds its checks with the directory before it opens the store the same
    /// configuration names: until the store is attached the directory is unavailable.
    @Test func aDirectoryWithoutItsStoreIsUnavailableUntilAttached() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try store.createConsumer(name: "acme")
        let (_, record) = try store.createKey(consumer: "acme")
        let directory = StoreDirectory(refreshInterval: 3600)
        #expect(!directory.isAvailable)
        #expect(directory.key(id: record.keyID) == nil)
        directory.attach(store)
        #expect(directory.isAvailable)
        #expect(directory.key(id: record.keyID)?.consumerID == record.consumerID)
    }

    @Test func keysAreStoredAsHashesAndTheirLifecycleIsVisible() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try store.createConsumer(name: "acme", tenant: "t1", roles: ["admin"], scopes: ["orders:read"])
        #expect(throws: StoreError.self) { try store.createConsumer(name: "acme") }
        let (key, rec) = try store.createKey(consumer: "acme")
        #expect(rec.hash == APIKeyFormat.hash(key))
        #expect(try APIKeyFormat.parse(key).get() == rec.keyID)
        // The raw key is nowhere in the database file.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: store.path))
        #expect(bytes.range(of: Data(key.utf8)) == nil)

        let dirSnap = StoreDirectory(store: store)
        #expect(dirSnap.key(id: rec.keyID)?.revokedAt == nil)
        try store.revokeKey(id: rec.keyID)
        dirSnap.refresh()
        #expect(dirSnap.key(id: rec.keyID)?.revokedAt != nil)
        #expect(throws: StoreError.self) { try store.revokeKey(id: rec.keyID) }
        #expect(throws: StoreError.self) { try store.createKey(consumer: "nobody") }
    }

    @Test func callRecordsRoundTripAndFilter() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = Date().timeIntervalSince1970
        try store.insertCalls([
            record("a", time: now - 10), record("b", time: now - 5, status: 403, reason: "ip_denied"), record("c", time: now),
        ])
        let b = try #require(try store.call(requestID: "b"))
        #expect(b == record("b", time: now - 5, status: 403, reason: "ip_denied"))
        #expect(try store.calls(CallFilter(status: 403)).map(\.record.requestID) == ["b"])
        #expect(try store.calls(CallFilter(reason: "ip_denied")).count == 1)
        #expect(try store.calls(CallFilter(since: now - 6)).map(\.record.requestID) == ["b", "c"])
        #expect(try store.calls(CallFilter(limit: 2)).map(\.record.requestID) == ["b", "c"])
    }

    @Test func everyFieldRoundTripsThroughTheBatchInsert() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = Date().timeIntervalSince1970
        // All optionals nil, empty strings (stored as '', not NULL), non-ASCII text, values (within
        // their caps) larger together than the insert buffer's first allocation, and every outcome,
        // mode and escape in a trace.
        let bare = CallRecord(
            requestID: "bare", time: now, route: nil, consumer: nil, keyID: nil, client: nil, method: "GET", path: "",
            host: nil, status: 404, upstreamMillis: nil, totalMillis: 0, decidingCheck: nil, reason: nil, detail: nil,
            hint: nil, required: [], presented: [], trace: DecisionTrace(), upstreamTarget: nil)
        let full = CallRecord(
            requestID: "full", time: now + 0.125, route: "ordërs", consumer: "", keyID: "k1", client: "2001:db8::1", method: "POST",
            path: "/x?q=" + String(repeating: "é\"\\", count: 500), host: "h", status: 403, upstreamMillis: 0, totalMillis: 1.5,
            decidingCheck: "scopes", reason: "insufficient_scope", detail: "needs \"orders:write\"\n" + String(repeating: "d", count: 2000),
            hint: "ask\u{7}", required: ["orders:write", ""],
            presented: ["orders:read", "ü\t"],
            trace: DecisionTrace(entries: [
                TraceEntry(check: "ip", type: "ip", mode: .enforce, outcome: .allow, note: "", micros: 0),
                TraceEntry(
                    check: "waf", type: "waf", mode: .shadow, outcome: .shadowDeny, note: "shadow: \u{1f}✓", reason: "waf_blocked",
                    micros: -1),
                TraceEntry(check: "cors", type: "cors", mode: .enforce, outcome: .skip, note: "no Origin", micros: Int.max),
                TraceEntry(
                    check: "scopes", type: "scopes", mode: .enforce, outcome: .deny, note: "missing", reason: "insufficient_scope",
                    micros: 7),
                TraceEntry(check: "owner", type: "owner", mode: .shadow, outcome: .notReached, note: "", micros: 0),
            ]),
            upstreamTarget: "10.0.0.1:80")
        try store.insertCalls([bare, full, record("plain", time: now)])
        #expect(try store.call(requestID: "bare") == bare)
        #expect(try store.call(requestID: "full") == full)
        #expect(try store.call(requestID: "plain") == record("plain", time: now))
        #expect(try store.calls(CallFilter(consumer: "")).map(\.record.requestID) == ["full"])
        #expect(try store.calls(CallFilter(route: "ordërs")).map(\.record.requestID) == ["full"])
    }

    @Test func jsonEscapingFindsSpecialCharactersAtEveryPosition() throws {
        // The escaper skips eight clean bytes at a time: put each kind of special character at
        // each offset of a 24-byte string, next to multi-byte UTF-8.
        for special in ["\"", "\\", "\n", "\u{0}", "\u{1f}", "\t"] {
            for at in 0..<24 {
                var chars = Array(repeating: "a", count: 24)
                chars[at] = special
                if at + 1 < 24 { chars[at + 1] = "é" }
                let text = chars.joined()
                var out = RowBuffer(capacity: 6 * text.utf8.count + 2)
                defer { out.deallocate() }
                out.reset(minimumCapacity: 6 * text.utf8.count + 2)
                out.appendQuoted(text)
                let json = Data(UnsafeBufferPointer(start: out.base, count: out.count))
                #expect(try JSONDecoder().decode(String.self, from: json) == text, "\(special.debugDescription) at \(at)")
                #expect(out.count <= 6 * text.utf8.count + 2)
            }
        }
    }

    @Test func recordsWrittenBeforeTheCompactTraceFormAreStillRead() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let old = record("old", time: 1_700_000_000, status: 403, reason: "ip_denied")
        // The row as the writer stored it before: the trace in its Codable shape, lists as JSON.
        try store.pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO calls (request_id, time, route, client, method, path, host, status, upstream_ms, total_ms, check_id, reason,
                    required, presented, trace) VALUES ('old', 1700000000, 'r', '127.0.0.1', 'GET', '/x', 'h', 403, 1, 2, 'c', 'ip_denied',
                    '["a\\"b"]', '[]', ?)
                    """, arguments: [old.trace.json])
        }
        #expect(try store.call(requestID: "old") == old)
        // New rows use the compact form, and both read back the same.
        try store.insertCalls([record("new", time: 1_700_000_000, status: 403, reason: "ip_denied")])
        let stored = try store.pool.read { db in try String.fetchOne(db, sql: "SELECT trace FROM calls WHERE request_id = 'new'") }
        #expect(stored == #"[{"c":"c","t":"ip","m":"shadow","o":"shadow_deny","n":"n\u0001","r":"ip_denied","u":3}]"#)
        var renamed = try #require(try store.call(requestID: "new"))
        renamed.requestID = "old"
        #expect(renamed == old)
    }

    @Test func aNewStoreUses16KiBPages() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } == 16384)
        #expect(try store.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") } == "wal")
        // Reopening keeps it (and an existing 4 KiB store stays as it is: SQLite ignores the pragma then).
        let again = try SQLiteStore(path: store.path)
        #expect(try again.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_size") } == 16384)
    }

    @Test func aRepeatedRequestIDIsStoredWithASuffixAndReplacesNothing() throws {
        // Ids are unique when the gateway makes them; a trusted proxy's X-Request-Id may repeat.
        // A repeat is a plain insert under `ID~N`: the earlier record stays, the rest of the batch
        // is written, and the store says which records it renamed.
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = Date().timeIntervalSince1970
        #expect(try store.insertCalls([record("dup", time: now, status: 200), record("x", time: now)]).isEmpty)
        let renamed = try store.insertCalls([
            record("y", time: now), record("dup", time: now + 1, status: 403, reason: "ip_denied"),
            record("z", time: now), record("dup", time: now + 2, status: 404),
        ])
        #expect(renamed.map { "\($0.from)>\($0.to)" } == ["dup>dup~2", "dup>dup~3"])
        #expect(try store.callCount() == 6)
        #expect(try store.call(requestID: "dup")?.status == 200)
        #expect(try store.call(requestID: "dup~2")?.status == 403)
        #expect(try store.call(requestID: "dup~3")?.status == 404)
        #expect(try store.calls(CallFilter()).map(\.record.requestID) == ["dup", "x", "y", "dup~2", "z", "dup~3"])
        // `explain dup` finds all three, in the order written; a suffixed id finds only itself.
        #expect(try store.calls(requestID: "dup").map(\.status) == [200, 403, 404])
        #expect(try store.calls(requestID: "dup~2").map(\.status) == [403])
        #expect(try store.calls(requestID: "du").isEmpty)
        // A repeat of a suffixed id (a gateway restarted and counted again from 2) takes the next free number.
        #expect(try store.insertCalls([record("dup~2", time: now + 3, status: 500)]).map(\.to) == ["dup~4"])
        #expect(try store.calls(requestID: "dup").map(\.status) == [200, 403, 404, 500])
    }

    @Test func everyFieldIsCutToItsCapOnACharacterBoundaryWithAVisibleMarker() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Three-byte characters, so that most caps fall inside one.
        let huge = String(repeating: "€", count: 20_000)  // 60,000 bytes
        let entries = (0..<100).map { i in
            TraceEntry(
                check: "c\(i)" + huge, type: "waf" + huge, mode: .enforce, outcome: .allow, note: "note " + huge, reason: nil, micros: 1)
        }
        let r = CallRecord(
            requestID: "big", time: Date().timeIntervalSince1970, route: huge, consumer: huge, keyID: huge, client: huge,
            method: huge, path: "/" + huge, host: huge, status: 404, upstreamMillis: nil, totalMillis: 1, decidingCheck: huge,
            reason: huge, detail: "no route matches GET /" + huge, hint: huge, required: Array(repeating: huge, count: 20),
            presented: ["GET /" + huge, "host " + huge] + Array(repeating: "x", count: 30), trace: DecisionTrace(entries: entries),
            upstreamTarget: huge)
        try store.insertCalls([r])
        let back = try #require(try store.call(requestID: "big"))
        typealias L = CallLogLimits
        let capped: [(String?, Int)] = [
            (back.route, L.route), (back.consumer, L.consumer), (back.keyID, L.keyID), (back.client, L.client),
            (back.method, L.method), (back.path, L.path), (back.host, L.host), (back.decidingCheck, L.decidingCheck),
            (back.reason, L.reason), (back.detail, L.detail), (back.hint, L.hint), (back.upstreamTarget, L.upstreamTarget),
        ]
        for (value, cap) in capped {
            let v = try #require(value)
            #expect(v.utf8.count <= cap)
            #expect(v.utf8.count > cap - 16)
            // The kept part is whole characters, then the marker with the bytes left out.
            let kept = try #require(v.range(of: "…[+")).lowerBound
            #expect(v[..<kept].allSatisfy { $0 == "€" || $0 == "/" || $0.isLetter || $0 == " " })
            let original = [
                r.route, r.consumer, r.keyID, r.client, r.method, r.path, r.host, r.decidingCheck, r.reason, r.detail, r.hint,
                r.upstreamTarget,
            ].compactMap { $0 }.first { $0.hasPrefix(String(v[..<kept])) }!
            #expect(v.hasSuffix("…[+\(original.utf8.count - v[..<kept].utf8.count) bytes]"))
        }
        #expect(back.path.hasPrefix("/€€€"))
        #expect(back.required.count == L.listItems && back.presented.count == L.listItems)
        #expect(back.required.last == "…[+13 items]")
        #expect(back.presented.last == "…[+25 items]")
        #expect(back.required.dropLast().allSatisfy { $0.utf8.count <= L.listItem && $0.hasSuffix(" bytes]") })
        #expect(back.presented[0].hasPrefix("GET /€") && back.presented[2] == "x")
        #expect(back.trace.entries.count == L.traceEntries)
        #expect(
            back.trace.entries.allSatisfy {
                $0.check.utf8.count <= L.traceName && $0.type.utf8.count <= L.traceName && $0.note.utf8.count <= L.traceNote
            })
        #expect(back.trace.entries.last!.note.hasSuffix(" …[+36 entries]"))
        // The whole record stays within the documented bound, whatever the request.
        let stored =
            back.requestID.utf8.count + capped.reduce(0) { $0 + ($1.0?.utf8.count ?? 0) }
            + back.required.reduce(0) { $0 + $1.utf8.count } + back.presented.reduce(0) { $0 + $1.utf8.count }
            + back.trace.entries.reduce(0) { $0 + $1.check.utf8.count + $1.type.utf8.count + $1.note.utf8.count }
        #expect(stored <= CallRecord.maximumStoredBytes(checks: 100))
        // A record within the caps is stored as it is.
        let small = record("small", time: r.time)
        try store.insertCalls([small])
        #expect(try store.call(requestID: "small") == small)
    }

    @Test func sizeRetentionDeletesTheOldestRecordsOnceTheStoreExceedsItsLimit() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = Date().timeIntervalSince1970
        let maxBytes = 2 << 20
        // About 1,900 bytes of text per record (the path is within its cap), so 3,000 records need
        // several times the limit.
        let writer = CallLogWriter(store: store, batchSize: 100, retention: nil, maxBytes: maxBytes)
        for i in 0..<3000 {
            var r = record("s\(i)", time: now)
            r.path = "/" + String(repeating: "p", count: 1900)
            writer.submit(r)
            if i % 100 == 99 { usleep(2000) }
        }
        writer.close()
        #expect(writer.written == 3000 && writer.dropped == 0)
        #expect(try store.usedBytes() <= maxBytes)
        #expect(try store.call(requestID: "s0") == nil)
        #expect(try store.call(requestID: "s2999") != nil)
        // What is left is the newest records, without a gap.
        let left = try store.callCount()
        #expect(left > 100 && left < 3000)
        let ids = try store.calls(CallFilter(limit: 5000)).map(\.record.requestID)
        #expect(ids == (3000 - left..<3000).map { "s\($0)" })
        // The file grows no further once full: freed pages are reused.
        let fileSize = try FileManager.default.attributesOfItem(atPath: store.path)[.size] as? Int ?? 0
        #expect(fileSize <= maxBytes + (1 << 20))
        // A store under the limit is left alone.
        #expect(try store.trimCalls(toBytes: 64 << 20).removed == 0)
    }

    @Test func aStoreAlreadyOverALoweredSizeLimitIsTrimmedAtStart() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = Date().timeIntervalSince1970
        for b in 0..<30 {
            try store.insertCalls(
                (0..<100).map { i in
                    var r = record("t\(b)-\(i)", time: now)
                    r.path = "/" + String(repeating: "p", count: 1900)
                    return r
                })
        }
        #expect(try store.usedBytes() > 4 << 20)
        let writer = CallLogWriter(store: store, retention: nil, maxBytes: 2 << 20)
        writer.close()
        #expect(try store.usedBytes() <= 2 << 20)
        #expect(try store.call(requestID: "t0-0") == nil)
        #expect(try store.call(requestID: "t29-99") != nil)
    }

    @Test func writerQueueIsBoundedInBytesAndCountsWhatItDrops() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A queue of a million records but 1 MiB: records of about 8 KiB each (big paths, details
        // and lists, as a flood of unauthenticated requests makes) fill it after about 128.
        let writer = CallLogWriter(store: store, capacity: 1_000_000, capacityBytes: 1 << 20, batchSize: 100_000, retention: nil)
        let now = Date().timeIntervalSince1970
        let big = String(repeating: "b", count: 30_000)
        for i in 0..<3000 {
            var r = record("q\(i)", time: now)
            r.path = "/" + big
            r.detail = big
            r.hint = big
            r.presented = [big, big, big, big]
            writer.submit(r)
        }
        writer.close()
        #expect(writer.written + writer.dropped == 3000)
        #expect(writer.dropped > 0)
        #expect(try store.callCount() == writer.written)
    }

    @Test func retentionPurgesOldRecords() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = Date().timeIntervalSince1970
        try store.insertCalls([record("old", time: now - 7200), record("new", time: now)])
        // The writer purges at start and then every minute.
        let writer = CallLogWriter(store: store, retention: 3600)
        writer.close()
        #expect(try store.call(requestID: "old") == nil)
        #expect(try store.call(requestID: "new") != nil)
    }

    @Test func sinceAndRetentionFindRecordsWrittenOutOfTimeOrder() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = Date().timeIntervalSince1970
        // A long request is logged when it ends, after shorter ones that began later.
        try store.insertCalls([record("a", time: now - 7300), record("b", time: now - 7000)])
        try store.insertCalls([record("c", time: now - 100), record("long", time: now - 7100), record("d", time: now - 10)])
        try store.insertCalls([record("e", time: now)])
        #expect(try store.calls(CallFilter(since: now - 7150)).map(\.record.requestID) == ["b", "c", "long", "d", "e"])
        #expect(try store.calls(CallFilter(since: now - 50)).map(\.record.requestID) == ["d", "e"])
        #expect(try store.calls(CallFilter(since: now + 1)).isEmpty)
        #expect(try store.calls(CallFilter(status: 200, since: now - 7150, limit: 2)).map(\.record.requestID) == ["d", "e"])

        #expect(try store.purgeCalls(before: now - 7050) == 2)  // a, and long from the second batch
        #expect(try store.calls(CallFilter()).map(\.record.requestID) == ["b", "c", "d", "e"])
        #expect(try store.purgeCalls(before: now - 50) == 2)
        #expect(try store.calls(CallFilter()).map(\.record.requestID) == ["d", "e"])
        #expect(try store.calls(CallFilter(since: now - 7150)).map(\.record.requestID) == ["d", "e"])
        #expect(try store.purgeCalls(before: now + 1) == 2)
        #expect(try store.callCount() == 0)
        // Batches written after everything was purged are found again.
        try store.insertCalls([record("f", time: now - 1)])
        #expect(try store.calls(CallFilter(since: now - 2)).map(\.record.requestID) == ["f"])
        #expect(try store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM call_batches") } == 1)
    }

    @Test func aStoreFromBeforeCallBatchesIsMigrated() throws {
        let dir = NSTemporaryDirectory() + "gh-store-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/s.db"
        let now = Date().timeIntervalSince1970
        // The schema as it was (v1, with the time index), with 10,000 rows written the old way.
        do {
            let old = try DatabaseQueue(path: path)
            try SQLiteStore.migrator.migrate(old, upTo: "v1")
            try old.write { db in
                for i in 0..<10_000 {
                    try db.execute(
                        sql:
                            "INSERT INTO calls (request_id, time, method, path, status, total_ms, trace) VALUES (?, ?, 'GET', '/', 200, 1, '{\"entries\":[]}')",
                        arguments: ["old\(i)", now - 10_000 + Double(i)])
                }
            }
            try old.close()
        }
        let store = try SQLiteStore(path: path)
        // rowids 1-4095, 4096-8191, 8192-10000
        #expect(try store.pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM call_batches") } == 3)
        #expect(
            try store.pool.read { db in try Bool.fetchOne(db, sql: "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'calls_time'") }
                == false)
        #expect(try store.calls(CallFilter(since: now - 10, limit: 1000)).map(\.record.requestID) == (9990..<10_000).map { "old\($0)" })
        #expect(try store.purgeCalls(before: now - 5000) == 5000)
        #expect(try store.callCount() == 5000)
        #expect(try store.calls(CallFilter(since: now - 5001, limit: 1)).map(\.record.requestID) == ["old9999"])
    }

    @Test func aFailedBatchLeavesItsRecordsIntactForTheRetryAndIsCountedWhenItFailsTwice() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let now = Date().timeIntervalSince1970
        try store.pool.write { db in
            try db.execute(
                sql: "CREATE TRIGGER boom BEFORE INSERT ON calls WHEN NEW.request_id = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END")
        }
        let original = [record("a", time: now), record("boom", time: now), record("c", time: now)]
        var records = original
        #expect(throws: (any Error).self) { try store.insertCalls(&records, records.indices) }
        #expect(records == original)  // moved out and back in, also on the error path
        #expect(try store.callCount() == 0)  // the transaction rolled back

        // The writer retries a failed batch once, then counts it as dropped; other batches go on.
        let writer = CallLogWriter(store: store, batchSize: 3, retention: nil)
        for r in original { writer.submit(r) }
        writer.close()
        #expect(writer.dropped == 3)
        #expect(writer.written == 0)

        try store.pool.write { db in try db.execute(sql: "DROP TRIGGER boom") }
        try store.insertCalls(&records, records.indices)
        #expect(try store.calls(CallFilter()).map(\.record) == original)
    }

    @Test func writerCountsWhatItCannotQueue() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A queue of 10: records beyond what is queued or being written are dropped and counted,
        // everything accepted is written by close(), and nothing is accepted after it.
        let writer = CallLogWriter(store: store, capacity: 10, batchSize: 4)
        let now = Date().timeIntervalSince1970
        for i in 0..<500 { writer.submit(record("q\(i)", time: now)) }
        writer.close()
        #expect(writer.written + writer.dropped == 500)
        #expect(writer.dropped > 0)
        #expect(try store.callCount() == writer.written)
        writer.submit(record("late", time: now))
        #expect(writer.dropped + writer.written == 501)
        #expect(try store.call(requestID: "late") == nil)
    }

    @Test func theWriterThreadIsNamed() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = CallLogWriter(store: store, retention: nil)
        defer { writer.close() }
        #if os(Linux)
            // Once a record is written the thread has run past naming itself, however late it started.
            writer.submit(record("named", time: Date().timeIntervalSince1970))
            for _ in 0..<1000 where writer.written == 0 { usleep(10_000) }
            #expect(writer.written == 1)
            var names: [String] = []
            for _ in 0..<100 {
                names = (try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")).compactMap {
                    try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8).trimmingCharacters(
                        in: .whitespacesAndNewlines)
                }
                if names.contains("calllog-writer") { break }
                usleep(10_000)
            }
            #expect(names.contains("calllog-writer"))
        #endif
    }

    @Test func writerFlushesEverythingOnClose() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = CallLogWriter(store: store, capacity: 10_000, batchSize: 64)
        let now = Date().timeIntervalSince1970
        for i in 0..<1000 { writer.submit(record("r\(i)", time: now)) }
        writer.close()
        #expect(try store.callCount() == 1000)
        #expect(writer.dropped == 0)
    }
}

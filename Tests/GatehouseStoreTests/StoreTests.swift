import Foundation
import GatehouseChecks
import GatehouseCore
import GatehouseStore
import Testing

func tempStore() throws -> (SQLiteStore, String) {
    let dir = NSTemporaryDirectory() + "gh-store-" + UUID().uuidString.prefix(8)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return (try SQLiteStore(path: dir + "/s.db"), dir)
}

func record(_ id: String, time: Double, status: Int = 200, reason: String? = nil) -> CallRecord {
    CallRecord(requestID: id, time: time, route: "r", consumer: nil, keyID: nil, client: "127.0.0.1", method: "GET", path: "/x", host: "h",
               status: status, upstreamMillis: 1, totalMillis: 2, decidingCheck: reason == nil ? nil : "c", reason: reason, detail: nil,
               hint: nil, required: ["a\"b"], presented: [], trace: DecisionTrace(entries: [
                   TraceEntry(check: "c", type: "ip", mode: .shadow, outcome: .shadowDeny, note: "n\u{1}", reason: "ip_denied", micros: 3)]),
               upstreamTarget: nil)
}

@Suite struct StoreTests {
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
        try store.insertCalls([record("a", time: now - 10), record("b", time: now - 5, status: 403, reason: "ip_denied"), record("c", time: now)])
        let b = try #require(try store.call(requestID: "b"))
        #expect(b == record("b", time: now - 5, status: 403, reason: "ip_denied"))
        #expect(try store.calls(CallFilter(status: 403)).map(\.record.requestID) == ["b"])
        #expect(try store.calls(CallFilter(reason: "ip_denied")).count == 1)
        #expect(try store.calls(CallFilter(since: now - 6)).map(\.record.requestID) == ["b", "c"])
        #expect(try store.calls(CallFilter(limit: 2)).map(\.record.requestID) == ["b", "c"])
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

import Foundation
import GRDB
import GatehouseCore
import Testing

@testable import GatehouseStore

/// What the call log keeps of a request for `simulate --replay-log`: the TLS flag and the
/// non-secret fields checks read, never a credential.
@Suite struct RequestFactsTests {
    @Test func onlyTheListedFieldsAreKeptAndARefererKeepsItsOrigin() {
        let facts = RequestFacts(
            tls: true,
            fields: [
                HeaderField("Host", "api.example"), HeaderField("Authorization", "Bearer secret"), HeaderField("X-API-Key", "gth_x"),
                HeaderField("Cookie", "s=1"), HeaderField("ORIGIN", "https://app.example"),
                HeaderField("Referer", "https://app.example:8443/account?token=secret#x"), HeaderField("Content-Type", "application/json"),
                HeaderField("X-CSRF-Token", "secret"), HeaderField("Sec-Fetch-Site", "cross-site"),
            ])
        #expect(facts.tls)
        #expect(
            facts.headers == [
                HeaderField("origin", "https://app.example"), HeaderField("referer", "https://app.example:8443"),
                HeaderField("content-type", "application/json"), HeaderField("sec-fetch-site", "cross-site"),
            ])
    }

    @Test func factsAreCappedLikeEveryOtherFieldAndSaySo() {
        let long = "text/plain; " + String(repeating: "o", count: 5000)
        let facts = RequestFacts(tls: false, fields: (0..<20).map { _ in HeaderField("Content-Type", long) })
        #expect(facts.headers.count == CallLogLimits.listItems)
        #expect(facts.headers.allSatisfy { $0.value.utf8.count <= CallLogLimits.listItem && $0.value.hasSuffix("bytes]") })
        #expect(facts.cut)
        // Too many fields, each short: the ones left out make the record cut too.
        let many = RequestFacts(tls: false, fields: (0..<20).map { _ in HeaderField("Sec-Fetch-Site", "same-origin") })
        #expect(many.cut)
        #expect(!RequestFacts(tls: false, fields: [HeaderField("Content-Type", "text/plain")]).cut)
    }

    @Test func noCredentialReachesTheLogThroughRefererOrOrigin() {
        let facts = RequestFacts(
            tls: false,
            fields: [
                HeaderField("Referer", "https://alice:s3cret@app.example/page"),
                HeaderField("Referer", "/reset?token=abc123&next=https://app.example/home"),
                HeaderField("Referer", "ftp://files.example/x"),
                HeaderField("Origin", "https://bob:pw@app.example"),
                HeaderField("Origin", "https://app.example/path?key=secret"),
                HeaderField("Origin", "null"),
                HeaderField("Transfer-Encoding", "chunked"),
            ])
        #expect(
            facts.headers == [
                HeaderField("referer", "https://app.example"), HeaderField("origin", "null"), HeaderField("transfer-encoding", "chunked"),
            ])
    }

    @Test func factsRoundTripThroughTheStore() throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var with = record("with-facts", time: 1000)
        with.facts = RequestFacts(tls: true, headers: [HeaderField("origin", "https://a.example \"quoted\"\u{1}")], cut: true)
        let without = record("without-facts", time: 1001)
        _ = try store.insertCalls([with, without])
        #expect(try store.call(requestID: "with-facts")?.facts == with.facts)
        #expect(try store.call(requestID: "without-facts")?.facts == nil)
        var seen: [String] = []
        try store.forEachCall(since: 1000.5) { seen.append($0.requestID) }
        #expect(seen == ["without-facts"])
        // Read in pages: every record once, in order.
        _ = try store.insertCalls((0..<25).map { record("p\($0)", time: 2000 + Double($0)) })
        seen = []
        try store.forEachCall(since: 1500, pageSize: 4) { seen.append($0.requestID) }
        #expect(seen == (0..<25).map { "p\($0)" })
        seen = []
        try store.forEachCall(since: 2010, until: 2013, pageSize: 2) { seen.append($0.requestID) }
        #expect(seen == ["p10", "p11", "p12"])
    }

    @Test func aStoreFromBeforeReplayFieldsIsMigratedAndItsRecordsHaveNoFacts() throws {
        let dir = NSTemporaryDirectory() + "gh-store-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/s.db"
        do {
            let old = try DatabaseQueue(path: path)
            try SQLiteStore.migrator.migrate(old, upTo: "v2-call-batches")
            try old.write { db in
                try db.execute(
                    sql:
                        "INSERT INTO calls (request_id, time, method, path, status, total_ms, trace) VALUES ('old', 5, 'GET', '/', 200, 1, '[]')"
                )
            }
            try old.close()
        }
        let store = try SQLiteStore(path: path)
        let old = try store.call(requestID: "old")
        #expect(old != nil)
        #expect(old?.facts == nil)
        var r = record("new", time: 6)
        r.facts = RequestFacts(tls: false, headers: [HeaderField("content-type", "text/plain")])
        _ = try store.insertCalls([r])
        #expect(try store.call(requestID: "new")?.facts?.headers == [HeaderField("content-type", "text/plain")])
    }
}

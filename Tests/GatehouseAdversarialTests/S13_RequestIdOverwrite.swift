import Foundation
import GatehouseTestSupport
import Testing

/// S13: the writer used `INSERT OR REPLACE` on a unique request id, and a trusted proxy's
/// `X-Request-Id` is believed, so a second request with the same id replaced the first one's
/// record: `explain incident-N` showed only the innocent call. Generated ids were predictable
/// (milliseconds, 6 random bits, a counter).
@Suite("S13 request-id overwrite", .serialized) struct S13RequestIdOverwrite {
    static func yaml(_ port: Int) -> String {
        """
        upstreams:
          app: { targets: ["http://127.0.0.1:\(port)"] }
        trusted_proxies: [127.0.0.2/32]
        routes:
          - name: admin
            match: { path: "/admin/{rest*}" }
            upstream: app
            policies: [key]
          - name: cap
            match: { path: "/cap/{rest*}" }
            upstream: app
        policies:
          key: { type: api_key, header: X-API-Key }
        """
    }

    /// One request from the trusted proxy's address; the reply.
    static func viaProxy(_ gw: GatewayProcess, _ head: String) throws -> RawReply {
        let proxy = try RawSocket(port: gw.port, source: "127.0.0.2")
        proxy.send(head + "Connection: close\r\n\r\n")
        return RawReply(String(decoding: proxy.readUntilClose(seconds: 5).bytes, as: UTF8.self))
    }

    static func explainJSON(_ gw: GatewayProcess, _ id: String) throws -> [[String: Any]] {
        let out = try gw.cli(["explain", id, "--json"]).stdout
        let obj = try JSONSerialization.jsonObject(with: Data(out.utf8))
        return (obj as? [[String: Any]]) ?? [obj as? [String: Any] ?? [:]]
    }

    @Test func aRepeatedRequestIdCannotEraseTheFirstRecord() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let dir = try TempDir()
        var gw = try GatewayProcess(yaml: Self.yaml(upstream.port), dir: dir)
        defer { gw.stop() }
        #expect(try gw.cli(["consumers", "create", "mallory"]).status == 0)
        let key = try gw.cli(["keys", "create", "--consumer", "mallory", "--quiet"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for _ in 0..<40 {
            if try attack(gw, "GET /admin/ping HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nConnection: close\r\n\r\n").status == 200 {
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }

        // The review's steps: the admin call, then an innocent one with the same id.
        let admin = try Self.viaProxy(
            gw, "GET /admin/dump-all-users HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nX-Request-Id: incident-7\r\n")
        #expect(admin.status == 200)
        #expect(admin.header("x-request-id") == "incident-7")
        let innocent = try Self.viaProxy(gw, "GET /cap/innocent HTTP/1.1\r\nHost: x\r\nX-Request-Id: incident-7\r\n")
        #expect(innocent.status == 200)
        // The repeat is told apart where the id is chosen: the response, the upstream and the
        // record all carry the same suffixed id.
        #expect(innocent.header("x-request-id") == "incident-7~2")
        #expect(upstream.requests.last?.first("x-request-id") == "incident-7~2")
        _ = try await gw.record("incident-7~2")

        // Both records are kept, and `explain incident-7` shows the admin call.
        let text = try gw.cli(["explain", "incident-7"]).stdout
        #expect(text.contains("2 records for request id incident-7"))
        #expect(text.contains("GET /admin/dump-all-users"))
        #expect(text.contains("consumer mallory"))
        #expect(text.contains("GET /cap/innocent"))
        let records = try Self.explainJSON(gw, "incident-7")
        #expect(records.map { $0["path"] as? String } == ["/admin/dump-all-users", "/cap/innocent"])
        #expect(records.map { $0["requestID"] as? String } == ["incident-7", "incident-7~2"])

        // After a restart the gateway no longer remembers the id; the store still refuses to
        // replace: the record is stored under the next free suffix, and the writer says so.
        #expect(gw.stop() == 0)
        gw = try GatewayProcess(yaml: Self.yaml(upstream.port), dir: dir)
        let again = try Self.viaProxy(gw, "GET /cap/again HTTP/1.1\r\nHost: x\r\nX-Request-Id: incident-7\r\n")
        #expect(again.status == 200)
        _ = try await gw.record("incident-7~3")
        #expect(gw.stderr.contains("request id incident-7 is already in the log; this record is stored as incident-7~3"))
        #expect(
            try Self.explainJSON(gw, "incident-7").map { $0["path"] as? String } == [
                "/admin/dump-all-users", "/cap/innocent", "/cap/again",
            ])
    }

    @Test func unacceptableIncomingIdsAreReplacedByGeneratedOnes() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream.port))
        defer { gw.stop() }
        // 10 KB, a suffix marker, a terminal escape: none is kept, even from a trusted proxy.
        for bad in [String(repeating: "x", count: 10_000), "incident-7~2", "a\u{1b}[2Jb", "a%0d%0ab"] {
            let reply = try Self.viaProxy(gw, "GET /cap/x HTTP/1.1\r\nHost: x\r\nX-Request-Id: \(bad)\r\n")
            if reply.status == 400 { continue }  // refused by the codec: nothing to keep either
            let id = reply.header("x-request-id") ?? ""
            #expect(id != bad && id.utf8.count == 27)
        }
    }

    @Test func generatedIdsCannotBePredictedFromEarlierOnes() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream.port))
        defer { gw.stop() }
        let conn = try RawSocket(port: gw.port)
        var ids: [String] = []
        for _ in 0..<64 {
            conn.send("GET /cap/x HTTP/1.1\r\nHost: x\r\n\r\n")
            ids.append(RawReply(conn.readResponse(seconds: 5) ?? "").header("x-request-id") ?? "")
        }
        #expect(Set(ids).count == ids.count)
        // Each id ends in 64 bits that consecutive ids share no pattern in: about half of them
        // differ (a counter, as before, changes one or two).
        #expect(ids.allSatisfy { $0.utf8.count == 27 })
        var differing = 0
        for i in 1..<ids.count {
            let a = UInt64(ids[i - 1].suffix(16), radix: 16) ?? 0, b = UInt64(ids[i].suffix(16), radix: 16) ?? 0
            differing += (a ^ b).nonzeroBitCount
        }
        #expect(Double(differing) / Double(ids.count - 1) > 24)
    }
}

import Foundation
import GatehouseTestSupport
import Testing

/// S5: on routes whose chain reads the body, the whole body was buffered before any check ran, so
/// an unauthenticated client could make the gateway hold up to 1 MiB per connection.
@Suite("S5 body pinning", .serialized) struct S05BodyPinning {
    static let yaml = """
        upstreams:
          app: { targets: ["http://127.0.0.1:UP"] }
        routes:
          - name: transfer
            match: { methods: [POST], path: /transfer }
            upstream: app
            policies: [api-key, inspect]
        policies:
          api-key: { type: api_key, header: X-API-Key }
          inspect: { type: waf }
        """

    /// 300 unauthenticated clients each announce a 1 MB body and stall after a little of it: each is
    /// refused (401) at once, before its body, and the gateway's memory does not grow with them.
    @Test func unauthenticatedBodiesAreRefusedBeforeBuffering() async throws {
        raiseOwnDescriptorLimit()
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port)), logLevel: "info")
        defer { gw.stop() }
        #expect(RawReply(try rawExchange(port: gw.port, "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).status == 404)

        let chunk = String(repeating: "a", count: 64 * 1024)
        var sockets: [RawSocket] = []
        for _ in 0..<300 {
            let s = try RawSocket(port: gw.port)
            s.send("POST /transfer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1048000\r\n\r\n" + chunk)
            sockets.append(s)
        }
        var refused = 0
        // One 10-second budget for all of them: answered at once, they are already there.
        let deadline = Date().addingTimeInterval(10)
        for s in sockets {
            if let text = s.readResponse(seconds: max(0.05, deadline.timeIntervalSinceNow)) {
                let r = RawReply(text)
                if r.status == 401, r.reason == "missing_credentials" { refused += 1 }
            }
        }
        #expect(refused == 300, "refused before the body: \(refused) of 300")
        for s in sockets { s.close() }
        #expect(upstream.requests.isEmpty)
    }

    /// With a key, the body is buffered, inspected and forwarded as before.
    @Test func authenticatedBodyIsInspectedAndForwarded() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port)))
        defer { gw.stop() }
        #expect(try gw.cli(["consumers", "create", "acme"]).status == 0)
        let key = try gw.cli(["keys", "create", "--consumer", "acme", "--quiet"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        var status = 0
        for _ in 0..<40 {
            let body = #"{"amount": 10}"#
            status = try attack(
                gw,
                "POST /transfer HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            ).status
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(status == 200)
        #expect(upstream.requests.last.map { String(decoding: $0.body, as: UTF8.self) } == #"{"amount": 10}"#)
        // And an attack in the body is still caught by the body check that now runs second.
        let evil = #"{"q": "1' UNION SELECT password FROM users--"}"#
        let r = try attack(
            gw,
            "POST /transfer HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nContent-Type: application/json\r\nContent-Length: \(evil.utf8.count)\r\nConnection: close\r\n\r\n\(evil)"
        )
        #expect(r.status == 403)
    }

    /// A route whose first check reads the body (a public route with only `waf`) has no earlier
    /// check to refuse a stranger: the process-wide budget for buffered bodies bounds what such
    /// clients can make the gateway hold, and the rest get 503 `gateway_busy`.
    @Test func bufferedBodiesHaveAProcessWideBudget() async throws {
        raiseOwnDescriptorLimit()
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(
            yaml: """
                admin: 127.0.0.1:0
                upstreams:
                  app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
                limits: { max_buffered_bodies: 8MiB }
                routes:
                  - name: submit
                    match: { methods: [POST], path: /submit }
                    upstream: app
                    policies: [inspect]
                policies:
                  inspect: { type: waf }
                """, logLevel: "info")
        defer { gw.stop() }
        let before = residentKiB(pid: gw.process.processIdentifier) ?? 0
        let part = String(repeating: "a", count: 1_000_000)
        var sockets: [RawSocket] = []
        for _ in 0..<40 {
            let s = try RawSocket(port: gw.port)
            var tv = timeval(tv_sec: 1, tv_usec: 0)
            setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            s.send("POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1048000\r\n\r\n" + part)
            sockets.append(s)
        }
        try await Task.sleep(for: .milliseconds(500))
        let after = residentKiB(pid: gw.process.processIdentifier) ?? 0
        // The operator sees the budget in use.
        let held = try S04SlowClients.status(gw)["buffered_body_bytes"] as? Int ?? -1
        #expect(held > 0 && held <= 8 << 20, "buffered_body_bytes \(held)")
        var busy = 0
        for s in sockets {
            if let text = s.readResponse(seconds: 0.5), RawReply(text).reason == "gateway_busy" { busy += 1 }
        }
        // 40 bodies of 1 MB would be 40 MB held; the budget is 8 MiB.
        #expect(busy >= 30, "answered 503 gateway_busy: \(busy) of 40")
        #expect(after - before < 32 * 1024, "RSS grew from \(before) KiB to \(after) KiB")
        for s in sockets { s.close() }
        // Once they are gone, the budget is free again.
        try await Task.sleep(for: .milliseconds(300))
        #expect(try S04SlowClients.status(gw)["buffered_body_bytes"] as? Int == 0)
        let ok = try attack(
            gw, "POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        #expect(ok.status == 200)
    }
}

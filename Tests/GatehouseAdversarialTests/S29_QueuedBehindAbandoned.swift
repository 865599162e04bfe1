import Foundation
import GatehouseTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// S29 (review of the data-plane re-cut): a client that pipelined a second request behind one
/// still waiting for its upstream, then closed the connection, had the second one run anyway: its
/// body buffered (taking the process-wide budget, never given back), forwarded with nobody to
/// answer and never logged. And a buffered body kept its share of the budget until the response
/// ended, so slow readers of large responses could hold the budget. Now nothing queued behind an
/// abandoned exchange runs, and a body leaves the budget once it is handed to the upstream.
@Suite(.serialized) struct S29_QueuedBehindAbandoned {
    @Test func requestsQueuedBehindAnAbandonedExchangeNeverRun() async throws {
        let slow = try await CaptureUpstream(respond: { _ in
            CannedResponse(pieces: [(4000, Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8))])
        })
        let capture = try await CaptureUpstream()
        let gw = try GatewayProcess(
            yaml: """
                admin: 127.0.0.1:0
                upstreams:
                  slow: { targets: ["\(slow.url)"] }
                  cap: { targets: ["\(capture.url)"] }
                routes:
                  - name: slow
                    match: { path: /slow }
                    upstream: slow
                  - name: submit
                    match: { methods: [POST], path: /submit }
                    upstream: cap
                    policies: [inspect]
                policies:
                  inspect: { type: waf }
                """, logLevel: "info")
        defer { gw.stop() }
        let body = String(repeating: "a", count: 200_000)
        for _ in 0..<5 {
            let s = try RawSocket(port: gw.port)
            s.send(
                "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
            // Gone at once: the first request waits for its upstream (4 s), the second behind it.
            s.close()
        }
        try await Task.sleep(for: .milliseconds(1500))
        #expect(!capture.requests.contains { $0.path == "/submit" }, "a queued request reached the upstream")
        #expect(try S04SlowClients.status(gw)["buffered_body_bytes"] as? Int == 0)
        // Each abandoned request is in the call log as 499, and nothing else is.
        let records = try gw.cli(["logs", "--json", "--limit", "100"]).stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(records.count == 5, "\(records)")
        #expect(records.allSatisfy { $0["status"] as? Int == 499 && $0["route"] as? String == "slow" }, "\(records)")
        await slow.stop()
        await capture.stop()
    }

    @Test func aForwardedBodyLeavesTheBudgetWhileItsResponseRuns() async throws {
        // The upstream answers slowly: while it has not, the body it was sent no longer counts.
        let upstream = try await CaptureUpstream(respond: { _ in
            CannedResponse(pieces: [(1500, Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8))])
        })
        let gw = try GatewayProcess(
            yaml: """
                admin: 127.0.0.1:0
                upstreams:
                  app: { targets: ["\(upstream.url)"] }
                routes:
                  - name: submit
                    match: { methods: [POST], path: /submit }
                    upstream: app
                    policies: [inspect]
                policies:
                  inspect: { type: waf }
                """, logLevel: "info")
        defer { gw.stop() }
        let body = String(repeating: "a", count: 500_000)
        let s = try RawSocket(port: gw.port)
        s.send("POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        // Forwarded (the upstream has it) and still waiting for the answer.
        for _ in 0..<50 where !upstream.requests.contains(where: { $0.path == "/submit" }) {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(upstream.requests.contains { $0.path == "/submit" })
        #expect(try S04SlowClients.status(gw)["buffered_body_bytes"] as? Int == 0)
        #expect(s.readResponse(seconds: 3)?.hasPrefix("HTTP/1.1 200") == true)
        s.close()
        await upstream.stop()
    }
}

import Foundation
import GatehouseTestSupport
import Testing

/// S26: requests still running at the shutdown's grace deadline were never answered nor logged,
/// and the shutdown scheduled work on event loops that had stopped.
@Suite("S26 shutdown grace", .serialized) struct S26ShutdownGrace {
    @Test func requestsRunningAtTheDeadlineAreAnsweredAndLogged() async throws {
        // An upstream that takes 30 s to answer (far beyond the 2 s grace, however loaded the machine).
        let upstream = try await CaptureUpstream { _ in
            CannedResponse(pieces: [(30000, Array("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate".utf8))])
        }
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(
            yaml: """
                upstreams:
                  app: { targets: ["http://127.0.0.1:\(upstream.port)"], timeout: 30s }
                routes:
                  - name: slow
                    match: { path: /slow }
                    upstream: app
                """, extraArguments: ["--grace", "2"])
        var clients: [RawSocket] = []
        for i in 0..<5 {
            let s = try RawSocket(port: gw.port)
            s.send("GET /slow?n=\(i) HTTP/1.1\r\nHost: x\r\n\r\n")
            clients.append(s)
        }
        // All five reach the upstream, then the gateway is told to stop.
        for _ in 0..<50 where upstream.requests.count < 5 { try await Task.sleep(for: .milliseconds(100)) }
        #expect(upstream.requests.count == 5)
        gw.signal(SIGTERM)

        var ids: [String] = []
        for s in clients {
            let reply = RawReply(String(decoding: s.readUntilClose(seconds: 10).bytes, as: UTF8.self))
            #expect(reply.status == 503)
            #expect(reply.reason == "gateway_shutting_down")
            if let id = reply.header("x-request-id") { ids.append(id) }
        }
        gw.process.waitUntilExit()
        #expect(gw.process.terminationStatus == 0)
        #expect(ids.count == 5)
        // Every one of them is in the call log, which was flushed after they were answered.
        for id in ids {
            let r = try gw.cli(["explain", id, "--json"])
            #expect(r.status == 0, "no call-log record for \(id)")
            let obj = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
            #expect(obj["reason"] as? String == "gateway_shutting_down")
        }
        #expect(!gw.stderr.contains("Cannot schedule tasks"))
    }
}

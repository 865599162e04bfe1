import Foundation
import GatehouseTestSupport
import Testing

/// S10: from a trusted proxy only the first `X-Forwarded-For` line was forwarded, while the gateway
/// resolved the client from all of them: a spoofed first line reached the upstream, the real client
/// address (added by the proxy in a second line) was dropped.
@Suite("S10 X-Forwarded-For lines", .serialized) struct S10ForwardedForJoined {
    static func yaml(_ upstream: CaptureUpstream) -> String {
        """
        upstreams:
          app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
        trusted_proxies: [127.0.0.2/32]
        routes:
          - name: cap
            match: { path: "/cap/{rest*}" }
            upstream: app
        """
    }

    @Test func everyLineFromATrustedProxyReachesTheUpstream() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream))
        defer { gw.stop() }
        let proxy = try RawSocket(port: gw.port, source: "127.0.0.2")
        proxy.send(
            "GET /cap/x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 198.51.100.9\r\nConnection: close\r\n\r\n")
        let reply = RawReply(String(decoding: proxy.readUntilClose(seconds: 5).bytes, as: UTF8.self))
        #expect(reply.status == 200)
        let seen = upstream.requests.first
        #expect(seen?.values("x-forwarded-for") == ["6.6.6.6, 198.51.100.9, 127.0.0.2"])
        // The gateway's own view (call log, rate limits) is the address the trusted proxy added.
        let record = try await gw.record(reply.header("x-request-id") ?? "")
        #expect(record["client"] as? String == "198.51.100.9")
    }

    @Test func anUntrustedClientsLinesAreReplaced() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream))
        defer { gw.stop() }
        let r = try attack(
            gw, "GET /cap/x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7\r\nConnection: close\r\n\r\n")
        #expect(r.status == 200)
        #expect(upstream.requests.first?.values("x-forwarded-for") == ["127.0.0.1"])
    }
}

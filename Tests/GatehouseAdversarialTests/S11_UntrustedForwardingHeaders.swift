import Foundation
import GatehouseTestSupport
import Testing

/// S11: forwarding, rewrite and method-override headers from untrusted clients reached the
/// upstream verbatim (`Forwarded`, `X_Forwarded_For`, `X-Real-IP`, `X-Original-URL`, …).
@Suite("S11 untrusted forwarding headers", .serialized) struct S11UntrustedForwardingHeaders {
    static let spoofed: [(String, String)] = [
        ("Forwarded", "for=1.2.3.4;proto=https;host=admin.internal"),
        ("X_Forwarded_For", "1.2.3.4"),
        ("X-Real-IP", "1.2.3.4"),
        ("True-Client-IP", "1.2.3.4"),
        ("X-Client-IP", "1.2.3.4"),
        ("X_Request_Id", "forged-id"),
        ("X-Original-URL", "/admin/users"),
        ("X-Rewrite-URL", "/admin/users"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("X_Forwarded_Host", "admin.internal"),
        ("x-forwarded-PROTO", "https"),
    ]

    static func yaml(_ port: Int, extra: String = "") -> String {
        """
        upstreams:
          app: { targets: ["http://127.0.0.1:\(port)"] }
        trusted_proxies: [127.0.0.2/32]
        \(extra)
        routes:
          - name: cap
            match: { path: "/cap/{rest*}" }
            upstream: app
        """
    }

    static func request() -> String {
        "GET /cap/x HTTP/1.1\r\nHost: x\r\n" + spoofed.map { "\($0.0): \($0.1)\r\n" }.joined()
            + "X-Custom: kept\r\nConnection: close\r\n\r\n"
    }

    @Test func untrustedClientCannotPassThem() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream.port))
        defer { gw.stop() }
        let r = try attack(gw, Self.request())
        #expect(r.status == 200)
        let seen = try #require(upstream.requests.first)
        #expect(!seen.rawHead.contains("1.2.3.4"))
        #expect(!seen.rawHead.contains("admin.internal"))
        #expect(!seen.rawHead.contains("DELETE"))
        #expect(!seen.rawHead.contains("/admin/users"))
        #expect(!seen.rawHead.contains("forged-id"))
        #expect(seen.first("x-custom") == "kept")
        #expect(seen.values("x-forwarded-for") == ["127.0.0.1"])
        #expect(seen.values("x-forwarded-proto") == ["http"])
        #expect(seen.first("x-forwarded-host") == "x")
    }

    @Test func trustedProxyStillPassesThem() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream.port))
        defer { gw.stop() }
        let proxy = try RawSocket(port: gw.port, source: "127.0.0.2")
        proxy.send(Self.request())
        #expect(RawReply(String(decoding: proxy.readUntilClose(seconds: 5).bytes, as: UTF8.self)).status == 200)
        let seen = try #require(upstream.requests.first)
        #expect(seen.first("forwarded") == "for=1.2.3.4;proto=https;host=admin.internal")
        #expect(seen.first("x-real-ip") == "1.2.3.4")
        // The underscore spellings of the fields the gateway writes itself never pass, whoever sends them.
        #expect(seen.first("x_forwarded_for") == nil)
        #expect(seen.first("x_request_id") == nil)
        #expect(seen.first("x_forwarded_host") == nil)
        #expect(!seen.rawHead.contains("forged-id"))
    }

    @Test func theListIsConfigurable() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream.port, extra: "untrusted_headers: { add: [x-custom], keep: [x-real-ip] }"))
        defer { gw.stop() }
        #expect(try attack(gw, Self.request()).status == 200)
        let seen = try #require(upstream.requests.first)
        #expect(seen.first("x-custom") == nil)
        #expect(seen.first("x-real-ip") == "1.2.3.4")
        #expect(seen.first("forwarded") == nil)
    }
}

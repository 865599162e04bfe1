import Foundation
import GatehouseTestSupport
import Testing

/// S18: `Host: admin.example.com.` (the same DNS name, with the root's dot) matched neither the
/// exact nor the wildcard host pattern, so the request fell through to a host-less open route.
/// The trailing dot is now ignored before host matching.
@Suite(.serialized) struct S18_HostTrailingDot {
    @Test func aTrailingDotInHostMeetsTheHostSpecificRoute() async throws {
        let upstream = try await CaptureUpstream()
        let gw = try GatewayProcess(
            yaml: """
                upstreams:
                  cap: { targets: ["\(upstream.url)"], timeout: 5s }
                routes:
                  - name: cap-host-admin
                    match: { host: admin.example.com, path: "/cap/{rest*}" }
                    upstream: cap
                    policies: [api-key]
                  - name: cap-wild
                    match: { host: "*.internal.example.com", path: "/cap/{rest*}" }
                    upstream: cap
                    policies: [api-key]
                  - name: cap-open
                    match: { path: "/cap/{rest*}" }
                    upstream: cap
                policies:
                  api-key: { type: api_key, header: X-API-Key }
                """)
        defer { gw.stop() }
        for host in [
            "admin.example.com", "ADMIN.example.com", "admin.example.com:80", "admin.example.com.", "admin.example.com.:80",
            "Admin.Example.Com.", "a.internal.example.com.", "a.internal.example.com.:8080",
        ] {
            let reply = try attack(gw, "GET /cap/x HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
            #expect(reply.status == 401, "Host: \(host) → \(reply.status) \(reply.body)")
            let record = try await gw.record(reply.header("x-request-id") ?? "")
            #expect(
                (record["route"] as? String)?.hasPrefix("cap-") == true && record["route"] as? String != "cap-open",
                "Host: \(host): \(record)")
        }
        #expect(upstream.requests.isEmpty)
        // Another host still takes the open route.
        #expect(try attack(gw, "GET /cap/x HTTP/1.1\r\nHost: other.example.com.\r\nConnection: close\r\n\r\n").status == 200)
        #expect(try attack(gw, "GET /cap/y HTTP/1.1\r\nHost: other.example.com.:8080\r\nConnection: close\r\n\r\n").status == 200)
        // The upstream gets the host the routes matched, without the dot.
        #expect(upstream.requests.map { $0.first("host") } == ["other.example.com", "other.example.com:8080"])
        #expect(upstream.requests.map { $0.first("x-forwarded-host") } == ["other.example.com", "other.example.com:8080"])
        await upstream.stop()
    }

    /// Host spellings that back ends read differently (URL parsers decode `%2E`, take what follows
    /// `@`, stop at `/`, `?`, `#`; nginx cuts the port at the first colon) are refused, so none can
    /// skip a host-specific route.
    @Test func hostFieldsThatAreNotAHostAreRefused() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(
            yaml: """
                upstreams:
                  cap: { targets: ["\(upstream.url)"] }
                routes:
                  - name: admin-host
                    match: { host: admin.example.com, path: "/cap/{rest*}" }
                    upstream: cap
                    policies: [api-key]
                  - name: open
                    match: { path: "/cap/{rest*}" }
                    upstream: cap
                policies:
                  api-key: { type: api_key, header: X-API-Key }
                """)
        defer { gw.stop() }
        for host in [
            "admin%2Eexample.com", "admin%2eexample%2ecom", "x@admin.example.com", "admin.example.com/x",
            "admin.example.com?", "admin.example.com#", "admin.example.com:80:x", "admin.example.com:x:y",
            "admin.example.com:", "admin.example.com:123456", "[::1", "admin example.com",
        ] {
            let r = try attack(gw, "GET /cap/x HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
            #expect(r.status == 400, "Host: \(host) → \(r.status)")
        }
        #expect(upstream.requests.isEmpty)
        for host in ["admin.example.com", "127.0.0.1:8080", "[::1]:8080", "[::1]", "internal_host", "other.example.com:443"] {
            let r = try attack(gw, "GET /cap/x HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
            #expect(r.status == (host == "admin.example.com" ? 401 : 200), "Host: \(host) → \(r.status)")
        }
    }
}

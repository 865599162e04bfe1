import Foundation
import GatehouseTestSupport
import Testing

/// S25: `strip_prefix` was a raw string prefix of the raw target: `//api/x` went upstream
/// unstripped, `/api/../etc` as `/../etc`, and `/apix` as `/x`. It now works on whole segments of
/// the canonical path.
@Suite(.serialized) struct S25_StripPrefixSegments {
    @Test func stripPrefixRemovesWholeSegmentsOfTheCanonicalPath() async throws {
        let upstream = try await CaptureUpstream()
        let gw = try GatewayProcess(
            yaml: """
                upstreams:
                  cap: { targets: ["\(upstream.url)"], timeout: 5s }
                routes:
                  - name: api
                    match: { path: "/api/{rest*}" }
                    upstream: cap
                    strip_prefix: /api
                  - name: rest
                    match: { path: "/{rest*}" }
                    upstream: cap
                    strip_prefix: /api
                """)
        defer { gw.stop() }
        func get(_ target: String) throws -> RawReply {
            try attack(gw, "GET \(target) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        }
        for (target, forwarded) in [
            ("//api/x", "/x"), ("/api/x?y=/api/z", "/x?y=/api/z"), ("/api", "/"), ("/api/", "/"),
            ("/api/../etc", "/etc"), ("/api/x/../../etc/passwd", "/etc/passwd"), ("/apix/y", "/apix/y"),
            ("/api;v=1/x", "/x"), ("/x/api/y", "/x/api/y"),
        ] {
            let reply = try get(target)
            #expect(reply.status == 200, "\(target) → \(reply.status) \(reply.body)")
            #expect(reply.body == "upstream saw \(forwarded)", "\(target) → \(reply.body)")
        }
        // Climbing above the root is refused, never forwarded as "/../etc".
        #expect(try get("/api/../../etc").status == 400)
        #expect(!upstream.requests.contains { $0.target.contains("..") || $0.target.hasPrefix("//") })
        await upstream.stop()
    }
}

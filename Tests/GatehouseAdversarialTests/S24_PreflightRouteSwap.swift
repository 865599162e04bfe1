import Foundation
import GatehouseTestSupport
import Testing

/// S24: an OPTIONS request with `Origin` and `Access-Control-Request-Method: GET` was routed and
/// checked as GET, then forwarded upstream as OPTIONS, even on a route without a `cors` policy.
/// Now a preflight is routed as its announced method only when that route's chain answers it (an
/// enforced `cors` check); otherwise it is the OPTIONS request it is.
@Suite(.serialized) struct S24_PreflightRouteSwap {
    static let preflight = "Origin: https://app.example.com\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n"

    @Test func aPreflightDoesNotBorrowAnotherMethodsOpenRoute() async throws {
        let upstream = try await CaptureUpstream()
        let gw = try GatewayProcess(
            yaml: """
                upstreams:
                  cap: { targets: ["\(upstream.url)"], timeout: 5s }
                routes:
                  - name: reports-get
                    match: { path: /reports, methods: [GET] }
                    upstream: cap
                  - name: reports-any
                    match: { path: /reports }
                    upstream: cap
                    policies: [api-key]
                  - name: cors-get
                    match: { path: /cors-reports, methods: [GET] }
                    upstream: cap
                    policies: [cors]
                  - name: shadow-cors-get
                    match: { path: /shadow-reports, methods: [GET] }
                    upstream: cap
                    policies: [{ policy: cors, mode: shadow }]
                  - name: only-get
                    match: { path: /only-get, methods: [GET] }
                    upstream: cap
                policies:
                  api-key: { type: api_key, header: X-API-Key }
                  cors: { type: cors, origins: ["https://app.example.com"], methods: [GET] }
                """)
        defer { gw.stop() }

        // Plain OPTIONS meets the api-key route; dressed as a preflight it now does too.
        #expect(try attack(gw, "OPTIONS /reports HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status == 401)
        let dressed = try attack(gw, "OPTIONS /reports HTTP/1.1\r\nHost: x\r\n" + Self.preflight)
        #expect(dressed.status == 401, "\(dressed.status) \(dressed.body)")
        let record = try await gw.record(dressed.header("x-request-id") ?? "")
        #expect(record["route"] as? String == "reports-any", "\(record)")

        // A route whose chain has no enforced cors check: OPTIONS has no route there, 405.
        #expect(try attack(gw, "OPTIONS /only-get HTTP/1.1\r\nHost: x\r\n" + Self.preflight).status == 405)
        #expect(try attack(gw, "OPTIONS /shadow-reports HTTP/1.1\r\nHost: x\r\n" + Self.preflight).status == 405)
        #expect(upstream.requests.isEmpty, "\(upstream.requests.map { "\($0.method) \($0.target)" })")

        // With a cors policy, the route's cors check answers the preflight itself.
        let answered = try attack(gw, "OPTIONS /cors-reports HTTP/1.1\r\nHost: x\r\n" + Self.preflight)
        #expect(answered.status == 204, "\(answered.status) \(answered.body)")
        #expect(answered.header("access-control-allow-origin") == "https://app.example.com")
        let refused = try attack(
            gw,
            "OPTIONS /cors-reports HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: GET\r\nConnection: close\r\n\r\n"
        )
        #expect(refused.status == 403)
        // Nothing was forwarded under another method's route.
        #expect(upstream.requests.isEmpty, "\(upstream.requests.map { "\($0.method) \($0.target)" })")
        await upstream.stop()
    }
}

import Foundation
import GatehouseTestSupport
import Testing

/// S2: routes and policies were walked around with dot-segments (`/public/../admin/users`, also
/// encoded and with backslashes): the router matched raw segments and the raw target went
/// upstream, where it resolved to `/admin/users`. Now the gateway normalises the target once,
/// routes on it, and forwards exactly that path; what a back end could read differently is 400.
@Suite(.serialized) struct S02_RouteBypassDotSegments {
    static func yaml(_ upstream: CaptureUpstream) -> String {
        """
        upstreams:
          cap: { targets: ["\(upstream.url)"], timeout: 5s }
        routes:
          - name: public
            match: { path: "/public/{rest*}" }
            upstream: cap
          - name: admin
            match: { path: "/admin/{rest*}" }
            upstream: cap
            policies: [api-key]
        policies:
          api-key: { type: api_key, header: X-API-Key }
        """
    }

    func get(_ gw: GatewayProcess, _ target: String) throws -> RawReply {
        try attack(gw, "GET \(target) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    }

    @Test func theReviewsBypassesMeetTheAdminChecksOrAreRefused() async throws {
        let upstream = try await CaptureUpstream()
        let gw = try GatewayProcess(yaml: Self.yaml(upstream))
        defer { gw.stop() }

        // The control: the admin route wants a key.
        #expect(try get(gw, "/admin/users").status == 401)

        // Each resolves to /admin/users: 401 from the admin route's check, with the canonical path.
        for target in [
            "/public/../admin/users", "/public/%2e%2e/admin/users", "/public/.%2E/admin/users",
            "/public/%2E%2e/admin/users", "//public/./x/../../admin//users", "/%61dmin/users", "/admin;jsessionid=1/users",
        ] {
            let reply = try get(gw, target)
            #expect(reply.status == 401, "\(target) → \(reply.status) \(reply.body)")
            #expect(reply.reason == "missing_credentials", "\(target) → \(reply.body)")
            let record = try await gw.record(reply.header("x-request-id") ?? "")
            #expect(
                record["path"] as? String == (target.hasPrefix("/admin;") ? "/admin;jsessionid=1/users" : "/admin/users"),
                "\(target): \(record)")
            #expect(record["route"] as? String == "admin", "\(target): \(record)")
        }

        // What a back end could read differently is refused outright: backslashes, a fragment, raw
        // 8-bit bytes, encoded slashes and backslashes, `..;`, double encoding, climbing the root.
        for target in [
            "/public/x/..\\..\\admin/users", "/public/x#/../../admin/users", "/public/caf\u{E9}/../../admin/users",
            "/public%2f..%2fadmin/users", "/public/..%2fadmin/users", "/public/..%5cadmin/users", "/public/..;/admin/users",
            "/public/%252e%252e/admin/users", "/public/../../admin/users", "/public/%c0%ae%c0%ae/admin/users",
        ] {
            let reply = try get(gw, target)
            #expect(reply.status == 400, "\(target.debugDescription) → \(reply.status) \(reply.body)")
            #expect(reply.reason == "bad_request", "\(target.debugDescription) → \(reply.body)")
        }
        // None of these reached the upstream.
        #expect(upstream.requests.isEmpty, "\(upstream.requests.map(\.target))")

        // What the public route lets through goes upstream as the canonical path the checks saw.
        for (target, canonical) in [
            ("/public/x/../y", "/public/y"), ("/public/%7Efoo/./bar?q=/../z", "/public/~foo/bar?q=/../z"),
            ("//public//a%2db%3b", "/public/a-b%3B"),
        ] {
            let reply = try get(gw, target)
            #expect(reply.status == 200, "\(target) → \(reply.status) \(reply.body)")
            #expect(reply.body == "upstream saw \(canonical)", "\(target)")
            let record = try await gw.record(reply.header("x-request-id") ?? "")
            #expect(record["path"] as? String == canonical, "\(target): \(record)")
        }
        #expect(upstream.requests.map(\.target) == ["/public/y", "/public/~foo/bar?q=/../z", "/public/a-b%3B"])
        await upstream.stop()
    }

    @Test func aRefusalIsExplainedAndLogged() async throws {
        let upstream = try await CaptureUpstream()
        let gw = try GatewayProcess(yaml: Self.yaml(upstream))
        defer { gw.stop() }
        let reply = try get(gw, "/public/..%2fadmin/users")
        #expect(reply.status == 400)
        #expect(reply.body.contains("%2F"), "\(reply.body)")
        #expect(reply.body.contains("encoded slash"), "\(reply.body)")
        let record = try await gw.record(reply.header("x-request-id") ?? "")
        #expect(record["status"] as? Int == 400)
        #expect("\(record)".contains("bad_request"))
        await upstream.stop()
    }

    /// With an open catch-all route, what Tomcat, Spring or a decoding back end resolves to a
    /// protected route meets that route's checks, or is refused.
    @Test func aCatchAllOpenRouteDoesNotCatchWhatBackEndsResolveElsewhere() async throws {
        let upstream = try await CaptureUpstream()
        let gw = try GatewayProcess(
            yaml: """
                upstreams:
                  cap: { targets: ["\(upstream.url)"], timeout: 5s }
                routes:
                  - name: open
                    match: { path: "/{rest*}" }
                    upstream: cap
                  - name: admin
                    match: { path: "/admin/{rest*}" }
                    upstream: cap
                    policies: [api-key]
                  - name: export
                    match: { path: "/reports:export" }
                    upstream: cap
                    policies: [api-key]
                policies:
                  api-key: { type: api_key, header: X-API-Key }
                """)
        defer { gw.stop() }
        for target in ["/admin;jsessionid=1/users", "/reports%3Aexport", "/reports%3aexport;x=1", "/x/../admin/users", "/%61dmin/users"] {
            let reply = try get(gw, target)
            #expect(reply.status == 401, "\(target) → \(reply.status) \(reply.body)")
        }
        for target in [
            "/;x/admin/users", "/x/..;/admin/users", "/x/%2e%2e;/admin/users", "/x/.;/../admin/users", "/x/%ef%bc%8f..%ef%bc%8fadmin",
        ] {
            let reply = try get(gw, target)
            #expect(reply.status == 400, "\(target) → \(reply.status) \(reply.body)")
        }
        #expect(upstream.requests.isEmpty, "\(upstream.requests.map(\.target))")
        // The open route still serves what is really its own.
        #expect(try get(gw, "/adminx/users").status == 200)
        await upstream.stop()
    }
}

import AsyncHTTPClient
import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S44: a developer reads its own requests' explanations in the portal to learn what only the
/// operator should: the WAF's excerpts of what matched and its exclusions (built-in `waf` and the
/// CRS), which admin names exist (a WAF field name `x by alice` was rewritten to `by an
/// administrator` only when admin alice existed), and a `minimal` route's checks and shadow-mode
/// trials that its problem body never showed.
@Suite(.serialized) struct S44_PortalExplanationLeaks {
    static let crsInstalled = FileManager.default.fileExists(atPath: "/usr/share/modsecurity-crs/rules")

    final class Target: @unchecked Sendable {
        // @unchecked: written during init only.
        let gateway: GatewayProcess
        var key = ""
        var cookie = ""
        var portal: String { "http://127.0.0.1:\(gateway.portalPort ?? 0)" }

        init() throws {
            gateway = try GatewayProcess(
                yaml: """
                    admin: 127.0.0.1:0
                    portal: { listen: 127.0.0.1:0 }
                    upstreams:
                      app: { targets: ["http://127.0.0.1:1"] }
                    routes:
                      - name: waf-route
                        match: { path: /w }
                        upstream: app
                        policies: [key, waf]
                      - name: waf-detailed
                        match: { path: /wd }
                        upstream: app
                        exposure: detailed
                        policies: [key, waf]
                    \(S44_PortalExplanationLeaks.crsInstalled ? """
                      - name: crs-route
                        match: { path: /c }
                        upstream: app
                        policies: [key, crs]
                    """ : "")
                      - name: quiet
                        match: { path: /q }
                        upstream: app
                        exposure: minimal
                        policies: [key, { policy: waf, mode: shadow }, quiet-limit]
                    policies:
                      key: { type: api_key }
                      waf: { type: waf }
                      crs: { type: waf, crs: { paranoia: 1, anomaly_threshold: 5 } }
                      quiet-limit: { type: rate_limit, key: consumer, rate: 1/minute }
                    """)
            _ = try gateway.cli(["tenants", "create", "acme"])
            _ = try gateway.cli(["admins", "create", "alice", "--role", "operator", "--tenant", "acme"])
            _ = try gateway.cli(["consumers", "create", "checkout", "--tenant", "acme"])
            key = try gateway.cli(["keys", "create", "--consumer", "checkout", "--quiet"]).stdout.trimmingCharacters(
                in: .whitespacesAndNewlines)
            setenv("GATEHOUSE_DEVELOPER_PASSWORD", "dana-portal-pw", 1)
            defer { unsetenv("GATEHOUSE_DEVELOPER_PASSWORD") }
            let made = try gateway.cli(["developer", "create", "dana", "--application", "checkout", "--cost", "4"])
            precondition(made.status == 0, made.stderr)
        }

        func signIn() async throws {
            // The answer is a redirect, whose cookie a client that follows it would not show.
            var configuration = HTTPClient.Configuration()
            configuration.redirectConfiguration = .disallow
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            defer { _ = client.shutdown() }
            let r = try await send(
                .POST, portal + "/portal/sign-in", headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", portal)],
                body: "name=dana&password=dana-portal-pw", client: client)
            let set = r.headers["set-cookie"].first { $0.hasPrefix("__Host-gatehouse-portal=") } ?? ""
            cookie = String(set.prefix { $0 != ";" })
            #expect(r.status == 303, "sign-in: \(r.status) \(r.body.prefix(3000))")
        }

        func call(_ target: String) async throws -> Reply { try await send(.GET, gateway.url + target, headers: [("X-API-Key", key)]) }

        func explain(_ reply: Reply) async throws -> String {
            // Once the call log holds it.
            _ = try await gateway.record(reply.requestID)
            return try await send(.GET, portal + "/portal/explain?request_id=\(reply.requestID)", headers: [("Cookie", cookie)]).body
        }
    }

    @Test func theWAFsOperatorDetailNamesAndMinimalRoutesStayWithTheOperator() async throws {
        let t = try Target()
        defer { _ = t.gateway.stop() }
        try await t.signIn()
        #expect(t.cookie.count > 30)

        // M1: the built-in WAF's excerpt (and exclusions, when any applied), on a route of default
        // exposure.
        let waf = try await t.call("/w?id=1%27%20or%201%3D1")
        #expect(waf.status == 403 && waf.json["reason"] as? String == "waf_blocked")
        let record = try await t.gateway.record(waf.requestID)
        #expect((record["detail"] as? String ?? "").contains("matched"), "the operator keeps it: \(record)")
        let page = try await t.explain(waf)
        #expect(page.contains("id=\"explain-reason\">waf_blocked<"), "\(page.prefix(3000))")
        #expect(!page.contains("1&#39; or 1=1") && !page.contains("1' or 1=1") && !page.contains("exclusions applied"))
        #expect(!page.contains("id=\"explain-detail\"") && !page.contains("matched &quot;"), "\(page)")

        // M2: a caller-chosen field name is shown as the caller wrote it, whether or not an admin
        // of that name exists (on a route that shows its detail).
        for name in ["alice", "nobody"] {
            let r = try await t.call("/wd?x%20by%20\(name)=1%27%20or%201%3D1")
            #expect(r.status == 403)
            let p = try await t.explain(r)
            #expect(p.contains("x by \(name)"), "\(name): \(p)")
            #expect(!p.contains("an administrator"), "\(name) was rewritten: the store's names show through")
        }

        // M3: a minimal route's explanation shows what its problem body did: the reason, no
        // check ids, no steps, and never a shadow-mode trial.
        _ = try await t.call("/q?id=1%27%20or%201%3D1")
        let limited = try await t.call("/q?id=1%27%20or%201%3D1")
        #expect(limited.status == 429 && limited.json["check"] == nil)
        let quiet = try await t.explain(limited)
        #expect(quiet.contains("id=\"explain-reason\">rate_limited<"))
        #expect(!quiet.contains("quiet-limit") && !quiet.contains("shadow") && !quiet.contains("explain-steps"), "\(quiet)")

        // M1 with the Core Rule Set.
        if Self.crsInstalled {
            let crs = try await t.call("/c?id=1%27%20OR%20%271%27%3D%271")
            #expect(crs.status == 403)
            let p = try await t.explain(crs)
            #expect(p.contains("id=\"explain-reason\">waf_blocked<"))
            #expect(!p.contains("OR &#39;1&#39;=&#39;1") && !p.contains("ARGS:id") && !p.contains("id=\"explain-detail\""), "\(p)")
        }
    }
}

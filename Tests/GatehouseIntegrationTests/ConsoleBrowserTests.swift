import AsyncHTTPClient
import Foundation
import GatehouseStore
import GatehouseTestSupport
import GatehouseTesting
import NIOHTTP1
import Testing

/// The operator console on a live gateway's admin listener: driven in headless Chromium
/// (Tests/browser/console_test.py), and its overview's figures against `gatehouse logs`.
@Suite(.serialized) struct ConsoleBrowserTests {
    static let yaml = """
        admin: 127.0.0.1:0
        upstreams:
          app: { targets: ["http://127.0.0.1:UP"], timeout: 2s }
        routes:
          - name: pay
            match: { methods: [GET], path: /pay }
            upstream: app
            policies: [key, payments-subscription]
        policies:
          key: { type: api_key }
          payments-subscription: { type: subscription, service: payments }
        """

    static let password = "console-test-password"

    /// A gateway whose application `checkout` has a key and a pending subscription to the manual
    /// service `payments`, and an owner `ops` who signs in to the console with a password.
    final class World: @unchecked Sendable {
        let upstream: GatehouseTesting.DemoUpstream
        let gateway: LocalGateway
        var token = ""
        var key = ""
        var console: String { "http://127.0.0.1:\(gateway.adminPort ?? 0)" }

        init(extra: String = "") async throws {
            upstream = try await startUpstream()
            gateway = try await LocalGateway(
                yaml: ConsoleBrowserTests.yaml.replacingOccurrences(of: "UP", with: String(upstream.port)) + extra)
            #expect(try gateway.cli(["admins", "create", "root", "--role", "owner"]).status == 0)
            token = try gateway.cli(["admins", "token", "root", "--quiet"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(
                try await api(.POST, "/admin-users", #"{"name": "ops", "role": "owner", "password": "\#(ConsoleBrowserTests.password)"}"#)
                    .status == 201)
            #expect(try await api(.POST, "/applications", #"{"name": "checkout"}"#).status == 201)
            key = try #require(try await api(.POST, "/applications/checkout/keys").json["key"] as? String)
            #expect(try await api(.POST, "/services", #"{"name": "payments", "approval": "manual", "routes": ["pay"]}"#).status == 201)
            #expect(
                try await api(.POST, "/subscriptions", #"{"application": "checkout", "service": "payments", "reason": "card payments"}"#)
                    .status == 201)
            // The data plane has the pending subscription.
            for _ in 0..<40 {
                let r = try await send(.GET, gateway.url + "/pay", headers: [("X-API-Key", key)])
                if r.json["reason"] as? String == "subscription_pending" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        func api(_ method: HTTPMethod, _ path: String, _ body: String? = nil) async throws -> Reply {
            try await send(
                method, console + "/admin/v1" + path,
                headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
                body: body)
        }

        func stop() async {
            gateway.stop()
            await upstream.stop()
        }

        /// Signs in over HTTP as a browser's form would; the session cookie.
        func signIn(origin: String? = nil) async throws -> String {
            // The answer is a redirect, whose cookie a client that follows it would not show.
            var configuration = HTTPClient.Configuration()
            configuration.redirectConfiguration = .disallow
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            defer { _ = client.shutdown() }
            let r = try await send(
                .POST, console + "/console/sign-in",
                headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", origin ?? console)],
                body: "name=ops&password=\(ConsoleBrowserTests.password)", client: client)
            #expect(r.status == 303, "\(r.body)")
            let cookie = try #require(r.headers["set-cookie"].first { $0.hasPrefix("__Host-gatehouse-console=") })
            return String(cookie.prefix { $0 != ";" })
        }
    }

    /// The figure of element `id` on a page (`<div … id="fig-denied">12</div>`).
    static func figure(_ html: String, _ id: String) -> Int? {
        guard let r = html.range(of: "id=\"\(id)\">") else { return nil }
        return Int(html[r.upperBound...].prefix { $0 != "<" })
    }

    @Test(
        .enabled(
            if: BrowserPrerequisites.shouldRun,
            "needs python3 + selenium, chromium and chromium-driver (.ci/apt-packages, .ci/requirements.txt)"))
    func theConsoleInHeadlessChromium() async throws {
        let missing = BrowserPrerequisites.missing
        try #require(missing.isEmpty, "browser test prerequisites missing: \(missing.joined(separator: ", "))")
        let w = try await World()
        defer { Task { await w.stop() } }
        let out = BrowserPrerequisites.repoRoot + "/bench/out/console"
        // Waited for on a Dispatch thread, not a cooperative one (which the in-process gateway and
        // admin listener need to answer the browser).
        let (status, o, e) = try await PortalBrowserTests.run(
            BrowserPrerequisites.which("python3")!,
            [
                BrowserPrerequisites.repoRoot + "/Tests/browser/console_test.py", "--console", w.console, "--gateway", w.gateway.url,
                "--key", w.key, "--application", "checkout", "--user", "ops", "--password", Self.password,
                "--other", "127.0.0.2:\(try closedPort())", "--out", out,
            ])
        try #require(status == 0, "console_test.py exited \(status): \(e)")
        let seen = try #require(
            try JSONSerialization.jsonObject(with: o) as? [String: Any],
            "no JSON from console_test.py: \(String(decoding: o, as: UTF8.self))")

        #expect(seen["signed_in_user"] as? String == "ops (owner)")
        // The browser kept the Secure, __Host- cookie over plain http on loopback.
        let cookies = seen["cookies"] as? [[String: Any]] ?? []
        #expect(
            cookies.contains {
                $0["name"] as? String == "__Host-gatehouse-console" && $0["secure"] as? Bool == true && $0["httpOnly"] as? Bool == true
                    && $0["sameSite"] as? String == "Strict"
            }, "\(cookies)")

        // The denial made moments earlier is in the call log and the overview.
        let denied = seen["denied_call"] as? [String: Any] ?? [:]
        #expect(denied["status"] as? Int == 403)
        let requestID = try #require(denied["request_id"] as? String)
        #expect(seen["in_call_log"] as? Bool == true)
        let overview = seen["overview"] as? [String: Any] ?? [:]
        #expect(Int(overview["denied"] as? String ?? "") ?? 0 >= 1, "\(overview)")
        #expect((overview["reasons"] as? [String] ?? []).contains("subscription_pending"), "\(overview)")
        #expect(overview["charts"] as? Int == 4 && overview["charts_loaded"] as? Bool == true, "\(overview)")
        // The stylesheet loaded (the header's background is the stylesheet's, not the default).
        #expect(overview["stylesheet_applied"] as? String == "rgb(29, 35, 48)", "\(overview)")

        // Its explanation is `gatehouse explain`'s.
        let explanation = seen["explanation"] as? String ?? ""
        #expect(explanation.contains("Request \(requestID): DENIED 403 subscription_pending"), "\(explanation)")
        let cli = try w.gateway.cli(["explain", requestID]).stdout
        #expect(cli.split(separator: "\n").first.map(String.init) == explanation.split(separator: "\n").first.map(String.init))

        // Approved from the queue, the application's next call succeeds.
        #expect(seen["queue_after"] as? Int == 0)
        let after = seen["after_approval"] as? [String: Any] ?? [:]
        #expect(after["status"] as? Int == 200, "\(after)")
        let sub = try await w.api(.GET, "/subscriptions?application=checkout")
        let item = (sub.json["items"] as? [[String: Any]])?.first ?? [:]
        #expect(item["state"] as? String == "approved" && item["opinion"] as? String == "approved in the browser test")

        // The cross-site form was refused by its origin, and did not sign the browser out.
        let cross = seen["cross_site"] as? [String: Any] ?? [:]
        #expect(cross["reason"] as? String == "csrf_origin_mismatch", "\(cross)")
        #expect((cross["detail"] as? String ?? "").contains("127.0.0.2"), "\(cross)")
        #expect(seen["still_signed_in"] as? Bool == true)
        #expect((seen["csp_violations"] as? [String] ?? ["?"]).isEmpty, "\(seen["csp_violations"] ?? "")")

        // Screenshots for the CI run's artifacts.
        for shot in ["overview.png", "request.png"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + shot), "\(shot)")
        }
    }

    /// Behind a TLS-terminating proxy the browser's forms come from the proxy's origin, which
    /// `console.trusted_origins` names; other origins stay refused.
    @Test func theConfiguredOriginMayPostAndNoOther() async throws {
        let w = try await World(extra: "\nconsole: { trusted_origins: [\"https://gatehouse.example\"], sign_in_per_name: 3 }\n")
        defer { Task { await w.stop() } }
        let cookie = try await w.signIn(origin: "https://gatehouse.example")
        #expect(cookie.hasPrefix("__Host-gatehouse-console=ghs_"))
        let refused = try await send(
            .POST, w.console + "/console/sign-in",
            headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", "https://evil.example")],
            body: "name=ops&password=\(Self.password)")
        #expect(refused.status == 403)
        #expect(refused.body.contains("id=\"refusal-reason\">csrf_origin_mismatch<"))
    }

    /// The overview's figures for the last hour are what `gatehouse logs` lists for it.
    @Test func theOverviewsFiguresAreTheCallLogs() async throws {
        let w = try await World()
        defer { Task { await w.stop() } }
        var last = ""
        for i in 0..<12 {
            // Denied without a key, and denied while the subscription is pending.
            let r = try await send(.GET, w.gateway.url + "/pay", headers: i % 3 == 0 ? [] : [("X-API-Key", w.key)])
            last = r.requestID
        }
        _ = try await w.gateway.record(last)
        let cookie = try await w.signIn()
        // The page and the log are read one after the other while the call-log writer may still
        // be flushing (a busy machine): read both again until they were taken over the same
        // records, for at most a few seconds.
        var page = try await send(.GET, w.console + "/console/overview?period=1h", headers: [("Cookie", cookie)])
        var records: [[String: Any]] = []
        for attempt in 0..<20 {
            if attempt > 0 {
                try await Task.sleep(for: .milliseconds(250))
                page = try await send(.GET, w.console + "/console/overview?period=1h", headers: [("Cookie", cookie)])
            }
            let logs = try w.gateway.cli(["logs", "--json", "--since", "1h", "--limit", "100000"]).stdout
            records = logs.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            if Self.figure(page.body, "fig-requests") == records.count { break }
        }
        #expect(page.status == 200)
        // A denial is a call with a reason other than an upstream failure (docs/architecture.md):
        // a check that could not decide on a loaded machine fails closed (503 `check_unavailable`)
        // and is a denial too.
        let deniedRecords = records.filter {
            guard let reason = $0["reason"] as? String, !reason.isEmpty else { return false }
            return !CallRollups.upstreamFailures.contains(reason)
        }
        #expect(records.count >= 12)
        #expect(Self.figure(page.body, "fig-requests") == records.count)
        #expect(Self.figure(page.body, "fig-denied") == deniedRecords.count)
        #expect(Self.figure(page.body, "fig-allowed") == records.count - deniedRecords.count)
        // Denials by reason: the table's rows are the log's counts.
        var byReason: [String: Int] = [:]
        for r in deniedRecords { byReason[r["reason"] as? String ?? "", default: 0] += 1 }
        for (reason, count) in byReason {
            #expect(page.body.contains("<code>\(reason)</code></a></td><td class=\"num\">\(count)</td>"), "\(reason) \(count)")
        }
        #expect(byReason.keys.contains("missing_credentials") && byReason.keys.contains("subscription_pending"))
    }
}

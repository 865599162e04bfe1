import Foundation
import GatehouseTestSupport
import GatehouseTesting
import NIOHTTP1
import Testing

/// The control plane against a live in-process gateway: subscriptions decided through the admin
/// API reach the data plane, denials cite the audit log, and tenants stay apart.
@Suite(.serialized) struct ControlPlaneGatewayTests {
    static let yaml = """
        admin: 127.0.0.1:0
        upstreams:
          app: { targets: ["http://127.0.0.1:UP"], timeout: 2s }
        routes:
          - name: pay
            match: { methods: [GET, POST], path: /pay }
            upstream: app
            policies: [key, payments-subscription]
        policies:
          key: { type: api_key }
          payments-subscription: { type: subscription, service: payments }
        """

    /// A gateway with tenants acme, globex and initech, an unscoped owner and one operator each.
    final class World: @unchecked Sendable {
        let upstream: GatehouseTesting.DemoUpstream
        let gateway: LocalGateway
        var tokens: [String: String] = [:]
        var admin: String { "http://127.0.0.1:\(gateway.adminPort ?? 0)/admin/v1" }

        init() async throws {
            upstream = try await startUpstream()
            gateway = try await LocalGateway(
                yaml: ControlPlaneGatewayTests.yaml.replacingOccurrences(of: "UP", with: String(upstream.port)))
            for t in ["acme", "globex", "initech"] { #expect(try gateway.cli(["tenants", "create", t]).status == 0) }
            for (name, role, tenant) in [
                ("root", "owner", nil), ("ann", "operator", "acme"), ("bob", "operator", "globex"), ("carol", "operator", "initech"),
            ] {
                #expect(try gateway.cli(["admins", "create", name, "--role", role] + (tenant.map { ["--tenant", $0] } ?? [])).status == 0)
                tokens[name] = try gateway.cli(["admins", "token", name, "--quiet"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }

        func call(_ method: HTTPMethod, _ path: String, as who: String, body: String? = nil) async throws -> Reply {
            try await send(
                method, admin + path, headers: [("Authorization", "Bearer \(tokens[who] ?? "")"), ("Content-Type", "application/json")],
                body: body)
        }

        func stop() async {
            gateway.stop()
            await upstream.stop()
        }
    }

    /// Polls the call until its answer satisfies `done` (for at most about two seconds).
    func poll(_ url: String, key: String, until done: (Reply) -> Bool) async throws -> Reply {
        var last = try await send(.GET, url, headers: [("X-API-Key", key)])
        for _ in 0..<40 where !done(last) {
            try await Task.sleep(for: .milliseconds(50))
            last = try await send(.GET, url, headers: [("X-API-Key", key)])
        }
        return last
    }

    @Test func anApprovalReachesTheGatewayAndARevocationIsExplainedWithItsAuditEntry() async throws {
        let w = try await World()
        defer { Task { await w.stop() } }
        #expect(try await w.call(.POST, "/applications", as: "ann", body: #"{"name": "checkout"}"#).status == 201)
        let created = try await w.call(.POST, "/applications/checkout/keys", as: "ann")
        let key = try #require(created.json["key"] as? String)
        #expect(
            try await w.call(.POST, "/services", as: "bob", body: #"{"name": "payments", "approval": "manual", "routes": ["pay"]}"#).status
                == 201)

        let none = try await poll(w.gateway.url + "/pay", key: key) { $0.json["reason"] as? String == "subscription_required" }
        #expect(none.status == 403)
        #expect((none.json["detail"] as? String)?.contains("application checkout has no subscription to service payments") == true)

        let applied = try await w.call(
            .POST, "/subscriptions", as: "ann", body: #"{"application": "checkout", "service": "payments", "reason": "card payments"}"#)
        #expect(applied.status == 201)
        let id = try #require(applied.json["id"] as? String)
        let pending = try await poll(w.gateway.url + "/pay", key: key) { $0.json["reason"] as? String == "subscription_pending" }
        #expect(pending.status == 403)
        #expect((pending.json["detail"] as? String)?.contains("tenant globex") == true)

        // The applicant cannot approve itself; the service's owner tenant can.
        let selfApproval = try await w.call(.POST, "/subscriptions/\(id)/approve", as: "ann", body: "{}")
        #expect(selfApproval.status == 403)
        #expect(selfApproval.json["reason"] as? String == "admin_tenant_mismatch")
        #expect(try await w.call(.POST, "/subscriptions/\(id)/approve", as: "bob", body: #"{"opinion": "welcome"}"#).status == 200)
        let allowed = try await poll(w.gateway.url + "/pay", key: key) { $0.status == 200 }
        #expect(allowed.status == 200)

        #expect(try await w.call(.POST, "/subscriptions/\(id)/revoke", as: "bob", body: #"{"opinion": "contract ended"}"#).status == 200)
        let revoked = try await poll(w.gateway.url + "/pay", key: key) { $0.status == 403 }
        #expect(revoked.json["reason"] as? String == "subscription_revoked")
        #expect((revoked.json["detail"] as? String)?.contains("revoked by bob") == true)
        #expect((revoked.json["detail"] as? String)?.contains("'contract ended'") == true)
        // The audit entry id stays in the call log; the caller is not shown it.
        #expect(!revoked.body.contains("audit"))

        let record = try await w.gateway.record(revoked.requestID)
        let auditID = try #require(record["auditEntry"] as? Int)
        let explained = try w.gateway.cli(["explain", revoked.requestID])
        #expect(explained.status == 0)
        #expect(explained.stdout.contains("Audit entry \(auditID): subscription revoked by bob at "))
        #expect(explained.stdout.contains(": 'contract ended'"))
        let entry = try await w.call(.GET, "/audit/\(auditID)", as: "root")
        #expect(entry.json["action"] as? String == "subscription.revoke")
        #expect(entry.json["source"] as? String == "127.0.0.1")

        // The application's tenant reads the explanation through the API; another tenant cannot.
        let explanation = try await w.call(.GET, "/calls/\(revoked.requestID)", as: "ann")
        #expect((explanation.json["record"] as? [String: Any])?["reason"] as? String == "subscription_revoked")
        #expect((explanation.json["audit"] as? [String: Any])?["action"] as? String == "subscription.revoke")
        let foreign = try await w.call(.GET, "/calls/\(revoked.requestID)", as: "carol")
        #expect(foreign.status == 403 && foreign.json["reason"] as? String == "admin_tenant_mismatch")
        #expect((try await w.call(.GET, "/calls", as: "carol").json["items"] as? [Any])?.isEmpty == true)
        let calls = try await w.call(.GET, "/calls?reason=subscription_pending&limit=1", as: "ann")
        #expect((calls.json["items"] as? [[String: Any]])?.first?["reason"] as? String == "subscription_pending")

        // An invalid transition is a clear 409.
        let again = try await w.call(.POST, "/subscriptions/\(id)/approve", as: "bob", body: "{}")
        #expect(again.status == 409)
        #expect(again.json["reason"] as? String == "subscription_transition_invalid")
    }

    @Test func anotherTenantsOperatorIsRefusedEverywhereAndListsNothingOfIt() async throws {
        let w = try await World()
        defer { Task { await w.stop() } }
        let app = try await w.call(.POST, "/applications", as: "ann", body: #"{"name": "checkout"}"#)
        let appID = try #require(app.json["id"] as? String)
        let key = try await w.call(.POST, "/applications/\(appID)/keys", as: "ann")
        let keyID = try #require((key.json["info"] as? [String: Any])?["id"] as? String)
        #expect(try await w.call(.POST, "/services", as: "ann", body: #"{"name": "ledger", "approval": "manual"}"#).status == 201)
        let sub = try await w.call(
            .POST, "/subscriptions", as: "ann", body: #"{"application": "checkout", "service": "ledger", "reason": "books"}"#)
        let subID = try #require(sub.json["id"] as? String)
        let auditID = try #require(
            (try await w.call(.GET, "/audit", as: "ann").json["items"] as? [[String: Any]])?.first?["id"] as? Int)
        let developer = try await w.call(
            .POST, "/developers", as: "ann", body: #"{"name": "dana", "application": "checkout", "password": "dana-portal-pw"}"#)
        let devID = try #require(developer.json["id"] as? String, "\(developer.body)")
        let annUser = try #require(
            (try await w.call(.GET, "/admin-users", as: "root").json["items"] as? [[String: Any]])?.first {
                $0["name"] as? String == "ann"
            }?["id"]
                as? String)

        let attempts: [(HTTPMethod, String, String?)] = [
            (.GET, "/applications/\(appID)", nil),
            (.GET, "/applications/checkout", nil),
            (.PATCH, "/applications/\(appID)", #"{"status": "suspended"}"#),
            (.GET, "/applications/\(appID)/keys", nil),
            (.POST, "/applications/\(appID)/keys", "{}"),
            (.POST, "/keys/\(keyID)/revoke", nil),
            (.PUT, "/applications/\(appID)/password", #"{"password": "carol-was-here"}"#),
            (.GET, "/applications/\(appID)/jwt-subjects", nil),
            (.POST, "/applications/\(appID)/jwt-subjects", #"{"issuer": "https://id.initech", "subject": "carol"}"#),
            (.POST, "/applications/\(appID)/jwt-subjects/remove", #"{"issuer": "https://id.initech", "subject": "carol"}"#),
            (.PATCH, "/services/ledger", #"{"approval": "auto"}"#),
            (.GET, "/subscriptions/\(subID)", nil),
            (.POST, "/subscriptions/\(subID)/approve", #"{"opinion": "sneaky"}"#),
            (.POST, "/subscriptions/\(subID)/reject", "{}"),
            (.POST, "/subscriptions/\(subID)/cancel", "{}"),
            (.POST, "/subscriptions/\(subID)/revoke", "{}"),
            (.POST, "/subscriptions", #"{"application": "\#(appID)", "service": "ledger", "reason": "x"}"#),
            (.POST, "/applications", #"{"name": "planted", "tenant": "acme"}"#),
            (.GET, "/audit/\(auditID)", nil),
            (.POST, "/tenants", #"{"name": "mine"}"#),
            (.GET, "/admin-users", nil),
            (.POST, "/admin-users", #"{"name": "mole", "role": "operator", "tenant": "acme"}"#),
            (.POST, "/admin-users/\(annUser)/tokens", nil),
            (.POST, "/admin-users/\(annUser)/end-sessions", nil),
            (.POST, "/admin-tokens/tok_notcarols/revoke", nil),
            (.POST, "/services", #"{"name": "fake-ledger", "tenant": "acme"}"#),
            (.GET, "/calls/\(UUID().uuidString)", nil),
            (.GET, "/developers/\(devID)", nil),
            (.PATCH, "/developers/\(devID)", #"{"status": "disabled"}"#),
            (.DELETE, "/developers/\(devID)", nil),
            (.POST, "/developers", #"{"name": "mole-dev", "application": "\#(appID)", "password": "carol-was-here"}"#),
        ]
        // Every operation of the API is tried here, or is a list checked below, or holds nothing
        // of a tenant's: a new endpoint must join one of the three.
        let ids = [appID, keyID, subID, String(auditID), annUser, devID, "checkout", "ledger", "tok_notcarols"]
        func template(_ path: String) -> String {
            path.split(separator: "/", omittingEmptySubsequences: false).map { part in
                ids.contains(String(part)) || UUID(uuidString: String(part)) != nil ? "{id}" : String(part)
            }.joined(separator: "/")
        }
        let lists = ["/applications", "/keys", "/subscriptions", "/audit", "/tenants", "/calls", "/overview", "/developers"]
        let tenantless = [
            "GET /metrics", "GET /healthz", "GET /status", "GET /admin/v1/openapi.json", "GET /admin/v1/whoami",
            // The service catalogue: every admin may read it (docs/admin.md).
            "GET /admin/v1/services", "GET /admin/v1/services/{id}",
        ]
        let tried = Set(attempts.map { "\($0.0) /admin/v1\(template($0.1))" } + lists.map { "GET /admin/v1\($0)" } + tenantless)
        let document = try await w.call(.GET, "/openapi.json", as: "root").json["paths"] as? [String: [String: Any]] ?? [:]
        let operations = Set(
            document.flatMap { path, item in item.keys.filter { $0 != "parameters" }.map { "\($0.uppercased()) \(path)" } })
        #expect(operations.count > 30)
        #expect(operations.subtracting(tried).sorted() == [], "operations no tenant-isolation attempt covers")
        for (method, path, body) in attempts {
            let r = try await w.call(method, path, as: "carol", body: body)
            #expect(r.status == 403, "\(method) \(path): \(r.status)")
            let reason = r.json["reason"] as? String
            #expect(reason == "admin_tenant_mismatch" || reason == "admin_role_insufficient", "\(method) \(path): \(reason ?? "none")")
            #expect((r.json["detail"] as? String)?.isEmpty == false && r.json["hint"] != nil, "\(method) \(path) is not explained")
            // Nothing of the other tenant's objects beyond what the caller itself sent.
            for secret in ["ann", "card", "books", "globex", "dana"] {
                #expect(!r.body.contains(secret), "\(method) \(path) leaks \(secret)")
            }
            if let body { #expect(!r.body.contains("\"state\""), "\(method) \(path) with \(body) returned an object") }
        }
        // Lists hold nothing of acme's.
        for path in [
            "/applications", "/keys", "/subscriptions", "/calls", "/subscriptions?state=pending", "/applications?tenant=acme",
            "/developers",
            "/developers?application=checkout",
        ] {
            let r = try await w.call(.GET, path, as: "carol")
            #expect(r.status == 200, "\(path)")
            #expect((r.json["items"] as? [Any])?.isEmpty == true, "\(path) lists another tenant's objects: \(r.body)")
        }
        // The overview counts nothing of acme's: a call of acme's application is in root's
        // overview, and neither it nor its application is in carol's.
        let keyValue = try #require(key.json["key"] as? String)
        let denied = try await send(.GET, w.gateway.url + "/pay", headers: [("X-API-Key", keyValue)])
        _ = try await w.gateway.record(denied.requestID)
        #expect((try await w.call(.GET, "/overview?period=1h", as: "root").json["requests"] as? Int ?? 0) >= 1)
        let overview = try await w.call(.GET, "/overview?period=1h", as: "carol")
        #expect(overview.status == 200 && overview.json["requests"] as? Int == 0, "\(overview.body)")
        #expect(!overview.body.contains(appID) && !overview.body.contains("checkout"))
        let audit = try await w.call(.GET, "/audit?limit=500", as: "carol")
        let entries = audit.json["items"] as? [[String: Any]] ?? []
        #expect(
            entries.allSatisfy { ($0["tenants"] as? [String]) == ["initech"] },
            "the audit log shows another tenant's entries: \(audit.body)")
        #expect(!audit.body.contains("acme") && !audit.body.contains("checkout"))
        #expect(
            (try await w.call(.GET, "/tenants", as: "carol").json["items"] as? [[String: Any]])?.map { $0["name"] as? String } == [
                "initech"
            ])
        // Nothing changed for acme.
        #expect(try await w.call(.GET, "/subscriptions/\(subID)", as: "ann").json["state"] as? String == "pending")
        #expect(try await w.call(.GET, "/applications/\(appID)", as: "ann").json["status"] as? String == "active")
    }
    @Test func theCommandLineDrivesTheSameLifecycleAndIsAuditedAsTheLocalOwner() async throws {
        let w = try await World()
        defer { Task { await w.stop() } }
        #expect(try w.gateway.cli(["services", "create", "payments", "--tenant", "globex", "--routes", "pay"]).status == 0)
        #expect(try w.gateway.cli(["consumers", "create", "shop", "--tenant", "acme"]).status == 0)
        let applied = try w.gateway.cli(["subscriptions", "apply", "--application", "shop", "--service", "payments", "--reason", "cards"])
        #expect(applied.status == 0 && applied.stdout.contains("state=pending"))
        let id = String(applied.stdout.prefix { $0 != " " })
        #expect(try w.gateway.cli(["subscriptions", "approve", id, "--opinion", "ok", "--expires", "30d"]).status == 0)
        let wrong = try w.gateway.cli(["subscriptions", "cancel", id])
        #expect(wrong.status != 0 && wrong.stderr.contains("is approved"))
        let shown = try w.gateway.cli(["subscriptions", "show", id])
        #expect(shown.stdout.contains("pending → approved  by cli"))
        #expect(shown.stdout.contains("reason=\"cards\""))
        let audit = try await w.call(.GET, "/audit?object_id=\(id)", as: "root")
        let entries = audit.json["items"] as? [[String: Any]] ?? []
        #expect(entries.map { $0["action"] as? String } == ["subscription.apply", "subscription.approve"])
        #expect(entries.allSatisfy { $0["actor"] as? String == "cli" && $0["source"] as? String == "local" })

        // A password set through the API is stored as bcrypt and audited without it.
        let set = try await w.call(.PUT, "/applications/shop/password", as: "ann", body: #"{"password": "shop-password-1"}"#)
        #expect(set.status == 200 && set.json["has_password"] as? Bool == true)
        let short = try await w.call(.PUT, "/applications/shop/password", as: "ann", body: #"{"password": "short"}"#)
        #expect(short.status == 400)
        let foreign = try await w.call(.PUT, "/applications/shop/password", as: "carol", body: #"{"password": "carol-was-here"}"#)
        #expect(foreign.status == 403)
        let trail = try await w.call(.GET, "/audit?action=application.password", as: "root")
        #expect(trail.body.contains("application.password_set") && !trail.body.contains("shop-password-1") && !trail.body.contains("$2b$"))
    }
    /// Runs the CLI with `--admin` against the gateway's admin listener, as `who`.
    func remote(_ w: World, _ args: [String], as who: String?) throws -> CommandResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Binary.path)
        p.arguments = args + ["--admin", "http://127.0.0.1:\(w.gateway.adminPort ?? 0)"]
        var env = ProcessInfo.processInfo.environment
        env["GATEHOUSE_ADMIN_TOKEN"] = who.flatMap { w.tokens[$0] }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CommandResult(
            status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    @Test func theCommandLineTalksToARunningGatewayWithAdminURL() async throws {
        let w = try await World()
        defer { Task { await w.stop() } }
        #expect(try await w.call(.POST, "/services", as: "bob", body: #"{"name": "payments"}"#).status == 201)
        #expect(try remote(w, ["consumers", "create", "web"], as: "ann").status == 0)
        let key = try remote(w, ["keys", "create", "--consumer", "web", "--quiet"], as: "ann").stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
        #expect(key.hasPrefix("gth_"))
        let applied = try remote(
            w, ["subscriptions", "apply", "--application", "web", "--service", "payments", "--reason", "shop"], as: "ann")
        #expect(applied.status == 0 && applied.stdout.contains("state=pending"), "\(applied.stderr)")
        let id = String(applied.stdout.prefix { $0 != " " })
        let refused = try remote(w, ["subscriptions", "approve", id], as: "ann")
        #expect(refused.status != 0 && refused.stderr.contains("admin_tenant_mismatch"), "\(refused.stderr)")
        #expect(try remote(w, ["subscriptions", "approve", id, "--opinion", "ok"], as: "bob").status == 0)
        #expect(try await poll(w.gateway.url + "/pay", key: key) { $0.status == 200 }.status == 200)

        // Another tenant's operator lists nothing of acme's and changes nothing.
        #expect(try remote(w, ["consumers", "list"], as: "carol").stdout.isEmpty)
        let keyID = String(key.split(separator: "_")[1])
        let revoke = try remote(w, ["keys", "revoke", keyID], as: "carol")
        #expect(revoke.status != 0 && revoke.stderr.contains("admin_tenant_mismatch"))
        let listed = try remote(w, ["keys", "list"], as: "ann").stdout
        #expect(listed.contains(keyID) && listed.contains("active"))

        // Without a token, or for a command that reads the store, it says what to do.
        #expect(try remote(w, ["consumers", "list"], as: nil).stderr.contains("GATEHOUSE_ADMIN_TOKEN"))
        #expect(try remote(w, ["explain", "x"], as: "ann").stderr.contains("--admin applies to"))
        // The changes are audited as ann's, from the loopback address.
        let audit = try await w.call(.GET, "/audit?action=application.create", as: "root")
        let entry = (audit.json["items"] as? [[String: Any]])?.first { ($0["after"] as? String)?.contains("\"web\"") == true }
        #expect(entry?["actor"] as? String == "ann" && entry?["source"] as? String == "127.0.0.1")
    }
}

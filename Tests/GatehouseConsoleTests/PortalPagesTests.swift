import Foundation
import GatehouseAdmin
import GatehouseConsole
import GatehouseControl
import GatehouseCore
import GatehouseStore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// A browser of the developer portal: its portal session cookie.
struct PortalBrowser {
    var cookie: String?
    static let cookieName = "__Host-gatehouse-portal"

    var headers: HTTPFields {
        var h = HTTPFields()
        if let cookie { h[.cookie] = Self.cookieName + "=" + cookie }
        return h
    }

    func form(_ extra: HTTPFields = Browser.formType) -> HTTPFields {
        var h = headers
        for f in extra { h[f.name] = f.value }
        return h
    }

    static func sessionToken(_ response: TestResponse) -> String? {
        for value in response.headers[values: .setCookie] where value.hasPrefix(cookieName + "=") {
            let v = value.dropFirst(cookieName.count + 1).prefix { $0 != ";" }
            return v.isEmpty ? nil : String(v)
        }
        return nil
    }

    static func signIn(_ client: some TestClientProtocol, _ name: String, _ password: String) async throws -> PortalBrowser {
        let r = try await client.execute(
            uri: "/portal/sign-in", method: .post, headers: Browser.formType, body: Browser.body([("name", name), ("password", password)]))
        #expect(r.status == .seeOther, "\(r.text.prefix(2000))")
        return PortalBrowser(cookie: try #require(sessionToken(r)))
    }
}

/// The developer portal's pages through the portal listener's router (no socket): sessions of
/// their own kind, CSRF on every form, explained refusals, and only the developer's application.
@Suite(.serialized) struct PortalPagesTests {
    static let password = "dana-portal-pw"

    /// `ConsoleWorld` with developer dana of checkout (tenant acme) and ed of billing (globex).
    static func world() throws -> ConsoleWorld {
        let w = try ConsoleWorld()
        _ = try w.control.createDeveloper(.cli, name: "dana@acme.test", application: "checkout", password: password, cost: 4)
        _ = try w.control.createDeveloper(.cli, name: "ed", application: "billing", password: password, cost: 4)
        return w
    }

    static func record(_ id: String, application: String, time: Double) -> CallRecord {
        CallRecord(
            requestID: id, time: time, route: "payments-api", consumer: "x", keyID: "k1", client: "10.0.0.9", method: "GET",
            path: "/payments/1", host: nil, status: 429, upstreamMillis: nil, totalMillis: 1, decidingCheck: "limit",
            reason: "rate_limited",
            detail: "over the limit", hint: "Retry later.", required: ["at most 2 per 1 min"], presented: ["consumer x"],
            trace: DecisionTrace(entries: [
                TraceEntry(check: "limit", type: "rate_limit", mode: .enforce, outcome: .deny, note: "n", reason: .rateLimited, micros: 1)
            ]), upstreamTarget: nil, applicationID: application)
    }

    @Test func aPortalPageWithoutASessionIsAnExplained401ThatLeadsToThePortalsSignIn() async throws {
        let w = try Self.world()
        try await w.portalApp().test(.router) { client in
            let r = try await client.execute(uri: "/portal/keys", method: .get)
            #expect(r.status == .unauthorized)
            ConsoleTests.expectSecurityHeaders(r, "the portal's 401 page")
            ConsoleTests.expectNoInlineCode(r.text, "the portal's 401 page")
            #expect(r.text.contains("id=\"refusal-reason\">console_session_required<"))
            #expect(r.text.contains("href=\"/portal/sign-in?next=/portal/keys\""))
            let signIn = try await client.execute(uri: "/portal/sign-in", method: .get)
            #expect(signIn.status == .ok)
            ConsoleTests.expectSecurityHeaders(signIn, "the portal's sign-in page")
        }
    }

    @Test func developersAndAdminsHaveSeparateCredentialsAndSessions() async throws {
        let w = try Self.world()
        try await w.portalApp().test(.router) { portal in
            try await w.app().test(.router) { admin in
                // An admin user's password is no developer's.
                let asAdmin = try await portal.execute(
                    uri: "/portal/sign-in", method: .post, headers: Browser.formType,
                    body: Browser.body([("name", "root"), ("password", ConsoleWorld.password)]))
                #expect(asAdmin.status == .unauthorized && asAdmin.text.contains("console_sign_in_failed"))
                let dana = try await PortalBrowser.signIn(portal, "dana@acme.test", Self.password)
                let console = try await Browser.signIn(admin, "root")
                // Each session works only where it was made.
                #expect(try await portal.execute(uri: "/portal/services", method: .get, headers: dana.headers).status == .ok)
                let portalWithConsoleSession = try await portal.execute(
                    uri: "/portal/services", method: .get, headers: PortalBrowser(cookie: console.cookie).headers)
                #expect(portalWithConsoleSession.status == .unauthorized)
                let consoleWithPortalSession = try await admin.execute(
                    uri: "/console/overview", method: .get, headers: Browser(cookie: dana.cookie).headers)
                #expect(consoleWithPortalSession.status == .unauthorized)
            }
        }
    }

    /// The portal's listener serves the portal and its assets, nothing of the operator's: what
    /// the admin listener answers there is 404; and the admin listener no longer serves the portal.
    @Test func thePortalListenerServesOnlyThePortal() async throws {
        let w = try Self.world()
        try await w.portalApp().test(.router) { client in
            for path in ["/status", "/metrics", "/healthz", "/admin/v1/whoami", "/admin/v1/openapi.json", "/console/", "/console/sign-in"] {
                let r = try await client.execute(uri: path, method: .get)
                #expect(r.status == .notFound, "\(path) on the portal listener")
            }
            let signIn = try await client.execute(uri: "/portal/sign-in", method: .get)
            #expect(signIn.status == .ok)
            // Its assets are its own: the page links them under /portal/static/, with nosniff.
            let css = try #require(signIn.text.firstMatch(of: #/href="(/portal/static/console-[0-9a-f]{12}\.css)"/#)?.output.1)
            let asset = try await client.execute(uri: String(css), method: .get)
            #expect(asset.status == .ok && asset.headers[.xContentTypeOptions] == "nosniff")
            #expect(!signIn.text.contains("/console/"))
        }
        try await w.app().test(.router) { client in
            let r = try await client.execute(uri: "/portal/sign-in", method: .get)
            #expect(r.status == .notFound)
        }
    }

    /// The portal's busy page speaks of the portal (not the console, not admin tokens).
    @Test func aBusyPortalSaysSoInItsOwnWords() async throws {
        let w = try Self.world()
        try await w.portalApp(ConsoleOptions(maxInFlight: 0)).test(.router) { client in
            let r = try await client.execute(uri: "/portal/sign-in", method: .get)
            #expect(r.status == .serviceUnavailable)
            #expect(r.text.contains("id=\"refusal-check\">portal<"))
            #expect(r.text.contains("the portal is handling as many requests"))
            #expect(!r.text.contains("Bearer") && !r.text.contains("the console is"))
        }
    }

    /// Sign-in and sign-out are in the audit log, as the developer's own actions.
    @Test func signInAndSignOutAreAudited() async throws {
        let w = try Self.world()
        try await w.portalApp().test(.router) { client in
            let dana = try await PortalBrowser.signIn(client, "dana@acme.test", Self.password)
            let page = try await client.execute(uri: "/portal/services", method: .get, headers: dana.headers)
            let csrf = try #require(Browser.csrf(page.text))
            let out = try await client.execute(
                uri: "/portal/sign-out", method: .post, headers: dana.form(), body: Browser.body([("csrf", csrf)]))
            #expect(out.status == .seeOther)
        }
        let actions = try w.control.auditEntries(.cli, action: "portal.", page: PageRequest(limit: 100)).items.map {
            "\($0.actor) \($0.action)"
        }
        #expect(actions == ["developer:dana@acme.test portal.sign_in", "developer:dana@acme.test portal.sign_out"])
    }

    @Test func applyingNeedsTheFormsTokenAndASameOriginPost() async throws {
        let w = try Self.world()
        try await w.portalApp().test(.router) { client in
            let dana = try await PortalBrowser.signIn(client, "dana@acme.test", Self.password)
            let page = try await client.execute(uri: "/portal/services", method: .get, headers: dana.headers)
            ConsoleTests.expectNoInlineCode(page.text, "the services page")
            let csrf = try #require(Browser.csrf(page.text))
            // No token; a cross-site post.
            let noToken = try await client.execute(
                uri: "/portal/apply", method: .post, headers: dana.form(), body: Browser.body([("service", "payments")]))
            #expect(noToken.status == .forbidden && noToken.text.contains("console_csrf_failed"))
            var crossSite = Browser.formType
            crossSite[HTTPField.Name("Sec-Fetch-Site")!] = "cross-site"
            let cross = try await client.execute(
                uri: "/portal/apply", method: .post, headers: dana.form(crossSite),
                body: Browser.body([("csrf", csrf), ("service", "payments")]))
            #expect(cross.status == .forbidden && cross.text.contains("csrf_origin_mismatch"))
            #expect(try w.control.portalSubscriptions(try w.control.developerActor(id: try dev(w, "dana@acme.test"), source: "t")).isEmpty)
            // The form as the page sent it; the reason is shown escaped.
            let applied = try await client.execute(
                uri: "/portal/apply", method: .post, headers: dana.form(),
                body: Browser.body([("csrf", csrf), ("service", "payments"), ("reason", "<script>alert(1)</script>")]))
            #expect(applied.status == .seeOther && applied.headers[.location] == "/portal/subscriptions")
            let subs = try await client.execute(uri: "/portal/subscriptions", method: .get, headers: dana.headers)
            #expect(subs.text.contains("data-state=\"pending\""))
            #expect(!subs.text.contains("<script>alert") && subs.text.contains("&lt;script&gt;"))
        }
    }

    func dev(_ w: ConsoleWorld, _ name: String) throws -> String { try w.control.developer(.cli, name).id }

    @Test func aNewKeyIsShownOnceAndAnotherApplicationsKeyCannotBeRevoked() async throws {
        let w = try Self.world()
        let edKey = try w.control.createKey(.cli, application: "billing")
        try await w.portalApp().test(.router) { client in
            let dana = try await PortalBrowser.signIn(client, "dana@acme.test", Self.password)
            let page = try await client.execute(uri: "/portal/keys", method: .get, headers: dana.headers)
            let csrf = try #require(Browser.csrf(page.text))
            let created = try await client.execute(
                uri: "/portal/keys", method: .post, headers: dana.form(), body: Browser.body([("csrf", csrf)]))
            #expect(created.status == .created)
            let key = try #require(
                created.text.range(of: "id=\"new-key\">").map { String(created.text[$0.upperBound...].prefix { $0 != "<" }) })
            #expect(key.hasPrefix("gth_"))
            let again = try await client.execute(uri: "/portal/keys", method: .get, headers: dana.headers)
            #expect(!again.text.contains(key))
            // billing's key, posted by checkout's developer: refused, and the key stays.
            let revoke = try await client.execute(
                uri: "/portal/keys/\(edKey.info.id)/revoke", method: .post, headers: dana.form(), body: Browser.body([("csrf", csrf)]))
            #expect(revoke.status == .forbidden && revoke.text.contains("id=\"refusal-reason\">portal_object_not_yours<"))
            #expect(try w.control.keys(.cli, application: "billing").items.first?.revokedAt == nil)
        }
    }

    @Test func aDeveloperReadsItsOwnRequestAndGetsTheExplained403ForAnyOther() async throws {
        let w = try Self.world()
        let checkout = try w.control.application(.cli, "checkout").id
        let billing = try w.control.application(.cli, "billing").id
        _ = try w.store.insertCalls([
            Self.record("mine-1", application: checkout, time: w.clock.now),
            Self.record("theirs-1", application: billing, time: w.clock.now),
        ])
        try await w.portalApp().test(.router) { client in
            let dana = try await PortalBrowser.signIn(client, "dana@acme.test", Self.password)
            let mine = try await client.execute(uri: "/portal/explain?request_id=mine-1", method: .get, headers: dana.headers)
            #expect(mine.status == .ok)
            #expect(mine.text.contains("id=\"explain-reason\">rate_limited<"))
            // The route is not in this listener's configuration: minimal, the meaning stands in.
            #expect(!mine.text.contains("at most 2 per 1 min") && mine.text.contains("minimal exposure"))
            #expect(!mine.text.contains("10.0.0.9"))
            var pages: [String] = []
            for id in ["theirs-1", "nobody-1"] {
                let r = try await client.execute(uri: "/portal/explain?request_id=\(id)", method: .get, headers: dana.headers)
                #expect(r.status == .forbidden)
                #expect(r.text.contains("id=\"refusal-reason\">portal_request_not_yours<"))
                let rid = try #require(r.headers[HTTPField.Name("X-Request-Id")!])
                pages.append(r.text.replacingOccurrences(of: rid, with: "RID").replacingOccurrences(of: id, with: "ID"))
            }
            #expect(pages[0] == pages[1])
        }
        // With the route's exposure detailed, the denial's own words are shown.
        let app = w.portalApp(exposure: { _ in PortalExposure(exposure: .detailed, revealsOperatorDetail: false) })
        try await app.test(.router) { client in
            let dana = try await PortalBrowser.signIn(client, "dana@acme.test", Self.password)
            let mine = try await client.execute(uri: "/portal/explain?request_id=mine-1", method: .get, headers: dana.headers)
            #expect(mine.text.contains("at most 2 per 1 min"))
        }
    }

    @Test func disablingADeveloperEndsItsSessionForGood() async throws {
        let w = try Self.world()
        try await w.portalApp().test(.router) { client in
            let dana = try await PortalBrowser.signIn(client, "dana@acme.test", Self.password)
            #expect(try await client.execute(uri: "/portal/usage", method: .get, headers: dana.headers).status == .ok)
            _ = try w.control.setDeveloperStatus(.cli, "dana@acme.test", status: "disabled")
            // Disabling deleted the session: it is unknown now, and re-enabling brings it not back.
            let refused = try await client.execute(uri: "/portal/usage", method: .get, headers: dana.headers)
            #expect(refused.status == .unauthorized && refused.text.contains("id=\"refusal-reason\">console_session_required<"))
            _ = try w.control.setDeveloperStatus(.cli, "dana@acme.test", status: "active")
            let after = try await client.execute(uri: "/portal/usage", method: .get, headers: dana.headers)
            #expect(after.status == .unauthorized && after.text.contains("console_session_required"))
            _ = try w.control.setDeveloperStatus(.cli, "dana@acme.test", status: "disabled")
            // Signing in again says why, to whoever knows the password.
            let again = try await client.execute(
                uri: "/portal/sign-in", method: .post, headers: Browser.formType,
                body: Browser.body([("name", "dana@acme.test"), ("password", Self.password)]))
            #expect(again.status == .unauthorized && again.text.contains("is disabled"))
        }
    }

    @Test func portalSignInIsRateLimited() async throws {
        let w = try Self.world()
        try await w.portalApp().test(.router) { client in
            for _ in 0..<5 {
                let r = try await client.execute(
                    uri: "/portal/sign-in", method: .post, headers: Browser.formType,
                    body: Browser.body([("name", "ed"), ("password", "guess-guess")]))
                #expect(r.status == .unauthorized)
            }
            let limited = try await client.execute(
                uri: "/portal/sign-in", method: .post, headers: Browser.formType,
                body: Browser.body([("name", "ed"), ("password", Self.password)]))
            #expect(limited.status == .tooManyRequests && limited.text.contains("rate_limited"))
            #expect(limited.headers[.retryAfter] != nil)
            #expect(limited.text.contains("POST /portal/sign-in"))
        }
    }
}

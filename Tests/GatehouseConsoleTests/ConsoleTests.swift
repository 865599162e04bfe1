import Foundation
import GatehouseAdmin
import GatehouseConsole
import GatehouseControl
import GatehouseCore
import GatehouseStore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

/// A clock the test moves by hand.
final class TestClock: Sendable {
    let value = Mutex<Double>(Date().timeIntervalSince1970.rounded(.down))
    var now: Double { value.withLock { $0 } }
    func advance(_ s: Double) { value.withLock { $0 += s } }
}

/// A store with admin users (password `correct-horse`): root (owner), vera (viewer), ann
/// (operator of tenant acme); two tenants, their applications and a manual service.
final class ConsoleWorld: Sendable {
    let dir: String
    let store: SQLiteStore
    let clock = TestClock()
    let control: ControlPlane
    static let password = "correct-horse"

    init() throws {
        dir = NSTemporaryDirectory() + "gh-console-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        store = try SQLiteStore(path: dir + "/s.db")
        let clock = self.clock
        control = ControlPlane(store: store, now: { clock.now })
        for t in ["acme", "globex"] { _ = try control.createTenant(.cli, name: t) }
        _ = try control.createAdminUser(.cli, name: "root", role: .owner, password: Self.password, cost: 4)
        _ = try control.createAdminUser(.cli, name: "vera", role: .viewer, password: Self.password, cost: 4)
        _ = try control.createAdminUser(.cli, name: "ann", role: .operator, tenant: "acme", password: Self.password, cost: 4)
        _ = try control.createApplication(.cli, name: "checkout", tenant: "acme")
        _ = try control.createApplication(.cli, name: "billing", tenant: "globex")
        _ = try control.createService(.cli, name: "payments", tenant: "globex", approval: "manual")
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func app(_ options: ConsoleOptions? = nil) -> some ApplicationProtocol {
        let clock = self.clock
        let options = options ?? ConsoleOptions(now: { clock.now })
        return Application(router: AdminAPI(control: control, console: options).router().router)
    }

    /// The portal listener's application (`PortalRoutes.router`), with the routes' exposure.
    func portalApp(
        _ options: ConsoleOptions? = nil, exposure: @escaping @Sendable (String?) -> PortalExposure = { _ in .minimal }
    ) -> some ApplicationProtocol {
        let clock = self.clock
        let options = options ?? ConsoleOptions(now: { clock.now })
        return Application(router: PortalRoutes.router(control: control, options: options, exposure: exposure))
    }
}

/// What a browser holds: its session cookie.
struct Browser {
    var cookie: String?

    static let formType: HTTPFields = [.contentType: "application/x-www-form-urlencoded", HTTPField.Name("Sec-Fetch-Site")!: "same-origin"]

    var headers: HTTPFields {
        var h = HTTPFields()
        if let cookie { h[.cookie] = "__Host-gatehouse-console=" + cookie }
        return h
    }

    func form(_ extra: HTTPFields = formType) -> HTTPFields {
        var h = headers
        for f in extra { h[f.name] = f.value }
        return h
    }

    static func body(_ fields: [(String, String)]) -> ByteBuffer {
        ByteBuffer(
            string: fields.map { "\($0.0)=\(WebPages.queryEscaped($0.1).replacingOccurrences(of: "/", with: "%2F"))" }.joined(
                separator: "&"))
    }

    /// The session token a `Set-Cookie` gave.
    static func sessionToken(_ response: TestResponse) -> String? {
        for value in response.headers[values: .setCookie] where value.hasPrefix("__Host-gatehouse-console=") {
            let v = value.dropFirst("__Host-gatehouse-console=".count).prefix { $0 != ";" }
            return v.isEmpty ? nil : String(v)
        }
        return nil
    }

    /// The first form token of a page.
    static func csrf(_ html: String) -> String? {
        guard let r = html.range(of: "name=\"csrf\" value=\"") else { return nil }
        return String(html[r.upperBound...].prefix { $0 != "\"" })
    }

    /// Signs in; returns the browser with its cookie.
    static func signIn(
        _ client: some TestClientProtocol, _ name: String, _ password: String = ConsoleWorld.password
    ) async throws -> Browser {
        let response = try await client.execute(
            uri: "/console/sign-in", method: .post, headers: formType, body: body([("name", name), ("password", password)]))
        #expect(response.status == .seeOther)
        return Browser(cookie: try #require(sessionToken(response)))
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }
}

/// Serialized: sign-ins share the process's password-check queue (`PasswordChecks.shared`, eight
/// waiting at most), which tests run side by side would overflow (503 `gateway_busy`, as it should).
@Suite(.serialized) struct ConsoleTests {
    static let csp =
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    /// What every console answer carries.
    static func expectSecurityHeaders(_ r: TestResponse, _ what: String = "") {
        #expect(r.headers[.contentSecurityPolicy] == csp, "CSP on \(what)")
        #expect(r.headers[.xContentTypeOptions] == "nosniff", "nosniff on \(what)")
        #expect(r.headers[HTTPField.Name("Referrer-Policy")!] == "same-origin", "Referrer-Policy on \(what)")
    }

    /// No inline script, style or event handler: the CSP would block them, and a page that needs
    /// one is broken.
    static func expectNoInlineCode(_ html: String, _ what: String) {
        #expect(!html.contains(" style="), "inline style on \(what)")
        #expect(html.range(of: #"<script(?![^>]*\bsrc=)"#, options: .regularExpression) == nil, "inline script on \(what)")
        #expect(html.range(of: #"\son[a-z]+\s*="#, options: .regularExpression) == nil, "event handler attribute on \(what)")
    }

    @Test func aPageWithoutASessionIsAnExplained401() async throws {
        let w = try ConsoleWorld()
        try await w.app().test(.router) { client in
            let r = try await client.execute(uri: "/console/overview?period=1h", method: .get)
            #expect(r.status == .unauthorized)
            Self.expectSecurityHeaders(r, "the 401 page")
            #expect(r.headers[.cacheControl] == "no-store")
            #expect(r.headers[.contentType] == "text/html; charset=utf-8")
            let html = r.text
            #expect(html.contains("id=\"refusal-reason\">console_session_required<"))
            #expect(html.contains("id=\"refusal-check\">console_session<"))
            let id = try #require(r.headers[HTTPField.Name("X-Request-Id")!])
            #expect(html.contains("id=\"refusal-request-id\">\(id)<"))
            // The page offers sign-in, returning here.
            #expect(html.contains("href=\"/console/sign-in?next=/console/overview%3Fperiod%3D1h\""))
            Self.expectNoInlineCode(html, "the 401 page")
        }
    }

    @Test func signInSetsAHostOnlySecureSessionCookieAndOpensTheNextPage() async throws {
        let w = try ConsoleWorld()
        try await w.app().test(.router) { client in
            let r = try await client.execute(
                uri: "/console/sign-in", method: .post, headers: Browser.formType,
                body: Browser.body([("name", "root"), ("password", ConsoleWorld.password), ("next", "/console/overview?period=7d")]))
            #expect(r.status == .seeOther)
            #expect(r.headers[.location] == "/console/overview?period=7d")
            let cookie = try #require(r.headers[values: .setCookie].first { $0.hasPrefix("__Host-gatehouse-console=ghs_") })
            let attributes = Set(cookie.split(separator: ";").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) })
            #expect(attributes == ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"])
            let browser = Browser(cookie: Browser.sessionToken(r))
            let page = try await client.execute(uri: "/console/overview?period=7d", method: .get, headers: browser.headers)
            #expect(page.status == .ok)
            #expect(page.text.contains("id=\"signed-in-user\">root (owner)<"))
            // A next that leaves the console is not followed.
            for next in ["https://evil.example/", "//evil.example/console/", "/console/\\evil", "/admin/v1/whoami"] {
                let again = try await client.execute(
                    uri: "/console/sign-in", method: .post, headers: Browser.formType,
                    body: Browser.body([("name", "root"), ("password", ConsoleWorld.password), ("next", next)]))
                #expect(again.headers[.location] == "/console/overview", "next \(next): \(again.status) \(again.text.prefix(2000))")
            }
        }
    }

    @Test func aWrongPasswordAndAnUnknownNameGetTheSameAnswer() async throws {
        let w = try ConsoleWorld()
        try await w.app().test(.router) { client in
            var pages: [String] = []
            for (name, password) in [("root", "wrong-password"), ("nobody", "wrong-password")] {
                let r = try await client.execute(
                    uri: "/console/sign-in", method: .post, headers: Browser.formType,
                    body: Browser.body([("name", name), ("password", password)]))
                #expect(r.status == .unauthorized)
                #expect(Browser.sessionToken(r) == nil)
                let html = r.text
                #expect(html.contains("id=\"refusal-reason\">console_sign_in_failed<"))
                let id = try #require(r.headers[HTTPField.Name("X-Request-Id")!])
                pages.append(html.replacingOccurrences(of: id, with: "ID").replacingOccurrences(of: name, with: "NAME"))
            }
            #expect(pages[0] == pages[1])
        }
    }

    @Test func signInIsRateLimitedPerNameAndTheRefusalSaysWhenToRetry() async throws {
        let w = try ConsoleWorld()
        try await w.app().test(.router) { client in
            for _ in 0..<5 {
                let r = try await client.execute(
                    uri: "/console/sign-in", method: .post, headers: Browser.formType,
                    body: Browser.body([("name", "root"), ("password", "guess")]))
                #expect(r.status == .unauthorized)
            }
            // The sixth attempt within the minute is refused before the password is checked, even
            // the right one, and whatever the case of the name.
            let r = try await client.execute(
                uri: "/console/sign-in", method: .post, headers: Browser.formType,
                body: Browser.body([("name", "ROOT"), ("password", ConsoleWorld.password)]))
            #expect(r.status == .tooManyRequests)
            #expect(r.headers[.retryAfter] != nil)
            #expect(Browser.sessionToken(r) == nil)
            #expect(r.text.contains("id=\"refusal-reason\">rate_limited<"))
            #expect(r.text.contains("id=\"refusal-check\">sign_in_per_name_and_address<"))
            Self.expectSecurityHeaders(r, "the 429 page")
            // Another name from the same address is counted apart (up to the address's limit).
            _ = try await Browser.signIn(client, "vera")
            // A minute later the name may try again.
            w.clock.advance(61)
            _ = try await Browser.signIn(client, "root")
        }
    }

    /// A stranger spending a name's attempts from one address does not lock its owner out from
    /// another; a guessing spread over many addresses meets the per-name ceiling.
    @Test func aNameIsCountedPerAddressUnderAHigherCeiling() throws {
        let limiter = SignInLimiter(perName: 2, perAddress: 100, perNameAllAddresses: 4)
        func refusal(_ address: String) -> WebRefusal? {
            do {
                try limiter.attempt(name: "root", address: address, now: 1000)
                return nil
            } catch { return error as? WebRefusal }
        }
        #expect(refusal("192.0.2.1") == nil && refusal("192.0.2.1") == nil)
        #expect(refusal("192.0.2.1")?.check == "sign_in_per_name_and_address")
        #expect(refusal("192.0.2.1")?.denial.code == .rateLimited)
        // The owner, elsewhere, is not refused.
        #expect(refusal("198.51.100.7") == nil)
        #expect(refusal("203.0.113.9") == nil)
        #expect(refusal("203.0.113.10")?.check == "sign_in_per_name")
        // A developer of the same name is counted apart.
        #expect(throws: Never.self) { try limiter.attempt(name: "root", address: "203.0.113.11", scope: "developer", now: 1000) }
    }

    /// A name longer than any account's is refused before it is counted (the counters' keys stay small).
    @Test func aNameTooLongIsRefusedUncounted() throws {
        let limiter = SignInLimiter(perName: 1, perAddress: 1)
        for _ in 0..<3 {
            #expect(throws: WebRefusal.self) {
                try limiter.attempt(name: String(repeating: "x", count: 129), address: "192.0.2.1", now: 1000)
            }
        }
        try limiter.attempt(name: "root", address: "192.0.2.1", now: 1000)
    }

    @Test func signInIsRateLimitedPerAddress() async throws {
        let w = try ConsoleWorld()
        let clock = w.clock
        try await w.app(ConsoleOptions(signInPerName: 100, signInPerAddress: 3, now: { clock.now })).test(.router) { client in
            for i in 0..<3 {
                let r = try await client.execute(
                    uri: "/console/sign-in", method: .post, headers: Browser.formType,
                    body: Browser.body([("name", "user\(i)"), ("password", "guess")]))
                #expect(r.status == .unauthorized)
            }
            let r = try await client.execute(
                uri: "/console/sign-in", method: .post, headers: Browser.formType,
                body: Browser.body([("name", "root"), ("password", ConsoleWorld.password)]))
            #expect(r.status == .tooManyRequests)
            #expect(r.text.contains("id=\"refusal-check\">sign_in_per_address<"))
        }
    }

    /// Behind a TLS proxy listed in `trusted_proxies`, sign-ins are counted per client its
    /// X-Forwarded-For names, not all as the proxy's; from anyone else the header is ignored.
    @Test func signInCountsTheClientBehindATrustedProxy() async throws {
        let w = try ConsoleWorld()
        let clock = w.clock
        func attempts(_ trusted: [CIDRBlock], forwardedFor: [String]) async throws -> [HTTPResponse.Status] {
            let options = ConsoleOptions(signInPerName: 100, signInPerAddress: 3, trustedProxies: trusted, now: { clock.now })
            return try await w.app(options).test(.live) { client in
                var statuses: [HTTPResponse.Status] = []
                for (i, hop) in forwardedFor.enumerated() {
                    var headers = Browser.formType
                    headers[HTTPField.Name("X-Forwarded-For")!] = hop
                    let r = try await client.execute(
                        uri: "/console/sign-in", method: .post, headers: headers,
                        body: Browser.body([("name", "user\(i)"), ("password", "guess")]))
                    statuses.append(r.status)
                }
                return statuses
            }
        }
        let proxy = [CIDRBlock(network: try #require(IPAddress("127.0.0.1")), prefix: 32)]
        let four = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"]
        #expect(try await attempts(proxy, forwardedFor: four) == Array(repeating: .unauthorized, count: 4))
        #expect(try await attempts(proxy, forwardedFor: Array(repeating: "198.51.100.9", count: 4)).last == .tooManyRequests)
        #expect(
            try await attempts([], forwardedFor: four.map { $0.replacingOccurrences(of: "100.", with: "101.") }).last == .tooManyRequests)
    }

    @Test func aCrossSitePostIsRefusedByItsOrigin() async throws {
        let w = try ConsoleWorld()
        try await w.app().test(.router) { client in
            let browser = try await Browser.signIn(client, "root")
            let page = try await client.execute(uri: "/console/overview", method: .get, headers: browser.headers)
            let token = try #require(Browser.csrf(page.text))
            // A page of another site posts the sign-out form with the victim's cookie (as a browser
            // without SameSite would) and even the right token: its Origin gives it away.
            for header in [("Origin", "https://evil.example"), ("Sec-Fetch-Site", "cross-site")] {
                let r = try await client.execute(
                    uri: "/console/sign-out", method: .post,
                    headers: browser.form([.contentType: "application/x-www-form-urlencoded", HTTPField.Name(header.0)!: header.1]),
                    body: Browser.body([("csrf", token)]))
                #expect(r.status == .forbidden, "\(header)")
                #expect(r.text.contains("id=\"refusal-reason\">csrf_origin_mismatch<"))
                Self.expectSecurityHeaders(r, "the 403 page")
            }
            // Sign-in too (login CSRF).
            let r = try await client.execute(
                uri: "/console/sign-in", method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded", .origin: "https://evil.example"],
                body: Browser.body([("name", "root"), ("password", ConsoleWorld.password)]))
            #expect(r.status == .forbidden)
            #expect(Browser.sessionToken(r) == nil)
            // The session is still there.
            let after = try await client.execute(uri: "/console/overview", method: .get, headers: browser.headers)
            #expect(after.status == .ok)
        }
    }

    @Test func aFormWithoutThisSessionsTokenIsRefused() async throws {
        let w = try ConsoleWorld()
        try await w.app().test(.router) { client in
            let browser = try await Browser.signIn(client, "root")
            let other = try await Browser.signIn(client, "vera")
            let otherPage = try await client.execute(uri: "/console/overview", method: .get, headers: other.headers)
            let otherToken = try #require(Browser.csrf(otherPage.text))
            for fields in [[(String, String)](), [("csrf", otherToken)], [("csrf", "nonce.0123")]] {
                let r = try await client.execute(
                    uri: "/console/sign-out", method: .post, headers: browser.form(), body: Browser.body(fields))
                #expect(r.status == .forbidden)
                #expect(r.text.contains("id=\"refusal-reason\">console_csrf_failed<"))
            }
            let after = try await client.execute(uri: "/console/overview", method: .get, headers: browser.headers)
            #expect(after.status == .ok)
        }
    }

    @Test func signOutEndsTheSessionAndSignInRotatesIt() async throws {
        let w = try ConsoleWorld()
        try await w.app().test(.router) { client in
            let first = try await Browser.signIn(client, "root")
            // Signing in again from the same browser replaces its session.
            let again = try await client.execute(
                uri: "/console/sign-in", method: .post, headers: first.form(),
                body: Browser.body([("name", "root"), ("password", ConsoleWorld.password)]))
            let second = Browser(cookie: try #require(Browser.sessionToken(again)))
            #expect(second.cookie != first.cookie)
            let old = try await client.execute(uri: "/console/overview", method: .get, headers: first.headers)
            #expect(old.status == .unauthorized)
            #expect(old.text.contains("console_session_required"))

            let page = try await client.execute(uri: "/console/overview", method: .get, headers: second.headers)
            let token = try #require(Browser.csrf(page.text))
            let out = try await client.execute(
                uri: "/console/sign-out", method: .post, headers: second.form(), body: Browser.body([("csrf", token)]))
            #expect(out.status == .seeOther)
            #expect(out.headers[values: .setCookie].contains { $0.hasPrefix("__Host-gatehouse-console=;") && $0.contains("Max-Age=0") })
            let gone = try await client.execute(uri: "/console/overview", method: .get, headers: second.headers)
            #expect(gone.status == .unauthorized)
        }
    }

    /// "Sign out everywhere" ends every session of the signed-in admin (a browser left signed in
    /// elsewhere); an admin ends another user's sessions through the API; sign-ins, sign-outs and
    /// both actions are in the audit log.
    @Test func signingOutEverywhereEndsEverySessionAndTheAuditLogShowsIt() async throws {
        let w = try ConsoleWorld()
        try await w.app().test(.router) { client in
            let laptop = try await Browser.signIn(client, "ann")
            let phone = try await Browser.signIn(client, "ann")
            let page = try await client.execute(uri: "/console/overview", method: .get, headers: phone.headers)
            #expect(page.text.contains("formaction=\"/console/sign-out-everywhere\""))
            let token = try #require(Browser.csrf(page.text))
            let out = try await client.execute(
                uri: "/console/sign-out-everywhere", method: .post, headers: phone.form(), body: Browser.body([("csrf", token)]))
            #expect(out.status == .seeOther)
            for browser in [laptop, phone] {
                let r = try await client.execute(uri: "/console/overview", method: .get, headers: browser.headers)
                #expect(r.status == .unauthorized)
                #expect(r.text.contains("id=\"refusal-reason\">console_session_required<"))
            }

            // An owner ends vera's sessions through the API (a Bearer token: no Basic needed).
            let vera = try await Browser.signIn(client, "vera")
            let rootToken = try w.control.createAdminToken(.cli, user: "root").token
            let ended = try await client.execute(
                uri: "/admin/v1/admin-users/vera/end-sessions", method: .post, headers: [.authorization: "Bearer \(rootToken)"])
            #expect(ended.status == .ok)
            #expect(try await client.execute(uri: "/console/overview", method: .get, headers: vera.headers).status == .unauthorized)
            // An operator may end only its own.
            let annToken = try w.control.createAdminToken(.cli, user: "ann").token
            let refused = try await client.execute(
                uri: "/admin/v1/admin-users/vera/end-sessions", method: .post, headers: [.authorization: "Bearer \(annToken)"])
            #expect(refused.status == .forbidden)
        }
        let actions = try w.control.auditEntries(.cli, action: nil, objectID: nil, since: nil, page: PageRequest(limit: 100)).items.map {
            "\($0.actor) \($0.action)"
        }
        #expect(actions.filter { $0 == "ann console.sign_in" }.count == 2)
        #expect(actions.contains("ann admin_user.end_sessions"))
        #expect(actions.contains("root admin_user.end_sessions"))
        #expect(actions.contains("vera console.sign_in"))
    }

    @Test func anIdleSessionEndsWithAnExplanation() async throws {
        let w = try ConsoleWorld()
        try await w.app().test(.router) { client in
            let browser = try await Browser.signIn(client, "root")
            w.clock.advance(31 * 60)
            let r = try await client.execute(uri: "/console/overview", method: .get, headers: browser.headers)
            #expect(r.status == .unauthorized)
            #expect(r.text.contains("id=\"refusal-reason\">console_session_expired<"))
            #expect(r.text.contains("without use"))
        }
    }

    @Test func staticAssetsAreServedFromMemoryWithLongCaching() async throws {
        let w = try ConsoleWorld()
        try await w.app().test(.router) { client in
            for asset in StaticAssets.all {
                #expect(asset.path.range(of: #"^/console/static/console-[0-9a-f]{12}\.(css|js)$"#, options: .regularExpression) != nil)
                let r = try await client.execute(uri: asset.path, method: .get)
                #expect(r.status == .ok)
                #expect(r.headers[.cacheControl] == "public, max-age=31536000, immutable")
                #expect(r.headers[.xContentTypeOptions] == "nosniff")
                #expect(Array(r.body.readableBytesView) == asset.bytes)
                let etag = try #require(r.headers[.eTag])
                let again = try await client.execute(uri: asset.path, method: .get, headers: [.ifNoneMatch: etag])
                #expect(again.status == .notModified)
            }
            let page = try await client.execute(uri: "/console/sign-in", method: .get)
            #expect(page.text.contains("href=\"\(StaticAssets.css.path)\""))
            #expect(page.text.contains("src=\"\(StaticAssets.js.path)\""))
            Self.expectSecurityHeaders(page, "sign-in")
            Self.expectNoInlineCode(page.text, "sign-in")
        }
    }

    /// A route named `<script>` (routes come from the configuration, reasons and names from
    /// callers' traffic) is text on the page and in the charts.
    @Test func aScriptInARouteNameIsEscapedInPagesAndCharts() async throws {
        let w = try ConsoleWorld()
        let evil = "<script>alert(1)</script>"
        let t = w.clock.now - 120
        let trace = DecisionTrace(entries: [
            TraceEntry(
                check: "key", type: "api_key", mode: .enforce, outcome: .deny, note: "denied", reason: .missingCredentials, micros: 1)
        ])
        _ = try w.store.insertCalls([
            CallRecord(
                requestID: "evil-1", time: t, route: evil, consumer: nil, keyID: nil, client: "10.0.0.1", method: "GET", path: "/x",
                host: nil, status: 401, upstreamMillis: nil, totalMillis: 1, decidingCheck: "key", reason: "missing_credentials",
                detail: nil, hint: nil, required: [], presented: [], trace: trace, upstreamTarget: nil, applicationID: nil)
        ])
        try await w.app().test(.router) { client in
            let browser = try await Browser.signIn(client, "root")
            let r = try await client.execute(uri: "/console/overview?period=1h", method: .get, headers: browser.headers)
            #expect(r.status == .ok)
            let html = r.text
            #expect(!html.contains(evil))
            #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            Self.expectNoInlineCode(html, "overview")
            // The charts are data: images; their SVG escapes the label too.
            let uris = html.components(separatedBy: "src=\"data:image/svg+xml;base64,").dropFirst().map { String($0.prefix { $0 != "\"" }) }
            #expect(uris.count == 4)
            let svgs = uris.compactMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
            #expect(svgs.count == 4)
            #expect(svgs.contains { $0.contains("&lt;script&gt;") })
            #expect(!svgs.contains { $0.contains("<script") || $0.contains(" style=") })
        }
    }

    @Test func theConsoleIsBoundedInTheRequestsItHandlesAtOnce() async throws {
        let w = try ConsoleWorld()
        try await w.app(ConsoleOptions(maxInFlight: 0)).test(.router) { client in
            let r = try await client.execute(uri: "/console/sign-in", method: .get)
            #expect(r.status == .serviceUnavailable)
            #expect(r.headers[.retryAfter] == "1")
            #expect(r.text.contains("id=\"refusal-reason\">gateway_busy<"))
            Self.expectSecurityHeaders(r, "the 503 page")
            // Every route of both groups, pages, forms and assets, signed in or with a made-up
            // session cookie (which would otherwise cost a store read): refused before any work.
            let cookie: HTTPFields = [
                .cookie: "__Host-gatehouse-console=ghs_madeup; __Host-gatehouse-portal=ghs_madeup",
                .contentType: "application/x-www-form-urlencoded",
            ]
            let routes: [(HTTPRequest.Method, String)] =
                [
                    (.post, "/console/sign-in"), (.post, "/console/sign-out"), (.post, "/console/sign-out-everywhere"),
                    (.get, "/console/overview"), (.get, "/console/calls"), (.get, "/console/applications"), (.get, "/console/keys"),
                    (.get, "/console/services"), (.get, "/console/subscriptions"), (.get, "/console/tenants"),
                    (.get, "/console/admin-users"), (.get, "/console/audit"), (.post, "/console/subscriptions/s/approve"),
                ] + StaticAssets.all.map { (.get, $0.path) }
            for (method, path) in routes {
                let r = try await client.execute(
                    uri: path, method: method, headers: cookie, body: ByteBuffer(string: "name=root&password=x"))
                #expect(r.status == .serviceUnavailable, "\(method) \(path)")
            }
        }
        // The portal's listener, the same way.
        try await w.portalApp(ConsoleOptions(maxInFlight: 0)).test(.router) { client in
            let cookie: HTTPFields = [
                .cookie: "__Host-gatehouse-portal=ghs_madeup", .contentType: "application/x-www-form-urlencoded",
            ]
            let routes: [(HTTPRequest.Method, String)] =
                [
                    (.get, "/portal/sign-in"), (.post, "/portal/sign-in"), (.post, "/portal/sign-out"), (.get, "/portal/services"),
                    (.post, "/portal/apply"), (.get, "/portal/keys"), (.post, "/portal/keys"), (.get, "/portal/usage"),
                    (.get, "/portal/explain"),
                ] + StaticAssets.all.map { (.get, "/portal/static/" + $0.file) }
            for (method, path) in routes {
                let r = try await client.execute(
                    uri: path, method: method, headers: cookie, body: ByteBuffer(string: "name=dana&password=x"))
                #expect(r.status == .serviceUnavailable, "\(method) \(path)")
            }
        }
    }

    @Test func theConsolesRootLeadsToTheOverview() async throws {
        let w = try ConsoleWorld()
        try await w.app().test(.router) { client in
            let r = try await client.execute(uri: "/console", method: .get)
            #expect(r.status == .seeOther)
            #expect(r.headers[.location] == "/console/overview")
        }
    }

    @Test func theControlPlanesRefusalsAreExplainedPages() async throws {
        let w = try ConsoleWorld()
        try await w.app().test(.router) { client in
            let browser = try await Browser.signIn(client, "vera")
            let r = try await client.execute(uri: "/console/overview?period=forever", method: .get, headers: browser.headers)
            #expect(r.status == .badRequest)
            #expect(r.text.contains("id=\"refusal-reason\">admin_invalid_request<"))
            Self.expectSecurityHeaders(r, "the 400 page")
        }
    }
}

import Foundation
import GatehouseCharts
import GatehouseControl
import GatehouseCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

extension WebSessionKind {
    /// A developer of one application, signed in to the portal; the subject is the developer's id.
    public static let developer = WebSessionKind(rawValue: "developer")
}

/// The portal listener's request context: Hummingbird's core context and the client's address
/// (sign-in limits, the audit log's source).
public struct PortalContext: RequestContext, WebRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }
}

/// A signed-in portal request: the session, and the developer it acts as (read again from the
/// store on every request, so a disabled account stops at once).
public struct PortalUser: Sendable {
    public var session: WebSession
    public var developer: DeveloperActor
}

/// The developer portal, under `/portal` on a listener of its own (`portal: { listen: … }`,
/// ``router(control:options:exposure:logger:)``): an application's developers sign
/// in with their own accounts (never admin users), browse the service catalogue, apply for
/// subscriptions, manage their application's keys, read its usage, and read why one of its
/// requests was denied.
///
/// It is built on the console's web infrastructure (`WebPages`, `WebForms`, `WebSessionStore`
/// with its own session kind `developer`, `SignInLimiter`, `WebRefusal`): the same security
/// headers, CSRF checks on every form, rate-limited sign-in and explained refusals.
public struct PortalRoutes: Sendable {
    public let control: ControlPlane
    public let sessions: WebSessionStore
    public let pages: WebPages
    public let forms: WebForms
    public let limiter: SignInLimiter
    /// Its own cookie: a browser may hold a console session and a portal session at once.
    public let cookie = WebSessionCookie(base: "gatehouse-portal")
    /// How each route shows its denials (from the running configuration): the explanation follows it.
    let exposure: @Sendable (String?) -> PortalExposure
    /// Portal requests handled at once (`ConsoleOptions.maxInFlight`); beyond, 503 `gateway_busy`.
    let maxInFlight: Int
    let logger: Logger
    let now: @Sendable () -> Double
    /// The configuration's `trusted_proxies` (client addresses behind a TLS proxy).
    let trustedProxies: [CIDRBlock]

    /// The console's templates and the portal's, parsed once.
    public static let portalPages: WebPages = {
        do { return try WebPages(extra: PortalTemplates.all, signInPath: "/portal/sign-in", assetBase: "/portal/static/") } catch {
            fatalError("a portal template does not parse: \(error)")
        }
    }()

    public init(
        control: ControlPlane, options: ConsoleOptions = ConsoleOptions(),
        exposure: @escaping @Sendable (String?) -> PortalExposure = { _ in .minimal }, logger: Logger = Logger(label: "gatehouse.portal")
    ) {
        self.control = control
        sessions = WebSessionStore(database: control.db, lifetime: options.lifetime, now: options.now)
        now = options.now
        pages = Self.portalPages
        forms = WebForms(trustedOrigins: options.trustedOrigins)
        trustedProxies = options.trustedProxies
        limiter = SignInLimiter(perName: options.signInPerName, perAddress: options.signInPerAddress)
        self.exposure = exposure
        maxInFlight = options.maxInFlight
        self.logger = logger
    }

    /// Adds the portal's routes to `router`.
    public static func register<Context: WebRequestContext>(
        on router: Router<Context>, control: ControlPlane, options: ConsoleOptions = ConsoleOptions(),
        exposure: @escaping @Sendable (String?) -> PortalExposure = { _ in .minimal }, logger: Logger = Logger(label: "gatehouse.portal")
    ) {
        PortalRoutes(control: control, options: options, exposure: exposure, logger: logger).add(to: router)
    }

    /// The portal listener's whole router: `/portal/…` and its assets under `/portal/static/`;
    /// `/` leads to `/portal/`, and every other path is 404 (no `/status`, `/metrics`, admin API
    /// or console: the operator's listener stays private).
    public static func router(
        control: ControlPlane, options: ConsoleOptions = ConsoleOptions(),
        exposure: @escaping @Sendable (String?) -> PortalExposure = { _ in .minimal }, logger: Logger = Logger(label: "gatehouse.portal")
    ) -> Router<PortalContext> {
        let router = Router(context: PortalContext.self)
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/portal/"]) }
        register(on: router, control: control, options: options, exposure: exposure, logger: logger)
        return router
    }

    static let navigation: [(label: String, path: String)] = [
        ("Services", "/portal/services"), ("Subscriptions", "/portal/subscriptions"), ("Keys", "/portal/keys"),
        ("Usage", "/portal/usage"), ("Why was I denied?", "/portal/explain"),
    ]

    func frame(_ title: String, _ user: PortalUser, current: String) -> WebPages.Frame {
        WebPages.Frame(
            title: title, navigation: Self.navigation.map { ($0.label, $0.path, $0.path == current) },
            user: "\(user.developer.name) (developer of \(user.developer.application))", csrf: user.session.csrfToken(),
            signOut: "/portal/sign-out")
    }

    func add<Context: WebRequestContext>(to router: Router<Context>) {
        let portal = router.group("portal")
            .add(middleware: WebSecurityMiddleware<Context>())
            .add(middleware: WebRefusalMiddleware<Context>(pages: pages, logger: logger))
            // The console's bound, counted apart: a busy console does not lock developers out.
            .add(middleware: WebInFlightLimit<Context>(limit: maxInFlight, name: "portal"))
        let routes = self

        // In the group, so that the assets carry `nosniff` too.
        for asset in StaticAssets.all {
            portal.get(RouterPath("static/" + asset.file)) { request, _ in asset.response(request) }
        }
        portal.get { _, _ in Response(status: .seeOther, headers: [.location: "/portal/services"]) }
        portal.get("sign-in") { request, _ in
            routes.pages.page(
                "portal-sign-in", ["next": Self.safeNext(request.uri.queryParameters.get("next"))],
                frame: WebPages.Frame(title: "Developer sign-in", signOut: "/portal/sign-out"))
        }
        portal.post("sign-in") { request, context in
            try await withTaskExecutorPreference(BlockingWorkExecutor.admin) { try await routes.signIn(request, context) }
        }
        portal.post("sign-out") { request, context in
            try await withTaskExecutorPreference(BlockingWorkExecutor.admin) {
                let user = try routes.signedIn(request, context)
                _ = try await routes.forms.post(request, session: user.session, as: Empty.self)
                if let token = routes.cookie.token(request) { try routes.sessions.delete(token) }
                try routes.control.auditWebSession(
                    user.developer, "portal.sign_out", objectType: "developer", objectID: user.developer.id, tenant: user.developer.tenant)
                var response = Response(status: .seeOther, headers: [.location: "/portal/sign-in"])
                routes.cookie.clear(on: &response)
                return response
            }
        }

        get(portal, "services") { _, _, user in
            let services = try routes.control.portalServices(user.developer)
            return routes.pages.page(
                "portal-services",
                [
                    "services": services.map { s -> [String: Any] in
                        var v: [String: Any] = [
                            "name": s.name, "approval": s.approval,
                            "can_apply": s.state.map { !["pending", "approved"].contains($0) } ?? true,
                        ]
                        if let state = s.state { v["state"] = state }
                        return v
                    }
                ], frame: routes.frame("Services", user, current: "/portal/services"))
        }
        post(portal, "apply", ApplyForm.self) { _, _, user, form in
            _ = try routes.control.portalApply(user.developer, service: form.service, reason: form.reason.flatMap { $0.isEmpty ? nil : $0 })
            return "/portal/subscriptions"
        }
        get(portal, "subscriptions") { _, _, user in
            let subs = try routes.control.portalSubscriptions(user.developer)
            return routes.pages.page(
                "portal-subscriptions",
                [
                    "subscriptions": subs.map { s -> [String: Any] in
                        var v: [String: Any] = [
                            "id": s.id, "service": s.service, "state": s.state, "applied": TimeText.iso(s.appliedAt),
                            "changed": TimeText.iso(s.changedAt),
                        ]
                        if let by = s.decidedBy { v["by"] = by }
                        if let r = s.reason { v["reason"] = r }
                        if let o = s.opinion { v["opinion"] = o }
                        if let e = s.expiresAt { v["expires"] = TimeText.iso(e) }
                        return v
                    }
                ], frame: routes.frame("Subscriptions", user, current: "/portal/subscriptions"))
        }
        get(portal, "keys") { _, _, user in try routes.keysPage(user, created: nil) }
        // The new key is shown on the answer to the form's post, once; it is not stored.
        portal.post("keys") { request, context in
            try await withTaskExecutorPreference(BlockingWorkExecutor.admin) {
                try await routes.portalRefusals {
                    let user = try routes.signedIn(request, context)
                    _ = try await routes.forms.post(request, session: user.session, as: Empty.self)
                    let created = try routes.control.portalCreateKey(user.developer)
                    var response = try routes.keysPage(user, created: created)
                    response.status = .created
                    return response
                }
            }
        }
        post(portal, "keys/:id/revoke", Empty.self) { _, context, user, _ in
            _ = try routes.control.portalRevokeKey(user.developer, id: try context.parameters.require("id"))
            return "/portal/keys"
        }
        get(portal, "usage") { request, _, user in try routes.usage(request, user) }
        get(portal, "explain") { request, _, user in try routes.explain(request, user) }
    }

    struct Empty: Decodable {}
    struct ApplyForm: Decodable {
        var service: String
        var reason: String?
    }

    /// The control plane's refusals of a developer as the portal's (`check: portal`); a session
    /// whose account was disabled or deleted also loses its cookie.
    func portalRefusals(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let e as ControlError {
            throw WebRefusal(e.denial, check: "portal", signIn: e.code == .portalUnauthenticated ? "/portal/services" : nil)
        }
    }

    /// A signed-in page, run off the cooperative pool (the control plane blocks on the store).
    func get<Context: WebRequestContext>(
        _ group: RouterGroup<Context>, _ path: RouterPath,
        _ handler: @escaping @Sendable (Request, Context, PortalUser) async throws -> Response
    ) {
        let routes = self
        group.get(path) { request, context in
            try await withTaskExecutorPreference(BlockingWorkExecutor.admin) {
                try await routes.portalRefusals {
                    let user = try routes.signedIn(request, context)
                    return try await handler(request, context, user)
                }
            }
        }
    }

    /// A signed-in form post, checked for its origin and CSRF token; answered with a redirect
    /// (303) to the page the handler names.
    func post<Context: WebRequestContext, Form: Decodable>(
        _ group: RouterGroup<Context>, _ path: RouterPath, _ form: Form.Type,
        _ handler: @escaping @Sendable (Request, Context, PortalUser, Form) async throws -> String
    ) {
        let routes = self
        group.post(path) { request, context in
            try await withTaskExecutorPreference(BlockingWorkExecutor.admin) {
                try await routes.portalRefusals {
                    let user = try routes.signedIn(request, context)
                    let fields = try await routes.forms.post(request, session: user.session, as: Form.self)
                    let location = try await handler(request, context, user, fields)
                    return Response(status: .seeOther, headers: [.location: location])
                }
            }
        }
    }

    // MARK: Sessions

    /// The signed-in developer of `request`, or the refusal: `console_session_required` (no
    /// cookie, an unknown session), `console_session_expired`, or `portal_unauthenticated` (the
    /// account was disabled or deleted since; the session is ended).
    func signedIn<Context: WebRequestContext>(_ request: Request, _ context: Context) throws -> PortalUser {
        let gate = WebSessionGate(
            sessions: sessions, cookie: cookie, kind: .developer, interface: "portal", unknownNoun: "portal session",
            check: "portal_session", hintSignIn: "Sign in with your developer account.", hintAgain: "Sign in again.",
            defaultReturn: "/portal/services")
        let (token, session) = try gate.live(request)
        do {
            return PortalUser(session: session, developer: try control.developerActor(id: session.subject, source: context.remoteAddress))
        } catch let e as ControlError where e.code == .portalUnauthenticated {
            try sessions.delete(token)
            throw WebRefusal(e.denial, check: "portal_session", signIn: gate.returnPath(request))
        }
    }

    struct SignInForm: Decodable {
        var name: String
        var password: String
        var next: String?
    }

    /// Origin check, the attempt counted (per name and per address, like the console's), the
    /// password checked one at a time off the event loop, then a new session and a redirect.
    func signIn<Context: WebRequestContext>(_ request: Request, _ context: Context) async throws -> Response {
        try forms.checkOrigin(request)
        let form = try await forms.fields(request, as: SignInForm.self)
        let source = SignInLimiter.clientAddress(request, peer: context.remoteAddress, trusted: trustedProxies)
        try limiter.attempt(name: form.name, address: source, scope: "developer", path: "/portal/sign-in", now: now())
        let control = self.control
        let developer: DeveloperActor
        do {
            developer = try await PasswordChecks.portalSignIn.run {
                try control.authenticateDeveloper(name: form.name, password: form.password, source: source)
            }
        } catch let e as ControlError where e.code == .gatewayBusy {
            throw WebRefusal(ConsoleRoutes.signInBusy(e.denial), check: "sign_in", signIn: Self.safeNext(form.next))
        } catch let e as ControlError where e.code == .portalUnauthenticated {
            logger.notice(
                "portal sign-in failed", metadata: ["name": "\(DisplayText.untrusted(form.name, limit: 64))", "source": "\(source)"])
            throw WebRefusal(
                Denial(
                    code: .consoleSignInFailed, detail: e.denial.detail, required: ["a developer account's name and password"],
                    presented: ["developer name \(DisplayText.untrusted(form.name, limit: 64))"],
                    hint: "Check the name and password; an administrator of your application's tenant manages developer accounts."),
                check: "sign_in", signIn: Self.safeNext(form.next))
        }
        let (token, _) = try sessions.create(kind: .developer, subject: developer.id, replacing: cookie.token(request))
        try control.auditWebSession(developer, "portal.sign_in", objectType: "developer", objectID: developer.id, tenant: developer.tenant)
        logger.info("portal sign-in", metadata: ["developer": "\(developer.name)", "source": "\(source)"])
        var response = Response(status: .seeOther, headers: [.location: Self.safeNext(form.next)])
        cookie.set(token, on: &response)
        return response
    }

    /// Where to go after sign-in: a portal path, never another site.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/portal/"), !next.contains("//"), !next.contains("\\"),
            !next.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else { return "/portal/services" }
        return next
    }

    // MARK: Pages

    func keysPage(_ user: PortalUser, created: CreatedKey?) throws -> Response {
        let keys = try control.portalKeys(user.developer)
        var values: [String: Any] = [
            "keys": keys.reversed().map { k -> [String: Any] in
                var v: [String: Any] = ["id": k.id, "created": TimeText.iso(k.createdAt), "active": k.revokedAt == nil]
                if let r = k.revokedAt { v["revoked"] = TimeText.iso(r) }
                if let e = k.expiresAt { v["expires"] = TimeText.iso(e) }
                return v
            }
        ]
        if let created { values["created_key"] = created.key; values["created_id"] = created.info.id }
        return pages.page("portal-keys", values, frame: frame("Keys", user, current: "/portal/keys"))
    }

    static let periods: [(label: String, key: String, seconds: Double, bucket: Double)] = [
        ("Last 24 hours", "24h", 86400, 3600), ("Last 7 days", "7d", 7 * 86400, 6 * 3600),
    ]

    func usage(_ request: Request, _ user: PortalUser) throws -> Response {
        let key = request.uri.queryParameters.get("period") ?? "24h"
        guard let period = Self.periods.first(where: { $0.key == key }) else {
            throw ControlError.invalid("period \"\(DisplayText.untrusted(key, limit: 16))\" is not one of 24h, 7d", field: "period")
        }
        let until = now()
        let o = try control.portalUsage(user.developer, since: until - period.seconds, until: until, bucket: period.bucket)
        let reasons = o.deniedByReason.prefix(8).map(\.key)
        let chart = TimeSeriesChart(
            title: "Requests and denials", times: o.series.map(\.start),
            series: [
                .init(name: "requests", values: o.series.map { Double($0.requests) }),
                .init(name: "denied", values: o.series.map { Double($0.denied) }),
            ])
        let byReason = TimeSeriesChart(
            title: "Denials by reason", times: o.series.map(\.start),
            series: reasons.map { r in .init(name: r, values: o.series.map { Double($0.deniedByReason[r] ?? 0) }) }, style: .stackedArea)
        let values: [String: Any] = [
            "periods": Self.periods.map {
                ["label": $0.label, "href": "/portal/usage?period=\($0.key)", "current": $0.key == period.key] as [String: Any]
            },
            "since": TimeText.iso(o.since), "until": TimeText.iso(o.until), "requests": o.requests, "allowed": o.allowed,
            "denied": o.denied,
            "charts": [
                ["title": chart.title, "src": ConsoleRoutes.dataURI(chart.svg())],
                ["title": byReason.title, "src": ConsoleRoutes.dataURI(byReason.svg())],
            ],
            "reasons": o.deniedByReason.map { ["reason": $0.key, "denied": $0.denied] as [String: Any] },
        ]
        return pages.page("portal-usage", values, frame: frame("Usage", user, current: "/portal/usage"))
    }

    func explain(_ request: Request, _ user: PortalUser) throws -> Response {
        let frame = frame("Why was I denied?", user, current: "/portal/explain")
        guard let id = request.uri.queryParameters.get("request_id").map({ $0.trimmingCharacters(in: .whitespaces) }), !id.isEmpty else {
            return pages.page("portal-explain", [:], frame: frame)
        }
        let e = try control.portalExplain(user.developer, requestID: String(id), exposure: exposure)
        var values: [String: Any] = [
            "request_id": e.requestID, "explained": true, "verdict": e.verdict, "status": e.status, "time": TimeText.iso(e.time),
            "method": e.method, "path": e.path, "application": e.application, "total": SVGChart.number(e.totalMillis, decimals: 2),
            "steps": e.steps.enumerated().map { i, s -> [String: Any] in
                [
                    "n": i + 1, "check": s.check, "type": s.type, "outcome": s.outcome,
                    "deny": s.outcome == "deny",
                ]
            },
            "has_steps": !e.steps.isEmpty, "required": e.required, "presented": e.presented, "has_required": !e.required.isEmpty,
            "has_presented": !e.presented.isEmpty,
            "withheld": e.withheld, "denied": e.reason != nil, "text": e.text,
        ]
        if let v = e.host { values["host"] = v }
        if let v = e.reason { values["reason"] = v }
        if let v = e.reasonTitle { values["reason_title"] = v }
        if let v = e.reasonMeaning { values["meaning"] = v }
        if let v = e.reasonFix { values["fix"] = v }
        if let v = e.route { values["route"] = v }
        if let v = e.keyID { values["key_id"] = v }
        if let v = e.decidingCheck { values["deciding"] = v }
        if let v = e.detail { values["detail"] = v }
        if let v = e.hint { values["hint"] = v }
        if let c = e.citation {
            var cv: [String: Any] = ["id": c.id, "what": c.what, "by": c.by, "time": TimeText.iso(c.time)]
            if let o = c.opinion { cv["opinion"] = o }
            values["citation"] = cv
        }
        return pages.page("portal-explain", values, frame: frame)
    }
}

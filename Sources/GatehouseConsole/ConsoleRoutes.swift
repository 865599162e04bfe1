import Foundation
import GatehouseChecks
import GatehouseControl
import GatehouseCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// How the console behaves; the defaults suit a gateway's admin listener.
public struct ConsoleOptions: Sendable {
    public var lifetime: WebSessionLifetime
    /// Origins besides the request's own whose forms may post (e.g. `https://gatehouse.example`
    /// when a TLS-terminating proxy forwards to the admin listener over plain HTTP).
    public var trustedOrigins: [OriginPattern]
    /// Sign-in attempts a minute per user name and per client address.
    public var signInPerName: Int
    public var signInPerAddress: Int
    /// The clock (injected by tests; the wall clock by default).
    public var now: @Sendable () -> Double
    /// Most console requests handled at once; beyond, 503 `gateway_busy`.
    public var maxInFlight: Int
    /// The configuration's `trusted_proxies`: a TLS-terminating proxy in front of the admin or
    /// portal listener, whose X-Forwarded-For names the client for sign-in counts and the audit log.
    public var trustedProxies: [CIDRBlock]

    public init(
        lifetime: WebSessionLifetime = WebSessionLifetime(), trustedOrigins: [OriginPattern] = [], signInPerName: Int = 5,
        signInPerAddress: Int = 20, maxInFlight: Int = 32, trustedProxies: [CIDRBlock] = [],
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.trustedProxies = trustedProxies
        self.lifetime = lifetime
        self.trustedOrigins = trustedOrigins
        self.signInPerName = signInPerName
        self.signInPerAddress = signInPerAddress
        self.maxInFlight = maxInFlight
        self.now = now
    }
}

/// A signed-in console request: the session, and the admin it acts as (its role and tenant as
/// they are now), for whom the control plane authorises every read and change.
public struct ConsoleUser: Sendable {
    public var session: WebSession
    public var actor: ControlActor
}

/// The operator console on the admin listener, under `/console`: server-rendered pages over the
/// control plane for admin users signed in with their password.
///
/// `register(on:…)` is the one call that adds it to a router; everything else is here and in the
/// `Web*` files the developer portal shares.
public struct ConsoleRoutes: Sendable {
    public let control: ControlPlane
    public let sessions: WebSessionStore
    public let pages: WebPages
    public let forms: WebForms
    public let limiter: SignInLimiter
    public let cookie = WebSessionCookie(base: "gatehouse-console")
    let logger: Logger
    let now: @Sendable () -> Double
    /// The configuration's `trusted_proxies` (client addresses behind a TLS proxy).
    let trustedProxies: [CIDRBlock]
    let maxInFlight: Int

    /// The console's templates, parsed once.
    public static let consolePages: WebPages = {
        do { return try WebPages() } catch { fatalError("a console template does not parse: \(error)") }
    }()

    /// `limiter`: the sign-in counts to share (the admin API's Basic authentication counts in the
    /// same); a new one from `options` by default.
    public init(
        control: ControlPlane, options: ConsoleOptions = ConsoleOptions(), limiter: SignInLimiter? = nil,
        logger: Logger = Logger(label: "gatehouse.console")
    ) {
        self.control = control
        sessions = WebSessionStore(database: control.db, lifetime: options.lifetime, now: options.now)
        now = options.now
        maxInFlight = options.maxInFlight
        pages = Self.consolePages
        forms = WebForms(trustedOrigins: options.trustedOrigins)
        trustedProxies = options.trustedProxies
        self.limiter = limiter ?? SignInLimiter(perName: options.signInPerName, perAddress: options.signInPerAddress)
        self.logger = logger
    }

    /// Adds the console's routes to `router`.
    public static func register<Context: WebRequestContext>(
        on router: Router<Context>, control: ControlPlane, options: ConsoleOptions = ConsoleOptions(), limiter: SignInLimiter? = nil,
        logger: Logger = Logger(label: "gatehouse.console")
    ) {
        ConsoleRoutes(control: control, options: options, limiter: limiter, logger: logger).add(to: router)
    }

    /// The console's pages, in navigation order: label, path.
    static let navigation: [(label: String, path: String)] = [
        ("Overview", "/console/overview"), ("Calls", "/console/calls"), ("Applications", "/console/applications"),
        ("Keys", "/console/keys"), ("Services", "/console/services"), ("Subscriptions", "/console/subscriptions"),
        ("Tenants", "/console/tenants"), ("Admin users", "/console/admin-users"), ("Audit", "/console/audit"),
    ]

    /// The frame of a signed-in page whose navigation entry is `current`.
    func frame(_ title: String, _ user: ConsoleUser, current: String) -> WebPages.Frame {
        WebPages.Frame(
            title: title, navigation: Self.navigation.map { ($0.label, $0.path, $0.path == current) }, user: user.actor.label,
            csrf: user.session.csrfToken(), signOutEverywhere: "/console/sign-out-everywhere")
    }

    func add<Context: WebRequestContext>(to router: Router<Context>) {
        let console = router.group("console")
            .add(middleware: WebSecurityMiddleware<Context>())
            .add(middleware: WebRefusalMiddleware<Context>(pages: pages, logger: logger))
            .add(middleware: WebInFlightLimit<Context>(limit: maxInFlight))
        let routes = self

        // In the group, so that the assets carry `nosniff` too.
        for asset in StaticAssets.all {
            console.get(RouterPath(String(asset.path.dropFirst("/console/".count)))) { request, _ in asset.response(request) }
        }
        console.get { _, _ in Response(status: .seeOther, headers: [.location: "/console/overview"]) }

        console.get("sign-in") { request, _ in
            routes.pages.page(
                "sign-in", ["next": Self.safeNext(request.uri.queryParameters.get("next"))], frame: WebPages.Frame(title: "Sign in"))
        }
        console.post("sign-in") { request, context in
            try await withTaskExecutorPreference(BlockingWorkExecutor.admin) {
                try await routes.signIn(request, context)
            }
        }
        console.post("sign-out") { request, context in
            try await withTaskExecutorPreference(BlockingWorkExecutor.admin) {
                try routes.forms.checkOrigin(request)
                let user = try routes.signedIn(request, context)
                _ = try await routes.forms.post(request, session: user.session, as: Empty.self)
                if let token = routes.cookie.token(request) { try routes.sessions.delete(token) }
                try routes.control.auditWebSession(
                    user.actor, "console.sign_out", objectType: "admin_user", objectID: user.session.subject, tenant: user.actor.tenant)
                var response = Response(status: .seeOther, headers: [.location: "/console/sign-in"])
                routes.cookie.clear(on: &response)
                return response
            }
        }
        // Every session of the signed-in admin, in every browser (a lost laptop, a shared one).
        console.post("sign-out-everywhere") { request, context in
            try await withTaskExecutorPreference(BlockingWorkExecutor.admin) {
                try routes.forms.checkOrigin(request)
                let user = try routes.signedIn(request, context)
                _ = try await routes.forms.post(request, session: user.session, as: Empty.self)
                try routes.control.endAdminSessions(user.actor, user: user.session.subject)
                var response = Response(status: .seeOther, headers: [.location: "/console/sign-in"])
                routes.cookie.clear(on: &response)
                return response
            }
        }
        addPages(to: console)
    }

    struct Empty: Decodable {}

    /// A signed-in page: the handler runs with the user off the cooperative pool (the control
    /// plane blocks on the store).
    func get<Context: WebRequestContext>(
        _ group: RouterGroup<Context>, _ path: RouterPath,
        _ handler: @escaping @Sendable (Request, Context, ConsoleUser) async throws -> Response
    ) {
        let routes = self
        group.get(path) { request, context in
            try await withTaskExecutorPreference(BlockingWorkExecutor.admin) {
                let user = try routes.signedIn(request, context)
                return try await handler(request, context, user)
            }
        }
    }

    /// A signed-in form post, checked for its origin and CSRF token; answered with a redirect
    /// (303) to the page the handler names.
    func post<Context: WebRequestContext, Form: Decodable>(
        _ group: RouterGroup<Context>, _ path: RouterPath, _ form: Form.Type,
        _ handler: @escaping @Sendable (Request, Context, ConsoleUser, Form) async throws -> String
    ) {
        let routes = self
        group.post(path) { request, context in
            try await withTaskExecutorPreference(BlockingWorkExecutor.admin) {
                // The origin first: a cross-site post is refused as such, whatever its cookie.
                try routes.forms.checkOrigin(request)
                let user = try routes.signedIn(request, context)
                let fields = try await routes.forms.post(request, session: user.session, as: Form.self)
                let location = try await handler(request, context, user, fields)
                return Response(status: .seeOther, headers: [.location: location])
            }
        }
    }

    // MARK: Sessions

    /// The signed-in user of `request`, or the refusal: `console_session_required` (no cookie, an
    /// unknown session, or its admin user gone) or `console_session_expired`.
    func signedIn<Context: WebRequestContext>(_ request: Request, _ context: Context) throws -> ConsoleUser {
        let gate = WebSessionGate(
            sessions: sessions, cookie: cookie, kind: .admin, interface: "console", unknownNoun: "session", check: "console_session",
            hintSignIn: nil, hintAgain: nil, defaultReturn: nil)
        let (token, session) = try gate.live(request)
        guard let actor = try control.adminActor(userID: session.subject, source: context.remoteAddress) else {
            try sessions.delete(token)
            throw WebRefusal(
                Denial(
                    code: .consoleSessionRequired, detail: "the session's admin user no longer exists",
                    required: ["a live console session"], presented: ["a session of a removed admin user"]),
                check: "console_session", signIn: gate.returnPath(request))
        }
        return ConsoleUser(session: session, actor: actor)
    }

    struct SignInForm: Decodable {
        var name: String
        var password: String
        var next: String?
    }

    /// Origin check, the attempt counted, the password checked (one at a time, off the event
    /// loop), then a new session (the old one, if any, deleted) and a redirect.
    func signIn<Context: WebRequestContext>(_ request: Request, _ context: Context) async throws -> Response {
        try forms.checkOrigin(request)
        let form = try await forms.fields(request, as: SignInForm.self)
        let source = SignInLimiter.clientAddress(request, peer: context.remoteAddress, trusted: trustedProxies)
        try limiter.attempt(name: form.name, address: source, now: now())
        let control = self.control
        let actor: ControlActor
        do {
            actor = try await PasswordChecks.webSignIn.run {
                try control.authenticate(user: form.name, password: form.password, source: source)
            }
        } catch let e as ControlError where e.code == .gatewayBusy {
            throw WebRefusal(Self.signInBusy(e.denial), check: "sign_in", signIn: Self.safeNext(form.next))
        } catch let e as ControlError where e.code == .adminUnauthenticated {
            // The name as typed (escaped, bounded), never the password.
            logger.notice(
                "console sign-in failed", metadata: ["name": "\(DisplayText.untrusted(form.name, limit: 64))", "source": "\(source)"])
            throw WebRefusal(
                Denial(
                    code: .consoleSignInFailed, detail: "the admin user name or password is wrong",
                    required: ["an admin user's name and password"], presented: ["user name \(DisplayText.untrusted(form.name, limit: 64))"]
                ),
                check: "sign_in", signIn: Self.safeNext(form.next))
        }
        guard let id = try control.adminUserID(name: actor.name) else {
            throw WebRefusal(
                Denial(code: .consoleSignInFailed, detail: "the admin user name or password is wrong"), check: "sign_in")
        }
        let (token, _) = try sessions.create(kind: .admin, subject: id, replacing: cookie.token(request))
        try control.auditWebSession(actor, "console.sign_in", objectType: "admin_user", objectID: id, tenant: actor.tenant)
        logger.info("console sign-in", metadata: ["admin": "\(actor.name)", "source": "\(source)"])
        var response = Response(status: .seeOther, headers: [.location: Self.safeNext(form.next)])
        cookie.set(token, on: &response)
        return response
    }

    /// The password queue's busy refusal as a sign-in page shows it (the queue's own text speaks
    /// to API callers).
    static func signInBusy(_ denial: Denial) -> Denial {
        var d = denial
        d.detail = "too many sign-ins are being checked at once; this one was not"
        d.required = ["fewer sign-ins at once"]
        d.hint = "Retry shortly."
        return d
    }

    /// Where to go after sign-in: a console path, never another site (`//host`, `/\host`).
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/console/"), !next.contains("//"), !next.contains("\\"),
            !next.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else { return "/console/overview" }
        return next
    }
}

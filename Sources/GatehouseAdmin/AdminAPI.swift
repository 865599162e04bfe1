import Foundation
import Synchronization
import GatehouseConsole
import GatehouseControl
import GatehouseCore
import GatehouseStore
import Hummingbird
import HummingbirdAuth
import HummingbirdBcrypt
import HTTPTypes
import Logging
import NIOCore

/// The admin API's request context: Hummingbird's core context and the client's address, which
/// the audit log records as the source of each change.
public struct AdminContext: RequestContext, WebRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's address (`127.0.0.1`), or `unknown`.
    public let remoteAddress: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }
}

/// One route of the admin listener, as registered: what the OpenAPI document must describe.
public struct AdminRoute: Sendable, Hashable {
    public var method: String
    /// In OpenAPI form: `/admin/v1/applications/{id}`.
    public var path: String
}

/// The admin listener's routes on Hummingbird: the REST API under `/admin/v1` (JSON,
/// problem+json errors with the gateway's denial contract, pagination and filters) and the
/// operational endpoints `/metrics`, `/healthz`, `/status`.
///
/// Every `/admin/v1` request is authenticated (`Authorization: Bearer <admin token>` or Basic with
/// an admin user's password) and authorised by the service layer (`ControlPlane`).
public struct AdminAPI: Sendable {
    public let control: ControlPlane
    /// Answers `/metrics`, `/healthz` and `/status`: status, content type, text.
    public let operational: @Sendable (String) async -> (Int, String, String)
    /// The problem `type` prefix, as the gateway's denials use it (`problem_type_base`).
    public let problemTypeBase: String
    let logger: Logger
    /// Most requests handled at once; beyond, 503 `gateway_busy` (each can hold a thread for as
    /// long as the store takes).
    public let maxInFlight: Int
    let inFlight = InFlight()
    /// The console's settings (`/console`). The developer portal is not served here: it has a
    /// listener of its own (`PortalRoutes.router`), the only one developers are given.
    public let console: ConsoleOptions
    /// Sign-in counts shared by Basic authentication here and the console's sign-in form: the
    /// same names and passwords, one budget of guesses.
    public let signInLimiter: SignInLimiter
    /// The origin checks of unsafe requests from browsers (the console's trusted origins).
    let origins: WebForms

    /// Admin requests being handled.
    final class InFlight: Sendable {
        let count = Atomic<Int>(0)
    }

    public init(
        control: ControlPlane, problemTypeBase: String = "docs/reasons.md#", logger: Logger = Logger(label: "gatehouse.admin"),
        maxInFlight: Int = 64, console: ConsoleOptions = ConsoleOptions(),
        operational: @escaping @Sendable (String) async -> (Int, String, String) = { _ in (404, "text/plain", "not found\n") }
    ) {
        self.control = control
        self.problemTypeBase = problemTypeBase
        self.logger = logger
        self.maxInFlight = maxInFlight
        self.console = console
        self.operational = operational
        signInLimiter = SignInLimiter(perName: console.signInPerName, perAddress: console.signInPerAddress)
        origins = WebForms(trustedOrigins: console.trustedOrigins)
    }

    /// Largest request body the API reads.
    static let maxBody = 64 * 1024

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }()

    /// The OpenAPI 3.1 document (a checked-in resource, read once).
    public static let openAPIDocument: Data = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"), let data = try? Data(contentsOf: url) else {
            return Data("{}".utf8)
        }
        return data
    }()

    /// Where the handlers run (see `BlockingWorkExecutor`).
    static let blockingExecutor = BlockingWorkExecutor.admin

    /// The denial for an operation the store failed. A cluster store that could not be reached
    /// may have committed before the connection failed: the answer says so rather than promise
    /// that nothing changed.
    static func storeFailure(_ error: any Error) -> Denial {
        if let e = error as? SQLError, case .unavailable = e {
            return Denial(
                code: .checkUnavailable,
                detail:
                    "the cluster store could not be reached: the operation was not applied, or (if the store failed while committing) may have been",
                hint: "Read the object back before retrying; operators should restore the cluster store.")
        }
        return Denial(code: .checkUnavailable, detail: "the store could not complete the operation; nothing was changed")
    }

    /// Builds the router and returns it with the routes it registered.
    public func router() -> (router: Router<AdminContext>, routes: [AdminRoute]) {
        let router = Router(context: AdminContext.self)
        router.add(middleware: NotFoundMiddleware(typeBase: problemTypeBase))
        var routes: [AdminRoute] = []
        let api = self

        func add(
            _ method: HTTPRequest.Method, _ path: String,
            _ handler: @escaping @Sendable (Request, AdminContext, ControlActor) async throws -> Response
        ) {
            routes.append(AdminRoute(method: method.rawValue, path: Self.openAPIPath(path)))
            router.on(RouterPath(path), method: method) { request, context in
                // The control plane's calls block on the store (SQLite, or a cluster's PostgreSQL
                // over the network): off the cooperative thread pool, which the gateway's other
                // services share.
                // A bound on the requests held at once: beyond it, answered at once (each can
                // hold a thread for as long as the store takes).
                guard api.inFlight.count.add(1, ordering: .relaxed).newValue <= api.maxInFlight else {
                    api.inFlight.count.subtract(1, ordering: .relaxed)
                    return Self.problem(
                        Denial(
                            code: .gatewayBusy, status: 503,
                            detail: "the admin API is handling as many requests as it allows at once (\(api.maxInFlight))",
                            required: ["fewer concurrent admin requests"], presented: ["more than \(api.maxInFlight) at once"],
                            hint: "Retry shortly.", headers: [HeaderField("Retry-After", "1")]),
                        path: request.uri.path, requestID: Self.requestID(), typeBase: api.problemTypeBase)
                }
                defer { api.inFlight.count.subtract(1, ordering: .relaxed) }
                return try await withTaskExecutorPreference(AdminAPI.blockingExecutor) {
                    let requestID = Self.requestID()
                    do {
                        try api.refuseBrowserForgery(request)
                        let actor = try await api.authenticate(request, context)
                        var response = try await handler(request, context, actor)
                        response.headers[Self.requestIDField] = requestID
                        return response
                    } catch let e as ControlError {
                        return Self.problem(e.denial, path: request.uri.path, requestID: requestID, typeBase: api.problemTypeBase)
                    } catch {
                        // The store failed (busy, full, unreadable): fail closed, and say so.
                        api.logger.error(
                            "admin API operation failed",
                            metadata: ["error": "\(error)", "request_id": "\(requestID)", "path": "\(request.uri.path)"])
                        return Self.problem(
                            Self.storeFailure(error), path: request.uri.path, requestID: requestID, typeBase: api.problemTypeBase)
                    }
                }
            }
        }

        func operational(_ path: String) {
            routes.append(AdminRoute(method: "GET", path: path))
            router.get(RouterPath(path)) { _, _ in
                let (status, type, text) = await api.operational(path)
                return Response(
                    status: .init(code: status), headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
            }
        }
        operational("/metrics")
        operational("/healthz")
        operational("/status")

        let v1 = "/admin/v1"
        add(.get, "\(v1)/openapi.json") { _, _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: Self.openAPIDocument)))
        }
        add(.get, "\(v1)/whoami") { _, _, actor in
            try Self.json(Whoami(name: actor.name, role: actor.role, tenant: actor.tenant))
        }

        // Tenants
        add(.get, "\(v1)/tenants") { req, _, actor in try Self.json(try api.control.tenants(actor, page: try Self.page(req))) }
        add(.post, "\(v1)/tenants") { req, _, actor in
            let body = try await Self.body(req, NameBody.self)
            return try Self.json(try api.control.createTenant(actor, name: body.name), status: .created)
        }

        // Applications
        add(.get, "\(v1)/applications") { req, _, actor in
            let q = req.uri.queryParameters
            return try Self.json(
                try api.control.applications(
                    actor, tenant: q.get("tenant"), status: q.get("status"), namePrefix: q.get("name_prefix"), page: try Self.page(req)))
        }
        add(.post, "\(v1)/applications") { req, _, actor in
            let b = try await Self.body(req, ApplicationBody.self)
            return try Self.json(
                try api.control.createApplication(actor, name: b.name, tenant: b.tenant, roles: b.roles ?? [], scopes: b.scopes ?? []),
                status: .created)
        }
        add(.get, "\(v1)/applications/:id") { _, ctx, actor in
            try Self.json(try api.control.application(actor, try ctx.parameters.require("id")))
        }
        add(.patch, "\(v1)/applications/:id") { req, ctx, actor in
            let b = try await Self.body(req, ApplicationPatch.self)
            return try Self.json(
                try api.control.updateApplication(
                    actor, try ctx.parameters.require("id"), status: b.status, roles: b.roles, scopes: b.scopes,
                    tenant: b.tenant.map { Optional($0) }))
        }

        add(.put, "\(v1)/applications/:id/password") { req, ctx, actor in
            let b = try await Self.body(req, PasswordBody.self)
            let id = try ctx.parameters.require("id")
            // Authorised before the slow hash (the role that may set it, and the tenant), so a
            // refused caller cannot make the listener hash.
            try api.control.require(actor, .operator, "setting an application's password")
            _ = try api.control.application(actor, id)
            var hash: String?
            if let password = b.password {
                // bcrypt reads at most 72 bytes.
                guard password.count >= 8, password.utf8.count <= 72 else {
                    throw ControlError(
                        Denial(
                            code: .adminInvalidRequest, detail: "the password must be 8 characters to 72 bytes long", required: ["password"]
                        ))
                }
                hash = try await Self.offLoop { Bcrypt.hash(password, cost: 12) }
            }
            try api.control.setApplicationPassword(actor, id, hash: hash)
            return try Self.json(try api.control.application(actor, id))
        }

        // JWT subjects acting as the application
        add(.get, "\(v1)/applications/:id/jwt-subjects") { _, ctx, actor in
            try Self.json(Page(items: try api.control.jwtSubjects(actor, application: try ctx.parameters.require("id")), nextCursor: nil))
        }
        add(.post, "\(v1)/applications/:id/jwt-subjects") { req, ctx, actor in
            let b = try await Self.body(req, JWTSubjectBody.self)
            return try Self.json(
                try api.control.addJWTSubject(actor, application: try ctx.parameters.require("id"), issuer: b.issuer, subject: b.subject),
                status: .created)
        }
        add(.post, "\(v1)/applications/:id/jwt-subjects/remove") { req, ctx, actor in
            let b = try await Self.body(req, JWTSubjectBody.self)
            let id = try ctx.parameters.require("id")
            try api.control.removeJWTSubject(actor, application: id, issuer: b.issuer, subject: b.subject)
            return try Self.json(Page(items: try api.control.jwtSubjects(actor, application: id), nextCursor: nil))
        }

        // Keys
        add(.get, "\(v1)/applications/:id/keys") { req, ctx, actor in
            let id = try ctx.parameters.require("id")
            _ = try api.control.application(actor, id)
            return try Self.json(try api.control.keys(actor, application: id, page: try Self.page(req)))
        }
        add(.post, "\(v1)/applications/:id/keys") { req, ctx, actor in
            let b = try await Self.body(req, KeyBody.self, emptyAllowed: true)
            return try Self.json(
                try api.control.createKey(actor, application: try ctx.parameters.require("id"), expiresAt: b.expiresAt), status: .created)
        }
        add(.get, "\(v1)/keys") { req, _, actor in
            try Self.json(try api.control.keys(actor, application: req.uri.queryParameters.get("application"), page: try Self.page(req)))
        }
        add(.post, "\(v1)/keys/:id/revoke") { _, ctx, actor in
            try Self.json(try api.control.revokeKey(actor, id: try ctx.parameters.require("id")))
        }

        // Services
        add(.get, "\(v1)/services") { req, _, actor in
            try Self.json(try api.control.services(actor, tenant: req.uri.queryParameters.get("tenant"), page: try Self.page(req)))
        }
        add(.post, "\(v1)/services") { req, _, actor in
            let b = try await Self.body(req, ServiceBody.self)
            return try Self.json(
                try api.control.createService(
                    actor, name: b.name, tenant: b.tenant, approval: b.approval ?? "manual", routes: b.routes ?? []),
                status: .created)
        }
        add(.get, "\(v1)/services/:id") { _, ctx, actor in try Self.json(try api.control.service(actor, try ctx.parameters.require("id"))) }
        add(.patch, "\(v1)/services/:id") { req, ctx, actor in
            let b = try await Self.body(req, ServicePatch.self)
            return try Self.json(
                try api.control.updateService(actor, try ctx.parameters.require("id"), approval: b.approval, routes: b.routes))
        }

        // Subscriptions
        add(.get, "\(v1)/subscriptions") { req, _, actor in
            let q = req.uri.queryParameters
            return try Self.json(
                try api.control.subscriptions(
                    actor, state: q.get("state"), application: q.get("application"), service: q.get("service"), page: try Self.page(req)))
        }
        add(.post, "\(v1)/subscriptions") { req, _, actor in
            let b = try await Self.body(req, ApplyBody.self)
            return try Self.json(
                try api.control.apply(actor, application: b.application, service: b.service, reason: b.reason), status: .created)
        }
        add(.get, "\(v1)/subscriptions/:id") { _, ctx, actor in
            try Self.json(try api.control.subscription(actor, try ctx.parameters.require("id")))
        }
        add(.post, "\(v1)/subscriptions/:id/approve") { req, ctx, actor in
            let b = try await Self.body(req, DecisionBody.self, emptyAllowed: true)
            return try Self.json(
                try api.control.approve(actor, try ctx.parameters.require("id"), opinion: b.opinion, expiresAt: b.expiresAt))
        }
        add(.post, "\(v1)/subscriptions/:id/reject") { req, ctx, actor in
            let b = try await Self.body(req, DecisionBody.self, emptyAllowed: true)
            return try Self.json(try api.control.reject(actor, try ctx.parameters.require("id"), opinion: b.opinion))
        }
        add(.post, "\(v1)/subscriptions/:id/revoke") { req, ctx, actor in
            let b = try await Self.body(req, DecisionBody.self, emptyAllowed: true)
            return try Self.json(try api.control.revoke(actor, try ctx.parameters.require("id"), opinion: b.opinion))
        }
        add(.post, "\(v1)/subscriptions/:id/cancel") { req, ctx, actor in
            let b = try await Self.body(req, DecisionBody.self, emptyAllowed: true)
            return try Self.json(try api.control.cancel(actor, try ctx.parameters.require("id"), reason: b.reason))
        }

        // Audit (read-only: there is no route that changes it)
        add(.get, "\(v1)/audit") { req, _, actor in
            let q = req.uri.queryParameters
            var since: Double?
            if let s = q.get("since") {
                guard let v = Double(s), v.isFinite else {
                    throw ControlError(
                        Denial(code: .adminInvalidRequest, detail: "since is not a number of seconds since 1970", required: ["since"]))
                }
                since = v
            }
            return try Self.json(
                try api.control.auditEntries(
                    actor, action: q.get("action"), objectID: q.get("object_id"), since: since, page: try Self.page(req)))
        }
        add(.get, "\(v1)/audit/:id") { _, ctx, actor in
            guard let id = ctx.parameters.get("id", as: Int64.self) else {
                throw ControlError(Denial(code: .adminInvalidRequest, detail: "an audit entry id is a number", required: ["id"]))
            }
            return try Self.json(try api.control.auditEntry(actor, id: id))
        }

        // Call log (read-only)
        add(.get, "\(v1)/calls") { req, _, actor in
            let q = req.uri.queryParameters
            var status: Int?
            if let s = q.get("status") {
                guard let v = Int(s) else {
                    throw ControlError(Denial(code: .adminInvalidRequest, detail: "status is not a number", required: ["status"]))
                }
                status = v
            }
            // A period, in seconds since 1970: `since` inclusive, `until` exclusive.
            func time(_ name: String) throws -> Double? {
                guard let s = q.get(name) else { return nil }
                guard let v = Double(s), v.isFinite else {
                    throw ControlError.invalid("\(name) is not a number of seconds since 1970", field: name)
                }
                return v
            }
            return try Self.json(
                try api.control.calls(
                    actor, status: status, reason: q.get("reason"), route: q.get("route"), application: q.get("application"),
                    since: try time("since"), until: try time("until"), page: try Self.page(req)))
        }
        add(.get, "\(v1)/overview") { req, _, actor in
            // The last `period` (default 24h), in buckets of `bucket` (default: an hour, or a
            // minute for periods up to two hours), from the call log's per-minute rollups.
            let q = req.uri.queryParameters
            func duration(_ name: String) throws -> Double? {
                guard let text = q.get(name) else { return nil }
                guard let d = TimeText.parseDuration(text), d > 0 else {
                    throw ControlError.invalid(
                        "\(name) \"\(DisplayText.escaped(String(text.prefix(64))))\" is not a duration (e.g. 15m, 24h, 7d)", field: name)
                }
                return d
            }
            let period = try duration("period") ?? 86400
            guard period <= 31 * 86400 else { throw ControlError.invalid("period is longer than 31 days", field: "period") }
            let bucket = try duration("bucket") ?? (period <= 7200 ? 60 : 3600)
            var top = 10
            if let t = q.get("top") {
                guard let v = Int(t), (1...100).contains(v) else {
                    throw ControlError.invalid("top is not a number from 1 to 100", field: "top")
                }
                top = v
            }
            let now = Date().timeIntervalSince1970
            return try Self.json(try api.control.overview(actor, since: now - period, until: now, bucket: bucket, top: top))
        }
        add(.get, "\(v1)/calls/:id") { _, ctx, actor in
            try Self.json(try api.control.call(actor, requestID: try ctx.parameters.require("id")))
        }

        // Developer accounts (the portal's sign-ins; tenant-scoped like applications)
        add(.get, "\(v1)/developers") { req, _, actor in
            try Self.json(
                try api.control.developers(actor, application: req.uri.queryParameters.get("application"), page: try Self.page(req)))
        }
        add(.post, "\(v1)/developers") { req, _, actor in
            let b = try await Self.body(req, DeveloperBody.self)
            // The hash on the password-check queue, once the name and caller are checked.
            let created = try await api.control.createDeveloper(actor, name: b.name, application: b.application, password: b.password) {
                try await PasswordChecks.shared.run($0)
            }
            return try Self.json(created, status: .created)
        }
        add(.get, "\(v1)/developers/:id") { _, ctx, actor in
            try Self.json(try api.control.developer(actor, try ctx.parameters.require("id")))
        }
        add(.patch, "\(v1)/developers/:id") { req, ctx, actor in
            let b = try await Self.body(req, DeveloperPatch.self)
            return try Self.json(try api.control.setDeveloperStatus(actor, try ctx.parameters.require("id"), status: b.status))
        }
        add(.delete, "\(v1)/developers/:id") { _, ctx, actor in
            try Self.json(try api.control.deleteDeveloper(actor, try ctx.parameters.require("id")))
        }

        // Admin users and tokens
        add(.get, "\(v1)/admin-users") { req, _, actor in try Self.json(try api.control.adminUsers(actor, page: try Self.page(req))) }
        add(.post, "\(v1)/admin-users") { req, _, actor in
            let b = try await Self.body(req, AdminUserBody.self)
            guard let role = AdminRole(rawValue: b.role) else {
                throw ControlError(
                    Denial(
                        code: .adminInvalidRequest,
                        detail: "role \"\(DisplayText.escaped(b.role))\" is not one of owner, admin, operator, viewer", required: ["role"]))
            }
            return try Self.json(
                try api.control.createAdminUser(actor, name: b.name, role: role, tenant: b.tenant, password: b.password), status: .created)
        }
        add(.post, "\(v1)/admin-users/:id/tokens") { _, ctx, actor in
            try Self.json(try api.control.createAdminToken(actor, user: try ctx.parameters.require("id")), status: .created)
        }
        add(.post, "\(v1)/admin-users/:id/end-sessions") { _, ctx, actor in
            try Self.json(try api.control.endAdminSessions(actor, user: try ctx.parameters.require("id")))
        }
        add(.post, "\(v1)/admin-tokens/:id/revoke") { _, ctx, actor in
            try Self.json(try api.control.revokeAdminToken(actor, id: try ctx.parameters.require("id")))
        }

        // The console beside the API (one call); the portal is on its own listener.
        ConsoleRoutes.register(on: router, control: control, options: console, limiter: signInLimiter, logger: logger)
        return (router, routes)
    }

    /// `:id` → `{id}`.
    static func openAPIPath(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
            .joined(separator: "/")
    }

    // MARK: Authentication

    func authenticate(_ request: Request, _ context: AdminContext) async throws -> ControlActor {
        let source = SignInLimiter.clientAddress(request, peer: context.remoteAddress, trusted: console.trustedProxies)
        if let bearer = request.headers.bearer {
            return try control.authenticate(token: bearer.token, source: source)
        }
        if let basic = request.headers.basic {
            // Counted as a sign-in, before the password is checked: the console's passwords, the
            // console's budget of guesses.
            do {
                try signInLimiter.attempt(name: basic.username, address: source, path: request.uri.path)
            } catch let refusal as WebRefusal {
                var denial = refusal.denial
                if denial.code == .rateLimited {
                    denial.hint =
                        "Basic authentication is counted as a sign-in. Wait until the time in Retry-After, or use an admin token (Bearer), which is not counted."
                }
                logger.notice(
                    "admin Basic authentication refused",
                    metadata: [
                        "name": "\(DisplayText.untrusted(basic.username, limit: 64))", "source": "\(source)", "check": "\(refusal.check)",
                    ])
                throw ControlError(denial)
            }
            let control = self.control
            do {
                return try await PasswordChecks.shared.run {
                    try control.authenticate(user: basic.username, password: basic.password, source: source)
                }
            } catch let e as ControlError where e.code == .adminUnauthenticated {
                // The name as sent (escaped, bounded), never the password.
                logger.notice(
                    "admin Basic authentication failed",
                    metadata: ["name": "\(DisplayText.untrusted(basic.username, limit: 64))", "source": "\(source)"])
                throw e
            }
        }
        throw ControlError(
            Denial(
                code: .adminUnauthenticated,
                detail: request.headers[.authorization] == nil
                    ? "\(request.method.rawValue) \(request.uri.path) needs admin credentials; none were sent"
                    : "the Authorization header is neither Bearer nor Basic",
                required: ["Authorization: Bearer <admin token>, or Basic with an admin user's password"],
                headers: [HeaderField("WWW-Authenticate", "Bearer realm=\"gatehouse-admin\"")]))
    }

    /// Refuses what a page of another site could make a browser send with credentials it holds:
    /// an unsafe request whose body is not `application/json` (a form can send `text/plain` that
    /// parses as JSON), 415 `admin_invalid_request`; and an unsafe request whose Origin,
    /// Sec-Fetch-Site or Referer shows another site, 403 `csrf_origin_mismatch` (the project's
    /// `csrf` origin check). Clients that send none of these headers are not browsers and pass.
    /// Runs before authentication, so a refused request costs no password check.
    func refuseBrowserForgery(_ request: Request) throws {
        guard ![.get, .head, .options].contains(request.method) else { return }
        if let type = request.headers[.contentType], !Self.isJSON(type) {
            throw ControlError(
                Denial(
                    code: .adminInvalidRequest, status: 415,
                    detail: "\(request.method.rawValue) \(request.uri.path) takes a JSON body; the Content-Type is not application/json",
                    required: ["Content-Type: application/json"],
                    presented: ["Content-Type: \(DisplayText.untrusted(type, limit: 64))"]))
        }
        let browserHeaders: [HTTPField.Name] = [.origin, HTTPField.Name("Sec-Fetch-Site")!, .referer]
        guard browserHeaders.contains(where: { request.headers[$0] != nil }) else { return }
        do {
            try origins.checkOrigin(request)
        } catch let refusal as WebRefusal {
            throw ControlError(refusal.denial)
        }
    }

    /// `application/json`, with or without parameters (`; charset=utf-8`).
    static func isJSON(_ contentType: String) -> Bool {
        contentType.split(separator: ";", maxSplits: 1).first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased() == "application/json"
        } ?? false
    }

    /// Runs slow work (bcrypt) one at a time on its own queue, not on the listener's event loop
    /// nor beside the tasks that serve other requests.
    static func offLoop<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws -> T {
        try await PasswordChecks.shared.run { work() }
    }

    // MARK: Bodies and answers

    static let requestIDField = HTTPField.Name("X-Request-Id")!

    static func requestID() -> String { "adm-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20) }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func problem(_ denial: Denial, path: String, requestID: String, typeBase: String) -> Response {
        let rendered = ProblemRenderer(typeBase: typeBase).render(
            denial, requestID: requestID, instance: path, exposure: .detailed, checkID: "admin")
        var headers = HTTPFields()
        for h in rendered.headers {
            if let name = HTTPField.Name(h.name) { headers.append(HTTPField(name: name, value: h.value)) }
        }
        headers[requestIDField] = requestID
        return Response(status: .init(code: rendered.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: rendered.body)))
    }

    static func body<T: Decodable>(_ request: Request, _ type: T.Type, emptyAllowed: Bool = false) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBody)
        } catch {
            throw ControlError(Denial(code: .adminInvalidRequest, detail: "the request body is larger than \(maxBody) bytes"))
        }
        let data = Data(buffer.readableBytesView)
        // A body without a Content-Type (one with another type was refused before authentication).
        guard data.isEmpty || request.headers[.contentType].map(isJSON) == true else {
            throw ControlError(
                Denial(
                    code: .adminInvalidRequest, status: 415, detail: "the request has a body but no Content-Type: application/json",
                    required: ["Content-Type: application/json"], presented: ["no Content-Type"]))
        }
        do {
            return try decoder.decode(T.self, from: data.isEmpty && emptyAllowed ? Data("{}".utf8) : data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw ControlError(
                Denial(code: .adminInvalidRequest, detail: "the body lacks the field \(key.stringValue)", required: [key.stringValue]))
        } catch let DecodingError.typeMismatch(_, ctx) {
            let field = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            throw ControlError(
                Denial(code: .adminInvalidRequest, detail: "the body's field \(field) has the wrong type", required: [field]))
        } catch {
            throw ControlError(
                Denial(
                    code: .adminInvalidRequest, detail: "the body is not a JSON object of the expected shape (see /admin/v1/openapi.json)"))
        }
    }

    static func page(_ request: Request) throws -> PageRequest {
        let q = request.uri.queryParameters
        var page = PageRequest()
        if let l = q.get("limit") {
            guard let n = Int(l) else {
                throw ControlError(Denial(code: .adminInvalidRequest, detail: "limit is not a number", required: ["limit"]))
            }
            page.limit = n
        }
        page.cursor = q.get("cursor")
        return page
    }
}

/// Answers requests that match no route (404) or no method of a route (405) with problem+json,
/// like every other admin answer.
struct NotFoundMiddleware: RouterMiddleware {
    typealias Context = AdminContext
    let typeBase: String
    func handle(_ request: Request, context: AdminContext, next: (Request, AdminContext) async throws -> Response) async throws -> Response
    {
        do {
            return try await next(request, context)
        } catch let e as HTTPError where e.status == .notFound || e.status == .methodNotAllowed {
            var d = Denial(
                code: .adminNotFound, detail: "no admin endpoint \(request.method.rawValue) \(DisplayText.escaped(request.uri.path))",
                hint: "See /admin/v1/openapi.json for the endpoints.")
            d.status = e.status.code
            return AdminAPI.problem(d, path: request.uri.path, requestID: AdminAPI.requestID(), typeBase: typeBase)
        }
    }
}

struct Whoami: Codable { var name: String; var role: AdminRole; var tenant: String? }
struct NameBody: Codable { var name: String }
struct ApplicationBody: Codable { var name: String; var tenant: String?; var roles: [String]?; var scopes: [String]? }
struct ApplicationPatch: Codable { var status: String?; var roles: [String]?; var scopes: [String]?; var tenant: String? }
struct JWTSubjectBody: Codable { var issuer: String; var subject: String }
struct PasswordBody: Codable { var password: String? }
struct KeyBody: Codable { var expiresAt: Double? }
struct ServiceBody: Codable { var name: String; var tenant: String?; var approval: String?; var routes: [String]? }
struct ServicePatch: Codable { var approval: String?; var routes: [String]? }
struct ApplyBody: Codable { var application: String; var service: String; var reason: String? }
struct DecisionBody: Codable { var opinion: String?; var reason: String?; var expiresAt: Double? }
struct DeveloperBody: Codable { var name: String; var application: String; var password: String }
struct DeveloperPatch: Codable { var status: String }
struct AdminUserBody: Codable { var name: String; var role: String; var tenant: String?; var password: String? }

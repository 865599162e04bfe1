import ArgumentParser
import AsyncHTTPClient
import Foundation
import GatehouseChecks
import GatehouseControl
import GatehouseCore
import NIOCore
import NIOHTTP1

/// What the control commands (`consumers`, `keys`, `tenants`, `services`, `subscriptions`,
/// `admins`) do, wherever it is done: on the store file through `ControlPlane` as the local owner
/// (`LocalControl`), or through a running gateway's admin API (`--admin URL`, `RemoteControl`).
/// Refusals arrive as `ValidationError`s with the control plane's explanation.
protocol ControlAccess {
    func createApplication(name: String, tenant: String?, roles: [String], scopes: [String]) throws -> Application
    func applications() throws -> [Application]
    func updateApplication(_ ref: String, status: String?, roles: [String]?, scopes: [String]?, tenant: String?) throws -> Application
    /// Sets (or, with nil, clears) the password; the local store hashes it with `cost`, the admin
    /// API with its own.
    func setApplicationPassword(_ ref: String, password: String?, cost: UInt8) throws
    func addJWTSubject(application: String, issuer: String, subject: String) throws -> JWTSubject
    func removeJWTSubject(application: String, issuer: String, subject: String) throws
    func createKey(application: String, expiresAt: Double?) throws -> CreatedKey
    func keys(application: String?) throws -> [APIKeyInfo]
    func revokeKey(id: String) throws -> APIKeyInfo
    func createTenant(name: String) throws -> Tenant
    func tenants() throws -> [Tenant]
    func createService(name: String, tenant: String?, approval: String, routes: [String]) throws -> APIService
    func services() throws -> [APIService]
    func apply(application: String, service: String, reason: String?) throws -> Subscription
    func approve(_ id: String, opinion: String?, expiresAt: Double?) throws -> Subscription
    func reject(_ id: String, opinion: String?) throws -> Subscription
    func cancel(_ id: String, reason: String?) throws -> Subscription
    func revoke(_ id: String, opinion: String?) throws -> Subscription
    func subscriptions(state: String?, application: String?, service: String?) throws -> [Subscription]
    func subscription(_ id: String) throws -> Subscription
    func createAdminUser(name: String, role: AdminRole, tenant: String?, password: String?, cost: UInt8) throws -> AdminUser
    func adminUsers() throws -> [AdminUser]
    func createAdminToken(user: String) throws -> CreatedAdminToken
    /// The local store hashes the password with `cost`, the admin API with its own.
    func createDeveloper(name: String, application: String, password: String, cost: UInt8) throws -> Developer
    func developers(application: String?) throws -> [Developer]
    func setDeveloperStatus(_ ref: String, status: String) throws -> Developer
    func deleteDeveloper(_ ref: String) throws -> Developer
}

extension StoreOptions {
    /// The admin API named by `--admin`, or else the store.
    func access() throws -> any ControlAccess {
        if let admin {
            guard let token = ProcessInfo.processInfo.environment["GATEHOUSE_ADMIN_TOKEN"], !token.isEmpty else {
                throw ValidationError(
                    "--admin needs an admin token in the environment variable GATEHOUSE_ADMIN_TOKEN (from `gatehouse admins token NAME`)")
            }
            return try RemoteControl(base: admin, token: token)
        }
        return LocalControl(control: try control())
    }
}

/// The store file, through the control plane, as the local owner (`ControlActor.cli`).
struct LocalControl: ControlAccess {
    let control: ControlPlane

    func run<T>(_ body: (ControlPlane) throws -> T) throws -> T { try control.cli(body) }

    func createApplication(name: String, tenant: String?, roles: [String], scopes: [String]) throws -> Application {
        try run { try $0.createApplication(.cli, name: name, tenant: tenant, roles: roles, scopes: scopes) }
    }
    func applications() throws -> [Application] { try run { c in try c.all { try c.applications(.cli, page: $0) } } }
    func updateApplication(_ ref: String, status: String?, roles: [String]?, scopes: [String]?, tenant: String?) throws -> Application {
        try run { try $0.updateApplication(.cli, ref, status: status, roles: roles, scopes: scopes, tenant: tenant.map { Optional($0) }) }
    }
    func setApplicationPassword(_ ref: String, password: String?, cost: UInt8) throws {
        let hash = password.map { BasicAuthCheck.hashPassword($0, cost: cost) }
        try run { try $0.setApplicationPassword(.cli, ref, hash: hash) }
    }
    func addJWTSubject(application: String, issuer: String, subject: String) throws -> JWTSubject {
        try run { try $0.addJWTSubject(.cli, application: application, issuer: issuer, subject: subject) }
    }
    func removeJWTSubject(application: String, issuer: String, subject: String) throws {
        try run { try $0.removeJWTSubject(.cli, application: application, issuer: issuer, subject: subject) }
    }
    func createKey(application: String, expiresAt: Double?) throws -> CreatedKey {
        try run { try $0.createKey(.cli, application: application, expiresAt: expiresAt) }
    }
    func keys(application: String?) throws -> [APIKeyInfo] {
        try run { c in try c.all { try c.keys(.cli, application: application, page: $0) } }
    }
    func revokeKey(id: String) throws -> APIKeyInfo { try run { try $0.revokeKey(.cli, id: id) } }
    func createTenant(name: String) throws -> Tenant { try run { try $0.createTenant(.cli, name: name) } }
    func tenants() throws -> [Tenant] { try run { c in try c.all { try c.tenants(.cli, page: $0) } } }
    func createService(name: String, tenant: String?, approval: String, routes: [String]) throws -> APIService {
        try run { try $0.createService(.cli, name: name, tenant: tenant, approval: approval, routes: routes) }
    }
    func services() throws -> [APIService] { try run { c in try c.all { try c.services(.cli, page: $0) } } }
    func apply(application: String, service: String, reason: String?) throws -> Subscription {
        try run { try $0.apply(.cli, application: application, service: service, reason: reason) }
    }
    func approve(_ id: String, opinion: String?, expiresAt: Double?) throws -> Subscription {
        try run { try $0.approve(.cli, id, opinion: opinion, expiresAt: expiresAt) }
    }
    func reject(_ id: String, opinion: String?) throws -> Subscription { try run { try $0.reject(.cli, id, opinion: opinion) } }
    func cancel(_ id: String, reason: String?) throws -> Subscription { try run { try $0.cancel(.cli, id, reason: reason) } }
    func revoke(_ id: String, opinion: String?) throws -> Subscription { try run { try $0.revoke(.cli, id, opinion: opinion) } }
    func subscriptions(state: String?, application: String?, service: String?) throws -> [Subscription] {
        try run { c in try c.all { try c.subscriptions(.cli, state: state, application: application, service: service, page: $0) } }
    }
    func subscription(_ id: String) throws -> Subscription { try run { try $0.subscription(.cli, id) } }
    func createAdminUser(name: String, role: AdminRole, tenant: String?, password: String?, cost: UInt8) throws -> AdminUser {
        try run { try $0.createAdminUser(.cli, name: name, role: role, tenant: tenant, password: password, cost: cost) }
    }
    func adminUsers() throws -> [AdminUser] { try run { c in try c.all { try c.adminUsers(.cli, page: $0) } } }
    func createAdminToken(user: String) throws -> CreatedAdminToken { try run { try $0.createAdminToken(.cli, user: user) } }
    func createDeveloper(name: String, application: String, password: String, cost: UInt8) throws -> Developer {
        try run { try $0.createDeveloper(.cli, name: name, application: application, password: password, cost: cost) }
    }
    func developers(application: String?) throws -> [Developer] {
        try run { c in try c.all { try c.developers(.cli, application: application, page: $0) } }
    }
    func setDeveloperStatus(_ ref: String, status: String) throws -> Developer {
        try run { try $0.setDeveloperStatus(.cli, ref, status: status) }
    }
    func deleteDeveloper(_ ref: String) throws -> Developer { try run { try $0.deleteDeveloper(.cli, ref) } }
}

/// A running gateway's admin API (`--admin http://127.0.0.1:9901`), as the admin whose token is in
/// `GATEHOUSE_ADMIN_TOKEN`. The token is sent only in the Authorization header, never printed.
struct RemoteControl: ControlAccess {
    let base: String
    let token: String

    init(base: String, token: String) throws {
        var base = base
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ValidationError("--admin \(base) is not an http(s) URL of a gateway's admin listener (e.g. http://127.0.0.1:9901)")
        }
        // The token would cross the network readable by anyone on the path: only to this machine.
        if url.scheme == "http", let host = url.host, !["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased()) {
            throw ValidationError(
                "--admin \(base) is plain http to another machine: the admin token would cross the network unencrypted. Use https, or an SSH tunnel to the admin listener on 127.0.0.1"
            )
        }
        self.base = base + "/admin/v1"
        self.token = token
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }()

    /// snake_case → the models' camelCase, where `id` is `ID` after the first word
    /// (`application_id` → `applicationID`).
    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .custom { path in
            let words = path.last!.stringValue.split(separator: "_").map(String.init)
            guard let first = words.first else { return path.last! }
            let rest = words.dropFirst().map { $0 == "id" ? "ID" : $0.prefix(1).uppercased() + $0.dropFirst() }
            return AnyKey(first + rest.joined())
        }
        return d
    }()

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    struct NoBody: Encodable {}

    static func path(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? s }

    static func query(_ items: [(String, String?)]) -> String {
        var c = URLComponents()
        c.queryItems = items.compactMap { k, v in v.map { URLQueryItem(name: k, value: $0) } }
        return c.percentEncodedQuery.map { "?" + $0 } ?? ""
    }

    /// Sends one request and decodes the answer; a problem+json answer becomes its explanation.
    func send<T: Decodable>(_ method: HTTPMethod, _ path: String, _ body: (any Encodable)? = nil, as: T.Type = T.self) throws -> T {
        var request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: base + path, method: method)
        } catch {
            throw ValidationError("cannot address \(base + path): \(error)")
        }
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .data(try Self.encoder.encode(body))
        }
        let response: HTTPClient.Response
        do {
            response = try HTTPClient.shared.execute(request: request, deadline: .now() + .seconds(30)).wait()
        } catch {
            throw ValidationError("cannot reach the admin API at \(base): \(error)")
        }
        let data = response.body.map { Data($0.readableBytesView) } ?? Data()
        guard (200..<300).contains(response.status.code) else {
            if let problem = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let reason = problem["reason"] as? String {
                var text = "\(problem["detail"] as? String ?? problem["title"] as? String ?? "refused") (\(response.status.code) \(reason))"
                if let hint = problem["hint"] as? String, !hint.isEmpty { text += "\nFix: \(hint)" }
                throw ValidationError(text)
            }
            throw ValidationError("the admin API at \(base) answered \(response.status.code)")
        }
        do {
            return try Self.decoder.decode(T.self, from: data)
        } catch {
            throw ValidationError("the admin API at \(base) answered something this command does not understand: \(error)")
        }
    }

    /// Every page of a list.
    func all<T: Codable & Sendable>(_ path: String, _ query: [(String, String?)] = []) throws -> [T] {
        var out: [T] = []
        var cursor: String?
        repeat {
            let page: Page<T> = try send(.GET, path + Self.query(query + [("limit", "500"), ("cursor", cursor)]))
            out += page.items
            cursor = page.nextCursor
        } while cursor != nil
        return out
    }

    struct ApplicationBody: Encodable { var name: String; var tenant: String?; var roles: [String]; var scopes: [String] }
    struct ApplicationPatch: Encodable { var status: String?; var roles: [String]?; var scopes: [String]?; var tenant: String? }
    struct PasswordBody: Encodable {
        var password: String?
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: AnyKey.self)
            try c.encode(password, forKey: AnyKey("password"))  // null clears
        }
    }
    struct KeyBody: Encodable { var expiresAt: Double? }
    struct JWTSubjectBody: Encodable { var issuer: String; var subject: String }
    struct NameBody: Encodable { var name: String }
    struct ServiceBody: Encodable { var name: String; var tenant: String?; var approval: String; var routes: [String] }
    struct ApplyBody: Encodable { var application: String; var service: String; var reason: String? }
    struct DecisionBody: Encodable { var opinion: String?; var reason: String?; var expiresAt: Double? }
    struct AdminUserBody: Encodable { var name: String; var role: String; var tenant: String?; var password: String? }

    func createApplication(name: String, tenant: String?, roles: [String], scopes: [String]) throws -> Application {
        try send(.POST, "/applications", ApplicationBody(name: name, tenant: tenant, roles: roles, scopes: scopes))
    }
    func applications() throws -> [Application] { try all("/applications") }
    func updateApplication(_ ref: String, status: String?, roles: [String]?, scopes: [String]?, tenant: String?) throws -> Application {
        try send(.PATCH, "/applications/\(Self.path(ref))", ApplicationPatch(status: status, roles: roles, scopes: scopes, tenant: tenant))
    }
    func setApplicationPassword(_ ref: String, password: String?, cost: UInt8) throws {
        let _: Application = try send(.PUT, "/applications/\(Self.path(ref))/password", PasswordBody(password: password))
    }
    func addJWTSubject(application: String, issuer: String, subject: String) throws -> JWTSubject {
        try send(.POST, "/applications/\(Self.path(application))/jwt-subjects", JWTSubjectBody(issuer: issuer, subject: subject))
    }
    func removeJWTSubject(application: String, issuer: String, subject: String) throws {
        let _: Page<JWTSubject> = try send(
            .POST, "/applications/\(Self.path(application))/jwt-subjects/remove", JWTSubjectBody(issuer: issuer, subject: subject))
    }
    func createKey(application: String, expiresAt: Double?) throws -> CreatedKey {
        try send(.POST, "/applications/\(Self.path(application))/keys", KeyBody(expiresAt: expiresAt))
    }
    func keys(application: String?) throws -> [APIKeyInfo] { try all("/keys", [("application", application)]) }
    func revokeKey(id: String) throws -> APIKeyInfo { try send(.POST, "/keys/\(Self.path(id))/revoke") }
    func createTenant(name: String) throws -> Tenant { try send(.POST, "/tenants", NameBody(name: name)) }
    func tenants() throws -> [Tenant] { try all("/tenants") }
    func createService(name: String, tenant: String?, approval: String, routes: [String]) throws -> APIService {
        try send(.POST, "/services", ServiceBody(name: name, tenant: tenant, approval: approval, routes: routes))
    }
    func services() throws -> [APIService] { try all("/services") }
    func apply(application: String, service: String, reason: String?) throws -> Subscription {
        try send(.POST, "/subscriptions", ApplyBody(application: application, service: service, reason: reason))
    }
    func approve(_ id: String, opinion: String?, expiresAt: Double?) throws -> Subscription {
        try send(.POST, "/subscriptions/\(Self.path(id))/approve", DecisionBody(opinion: opinion, expiresAt: expiresAt))
    }
    func reject(_ id: String, opinion: String?) throws -> Subscription {
        try send(.POST, "/subscriptions/\(Self.path(id))/reject", DecisionBody(opinion: opinion))
    }
    func cancel(_ id: String, reason: String?) throws -> Subscription {
        try send(.POST, "/subscriptions/\(Self.path(id))/cancel", DecisionBody(reason: reason))
    }
    func revoke(_ id: String, opinion: String?) throws -> Subscription {
        try send(.POST, "/subscriptions/\(Self.path(id))/revoke", DecisionBody(opinion: opinion))
    }
    func subscriptions(state: String?, application: String?, service: String?) throws -> [Subscription] {
        try all("/subscriptions", [("state", state), ("application", application), ("service", service)])
    }
    func subscription(_ id: String) throws -> Subscription { try send(.GET, "/subscriptions/\(Self.path(id))") }
    func createAdminUser(name: String, role: AdminRole, tenant: String?, password: String?, cost: UInt8) throws -> AdminUser {
        try send(.POST, "/admin-users", AdminUserBody(name: name, role: role.rawValue, tenant: tenant, password: password))
    }
    func adminUsers() throws -> [AdminUser] { try all("/admin-users") }
    func createAdminToken(user: String) throws -> CreatedAdminToken { try send(.POST, "/admin-users/\(Self.path(user))/tokens") }
    struct DeveloperBody: Encodable { var name: String; var application: String; var password: String }
    struct DeveloperPatch: Encodable { var status: String }
    func createDeveloper(name: String, application: String, password: String, cost: UInt8) throws -> Developer {
        try send(.POST, "/developers", DeveloperBody(name: name, application: application, password: password))
    }
    func developers(application: String?) throws -> [Developer] { try all("/developers", [("application", application)]) }
    func setDeveloperStatus(_ ref: String, status: String) throws -> Developer {
        try send(.PATCH, "/developers/\(Self.path(ref))", DeveloperPatch(status: status))
    }
    func deleteDeveloper(_ ref: String) throws -> Developer { try send(.DELETE, "/developers/\(Self.path(ref))") }
}

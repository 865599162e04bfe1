import Crypto
import Foundation
import GatehouseCore
import GatehouseIdentity
import GatehouseStore
import HummingbirdBcrypt

/// The control plane's service layer: every change to tenants, applications, keys, services,
/// subscriptions and admin users goes through here (the admin API and the CLI alike).
///
/// Each operation takes the `ControlActor` that performs it, checks its role and tenant scope,
/// makes the change and appends its audit entry in one transaction, and returns values or throws
/// a `ControlError` (a denial with the gateway's contract). Lists are filtered by the actor's
/// tenant in the query itself, so a scoped actor never receives another tenant's rows.
public final class ControlPlane: Sendable {
    /// The store's database: the embedded SQLite store's, or a cluster's PostgreSQL.
    public let db: any SQLDatabase
    /// Injected for tests; the wall clock by default.
    let now: @Sendable () -> Double

    public init(database: any SQLDatabase, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.db = database
        self.now = now
    }

    public convenience init(store: SQLiteStore, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.init(database: store.sqlDatabase, now: now)
    }

    // MARK: Authorisation

    public func require(_ actor: ControlActor, _ role: AdminRole, _ action: String) throws {
        guard actor.role >= role else { throw ControlError.roleInsufficient(actor, needs: role, to: action) }
    }

    /// A scoped actor may touch only objects of its tenant; `what` names the object as the caller
    /// named it (never anything read from the store).
    func requireTenant(_ actor: ControlActor, _ tenants: [String?], _ what: String) throws {
        guard let scope = actor.tenant else { return }
        guard tenants.contains(where: { $0 == scope }) else { throw ControlError.tenantMismatch(actor, what) }
    }

    /// For a scoped actor, an object that does not exist gets the same answer as one of another
    /// tenant (`tenantMismatch`); for others, `notFound`.
    func missing(_ actor: ControlActor, _ what: String, hint: String? = nil) -> ControlError {
        actor.tenant == nil ? ControlError.notFound("no \(what)", hint: hint) : ControlError.tenantMismatch(actor, what)
    }

    // MARK: Audit

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    static func json(_ value: (any Encodable)?) -> String? {
        guard let value, let data = try? encoder.encode(value) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// Appends an audit entry in the caller's transaction; returns its id.
    @discardableResult
    func audit(
        _ db: any SQLTransaction, _ actor: some AuditedActor, _ action: String, _ objectType: String, _ objectID: String,
        tenants: [String?],
        before: (any Encodable)? = nil, after: (any Encodable)? = nil
    ) throws -> Int64 {
        let tenantList = Array(Set(tenants.compactMap { $0 })).sorted().joined(separator: " ")
        let id: Int64? = try db.scalar(
            """
            INSERT INTO audit_log (time, actor, role, tenants, action, object_type, object_id, before, after, source)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
            """,
            [
                now(), actor.auditName, actor.auditRole, tenantList, action, objectType, objectID, Self.json(before), Self.json(after),
                actor.source,
            ])
        guard let id else { throw SQLError.other("the audit log returned no id for the new entry") }
        return id
    }

    /// Audit entries, oldest first, filtered by action prefix, object and time; a scoped actor
    /// sees only entries that name its tenant.
    public func auditEntries(
        _ actor: ControlActor, action: String? = nil, objectID: String? = nil, since: Double? = nil, page: PageRequest = PageRequest()
    ) throws -> Page<AuditEntry> {
        try require(actor, .viewer, "reading the audit log")
        var conds: [String] = []
        var args: [any SQLBindable] = []
        if let scope = actor.tenant {
            conds.append("instr(' ' || tenants || ' ', ?) > 0")
            args.append(" \(scope) ")
        }
        if let action { conds.append("action LIKE ? ESCAPE '\\'"); args.append(Self.likePrefix(action)) }
        if let objectID { conds.append("object_id = ?"); args.append(objectID) }
        if let since { conds.append("time >= ?"); args.append(since) }
        return try self.page(
            "SELECT *, id AS sort_key FROM audit_log", conditions: conds, arguments: args, key: "id", integerKey: true, page: page,
            map: AuditEntry.init(row:))
    }

    /// One audit-log entry by id, unchecked (for `explain`, which cites the entry behind a denial).
    public func auditEntry(id: Int64) throws -> AuditEntry? {
        try db.read { db in try db.row("SELECT * FROM audit_log WHERE id = ?", [id]).map(AuditEntry.init(row:)) }
    }

    public func auditEntry(_ actor: ControlActor, id: Int64) throws -> AuditEntry {
        try require(actor, .viewer, "reading the audit log")
        guard let e = try auditEntry(id: id) else { throw missing(actor, "audit entry \(id)") }
        if let scope = actor.tenant, !e.tenants.contains(scope) { throw ControlError.tenantMismatch(actor, "audit entry \(id)") }
        return e
    }

    // MARK: Paging helpers

    static func limit(_ page: PageRequest) throws -> Int {
        guard (1...PageRequest.maximumLimit).contains(page.limit) else {
            throw ControlError.invalid("limit \(page.limit) is out of range (1...\(PageRequest.maximumLimit))", field: "limit")
        }
        return page.limit
    }

    /// Cursors are the last item's sort key, base64url-encoded: opaque to clients, and harmless
    /// when forged (a forged cursor moves the start of the page; the tenant filter is in the query).
    static func encodeCursor(_ key: String) -> String {
        Data(key.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeCursor(_ cursor: String) throws -> String {
        var b64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard cursor.count <= 512, let data = Data(base64Encoded: b64), let s = String(data: data, encoding: .utf8) else {
            throw ControlError.invalid("the cursor is not one this API issued", field: "cursor")
        }
        return s
    }

    static func likePrefix(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
            + "%"
    }

    /// Reads a page of `select` (which must name the key column `key` as `sort_key`), ordered by
    /// `key` (newest first when `descending`); an integer key's cursor must read as an integer.
    func page<T: Sendable & Codable>(
        _ select: String, conditions: [String], arguments: [any SQLBindable], key: String, integerKey: Bool = false,
        descending: Bool = false, page: PageRequest, map: @escaping (SQLRow) -> T
    ) throws -> Page<T> {
        var conds = conditions
        var args = arguments
        let limit = try Self.limit(page)
        if let c = page.cursor {
            let position = try Self.decodeCursor(c)
            if integerKey {
                guard let n = Int64(position) else { throw ControlError.invalid("the cursor is not one this API issued", field: "cursor") }
                args.append(n)
            } else {
                args.append(position)
            }
            conds.append("\(key) \(descending ? "<" : ">") ?")
        }
        let whereSQL = conds.isEmpty ? "" : " WHERE " + conds.joined(separator: " AND ")
        let order = "ORDER BY \(key)\(descending ? " DESC" : "")"
        let rows = try db.read { db in
            try db.rows("\(select)\(whereSQL) \(order) LIMIT \(limit + 1)", SQLArguments(args))
        }
        let kept = rows.prefix(limit)
        let next =
            rows.count > limit
            ? kept.last.map { row -> String in
                switch row.value("sort_key") {
                case .integer(let i): return String(i)
                case let v: return String.decode(v) ?? ""
                }
            } : nil
        return Page(items: kept.map(map), nextCursor: next.map(Self.encodeCursor))
    }

    // MARK: Names

    static func validName(_ name: String, _ kind: String) throws {
        guard !name.isEmpty, name.count <= 128, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.@".contains($0)) })
        else {
            throw ControlError.invalid(
                "\(kind) name \"\(DisplayText.escaped(String(name.prefix(128))))\" is invalid: use letters, digits, - _ . @", field: "name")
        }
    }

    static func text(_ s: String?, _ field: String) throws -> String? {
        guard let s else { return nil }
        guard s.count <= 2000 else { throw ControlError.invalid("\(field) is longer than 2000 characters", field: field) }
        return s
    }

    static func newID(_ prefix: String) -> String {
        prefix + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
    }

    static func unique<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch SQLError.uniqueViolation {
            throw ControlError.conflict("\(what) already exists")
        }
    }
}

// MARK: - Tenants

extension ControlPlane {
    public func createTenant(_ actor: ControlActor, name: String) throws -> Tenant {
        try require(actor, .admin, "creating a tenant")
        if actor.tenant != nil { throw ControlError.tenantMismatch(actor, "a new tenant") }
        try Self.validName(name, "tenant")
        let t = Tenant(id: Self.newID("t_"), name: name, createdAt: now())
        try Self.unique("tenant \"\(name)\"") {
            try db.write { db in
                try db.execute("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)", [t.id, t.name, t.createdAt])
                try audit(db, actor, "tenant.create", "tenant", t.id, tenants: [t.name], after: t)
            }
        }
        return t
    }

    public func tenants(_ actor: ControlActor, page: PageRequest = PageRequest()) throws -> Page<Tenant> {
        try require(actor, .viewer, "listing tenants")
        var conds: [String] = []
        var args: [any SQLBindable] = []
        if let scope = actor.tenant { conds.append("name = ?"); args.append(scope) }
        return try self.page(
            "SELECT *, name AS sort_key FROM tenants", conditions: conds, arguments: args, key: "name", page: page
        ) { Tenant(id: $0["id"], name: $0["name"], createdAt: $0["created_at"]) }
    }
}

// MARK: - Applications

extension ControlPlane {
    static func application(_ row: SQLRow) -> Application {
        Application(
            id: row["id"], name: row["name"], tenant: row["tenant"], status: row["status"],
            roles: (row["roles"] as String? ?? "").split(separator: " ").map(String.init),
            scopes: (row["scopes"] as String? ?? "").split(separator: " ").map(String.init),
            hasPassword: (row["password_hash"] as String?) != nil, createdAt: row["created_at"])
    }

    func applicationRow(_ db: any SQLTransaction, _ ref: String) throws -> SQLRow? {
        try db.row("SELECT * FROM consumers WHERE id = ? OR name = ?", [ref, ref])
    }

    /// The application by id or name, visible to `actor`.
    public func application(_ actor: ControlActor, _ ref: String) throws -> Application {
        try require(actor, .viewer, "reading an application")
        guard let row = try db.read({ try applicationRow($0, ref) }) else { throw missing(actor, "application \(ref)") }
        let app = Self.application(row)
        try requireTenant(actor, [app.tenant], "application \(ref)")
        return app
    }

    public func createApplication(
        _ actor: ControlActor, name: String, tenant: String? = nil, roles: [String] = [], scopes: [String] = []
    ) throws -> Application {
        try require(actor, .operator, "creating an application")
        try Self.validName(name, "consumer")
        let tenant = tenant ?? actor.tenant
        try requireTenant(actor, [tenant], "an application of tenant \(tenant ?? "(none)")")
        if !roles.isEmpty || !scopes.isEmpty { try requireGrants(actor) }
        let app = Application(
            id: Self.newID("c_"), name: name, tenant: tenant, status: "active", roles: roles,
            scopes: scopes,
            hasPassword: false, createdAt: now())
        try Self.unique("consumer \"\(name)\"") {
            try db.write { db in
                try db.execute(
                    "INSERT INTO consumers (id, name, status, tenant, roles, scopes, created_at) VALUES (?, ?, 'active', ?, ?, ?, ?)",
                    [app.id, name, tenant, roles.joined(separator: " "), scopes.joined(separator: " "), app.createdAt])
                try audit(db, actor, "application.create", "application", app.id, tenants: [tenant], after: app)
            }
        }
        return app
    }

    public func applications(
        _ actor: ControlActor, tenant: String? = nil, status: String? = nil, namePrefix: String? = nil, page: PageRequest = PageRequest()
    ) throws -> Page<Application> {
        try require(actor, .viewer, "listing applications")
        var conds: [String] = []
        var args: [any SQLBindable] = []
        if let scope = actor.tenant { conds.append("tenant = ?"); args.append(scope) }
        if let tenant { conds.append("tenant = ?"); args.append(tenant) }
        if let status { conds.append("status = ?"); args.append(status) }
        // Case-sensitive like the names themselves, and able to read the name index from the
        // prefix on instead of every row (GLOB in SQLite, starts_with in PostgreSQL).
        if let namePrefix { conds.append(db.dialect.prefixCondition("name")); args.append(db.dialect.prefixPattern(namePrefix)) }
        return try self.page(
            "SELECT *, name AS sort_key FROM consumers", conditions: conds, arguments: args, key: "name", page: page, map: Self.application)
    }

    /// Roles and scopes are one namespace for every tenant's routes: a tenant-scoped actor granting
    /// them could pass another tenant's `roles` and `scopes` policies. Unscoped actors only.
    func requireGrants(_ actor: ControlActor) throws {
        guard let scope = actor.tenant else { return }
        throw ControlError(
            Denial(
                code: .adminTenantMismatch,
                detail:
                    "granting roles or scopes needs an unscoped admin user: they are shared by the routes of every tenant; \(actor.label) is scoped to tenant \(scope)",
                required: ["an admin user without a tenant"], presented: ["tenant \(scope)"],
                hint: "Ask an unscoped operator to grant the roles or scopes."))
    }

    /// Changes an application's status (`active`, `suspended`), grants or tenant; nil leaves a field as it is.
    public func updateApplication(
        _ actor: ControlActor, _ ref: String, status: String? = nil, roles: [String]? = nil, scopes: [String]? = nil, tenant: String?? = nil
    ) throws -> Application {
        try require(actor, .operator, "changing an application")
        if roles != nil || scopes != nil { try requireGrants(actor) }
        if let status, !["active", "suspended"].contains(status) {
            throw ControlError.invalid(
                "status \"\(DisplayText.escaped(status))\" is invalid: expected active or suspended", field: "status")
        }
        return try db.write { db in
            guard let row = try applicationRow(db, ref) else {
                throw actor.tenant == nil
                    ? ControlError.notFound("no consumer named \"\(ref)\"") : ControlError.tenantMismatch(actor, "application \(ref)")
            }
            let before = Self.application(row)
            try requireTenant(actor, [before.tenant], "application \(ref)")
            if let tenant { try requireTenant(actor, [tenant], "tenant \(tenant ?? "(none)")") }
            var after = before
            if let status { after.status = status }
            if let roles { after.roles = roles }
            if let scopes { after.scopes = scopes }
            if let tenant { after.tenant = tenant }
            try db.execute(
                "UPDATE consumers SET status = ?, roles = ?, scopes = ?, tenant = ? WHERE id = ?",
                [after.status, after.roles.joined(separator: " "), after.scopes.joined(separator: " "), after.tenant, after.id])
            try audit(
                db, actor, "application.update", "application", after.id, tenants: [before.tenant, after.tenant], before: before,
                after: after)
            return after
        }
    }

    /// Sets or clears (nil) an application's bcrypt password hash for `basic` authentication.
    public func setApplicationPassword(_ actor: ControlActor, _ ref: String, hash: String?) throws {
        try require(actor, .operator, "setting an application's password")
        try db.write { db in
            guard let row = try applicationRow(db, ref) else {
                throw actor.tenant == nil
                    ? ControlError.notFound("no consumer named \"\(ref)\"") : ControlError.tenantMismatch(actor, "application \(ref)")
            }
            let app = Self.application(row)
            try requireTenant(actor, [app.tenant], "application \(ref)")
            try db.execute("UPDATE consumers SET password_hash = ? WHERE id = ?", [hash, app.id])
            // The audit entry says that the password changed, never the hash.
            try audit(
                db, actor, hash == nil ? "application.password_clear" : "application.password_set", "application", app.id,
                tenants: [app.tenant])
        }
    }
}

// MARK: - Keys

extension ControlPlane {
    static func keyInfo(_ row: SQLRow) -> APIKeyInfo {
        APIKeyInfo(
            id: row["id"], application: row["consumer_name"], applicationID: row["consumer_id"], createdAt: row["created_at"],
            expiresAt: row["expires_at"], revokedAt: row["revoked_at"])
    }

    /// Creates a key; the result holds the key, which is not stored and never shown again.
    public func createKey(_ actor: ControlActor, application ref: String, expiresAt: Double? = nil) throws -> CreatedKey {
        try require(actor, .operator, "creating an API key")
        if let e = expiresAt, !(e > now()) { throw ControlError.invalid("expires_at is not in the future", field: "expires_at") }
        return try db.write { db in
            guard let row = try applicationRow(db, ref) else {
                throw actor.tenant == nil
                    ? ControlError.notFound(
                        "no consumer named \"\(ref)\"; create it with `gatehouse consumers create \(ref)`")
                    : ControlError.tenantMismatch(actor, "application \(ref)")
            }
            let app = Self.application(row)
            try requireTenant(actor, [app.tenant], "application \(ref)")
            let (key, id) = APIKeyFormat.generate()
            let info = APIKeyInfo(
                id: id, application: app.name, applicationID: app.id, createdAt: now(), expiresAt: expiresAt, revokedAt: nil)
            try db.execute(
                "INSERT INTO api_keys (id, consumer_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                [id, app.id, Data(APIKeyFormat.hash(key)), info.createdAt, expiresAt])
            try audit(db, actor, "key.create", "key", id, tenants: [app.tenant], after: info)
            return CreatedKey(key: key, info: info)
        }
    }

    public func keys(_ actor: ControlActor, application: String? = nil, page: PageRequest = PageRequest()) throws -> Page<APIKeyInfo> {
        try require(actor, .viewer, "listing API keys")
        var conds: [String] = []
        var args: [any SQLBindable] = []
        if let scope = actor.tenant { conds.append("c.tenant = ?"); args.append(scope) }
        if let application { conds.append("(c.name = ? OR c.id = ?)"); args += [application, application] }
        return try self.page(
            "SELECT k.*, k.id AS sort_key, c.name AS consumer_name FROM api_keys k JOIN consumers c ON c.id = k.consumer_id",
            conditions: conds, arguments: args, key: "k.id", page: page, map: Self.keyInfo)
    }

    public func revokeKey(_ actor: ControlActor, id: String) throws -> APIKeyInfo {
        try require(actor, .operator, "revoking an API key")
        return try db.write { db in
            guard
                let row = try db.row(
                    "SELECT k.*, c.name AS consumer_name, c.tenant AS tenant FROM api_keys k JOIN consumers c ON c.id = k.consumer_id WHERE k.id = ?",
                    [id])
            else {
                throw actor.tenant == nil
                    ? ControlError.notFound("no active key with id \"\(id)\"") : ControlError.tenantMismatch(actor, "key \(id)")
            }
            try requireTenant(actor, [row["tenant"]], "key \(id)")
            let before = Self.keyInfo(row)
            guard before.revokedAt == nil else { throw ControlError.notFound("no active key with id \"\(id)\"") }
            var after = before
            after.revokedAt = now()
            try db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", [after.revokedAt, id])
            try audit(db, actor, "key.revoke", "key", id, tenants: [row["tenant"]], before: before, after: after)
            return after
        }
    }
}

// MARK: - Services

extension ControlPlane {
    static func service(_ row: SQLRow) -> APIService {
        APIService(
            id: row["id"], name: row["name"], tenant: row["tenant"], approval: row["approval"],
            routes: (row["routes"] as String? ?? "").split(separator: " ").map(String.init), createdAt: row["created_at"])
    }

    func serviceRow(_ db: any SQLTransaction, _ ref: String) throws -> SQLRow? {
        try db.row("SELECT * FROM services WHERE id = ? OR name = ?", [ref, ref])
    }

    public func createService(
        _ actor: ControlActor, name: String, tenant: String? = nil, approval: String = "manual", routes: [String] = []
    ) throws -> APIService {
        try require(actor, .operator, "creating a service")
        try Self.validName(name, "service")
        guard ["auto", "manual"].contains(approval) else {
            throw ControlError.invalid(
                "approval \"\(DisplayText.escaped(approval))\" is invalid: expected auto or manual", field: "approval")
        }
        for r in routes where r.isEmpty || r.contains(" ") || r.count > 256 {
            throw ControlError.invalid(
                "route \"\(DisplayText.escaped(String(r.prefix(256))))\" is invalid: a route name or path prefix without spaces",
                field: "routes")
        }
        let tenant = tenant ?? actor.tenant
        try requireTenant(actor, [tenant], "a service of tenant \(tenant ?? "(none)")")
        let s = APIService(id: Self.newID("s_"), name: name, tenant: tenant, approval: approval, routes: routes, createdAt: now())
        try Self.unique("service \"\(name)\"") {
            try db.write { db in
                try db.execute(
                    "INSERT INTO services (id, name, tenant, approval, routes, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [s.id, s.name, s.tenant, s.approval, s.routes.joined(separator: " "), s.createdAt])
                try audit(db, actor, "service.create", "service", s.id, tenants: [tenant], after: s)
            }
        }
        return s
    }

    /// The service catalogue: every admin sees every service (name, owner tenant, approval mode),
    /// so that applications know what to apply for; only the owner tenant changes one.
    public func services(_ actor: ControlActor, tenant: String? = nil, page: PageRequest = PageRequest()) throws -> Page<APIService> {
        try require(actor, .viewer, "listing services")
        var conds: [String] = []
        var args: [any SQLBindable] = []
        if let tenant { conds.append("tenant = ?"); args.append(tenant) }
        return try self.page(
            "SELECT *, name AS sort_key FROM services", conditions: conds, arguments: args, key: "name", page: page, map: Self.service)
    }

    public func service(_ actor: ControlActor, _ ref: String) throws -> APIService {
        try require(actor, .viewer, "reading a service")
        guard let row = try db.read({ try serviceRow($0, ref) }) else { throw ControlError.notFound("no service \(ref)") }
        return Self.service(row)
    }

    public func updateService(_ actor: ControlActor, _ ref: String, approval: String? = nil, routes: [String]? = nil) throws -> APIService {
        try require(actor, .operator, "changing a service")
        if let approval, !["auto", "manual"].contains(approval) {
            throw ControlError.invalid(
                "approval \"\(DisplayText.escaped(approval))\" is invalid: expected auto or manual", field: "approval")
        }
        return try db.write { db in
            guard let row = try serviceRow(db, ref) else { throw ControlError.notFound("no service \(ref)") }
            let before = Self.service(row)
            try requireTenant(actor, [before.tenant], "service \(ref)")
            var after = before
            if let approval { after.approval = approval }
            if let routes { after.routes = routes }
            try db.execute(
                "UPDATE services SET approval = ?, routes = ? WHERE id = ?",
                [after.approval, after.routes.joined(separator: " "), after.id])
            try audit(db, actor, "service.update", "service", after.id, tenants: [after.tenant], before: before, after: after)
            return after
        }
    }
}

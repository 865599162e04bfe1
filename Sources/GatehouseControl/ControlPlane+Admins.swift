import Crypto
import Foundation
import GatehouseCore
import GatehouseStore
import HummingbirdBcrypt

/// Admin users and their tokens, and authentication of admin API requests.
///
/// Tokens are `gha_` and 43 base64url characters (256 random bits); the store keeps only their
/// SHA-256, and a presented token is found by the hash of what was presented, so no comparison
/// ever runs over the token itself. Passwords are bcrypt hashes.
extension ControlPlane {
    public static let tokenPrefix = "gha_"

    static func tokenHash(_ token: String) -> Data { Data(SHA256.hash(data: Data(token.utf8))) }

    static func adminUser(_ row: SQLRow) -> AdminUser {
        AdminUser(
            id: row["id"], name: row["name"], role: AdminRole(rawValue: row["role"]) ?? .viewer, tenant: row["tenant"],
            hasPassword: (row["password_hash"] as String?) != nil, createdAt: row["created_at"])
    }

    /// Whether `actor` may manage `user` (or a user with this role and tenant): an admin or owner
    /// whose role is at least the user's, and, if scoped, of the same tenant. Only an owner makes
    /// an owner.
    func requireManage(_ actor: ControlActor, role: AdminRole, tenant: String?, _ action: String) throws {
        try require(actor, .admin, action)
        // The tenant first, and named only as the caller's action: a scoped admin learns nothing
        // of another tenant's users (not their role, not their tenant, not that they exist).
        if actor.tenant != nil, tenant != actor.tenant { throw ControlError.tenantMismatch(actor, action) }
        guard role <= actor.role else {
            throw ControlError(
                Denial(
                    code: .adminRoleInsufficient,
                    detail:
                        "\(action) with role \(role.rawValue) needs the role \(role.rawValue) or above; \(actor.label) has \(actor.role.rawValue)",
                    required: ["role \(role.rawValue)"], presented: ["role \(actor.role.rawValue)"]))
        }
    }

    /// Creates an admin user; `password` (optional) is stored as a bcrypt hash of `cost`.
    public func createAdminUser(
        _ actor: ControlActor, name: String, role: AdminRole, tenant: String? = nil, password: String? = nil, cost: UInt8 = 12
    ) throws -> AdminUser {
        try Self.validName(name, "admin user")
        // The names the audit log gives to actors that are not admin users.
        guard Self.reservedActorNames[name] == nil else {
            throw ControlError.invalid(
                "\(name) is the audit log's name for \(Self.reservedActorNames[name] ?? "another actor"); choose another", field: "name")
        }
        let tenant = tenant ?? actor.tenant
        try requireManage(actor, role: role, tenant: tenant, "creating an admin user")
        if let password, password.count < 8 { throw ControlError.invalid("the password is shorter than 8 characters", field: "password") }
        // bcrypt reads 72 bytes: a longer password would accept any text after them.
        if let password, password.utf8.count > 72 {
            throw ControlError.invalid("the password is longer than 72 bytes, all bcrypt reads", field: "password")
        }
        let hash = password.map { Bcrypt.hash($0, cost: cost) }
        let user = AdminUser(id: Self.newID("u_"), name: name, role: role, tenant: tenant, hasPassword: hash != nil, createdAt: now())
        try Self.unique("admin user \"\(name)\"") {
            try db.write { db in
                try db.execute(
                    "INSERT INTO admin_users (id, name, password_hash, role, tenant, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    [user.id, name, hash, role.rawValue, tenant, user.createdAt])
                try audit(db, actor, "admin_user.create", "admin_user", user.id, tenants: [tenant], after: user)
            }
        }
        return user
    }

    func adminUserRow(_ db: any SQLTransaction, _ ref: String) throws -> SQLRow? {
        try db.row("SELECT * FROM admin_users WHERE id = ? OR name = ?", [ref, ref])
    }

    public func adminUsers(_ actor: ControlActor, page: PageRequest = PageRequest()) throws -> Page<AdminUser> {
        try require(actor, .admin, "listing admin users")
        var conds: [String] = []
        var args: [any SQLBindable] = []
        if let scope = actor.tenant { conds.append("tenant = ?"); args.append(scope) }
        return try self.page(
            "SELECT *, name AS sort_key FROM admin_users", conditions: conds, arguments: args, key: "name", page: page, map: Self.adminUser)
    }

    /// Creates a token for an admin user (an admin may make one for users it manages; anyone for
    /// itself). The result holds the token, which is not stored and never shown again.
    public func createAdminToken(_ actor: ControlActor, user ref: String) throws -> CreatedAdminToken {
        try db.write { db in
            // The role is checked before the lookup, so that a non-admin learns nothing of which
            // users exist.
            let row = try adminUserRow(db, ref)
            let isSelf = actor != .cli && row.map { Self.adminUser($0).name == actor.name } == true
            if !isSelf { try require(actor, .admin, "creating a token for an admin user") }
            guard let row else { throw missing(actor, "admin user \(ref)") }
            let user = Self.adminUser(row)
            if !isSelf { try requireManage(actor, role: user.role, tenant: user.tenant, "creating a token for an admin user") }
            var rng = SystemRandomNumberGenerator()
            let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let token =
                Self.tokenPrefix
                + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            let info = AdminTokenInfo(id: Self.newID("tok_"), user: user.name, createdAt: now(), revokedAt: nil)
            try db.execute(
                "INSERT INTO admin_tokens (id, user_id, hash, created_at) VALUES (?, ?, ?, ?)",
                [info.id, user.id, Self.tokenHash(token), info.createdAt])
            try audit(db, actor, "admin_token.create", "admin_token", info.id, tenants: [user.tenant], after: info)
            return CreatedAdminToken(token: token, info: info)
        }
    }

    public func revokeAdminToken(_ actor: ControlActor, id: String) throws -> AdminTokenInfo {
        try db.write { db in
            let found = try db.row(
                "SELECT t.*, u.name AS user_name, u.role AS role, u.tenant AS tenant FROM admin_tokens t JOIN admin_users u ON u.id = t.user_id WHERE t.id = ?",
                [id])
            let isSelf = actor != .cli && found.map { ($0["user_name"] as String) == actor.name } == true
            if !isSelf { try require(actor, .admin, "revoking an admin token") }
            guard let row = found else { throw missing(actor, "admin token \(id)") }
            let userName: String = row["user_name"]
            if !isSelf {
                try requireManage(actor, role: AdminRole(rawValue: row["role"]) ?? .owner, tenant: row["tenant"], "revoking an admin token")
            }
            let before = AdminTokenInfo(id: id, user: userName, createdAt: row["created_at"], revokedAt: row["revoked_at"])
            guard before.revokedAt == nil else { throw ControlError.conflict("admin token \(id) is already revoked") }
            var after = before
            after.revokedAt = now()
            try db.execute("UPDATE admin_tokens SET revoked_at = ? WHERE id = ?", [after.revokedAt, id])
            try audit(db, actor, "admin_token.revoke", "admin_token", id, tenants: [row["tenant"]], before: before, after: after)
            return after
        }
    }

    /// The actor behind a Bearer admin token; `adminUnauthenticated` when it matches no live token.
    public func authenticate(token: String, source: String) throws -> ControlActor {
        guard token.hasPrefix(Self.tokenPrefix), token.utf8.count <= 128 else {
            throw ControlError.unauthenticated("the Bearer token is not an admin token (admin tokens start \(Self.tokenPrefix))")
        }
        let row = try db.read { db in
            try db.row(
                "SELECT u.* FROM admin_tokens t JOIN admin_users u ON u.id = t.user_id WHERE t.hash = ? AND t.revoked_at IS NULL",
                [Self.tokenHash(token)])
        }
        guard let row else { throw ControlError.unauthenticated("the admin token is not known or was revoked") }
        let user = Self.adminUser(row)
        return ControlActor(name: user.name, role: user.role, tenant: user.tenant, source: source)
    }

    /// The actor behind Basic credentials of an admin user. An unknown user costs a bcrypt
    /// verification too, so the answer's timing does not tell which user names exist.
    public func authenticate(user name: String, password: String, source: String) throws -> ControlActor {
        let row = try db.read { db in try db.row("SELECT * FROM admin_users WHERE name = ?", [name]) }
        let hash = (row?["password_hash"] as String?) ?? Self.decoyHash
        let ok = Bcrypt.verify(password, hash: hash)
        guard ok, let row, (row["password_hash"] as String?) != nil else {
            throw ControlError.unauthenticated("the admin user name or password is wrong")
        }
        let user = Self.adminUser(row)
        return ControlActor(name: user.name, role: user.role, tenant: user.tenant, source: source)
    }

    /// The id of the admin user `name`, for a session made after `authenticate(user:password:)`.
    public func adminUserID(name: String) throws -> String? {
        try db.read { db in try db.scalar("SELECT id FROM admin_users WHERE name = ?", [name]) }
    }

    /// The actor a console session of admin user `id` acts as: its current role and tenant (a
    /// change made since sign-in applies at once). Nil when the user no longer exists.
    public func adminActor(userID id: String, source: String) throws -> ControlActor? {
        let row = try db.read { db in try db.row("SELECT * FROM admin_users WHERE id = ?", [id]) }
        guard let row else { return nil }
        let user = Self.adminUser(row)
        return ControlActor(name: user.name, role: user.role, tenant: user.tenant, source: source)
    }

    static let reservedActorNames = ["cli": "the local command line", "system": "expiry", "auto-approval": "automatic approval"]

    /// A bcrypt hash of a random password, verified against when the user does not exist.
    static let decoyHash = Bcrypt.hash(UUID().uuidString, cost: 12)
}

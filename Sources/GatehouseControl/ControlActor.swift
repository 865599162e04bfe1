import GatehouseCore

/// An admin role. Each includes the ones before it: `viewer` reads, `operator` manages
/// applications, keys, services and subscriptions, `admin` also manages tenants and admin users,
/// `owner` can do everything, including making owners.
public enum AdminRole: String, Sendable, Codable, CaseIterable, Comparable {
    case viewer
    case `operator`
    case admin
    case owner

    var rank: Int {
        switch self {
        case .viewer: 0
        case .operator: 1
        case .admin: 2
        case .owner: 3
        }
    }

    public static func < (lhs: AdminRole, rhs: AdminRole) -> Bool { lhs.rank < rhs.rank }
}

/// Who performs a control-plane operation: an admin user (with its role and optional tenant
/// scope) authenticated by the admin API, or the local CLI, which acts as an unscoped owner.
///
/// (Named `ControlActor`, not `Actor`, so as not to shadow Swift's `Actor` protocol.)
public struct ControlActor: Sendable, Equatable {
    /// The admin user's name, or `cli`.
    public var name: String
    public var role: AdminRole
    /// When set, the actor sees and changes only this tenant's objects.
    public var tenant: String?
    /// Where the request came from (the admin client's address, or `local`), for the audit log.
    public var source: String

    public init(name: String, role: AdminRole, tenant: String? = nil, source: String) {
        self.name = name
        self.role = role
        self.tenant = tenant
        self.source = source
    }

    /// The local command line: the store file's owner, so an unscoped owner.
    public static let cli = ControlActor(name: "cli", role: .owner, tenant: nil, source: "local")

    /// "alice (operator of tenant acme)".
    public var label: String { "\(name) (\(role.rawValue)\(tenant.map { " of tenant \($0)" } ?? ""))" }
}

/// Whoever an audit entry and a subscription transition name: an admin actor, or a developer
/// signed in to the portal.
public protocol AuditedActor: Sendable {
    /// The name the audit log records (`alice`, `cli`, `developer:dana`).
    var auditName: String { get }
    /// The role the audit log records (an admin role, or `developer`).
    var auditRole: String { get }
    /// Where the request came from, for the audit log.
    var source: String { get }
}

extension ControlActor: AuditedActor {
    public var auditName: String { name }
    public var auditRole: String { role.rawValue }
}

/// A control-plane refusal or failure: a denial with the gateway's contract (reason code, status,
/// detail, required against presented, hint), rendered by the admin API as problem+json and by the
/// CLI as its message.
public struct ControlError: Error, CustomStringConvertible, Equatable {
    public var denial: Denial
    public init(_ denial: Denial) { self.denial = denial }
    public var code: ReasonCode { denial.code }
    public var description: String { denial.detail }

    static func roleInsufficient(_ actor: ControlActor, needs role: AdminRole, to action: String) -> ControlError {
        ControlError(
            Denial(
                code: .adminRoleInsufficient,
                detail: "\(action) needs the role \(role.rawValue) or above; \(actor.label) has \(actor.role.rawValue)",
                required: ["role \(role.rawValue)"], presented: ["role \(actor.role.rawValue)"]))
    }

    /// The same answer whether the object is in another tenant or does not exist, so that a scoped
    /// admin learns nothing of other tenants' objects.
    static func tenantMismatch(_ actor: ControlActor, _ what: String) -> ControlError {
        ControlError(
            Denial(
                code: .adminTenantMismatch,
                detail: "\(what) is not in tenant \(actor.tenant ?? "?"), the only tenant \(actor.name) may see or change",
                required: ["an object of tenant \(actor.tenant ?? "?")"],
                presented: ["admin \(actor.name) scoped to tenant \(actor.tenant ?? "?")"]))
    }

    static func notFound(_ what: String, hint: String? = nil) -> ControlError {
        ControlError(Denial(code: .adminNotFound, detail: what, hint: hint))
    }

    public static func invalid(_ what: String, field: String? = nil) -> ControlError {
        ControlError(Denial(code: .adminInvalidRequest, detail: what, required: field.map { [$0] } ?? []))
    }

    static func conflict(_ what: String) -> ControlError {
        ControlError(Denial(code: .adminConflict, detail: what))
    }

    static func unauthenticated(_ why: String) -> ControlError {
        ControlError(
            Denial(
                code: .adminUnauthenticated, detail: why, required: ["Bearer admin token or Basic admin user"],
                headers: [HeaderField("WWW-Authenticate", "Bearer realm=\"gatehouse-admin\"")]))
    }
}

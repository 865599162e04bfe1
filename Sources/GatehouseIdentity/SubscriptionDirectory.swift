import GatehouseCore

/// A service as the data plane sees it: a named group of routes that applications subscribe to.
public struct ServiceRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    /// The tenant that owns the service (its operators approve subscriptions), if any.
    public var tenant: String?
    /// `auto` (an application's application is approved at once) or `manual`.
    public var approval: String
    public init(id: String, name: String, tenant: String?, approval: String) {
        self.id = id
        self.name = name
        self.tenant = tenant
        self.approval = approval
    }
}

/// One application's subscription to one service, as the data plane sees it: its current state
/// and the transition that led there (who, when, why), with the audit entry that recorded it.
public struct SubscriptionRecord: Sendable, Equatable {
    public var id: String
    public var applicationID: String
    public var service: String
    /// `pending`, `approved`, `rejected`, `cancelled`, `revoked` or `expired`.
    public var state: String
    /// When the application applied (seconds since 1970).
    public var appliedAt: Double
    /// When the current state was entered.
    public var changedAt: Double
    /// Who made the last transition (an admin user's name, or `cli`).
    public var actor: String?
    /// The applicant's reason for applying.
    public var reason: String?
    /// The approver's opinion on the last decision (approval, rejection, revocation).
    public var opinion: String?
    /// When an approved subscription stops being valid.
    public var expiresAt: Double?
    /// The audit-log entry of the last transition.
    public var auditEntry: Int64?

    public init(
        id: String, applicationID: String, service: String, state: String, appliedAt: Double, changedAt: Double, actor: String?,
        reason: String?, opinion: String?, expiresAt: Double?, auditEntry: Int64?
    ) {
        self.id = id
        self.applicationID = applicationID
        self.service = service
        self.state = state
        self.appliedAt = appliedAt
        self.changedAt = changedAt
        self.actor = actor
        self.reason = reason
        self.opinion = opinion
        self.expiresAt = expiresAt
        self.auditEntry = auditEntry
    }

    /// The state at `now`: an approved subscription whose expiry has passed is `expired`.
    public func effectiveState(at now: Double) -> String {
        if state == "approved", let e = expiresAt, e <= now { return "expired" }
        return state
    }
}

/// Synchronous, in-memory lookups of services and subscriptions for the request path (the same
/// snapshot as the credentials, reloaded when the store's revision changes).
public protocol SubscriptionDirectory: Sendable {
    /// Whether the snapshot could be loaded at all; when false, checks fail closed.
    var isAvailable: Bool { get }
    /// The application (consumer) with this id: a principal whose consumer id names none (a token's
    /// `jwt <iss>|<sub>`) is no application and cannot hold a subscription.
    func consumer(id: String) -> ConsumerRecord?
    func service(named name: String) -> ServiceRecord?
    func subscription(application applicationID: String, service: String) -> SubscriptionRecord?
    /// The application a principal that is no application acts as (a JWT's `jwt <iss>|<sub>`,
    /// mapped by the control plane), if any.
    func application(identity: String) -> String?
}

extension SubscriptionDirectory {
    /// Directories without identity mappings map nothing.
    public func application(identity: String) -> String? { nil }
}

import GatehouseIdentity
import GatehouseStore

/// A team that owns applications and services.
public struct Tenant: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var createdAt: Double
}

/// An application (the data plane's consumer): what calls the APIs, with its credentials.
public struct Application: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var tenant: String?
    /// `active` or `suspended`.
    public var status: String
    public var roles: [String]
    public var scopes: [String]
    /// Whether a password is set for `basic` authentication (the hash is never shown).
    public var hasPassword: Bool
    public var createdAt: Double
}

/// An API key by id: never the key or its hash.
public struct APIKeyInfo: Sendable, Equatable, Codable {
    public var id: String
    public var application: String
    public var applicationID: String
    public var createdAt: Double
    public var expiresAt: Double?
    public var revokedAt: Double?
}

/// A key as created: the key itself is in this value once and nowhere else.
public struct CreatedKey: Sendable, Codable {
    public var key: String
    public var info: APIKeyInfo
}

/// A named group of routes that applications subscribe to.
public struct APIService: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    /// The owner tenant: its operators approve subscriptions.
    public var tenant: String?
    /// `auto` or `manual`.
    public var approval: String
    /// Route names or path prefixes (`/payments/`) the service groups, for people and the
    /// `subscription` policy's documentation; the policy names its service itself.
    public var routes: [String]
    public var createdAt: Double
}

/// An application's subscription to a service.
public struct Subscription: Sendable, Equatable, Codable {
    public var id: String
    public var applicationID: String
    public var application: String
    public var service: String
    /// The state now: `approved` past its expiry reads `expired`.
    public var state: String
    public var appliedAt: Double
    public var changedAt: Double
    public var actor: String?
    public var reason: String?
    public var opinion: String?
    public var expiresAt: Double?
    public var auditEntry: Int64?
    /// Every transition, oldest first (only in single-subscription answers).
    public var history: [SubscriptionEvent]?
}

/// One transition of a subscription.
public struct SubscriptionEvent: Sendable, Equatable, Codable {
    public var from: String?
    public var to: String
    public var actor: String
    public var time: Double
    public var reason: String?
    public var opinion: String?
    public var auditEntry: Int64?
}

/// An admin user: never its password hash.
public struct AdminUser: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var role: AdminRole
    public var tenant: String?
    public var hasPassword: Bool
    public var createdAt: Double
}

/// An admin token by id: never the token or its hash.
public struct AdminTokenInfo: Sendable, Equatable, Codable {
    public var id: String
    public var user: String
    public var createdAt: Double
    public var revokedAt: Double?
}

/// A token as created: the token itself is in this value once and nowhere else.
public struct CreatedAdminToken: Sendable, Codable {
    public var token: String
    public var info: AdminTokenInfo
}

/// One page of a list: the items and, when more follow, the cursor that continues it.
public struct Page<Item: Sendable & Codable>: Sendable, Codable {
    public var items: [Item]
    public var nextCursor: String?
    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// Which page of a list to read: at most `limit` items (1...500, default 50) after `cursor`.
public struct PageRequest: Sendable {
    public var limit: Int
    public var cursor: String?
    public init(limit: Int = 50, cursor: String? = nil) {
        self.limit = limit
        self.cursor = cursor
    }
    public static let maximumLimit = 500
}

/// A token issuer and subject that act as an application: a caller authenticated by `jwt` with
/// them holds the application's subscriptions.
public struct JWTSubject: Sendable, Equatable, Codable {
    public var issuer: String
    public var subject: String
    public var applicationID: String
    public var application: String
    public var createdAt: Double
}

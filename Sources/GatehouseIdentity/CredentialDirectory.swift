import GatehouseCore

/// A consumer as the checks see it.
public struct ConsumerRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    /// "active" or "suspended".
    public var status: String
    public var tenant: String?
    public var roles: [String]
    public var scopes: [String]
    /// bcrypt hash for `basic` authentication, if a password was set.
    public var passwordHash: String?
    public init(
        id: String, name: String, status: String = "active", tenant: String? = nil, roles: [String] = [], scopes: [String] = [],
        passwordHash: String? = nil
    ) {
        self.id = id
        self.name = name
        self.status = status
        self.tenant = tenant
        self.roles = roles
        self.scopes = scopes
        self.passwordHash = passwordHash
    }
}

/// An API key as stored: its id and hash, never the key.
public struct KeyRecord: Sendable, Equatable {
    public var keyID: String
    public var consumerID: String
    public var hash: [UInt8]
    public var createdAt: Double
    public var expiresAt: Double?
    public var revokedAt: Double?
    public init(keyID: String, consumerID: String, hash: [UInt8], createdAt: Double, expiresAt: Double? = nil, revokedAt: Double? = nil) {
        self.keyID = keyID
        self.consumerID = consumerID
        self.hash = hash
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }
}

/// Synchronous, in-memory lookups of consumers and credentials for the request path.
/// Implementations keep a snapshot of the store and refresh it in the background.
public protocol CredentialDirectory: Sendable {
    func key(id: String) -> KeyRecord?
    func consumer(id: String) -> ConsumerRecord?
    /// Whether the snapshot could be loaded at all; when false, checks fail closed.
    var isAvailable: Bool { get }
    /// The consumer with this name (basic auth user names, certificate identities).
    func consumer(named name: String) -> ConsumerRecord?
}

extension CredentialDirectory {
    /// Directories that index consumers only by id find no names.
    public func consumer(named name: String) -> ConsumerRecord? { nil }
}

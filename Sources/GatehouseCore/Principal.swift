/// Who the caller is, as established by the authenticating checks; later checks read it.
public struct Principal: Sendable, Equatable, Codable {
    /// How the principal was established: "api_key", "jwt", "basic", "mtls".
    public var method: String
    public var consumerID: String?
    public var consumerName: String?
    /// API key id or certificate fingerprint: never the secret itself.
    public var keyID: String?
    public var subject: String?
    public var scopes: [String]
    public var roles: [String]
    public var tenant: String?
    /// Token claims (JWT) for ownership and claim-based checks.
    public var claims: [String: JSONValue]

    public init(
        method: String, consumerID: String? = nil, consumerName: String? = nil, keyID: String? = nil,
        subject: String? = nil, scopes: [String] = [], roles: [String] = [], tenant: String? = nil,
        claims: [String: JSONValue] = [:]
    ) {
        self.method = method
        self.consumerID = consumerID
        self.consumerName = consumerName
        self.keyID = keyID
        self.subject = subject
        self.scopes = scopes
        self.roles = roles
        self.tenant = tenant
        self.claims = claims
    }

    /// Merges a later authentication into this one (e.g. mTLS then JWT): set fields win.
    public mutating func merge(_ other: Principal) {
        method = method + "+" + other.method
        consumerID = other.consumerID ?? consumerID
        consumerName = other.consumerName ?? consumerName
        keyID = other.keyID ?? keyID
        subject = other.subject ?? subject
        scopes = Array(Set(scopes).union(other.scopes)).sorted()
        roles = Array(Set(roles).union(other.roles)).sorted()
        tenant = other.tenant ?? tenant
        claims.merge(other.claims) { _, new in new }
    }
}

/// A JSON value, for token claims and parsed bodies.
public enum JSONValue: Sendable, Equatable, Hashable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n): try c.encode(n)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// The value as a plain string when it is a scalar (numbers without a trailing ".0").
    public var scalarString: String? {
        switch self {
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .number(let n):
            if n.rounded() == n, abs(n) < 1e15 { return String(Int64(n)) }
            return String(n)
        default: return nil
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
}

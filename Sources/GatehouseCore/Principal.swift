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

    /// The identity `rate_limit` counts by for `key: consumer`: the consumer the credential
    /// belongs to (API key, Basic user, mapped certificate) or, for a token, its issuer and subject.
    /// Nil for an unauthenticated request.
    public var limitConsumer: String? { consumerID }

    /// The identity `rate_limit` counts by for `key: key`: the credential itself (API key id,
    /// certificate fingerprint, token `jti`); a Basic user, whose credential is the user, counts as
    /// the user. Nil for an unauthenticated request.
    public var limitKey: String? { keyID ?? consumerID.map { "user " + $0 } }

    /// The consumer id of a JWT principal: `jwt <iss>|<sub>`, so one subject of one issuer is one
    /// caller whatever key signed its tokens. A token without `iss` is named by the policy that
    /// accepted it instead (`policy <id>`); one without `sub` by the token (`token <fingerprint>`).
    /// A `sub` that is present is a string: the verifier refuses any other value (RFC 7519), which
    /// would otherwise fall back to the fingerprint and give each token a bucket of its own.
    /// `|` and `\` in the parts are escaped, so two different pairs never give one id.
    public static func jwtConsumerID(issuer: String?, subject: String?, policy: String, fingerprint: String) -> String {
        "jwt " + escapeIdentityPart(issuer ?? "policy " + policy) + "|" + escapeIdentityPart(subject ?? "token " + fingerprint)
    }

    /// The key id of a JWT principal: the token's own identity, `jti <jti>` (with its issuer), or
    /// without a `jti` the subject's identity (`sub <iss>|<sub>`). Never the signing key's kid:
    /// every user of an issuer's key would share it.
    public static func jwtKeyID(jti: String?, issuer: String?, subject: String?, policy: String, fingerprint: String) -> String {
        if let jti { return "jti " + escapeIdentityPart(jti) + " from " + escapeIdentityPart(issuer ?? "policy " + policy) }
        return "sub " + String(jwtConsumerID(issuer: issuer, subject: subject, policy: policy, fingerprint: fingerprint).dropFirst(4))
    }

    static func escapeIdentityPart(_ s: String) -> String {
        guard s.contains("|") || s.contains("\\") else { return s }
        var out = ""
        for c in s {
            if c == "|" || c == "\\" { out.append("\\") }
            out.append(c)
        }
        return out
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
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? c.decode(Double.self) {
            self = .number(n)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
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

    /// The value as text for display: scalars as `scalarString`, arrays and objects (keys sorted)
    /// spelled out.
    public var displayText: String {
        switch self {
        case .array(let a): "[" + a.map(\.displayText).joined(separator: ", ") + "]"
        case .object(let o): "{" + o.keys.sorted().map { "\($0): \(o[$0]!.displayText)" }.joined(separator: ", ") + "}"
        case .null: "null"
        default: scalarString ?? ""
        }
    }

    /// The value as a plain string when it is a scalar, for display (numbers without a trailing
    /// ".0"; a number that is not an exact integer is shown as the Double it was read as, e.g.
    /// `9.007199254740992e+15`). Comparisons use ``exactText``.
    public var scalarString: String? {
        switch self {
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .number(let n):
            if let t = JSONValue.exactInteger(n) { return t }
            return String(n)
        default: return nil
        }
    }

    /// The value as text that names it exactly, for comparing with request data (`owner`,
    /// `tenant`): a string as it is, a number only when it is an integer within ±(2^53 − 1) (its
    /// decimal text). Nil for any other number, since a Double cannot tell which decimal text was
    /// sent (9007199254740992 and 9007199254740993 read as the same Double), and for booleans,
    /// null, arrays and objects.
    public var exactText: String? {
        switch self {
        case .string(let s): return s
        case .number(let n): return JSONValue.exactInteger(n)
        default: return nil
        }
    }

    /// The largest integer every JSON reader holds exactly: 2^53 − 1 (JavaScript's
    /// `Number.MAX_SAFE_INTEGER`).
    public static let maxExactInteger: Double = 9_007_199_254_740_991

    /// `n` in decimal when it is an integer that a Double holds exactly and unambiguously.
    static func exactInteger(_ n: Double) -> String? {
        guard n.isFinite, n.rounded() == n, abs(n) <= maxExactInteger else { return nil }
        return String(Int64(n))
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
}

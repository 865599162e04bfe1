import Foundation

/// The doctor's stable cause vocabulary (DESIGN.md, "The doctor's contract").
public enum DenialCause: String, Codable, Sendable, CaseIterable {
    case missingCredentials = "missing_credentials"
    case invalidCredentials = "invalid_credentials"
    case expiredCredentials = "expired_credentials"
    case insufficientScope = "insufficient_scope"
    case insufficientPermissions = "insufficient_permissions"
    case explicitDeny = "explicit_deny"
    case ipNotAllowed = "ip_not_allowed"
    case geoBlocked = "geo_blocked"
    case wafBlocked = "waf_blocked"
    case rateLimited = "rate_limited"
    case csrf
    case cors
    case signatureMismatch = "signature_mismatch"
    case expiredURL = "expired_url"
    case directoryListing = "directory_listing"
    case filesystemPermission = "filesystem_permission"
    case configDeny = "config_deny"
    case accountSuspended = "account_suspended"
    case resourceState = "resource_state"
    case botChallenge = "bot_challenge"
    case unknown

    /// One sentence a person understands without the docs.
    public var explanation: String {
        switch self {
        case .missingCredentials: "the request carried no credentials (no token, key, cookie or password) where some were required"
        case .invalidCredentials: "credentials were sent but were not accepted (wrong, malformed, revoked or for another audience)"
        case .expiredCredentials: "the credentials were valid once but have expired"
        case .insufficientScope: "the token is valid but was not granted the scope this call needs"
        case .insufficientPermissions: "the caller is known but lacks the permission (role, policy, grant) for this action"
        case .explicitDeny: "a policy explicitly denies this request, which overrides any allow"
        case .ipNotAllowed: "the client address is not on the allow list, or is on a deny list"
        case .geoBlocked: "requests from the client's country or region are blocked"
        case .wafBlocked: "a web application firewall rule matched something in the request and blocked it"
        case .rateLimited: "too many requests: a rate limit or quota is exhausted for now"
        case .csrf: "the cross-site request forgery check failed (token missing, stale, or from another session)"
        case .cors: "the browser's cross-origin rules (CORS) rejected the request or the preflight"
        case .signatureMismatch:
            "the request signature did not match what the server computed (wrong key, clock skew, or a changed request)"
        case .expiredURL: "the pre-signed or signed URL has expired"
        case .directoryListing: "the URL names a directory that has no index file, and listing directories is off"
        case .filesystemPermission: "the server's worker process may not read the file or enter a directory on its path"
        case .configDeny: "the server configuration denies this path or method"
        case .accountSuspended: "the account, subscription or billing for it is suspended or disabled"
        case .resourceState: "the resource (or the service for it) is in a state that does not allow this action"
        case .botChallenge: "an anti-bot system wants a browser challenge (JavaScript or CAPTCHA) to be solved first"
        case .unknown: "the evidence does not point to one cause"
        }
    }
}

/// Another possible reading of the same denial, less likely than the verdict.
public struct Alternative: Codable, Sendable, Equatable {
    public var deniedBy: String
    public var cause: DenialCause
    public var confidence: Double

    public init(deniedBy: String, cause: DenialCause, confidence: Double) {
        self.deniedBy = deniedBy
        self.cause = cause
        self.confidence = confidence
    }

    enum CodingKeys: String, CodingKey {
        case deniedBy = "denied_by", cause, confidence
    }
}

/// The doctor's verdict on one denial: who denied it, at which layer, why, how sure, and the fix.
public struct Diagnosis: Codable, Sendable, Equatable {
    public var deniedBy: String
    public var layer: String
    public var cause: DenialCause
    public var confidence: Double
    public var evidence: [String]
    public var fix: [String]
    public var alternatives: [Alternative]
    /// Systems the response passed through without writing the denial: a CDN, proxy or web server
    /// whose marks (a request id, a `Server` header) are on a response whose body or host is another
    /// service's. Empty when none was seen.
    public var servedThrough: [String]

    public init(
        deniedBy: String, layer: String, cause: DenialCause, confidence: Double,
        evidence: [String], fix: [String], alternatives: [Alternative], servedThrough: [String] = []
    ) {
        self.deniedBy = deniedBy
        self.layer = layer
        self.cause = cause
        self.confidence = confidence
        self.evidence = evidence
        self.fix = fix
        self.alternatives = alternatives
        self.servedThrough = servedThrough
    }

    enum CodingKeys: String, CodingKey {
        case deniedBy = "denied_by", layer, cause, confidence, evidence, fix, alternatives
        case servedThrough = "served_through"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        deniedBy = try c.decode(String.self, forKey: .deniedBy)
        layer = try c.decode(String.self, forKey: .layer)
        cause = try c.decode(DenialCause.self, forKey: .cause)
        confidence = try c.decode(Double.self, forKey: .confidence)
        evidence = try c.decode([String].self, forKey: .evidence)
        fix = try c.decode([String].self, forKey: .fix)
        alternatives = try c.decode([Alternative].self, forKey: .alternatives)
        servedThrough = try c.decodeIfPresent([String].self, forKey: .servedThrough) ?? []
    }
}

extension Diagnosis {
    /// The contract's JSON form (stable key order, two decimals of confidence).
    public func jsonObject() -> [String: Any] {
        [
            "denied_by": deniedBy, "layer": layer, "cause": cause.rawValue,
            "confidence": (confidence * 100).rounded() / 100,
            "evidence": evidence, "fix": fix, "served_through": servedThrough,
            "alternatives": alternatives.map {
                ["denied_by": $0.deniedBy, "cause": $0.cause.rawValue, "confidence": ($0.confidence * 100).rounded() / 100] as [String: Any]
            },
        ]
    }

    /// Encodes one diagnosis, or an array of them, as pretty JSON text with sorted keys.
    public static func json(_ diagnoses: [Diagnosis], asArray: Bool) -> String {
        let value: Any = asArray ? diagnoses.map { $0.jsonObject() } : (diagnoses.first?.jsonObject() ?? [:])
        let data =
            (try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// A stable, snake_case identifier for why a request was denied (or failed upstream).
///
/// The same string appears in the problem body (`reason`), the call log, metric labels and
/// `docs/reasons.md`, so it must never carry request data.
public struct ReasonCode: RawRepresentable, Hashable, Sendable, Codable, ExpressibleByStringLiteral,
    CustomStringConvertible, Comparable
{
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }
    public static func < (lhs: ReasonCode, rhs: ReasonCode) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension ReasonCode {
    // Routing and upstream
    public static let routeNotFound: ReasonCode = "route_not_found"
    public static let upstreamUnavailable: ReasonCode = "upstream_unavailable"
    public static let upstreamTimeout: ReasonCode = "upstream_timeout"
    public static let noRuleMatched: ReasonCode = "no_rule_matched"
    public static let checkUnavailable: ReasonCode = "check_unavailable"
    public static let requestTimeout: ReasonCode = "request_timeout"
    public static let gatewayShuttingDown: ReasonCode = "gateway_shutting_down"
    public static let gatewayBusy: ReasonCode = "gateway_busy"
    // Network
    public static let ipNotAllowed: ReasonCode = "ip_not_allowed"
    public static let ipDenied: ReasonCode = "ip_denied"
    // Credentials
    public static let missingCredentials: ReasonCode = "missing_credentials"
    public static let malformedCredentials: ReasonCode = "malformed_credentials"
    public static let invalidCredentials: ReasonCode = "invalid_credentials"
    public static let expiredCredentials: ReasonCode = "expired_credentials"
    public static let revokedCredentials: ReasonCode = "revoked_credentials"
    public static let consumerSuspended: ReasonCode = "consumer_suspended"
    // Request shape
    public static let methodNotAllowed: ReasonCode = "method_not_allowed"
    public static let unsupportedMediaType: ReasonCode = "unsupported_media_type"
    public static let bodyTooLarge: ReasonCode = "body_too_large"
    public static let headersTooLarge: ReasonCode = "headers_too_large"
    public static let badRequest: ReasonCode = "bad_request"
    /// A JSON body a check reads does not read one way only (duplicate member names, not strict JSON).
    public static let ambiguousBody: ReasonCode = "ambiguous_body"
}

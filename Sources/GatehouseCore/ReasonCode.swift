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
    // Tokens (JWT)
    public static let tokenAlgorithmNotAllowed: ReasonCode = "token_algorithm_not_allowed"
    public static let tokenAudienceMismatch: ReasonCode = "token_audience_mismatch"
    public static let tokenExpired: ReasonCode = "token_expired"
    public static let tokenIssuerMismatch: ReasonCode = "token_issuer_mismatch"
    public static let tokenMalformed: ReasonCode = "token_malformed"
    public static let tokenNotYetValid: ReasonCode = "token_not_yet_valid"
    public static let tokenSignatureInvalid: ReasonCode = "token_signature_invalid"
    public static let tokenUnknownKey: ReasonCode = "token_unknown_key"
    // Authorization
    public static let insufficientScope: ReasonCode = "insufficient_scope"
    public static let missingPermission: ReasonCode = "missing_permission"
    public static let missingRole: ReasonCode = "missing_role"
    public static let notOwner: ReasonCode = "not_owner"
    public static let subscriptionRequired: ReasonCode = "subscription_required"
    public static let subscriptionPending: ReasonCode = "subscription_pending"
    public static let subscriptionRejected: ReasonCode = "subscription_rejected"
    public static let subscriptionRevoked: ReasonCode = "subscription_revoked"
    public static let subscriptionExpired: ReasonCode = "subscription_expired"
    public static let wrongTenant: ReasonCode = "wrong_tenant"
    // Client certificates
    public static let certificateInvalid: ReasonCode = "certificate_invalid"
    public static let certificateMissing: ReasonCode = "certificate_missing"
    public static let certificateUnmapped: ReasonCode = "certificate_unmapped"
    // Traffic
    public static let abuseBanned: ReasonCode = "abuse_banned"
    public static let quotaExceeded: ReasonCode = "quota_exceeded"
    public static let rateLimitStoreUnavailable: ReasonCode = "rate_limit_store_unavailable"
    public static let rateLimited: ReasonCode = "rate_limited"
    // Browser (CORS, CSRF)
    public static let corsHeaderNotAllowed: ReasonCode = "cors_header_not_allowed"
    public static let corsMethodNotAllowed: ReasonCode = "cors_method_not_allowed"
    public static let corsOriginNotAllowed: ReasonCode = "cors_origin_not_allowed"
    public static let csrfOriginMismatch: ReasonCode = "csrf_origin_mismatch"
    public static let csrfTokenInvalid: ReasonCode = "csrf_token_invalid"
    public static let csrfTokenMissing: ReasonCode = "csrf_token_missing"
    // Inspection
    public static let wafBlocked: ReasonCode = "waf_blocked"
    // Admin API (the control plane's answers to administrators)
    public static let adminUnauthenticated: ReasonCode = "admin_unauthenticated"
    public static let adminRoleInsufficient: ReasonCode = "admin_role_insufficient"
    public static let adminTenantMismatch: ReasonCode = "admin_tenant_mismatch"
    public static let adminNotFound: ReasonCode = "admin_not_found"
    public static let adminInvalidRequest: ReasonCode = "admin_invalid_request"
    public static let adminConflict: ReasonCode = "admin_conflict"
    public static let subscriptionTransitionInvalid: ReasonCode = "subscription_transition_invalid"
    // Console (the admin listener's browser interface)
    public static let consoleSessionRequired: ReasonCode = "console_session_required"
    public static let consoleSessionExpired: ReasonCode = "console_session_expired"
    public static let consoleSignInFailed: ReasonCode = "console_sign_in_failed"
    public static let consoleCsrfFailed: ReasonCode = "console_csrf_failed"
    // Developer portal (the control plane's answers to an application's developers)
    public static let portalUnauthenticated: ReasonCode = "portal_unauthenticated"
    public static let portalRequestNotYours: ReasonCode = "portal_request_not_yours"
    public static let portalObjectNotYours: ReasonCode = "portal_object_not_yours"
}

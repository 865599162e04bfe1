/// What a reason code means: its status, title, meaning and typical fix. The single source for
/// denial defaults and for `docs/reasons.md` (a test keeps the two in step).
public struct ReasonInfo: Sendable, Equatable {
    public var code: ReasonCode
    public var status: Int
    public var title: String
    public var meaning: String
    public var fix: String
}

/// Every reason code Gatehouse can emit.
public enum ReasonCatalogue {
    public static func entry(_ code: ReasonCode) -> ReasonInfo? { byCode[code] }

    public static let all: [ReasonInfo] = [
        // Routing and upstream
        .init(
            code: .routeNotFound, status: 404, title: "No route matches this request",
            meaning: "No configured route matches the request's host, method and path.",
            fix: "Check the URL and method against the API's published routes."),
        .init(
            code: .upstreamUnavailable, status: 502, title: "Upstream unavailable",
            meaning:
                "The gateway allowed the call but could not connect to any upstream target (refused or unreachable). Not an access decision.",
            fix: "Retry later; operators should check that the upstream targets are running and reachable."),
        .init(
            code: .upstreamTimeout, status: 504, title: "Upstream timed out",
            meaning: "The upstream accepted the call but did not answer within the configured read timeout. Not an access decision.",
            fix: "Retry later; operators should check upstream latency or raise the route's timeout."),
        .init(
            code: .noRuleMatched, status: 403, title: "No rule allowed this request",
            meaning: "A default-deny check found no allow rule matching the request; the detail lists the rules tried.",
            fix: "Ask the API owner for a rule that covers this request."),
        .init(
            code: .checkUnavailable, status: 503, title: "A policy check could not decide",
            meaning: "A check could not obtain what it needs (key set, store) and failed closed.",
            fix: "Retry shortly; operators should check the dependency named in the detail."),
        .init(
            code: .requestTimeout, status: 408, title: "Request not received in time",
            meaning:
                "The client did not send the whole request head, or stopped sending its body, within the gateway's time limit (`limits.header_timeout`, `limits.body_timeout`). Not an access decision.",
            fix: "Send the request without long pauses; operators can raise the limit if legitimate clients are this slow."),
        .init(
            code: .gatewayBusy, status: 503, title: "Gateway busy",
            meaning:
                "The gateway holds as many request bodies buffered for inspection as it allows (`limits.max_buffered_bodies`), across all connections. Not an access decision.",
            fix: "Retry shortly; operators can raise the budget, or look for clients holding large bodies open."),
        .init(
            code: .gatewayShuttingDown, status: 503, title: "Gateway shutting down",
            meaning: "The gateway was stopping and the request was still running when its grace period ended. Not an access decision.",
            fix: "Retry: another gateway node, or this one once restarted, will serve it."),
        // Network
        .init(
            code: .ipNotAllowed, status: 403, title: "Client address not allowed",
            meaning: "The client address is not in the route's allow list.",
            fix: "Call from an allowed network, or ask the operator to add your address."),
        .init(
            code: .ipDenied, status: 403, title: "Client address denied",
            meaning: "The client address is in the route's deny list.",
            fix: "Call from another network, or ask the operator why this address is blocked."),
        // Credentials
        .init(
            code: .missingCredentials, status: 401, title: "Credentials required",
            meaning: "The route requires credentials and the request carried none where the gateway looks for them.",
            fix: "Send the credential in the place the WWW-Authenticate challenge and the hint name."),
        .init(
            code: .malformedCredentials, status: 401, title: "Credentials malformed",
            meaning:
                "The credential does not have the expected shape (prefix, length or checksum), so it was rejected before any lookup: usually a typo or truncation.",
            fix: "Copy the full key again; keys are shown once when created."),
        .init(
            code: .invalidCredentials, status: 401, title: "Credentials not recognised",
            meaning: "The credential is well-formed but matches no known key or password.",
            fix: "Use a current key or password, or ask the operator for a new one."),
        .init(
            code: .expiredCredentials, status: 401, title: "Credentials expired",
            meaning: "The key or credential passed its expiry time.",
            fix: "Create or request a new key."),
        .init(
            code: .revokedCredentials, status: 401, title: "Credentials revoked",
            meaning: "The key was revoked by an operator.",
            fix: "Use another key or request a new one."),
        .init(
            code: .consumerSuspended, status: 403, title: "Consumer suspended",
            meaning: "The credential is valid but the consumer it belongs to is suspended.",
            fix: "Contact the API operator to reinstate the account."),
        // Request shape
        .init(
            code: .methodNotAllowed, status: 405, title: "Method not allowed",
            meaning: "The route does not accept this HTTP method; the Allow header lists those it does.",
            fix: "Use one of the methods in the Allow header."),
        .init(
            code: .unsupportedMediaType, status: 415, title: "Unsupported media type",
            meaning: "The request body's Content-Type is not one the route accepts.",
            fix: "Send the body with one of the required content types."),
        .init(
            code: .bodyTooLarge, status: 413, title: "Request body too large",
            meaning: "The request body exceeds the route's limit.",
            fix: "Send a smaller body, or split the upload."),
        .init(
            code: .headersTooLarge, status: 431, title: "Request headers too large",
            meaning: "The request's header block exceeds the route's limit.",
            fix: "Send fewer or smaller headers (often: too many cookies)."),
        .init(
            code: .badRequest, status: 400, title: "Malformed request",
            meaning:
                "The request is not valid HTTP/1.1, or it is ambiguous: a request target that back ends could resolve differently (encoded slashes or backslashes, dot-segments above the root, fragments, raw 8-bit or control bytes), two Content-Type fields, a Connection header naming a field the checks read. The detail says which.",
            fix: "Send the request target in plain canonical form and each header once; the detail names what was refused."),
        // Tokens (JWT)
        .init(
            code: .tokenExpired, status: 401, title: "Token expired",
            meaning: "The token's exp claim is in the past (beyond the allowed leeway).",
            fix: "Obtain a fresh token from the issuer."),
        .init(
            code: .tokenNotYetValid, status: 401, title: "Token not yet valid",
            meaning: "The token's nbf or iat claim is in the future (beyond the allowed leeway): often clock skew.",
            fix: "Check the issuing host's clock, or wait until the token becomes valid."),
        .init(
            code: .tokenSignatureInvalid, status: 401, title: "Token signature invalid",
            meaning: "The token's signature does not verify with the key it names: it was altered or signed with another key.",
            fix: "Use a token issued by the trusted issuer, unmodified."),
        .init(
            code: .tokenAlgorithmNotAllowed, status: 401, title: "Token algorithm not allowed",
            meaning: "The token's alg is not in the policy's pinned list (alg none is never allowed).",
            fix: "Use a token signed with one of the allowed algorithms."),
        .init(
            code: .tokenIssuerMismatch, status: 401, title: "Token issuer not trusted",
            meaning: "The token's iss claim is not the expected issuer.",
            fix: "Obtain the token from the issuer the API trusts."),
        .init(
            code: .tokenAudienceMismatch, status: 401, title: "Token audience mismatch",
            meaning: "The token's aud claim does not name this API.",
            fix: "Request a token for this API's audience."),
        .init(
            code: .tokenMalformed, status: 401, title: "Token malformed",
            meaning:
                "The bearer token is not a well-formed JWT: three strict base64url parts (no padding) with a JSON header and claims, at most 16 KiB, NumericDate claims (exp, nbf, iat) as finite numbers within years 1 to 9999, `sub` (when present) a string, no member given twice in the header or claims, and no `crit` extension the gateway does not implement.",
            fix: "Send the complete token, unmodified."),
        .init(
            code: .tokenUnknownKey, status: 401, title: "Token signed by an unknown key",
            meaning:
                "The token's kid is not in the trusted key set (a refresh of a URL key set is started in the background, at most every 2 s), or names a key the gateway skipped as unusable.",
            fix: "Use a token from the trusted issuer; operators should check the JWKS source."),
        // Authorization
        .init(
            code: .insufficientScope, status: 403, title: "Insufficient scope",
            meaning: "The caller is authenticated but its token or key lacks a scope the route requires.",
            fix: "Request a token that includes the required scopes."),
        .init(
            code: .missingRole, status: 403, title: "Missing role",
            meaning: "The caller lacks a role the route requires.",
            fix: "Ask an administrator to grant the role."),
        .init(
            code: .missingPermission, status: 403, title: "Missing permission",
            meaning: "None of the caller's roles grants the permission the route requires.",
            fix: "Ask an administrator for a role that grants the permission."),
        .init(
            code: .ambiguousBody, status: 400, title: "Ambiguous request body",
            meaning:
                "A check had to read the JSON body (an `owner` check's `body_field`) and the body does not read one way only: an object names a member twice (JSON parsers disagree on which one wins: Foundation keeps the first, Python, Node and Go the last), or two members differ only in letter case on the path the check reads, or the body is not strict RFC 8259 JSON (not UTF-8, a byte-order mark, NaN, trailing commas, lone surrogates, nesting deeper than 64), or its fields do not declare plain UTF-8 JSON (a Content-Type other than application/json or +json, another charset, a Content-Encoding), or the compared field is a number that parsers read differently (a fraction, an exponent, an integer beyond ±(2^53 − 1)). The detail names the member by its JSON pointer.",
            fix: "Send strict UTF-8 JSON with each member name once per object, and identifiers as strings."),
        .init(
            code: .notOwner, status: 403, title: "Not the owner of this resource",
            meaning: "The resource belongs to another principal than the caller.",
            fix: "Access only your own resources, or use an account with delegated access."),
        .init(
            code: .wrongTenant, status: 403, title: "Wrong tenant",
            meaning: "The caller belongs to a different tenant than the API or resource.",
            fix: "Use credentials of the tenant that owns this API."),
        .init(
            code: .certificateMissing, status: 401, title: "Client certificate required",
            meaning: "The route requires a TLS client certificate and none was presented.",
            fix: "Configure the client to present its certificate."),
        .init(
            code: .certificateInvalid, status: 401, title: "Client certificate not accepted",
            meaning:
                "The client certificate failed verification: no chain to a trusted CA, an issuer that is not a CA, a path-length or key-usage violation, a leaf without the clientAuth extended key usage, or a certificate that has expired or is not yet valid. The detail names which certificate and why.",
            fix:
                "Use a current client certificate (with the clientAuth extended key usage) issued by the trusted CA, and send its intermediates."
        ),
        .init(
            code: .certificateUnmapped, status: 403, title: "Client certificate not mapped to a consumer",
            meaning: "The certificate is valid but its identity is not mapped to any consumer.",
            fix: "Ask the operator to map the certificate's subject to a consumer."),
        .init(
            code: .subscriptionRequired, status: 403, title: "Subscription required",
            meaning:
                "The route belongs to a service that needs a subscription, and the calling application has none (or cancelled it). The detail names the service and the application.",
            fix: "Apply for a subscription to the service (POST /admin/v1/subscriptions, or ask an operator of your tenant)."),
        .init(
            code: .subscriptionPending, status: 403, title: "Subscription awaiting approval",
            meaning:
                "The application applied for a subscription to the route's service, and nobody has approved it yet. The detail says since when and who can approve.",
            fix: "Wait for the approval, or ask an owner or admin, or an operator of the service's tenant, to approve it."),
        .init(
            code: .subscriptionRejected, status: 403, title: "Subscription rejected",
            meaning: "The application's subscription to the route's service was rejected; the detail carries the approver's opinion.",
            fix: "Address the opinion and apply again."),
        .init(
            code: .subscriptionRevoked, status: 403, title: "Subscription revoked",
            meaning: "The application's subscription to the route's service was revoked; the detail says by whom, when and why.",
            fix: "Contact the service's owners about the revocation, then apply again."),
        .init(
            code: .subscriptionExpired, status: 403, title: "Subscription expired",
            meaning: "The application's approved subscription to the route's service has passed its expiry; the detail says when.",
            fix: "Apply again for a renewed subscription."),
        // Traffic
        .init(
            code: .rateLimited, status: 429, title: "Rate limit exceeded",
            meaning: "The caller exceeded a rate limit; Retry-After and RateLimit fields say when to retry.",
            fix: "Slow down and retry after the time in Retry-After."),
        .init(
            code: .quotaExceeded, status: 429, title: "Quota exceeded",
            meaning: "The caller used up its daily or monthly quota.",
            fix: "Wait for the quota to reset, or ask for a larger plan."),
        .init(
            code: .rateLimitStoreUnavailable, status: 503, title: "Rate limit cannot be counted",
            meaning:
                "A cluster-wide rate limit (`scope: cluster`) could not reach the shared counters and this node's share was used up; its policy says `on_store_error: deny`. Not a judgement of the caller.",
            fix: "Retry shortly; operators should restore the cluster store (the detail says since when it is unreachable)."),
        .init(
            code: .abuseBanned, status: 403, title: "Temporarily banned",
            meaning: "Repeated limit violations triggered a cool-down ban; the detail says when it ends.",
            fix: "Stop retrying until the ban ends, then respect the rate limits."),
        .init(
            code: .corsOriginNotAllowed, status: 403, title: "CORS origin not allowed",
            meaning: "The cross-origin request's Origin is not in the route's allowed origins.",
            fix: "Call from an allowed origin, or ask the operator to allow yours."),
        .init(
            code: .corsMethodNotAllowed, status: 403, title: "CORS method not allowed",
            meaning: "The preflight asked for a method the route does not allow cross-origin.",
            fix: "Use an allowed method, or ask the operator to allow it."),
        .init(
            code: .corsHeaderNotAllowed, status: 403, title: "CORS header not allowed",
            meaning: "The preflight asked for a request header the route does not allow cross-origin.",
            fix: "Drop the header, or ask the operator to allow it."),
        .init(
            code: .csrfOriginMismatch, status: 403, title: "Cross-site request refused",
            meaning: "An unsafe request on a cookie-authenticated route came from another site (by Sec-Fetch-Site, Origin or Referer).",
            fix: "Send the request from the application's own origin."),
        .init(
            code: .csrfTokenMissing, status: 403, title: "CSRF token missing",
            meaning: "An unsafe request lacked the double-submit CSRF token (cookie and header).",
            fix: "Send the CSRF cookie's value in the CSRF header."),
        .init(
            code: .csrfTokenInvalid, status: 403, title: "CSRF token invalid",
            meaning: "The CSRF header does not match the cookie, or its signature is wrong.",
            fix: "Reload the page to get a fresh CSRF token."),
        // WAF
        .init(
            code: .wafBlocked, status: 403, title: "Blocked by the web application firewall",
            meaning: "Request inspection scored the request as an attack; the rule ids say which rules fired.",
            fix: "If this is legitimate traffic, give the operator the request id so they can tune an exclusion."),
        // Admin API
        .init(
            code: .adminUnauthenticated, status: 401, title: "Admin credentials required",
            meaning:
                "An admin API request carried no admin credentials, or ones that match no admin user or token (a Bearer admin token, or Basic with an admin user's password).",
            fix: "Send `Authorization: Bearer <admin token>` (from `gatehouse admins token NAME`) or Basic credentials of an admin user."),
        .init(
            code: .adminRoleInsufficient, status: 403, title: "Admin role insufficient",
            meaning:
                "The admin's role does not allow this operation (roles, least to most: viewer, operator, admin, owner); required and presented name the roles.",
            fix: "Ask an owner or admin for a role that allows the operation, or have them do it."),
        .init(
            code: .adminTenantMismatch, status: 403, title: "Outside the admin's tenant",
            meaning:
                "The admin is scoped to one tenant and the object is not in it (or does not exist: a scoped admin cannot tell the two apart).",
            fix: "Use an admin of the object's tenant, or an unscoped admin."),
        .init(
            code: .adminNotFound, status: 404, title: "No such object",
            meaning: "The admin API has no object with this id or name, or no such endpoint.",
            fix: "Check the id; list the collection to find it."),
        .init(
            code: .adminInvalidRequest, status: 400, title: "Invalid admin request",
            meaning: "The admin API request's body, parameters or cursor are not valid; the detail names the field.",
            fix: "Correct the named field (see /admin/v1/openapi.json)."),
        .init(
            code: .adminConflict, status: 409, title: "Conflicts with the current state",
            meaning: "The object already exists, or the change conflicts with what the store holds.",
            fix: "Use the existing object, or choose another name."),
        .init(
            code: .subscriptionTransitionInvalid, status: 409, title: "Subscription transition not allowed",
            meaning:
                "The subscription's current state does not allow this transition (pending → approved | rejected | cancelled; approved → revoked | expired; a closed subscription can be applied for again).",
            fix: "Read the subscription's state first; apply again to reopen a closed one."),
        // Console
        .init(
            code: .consoleSessionRequired, status: 401, title: "Sign-in required",
            meaning:
                "A console page was requested without a session: no session cookie, or one that matches no session (never made, signed out, or made before a sign-in replaced it).",
            fix: "Sign in at /console/sign-in."),
        .init(
            code: .consoleSessionExpired, status: 401, title: "Session ended",
            meaning:
                "The console session ended: it was idle longer than the idle timeout (30 minutes by default) or reached its absolute lifetime (12 hours by default).",
            fix: "Sign in again at /console/sign-in."),
        .init(
            code: .consoleSignInFailed, status: 401, title: "Sign-in failed",
            meaning:
                "The admin user name or password is wrong (the answer is the same whether or not the name exists), or the user has no password.",
            fix:
                "Check the name and password; an admin user gets a password with `gatehouse admins create NAME --password-stdin` or the admin API."
        ),
        .init(
            code: .consoleCsrfFailed, status: 403, title: "Form token invalid",
            meaning:
                "A console form was posted without the token its page carried, or with one issued for another session (an earlier sign-in, or a forged form).",
            fix: "Reload the page and submit the form again."),
        .init(
            code: .portalUnauthenticated, status: 401, title: "Developer sign-in required",
            meaning:
                "A developer portal request carried no valid developer credentials or session: the name or password is wrong, the account was disabled or deleted by an administrator, or the session ended.",
            fix: "Sign in to the portal again; if the account was disabled, ask an administrator of the application's tenant."),
        .init(
            code: .portalRequestNotYours, status: 403, title: "Not one of your application's requests",
            meaning:
                "The request id is not one the gateway identified as a call of the developer's application. The portal explains only its own application's requests, and gives this same answer whether the id belongs to another application or to none, so it reveals nothing of other parties' traffic. Requests refused before the application was identified (no key, an unknown key) and token callers are not attributed to any application.",
            fix:
                "Paste the X-Request-Id (or the problem body's request_id) of a request made with one of your application's credentials; ask an operator about other requests."
        ),
        .init(
            code: .portalObjectNotYours, status: 403, title: "Not your application's",
            meaning:
                "The key, subscription or service named is not one the developer's application holds (or does not exist: the portal gives the same answer for both).",
            fix: "Choose one of your application's keys or subscriptions from its lists in the portal."),
    ]

    static let byCode: [ReasonCode: ReasonInfo] = Dictionary(uniqueKeysWithValues: all.map { ($0.code, $0) })
}

/// One header field to send with a denial (`WWW-Authenticate`, `Retry-After`, `Allow`, …).
public struct HeaderField: Hashable, Sendable, Codable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// Why a check refused a request: a value until the HTTP edge, rendered in one place
/// (``ProblemRenderer``).
public struct Denial: Sendable, Equatable, Codable {
    /// Stable reason, safe as a metric label.
    public var code: ReasonCode
    /// HTTP status: 400/401/403/404/405/413/415/429/431/502/504.
    public var status: Int
    /// Short title, stable per code.
    public var title: String
    /// What happened to this request, e.g. "POST /orders needs scope orders:write; the token grants orders:read".
    public var detail: String
    /// What the policy wanted.
    public var required: [String]
    /// What the request brought. Never a secret: key ids and fingerprints, not keys.
    public var presented: [String]
    /// The fix, addressed to the caller.
    public var hint: String
    /// Extra response headers (challenges, Retry-After, Allow, rate-limit fields).
    public var headers: [HeaderField]
    /// Detail that only the operator sees (the call log), e.g. a WAF excerpt. Shown to callers only
    /// under `detailed` exposure when the check marks it safe to do so.
    public var operatorDetail: String?
    /// Extra members of the problem body shown under every exposure (e.g. `rule_ids` for WAF
    /// blocks). Keys are stable snake_case; values never carry secrets.
    public var extensions: [String: [String]]
    /// The audit-log entry of the administrative decision behind this denial (a subscription
    /// revoked or rejected): stored in the call log for `explain`, never shown to the caller.
    public var auditEntry: Int64?

    public init(
        code: ReasonCode, status: Int? = nil, title: String? = nil, detail: String,
        required: [String] = [], presented: [String] = [], hint: String? = nil,
        headers: [HeaderField] = [], operatorDetail: String? = nil, extensions: [String: [String]] = [:],
        auditEntry: Int64? = nil
    ) {
        let entry = ReasonCatalogue.entry(code)
        self.code = code
        self.status = status ?? entry?.status ?? 403
        self.title = title ?? entry?.title ?? "Request denied"
        self.detail = detail
        self.required = required
        self.presented = presented
        self.hint = hint ?? entry?.fix ?? ""
        self.headers = headers
        self.operatorDetail = operatorDetail
        self.extensions = extensions
        self.auditEntry = auditEntry
    }
}

/// The outcome of one check for one request. Checks return verdicts; they never throw.
public enum Verdict: Sendable, Equatable {
    /// The check is satisfied. `note` says what it compared ("203.0.113.7 in office-ip").
    case allow(note: String?)
    /// The check refuses the request.
    case deny(Denial)
    /// The check does not apply to this request (e.g. a CORS check on a same-origin call).
    case skip(why: String)
}

// Hand-written: the RateLimit-Policy / RateLimit fields are serialised here (a few sf-strings and
// integers); none of the listed libraries writes RFC 9651 structured fields.
import GatehouseCore
import Metrics

/// What a `rate_limit` policy counts by. Several parts combine into one key.
public enum RateLimitKeyPart: String, Sendable, CaseIterable {
    case consumer, key, ip, route
}

/// `rate_limit`: rate windows with bursts, a calendar quota and an abuse ban, counted per key in a
/// ``RateLimitStore``. Refusals are 429 `rate_limited` / `quota_exceeded` with `Retry-After` and the
/// `RateLimit-Policy` / `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-10; a ban is 403
/// `abuse_banned`.
public struct RateLimitCheck: PolicyCheck {
    public let id: String
    public var type: String { "rate_limit" }
    public let keyParts: [RateLimitKeyPart]
    public let rule: RateLimitRule
    public let store: any RateLimitStore
    /// Whether allowed responses carry the RateLimit fields too.
    public let headersOnAllowed: Bool
    /// IPv6 clients are counted per network of this many bits (64: one subscriber's /64; 128:
    /// each address). IPv4 clients are counted per address.
    public let ipv6Prefix: Int
    /// The `RateLimit-Policy` value, built once.
    let policyField: String
    /// Window names as sf-strings, built once: the `RateLimit` field is built per request.
    let quotedNames: [String]
    let quotedQuotaName: String?
    /// `gatehouse_ratelimit_near_limit_total{policy}`: requests allowed while a window's bucket or
    /// the quota stood at or beyond ``nearLimitPercent`` of its limit (one atomic add each). Nil
    /// for limits that are not a configured policy (the console's sign-in limits), whose series
    /// would otherwise appear among the policies'.
    let nearLimit: Counter?

    public static let defaultIPv6Prefix = 64
    /// How full a bucket or quota is when an allowed request counts as near the limit.
    public static let nearLimitPercent = 80

    public init(
        id: String, keyParts: [RateLimitKeyPart], rule: RateLimitRule, store: any RateLimitStore, headersOnAllowed: Bool = true,
        ipv6Prefix: Int = RateLimitCheck.defaultIPv6Prefix, countsNearLimit: Bool = true
    ) {
        self.id = id
        self.ipv6Prefix = max(1, min(128, ipv6Prefix))
        self.keyParts = keyParts.isEmpty ? [.ip] : keyParts
        self.rule = rule
        self.store = store
        self.headersOnAllowed = headersOnAllowed
        quotedNames = rule.windows.map { StructuredField.string($0.name) }
        quotedQuotaName = rule.quota.map { StructuredField.string($0.name) }
        var items = rule.windows.map { "\(StructuredField.string($0.name));q=\($0.count);w=\(StructuredField.seconds($0.period))" }
        if let q = rule.quota {
            items.append("\(StructuredField.string(q.name));q=\(q.limit);w=\(q.period == .day ? 86400 : 2_592_000)")
        }
        policyField = items.joined(separator: ", ")
        nearLimit = countsNearLimit ? Counter(label: "gatehouse_ratelimit_near_limit_total", dimensions: [("policy", id)]) : nil
    }

    /// Whether, after counting this request, a window's bucket or the quota is at least
    /// ``nearLimitPercent`` used.
    func isNearLimit(_ windows: [WindowStatus], quotaUsed: Int?) -> Bool {
        // In floating point: no count the configuration allows can overflow it.
        let share = Double(RateLimitCheck.nearLimitPercent) / 100
        for (w, s) in zip(rule.windows, windows) where Double(w.burst) - Double(s.remaining) >= Double(w.burst) * share { return true }
        if let q = rule.quota, let quotaUsed, Double(quotaUsed) >= Double(q.limit) * share { return true }
        return false
    }

    /// The counter key and how to describe it ("consumer acme, ip 203.0.113.7"). The description
    /// shows consumer names and key ids escaped (`DisplayText.untrusted`): they can be the caller's
    /// text, such as a token's `sub` or `jti`.
    ///
    /// `consumer` and `key` mean the same for every credential (see ``Principal/limitConsumer``
    /// and ``Principal/limitKey``): an API key's consumer and key id; a token's issuer + subject
    /// and its `jti`; a Basic user for both; a certificate's mapped consumer and fingerprint.
    /// Addresses are IPv4 addresses, or IPv6 networks of `ipv6Prefix` bits.
    func key(for request: PolicyRequest) -> (key: String, description: String) {
        var key = ""
        var addressText: String?
        func address() -> String {
            if let addressText { return addressText }
            let a = request.clientAddress?.counterText(ipv6Prefix: ipv6Prefix) ?? "-"
            addressText = a
            return a
        }
        var parts: [String] = []
        for part in keyParts {
            let value: String
            switch part {
            case .consumer:
                if let c = request.principal?.limitConsumer {
                    // The name is the caller's text (a token's sub): escaped and bounded for the
                    // detail, `presented` and the trace; the counter key keeps it exact.
                    value = "consumer " + DisplayText.untrusted(request.principal?.consumerName ?? c)
                    key += "c=" + c + "|"
                } else {
                    // Unauthenticated callers are counted by address rather than sharing one bucket.
                    value = "anonymous caller at " + address()
                    key += "ca=" + address() + "|"
                }
            case .key:
                if let k = request.principal?.limitKey {
                    value = "key " + DisplayText.untrusted(k)
                    key += "k=" + k + "|"
                } else {
                    value = "anonymous caller at " + address()
                    key += "ka=" + address() + "|"
                }
            case .ip:
                let a = address()
                value = "ip " + a
                key += "i=" + a + "|"
            case .route:
                value = "route " + request.routeName
                key += "r=" + request.routeName + "|"
            }
            parts.append(value)
        }
        return (key, parts.joined(separator: ", "))
    }

    func rateLimitField(_ windows: [WindowStatus]) -> String {
        var out = ""
        for (i, s) in windows.enumerated() where i < quotedNames.count {
            if i > 0 { out += ", " }
            out += quotedNames[i]
            out += ";r="
            out += String(s.remaining)
            out += ";t="
            out += String(StructuredField.ceilSeconds(s.resetIn))
        }
        return out
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        let (key, who) = key(for: request)
        let decision = store.consume(key: key, rule: rule, now: request.now)
        switch decision {
        case .allowed(let windows, let used, let resetAt):
            if let nearLimit, isNearLimit(windows, quotaUsed: used) { nearLimit.increment() }
            if headersOnAllowed {
                request.responseHeaders.append(HeaderField("RateLimit-Policy", policyField))
                var value = rateLimitField(windows)
                if let q = rule.quota, let used, let resetAt {
                    value +=
                        (value.isEmpty ? "" : ", ")
                        + "\(quotedQuotaName ?? StructuredField.string(q.name));r=\(max(0, q.limit - used));t=\(StructuredField.ceilSeconds(resetAt - request.now))"
                }
                request.responseHeaders.append(HeaderField("RateLimit", value))
            }
            let tightest = zip(rule.windows, windows).min { $0.1.remaining < $1.1.remaining }
            var note = "\(who)"
            if let (w, s) = tightest { note += ": \(s.remaining) of \(w.burst) left in \(w.name)" }
            if let q = rule.quota, let used { note += "; quota \(used) of \(q.limit) per \(q.period.rawValue)" }
            return .allow(note: note)

        case .rateLimited(let index, let retryAfter, let windows, let bannedUntil):
            let w = rule.windows[index]
            let retry = StructuredField.ceilSeconds(retryAfter)
            let resetAt = request.now + Double(retry)
            var detail =
                "\(request.summary) exceeded rate limit \(w.name) (\(w.label)) for \(who); retry in \(TimeText.duration(Double(retry))), at \(TimeText.iso(resetAt))"
            if let bannedUntil { detail += "; repeated violations started a ban until \(TimeText.iso(bannedUntil))" }
            return .deny(
                Denial(
                    code: .rateLimited, status: 429, detail: detail,
                    required: ["at most \(w.label)"], presented: [who],
                    headers: [
                        HeaderField("Retry-After", String(retry)), HeaderField("RateLimit-Policy", policyField),
                        HeaderField("RateLimit", rateLimitField(windows)),
                    ],
                    extensions: ["policy": [w.name], "limit": [w.label], "reset": [TimeText.iso(resetAt)]]))

        case .quotaExceeded(let used, let resetAt, let bannedUntil):
            let q = rule.quota!
            let retry = StructuredField.ceilSeconds(resetAt - request.now)
            var detail =
                "\(request.summary) exceeded quota \(q.name) (\(q.limit) per \(q.period.rawValue)) for \(who): \(used) used; it resets at \(TimeText.iso(resetAt)), in \(TimeText.duration(Double(retry)))"
            if let bannedUntil { detail += "; repeated violations started a ban until \(TimeText.iso(bannedUntil))" }
            return .deny(
                Denial(
                    code: .quotaExceeded, status: 429, detail: detail,
                    required: ["at most \(q.limit) requests per \(q.period.rawValue)"], presented: [who, "\(used) used"],
                    headers: [
                        HeaderField("Retry-After", String(retry)), HeaderField("RateLimit-Policy", policyField),
                        HeaderField("RateLimit", "\(StructuredField.string(q.name));r=0;t=\(retry)"),
                    ],
                    extensions: ["policy": [q.name], "limit": ["\(q.limit) per \(q.period.rawValue)"], "reset": [TimeText.iso(resetAt)]]))

        case .storeUnavailable(let detail, let retryAfter):
            let retry = max(1, StructuredField.ceilSeconds(retryAfter))
            return .deny(
                Denial(
                    code: .rateLimitStoreUnavailable, status: 503,
                    detail: "\(request.summary) could not be counted against \(id) for \(who): \(detail)",
                    required: ["the cluster's shared rate-limit counters"], presented: [who],
                    hint: "Retry in \(retry) s; the policy fails closed (on_store_error: deny) while the cluster store is unreachable.",
                    headers: [HeaderField("Retry-After", String(retry))], extensions: ["policy": [id]]))

        case .banned(let until):
            let retry = StructuredField.ceilSeconds(until - request.now)
            let ban = rule.ban
            let why = ban.map { "\($0.violations) limit violations within \(TimeText.duration($0.within))" } ?? "repeated limit violations"
            return .deny(
                Denial(
                    code: .abuseBanned, status: 403,
                    detail:
                        "\(who) is banned by \(id) until \(TimeText.iso(until)) (\(TimeText.duration(Double(retry))) from now) after \(why)",
                    required: ["no ban in force"], presented: [who, "banned until \(TimeText.iso(until))"],
                    hint: "Stop retrying until \(TimeText.iso(until)), then stay within the rate limits.",
                    headers: [HeaderField("Retry-After", String(retry))],
                    extensions: ["policy": [id], "ban_ends": [TimeText.iso(until)]]))
        }
    }
}

/// Serialisation helpers for the structured fields (RFC 9651) the RateLimit fields use.
enum StructuredField {
    /// An sf-string: quoted, with `"` and `\` escaped; non-printable characters replaced.
    static func string(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"", "\\": out += "\\" + String(u)
            case " "..."~": out.unicodeScalars.append(u)
            default: out += "_"
            }
        }
        return out + "\""
    }

    /// Whole seconds, rounded up, at least 0.
    static func ceilSeconds(_ t: Double) -> Int { max(0, Int((t - 1e-9).rounded(.up))) }
    static func seconds(_ t: Double) -> Int { max(1, Int(t.rounded())) }
}

// Hand-written: rate-limit rules, decisions and the counter-store protocol (no listed library has them).
import GatehouseCore

/// One rate window of a `rate_limit` policy: `count` requests per `period` seconds, with a bucket of
/// `burst` requests (a generic cell rate / token bucket: `burst` calls may arrive at once, then one
/// every `period / count` seconds).
public struct RateWindow: Sendable, Equatable {
    public var count: Int
    public var period: Double
    public var burst: Int
    /// The policy name sent in `RateLimit-Policy` / `RateLimit`, e.g. "per-consumer.10-per-1s".
    public var name: String

    public init(count: Int, period: Double, burst: Int? = nil, name: String) {
        self.count = max(1, count)
        self.period = period
        self.burst = max(1, burst ?? count)
        self.name = name
    }

    /// Seconds between two requests at the sustained rate.
    public var interval: Double { period / Double(count) }
    /// How far ahead of now the theoretical arrival time may run before a request is refused.
    var tolerance: Double { Double(burst - 1) * interval }
    /// "10 per 1 s, burst 20".
    public var label: String {
        "\(count) per \(TimeText.duration(period))" + (burst != count ? ", burst \(burst)" : "")
    }
}

/// The calendar period of a quota: a UTC day or a UTC month.
public enum QuotaPeriod: String, Sendable, Equatable, CaseIterable {
    case day, month

    /// Start and end (seconds since 1970) of the period containing `t`.
    public func bounds(containing t: Double) -> (start: Double, end: Double) {
        switch self {
        case .day:
            let start = (t / 86400).rounded(.down) * 86400
            return (start, start + 86400)
        case .month:
            let (y, m, _) = CivilDate.fromDays(Int64((t / 86400).rounded(.down)))
            let start = Double(CivilDate.toDays(year: y, month: m, day: 1)) * 86400
            let (ny, nm) = m == 12 ? (y + 1, Int64(1)) : (y, m + 1)
            let end = Double(CivilDate.toDays(year: ny, month: nm, day: 1)) * 86400
            return (start, end)
        }
    }
}

/// A quota: at most `limit` allowed requests per calendar day or month.
public struct Quota: Sendable, Equatable {
    public var limit: Int
    public var period: QuotaPeriod
    public var name: String
    public init(limit: Int, period: QuotaPeriod, name: String) {
        self.limit = limit
        self.period = period
        self.name = name
    }
}

/// Abuse ban: `violations` refusals within `within` seconds ban the key for `duration` seconds.
public struct AbuseBan: Sendable, Equatable {
    public var violations: Int
    public var within: Double
    public var duration: Double
    public init(violations: Int, within: Double, duration: Double) {
        self.violations = max(1, violations)
        self.within = within
        self.duration = duration
    }
}

/// Everything a counter store needs to decide one request of one `rate_limit` policy.
public struct RateLimitRule: Sendable, Equatable {
    public var windows: [RateWindow]
    public var quota: Quota?
    public var ban: AbuseBan?
    public init(windows: [RateWindow], quota: Quota? = nil, ban: AbuseBan? = nil) {
        self.windows = windows
        self.quota = quota
        self.ban = ban
    }
}

/// Where one window stands after a decision.
public struct WindowStatus: Sendable, Equatable {
    /// Requests that could be made right now.
    public var remaining: Int
    /// Seconds until the window's bucket is full again.
    public var resetIn: Double
    public init(remaining: Int, resetIn: Double) {
        self.remaining = remaining
        self.resetIn = resetIn
    }
}

/// A counter store's answer for one request.
public enum RateLimitDecision: Sendable, Equatable {
    /// Counted and allowed. `quotaUsed` counts this request.
    case allowed(windows: [WindowStatus], quotaUsed: Int?, quotaResetAt: Double?)
    /// Refused by window `window`; retry after `retryAfter` seconds. `bannedUntil` is set when this
    /// refusal was the violation that started an abuse ban.
    case rateLimited(window: Int, retryAfter: Double, windows: [WindowStatus], bannedUntil: Double?)
    /// The calendar quota is used up until `resetAt`.
    case quotaExceeded(used: Int, resetAt: Double, bannedUntil: Double?)
    /// The key is banned until `until`.
    case banned(until: Double)
    /// A shared store could not count the request and its policy fails closed; `detail` says why.
    case storeUnavailable(detail: String, retryAfter: Double)
}

/// What a cluster-wide rate limit does while the shared counters cannot be reached and the node's
/// share is used up.
public enum StoreErrorMode: String, Sendable, CaseIterable {
    /// Count on this node alone, with the policy's full limit (the cluster admits up to the limit
    /// times the number of nodes until the store returns).
    case allow
    /// Refuse with 503 `rate_limit_store_unavailable`.
    case deny
}

/// Counter stores shared by a cluster's nodes (`scope: cluster`), one per policy: the
/// configuration asks for them when it builds its checks; a gateway without a cluster store has none.
public protocol ClusterRateLimits: Sendable {
    /// The shared store for policy `id` (the same one for every route that lists it, and across
    /// reloads while its rule stays the same). `local` counts for `onStoreError: .allow`.
    func store(
        policy id: String, rule: RateLimitRule, onStoreError: StoreErrorMode, local: InProcessRateLimitStore
    )
        -> any RateLimitStore
}

/// Counters behind `rate_limit`. The in-process store (``InProcessRateLimitStore``) is the one in use;
/// a store shared by a cluster implements the same call, atomically per key.
///
/// `consume` runs on the event loop for every request, so implementations must be thread-safe and
/// must not block on I/O (a networked store keeps a local budget and synchronises in the background).
public protocol RateLimitStore: Sendable {
    /// Decides and counts one request for `key` under `rule` at time `now` (seconds since 1970).
    /// A refused request does not use up any window or quota.
    func consume(key: String, rule: RateLimitRule, now: Double) -> RateLimitDecision
}

/// Proleptic Gregorian dates from day counts and back (H. Hinnant's civil algorithms), written here
/// because GatehouseCore has no calendar and Foundation's is not needed for UTC month bounds.
enum CivilDate {
    static func fromDays(_ z0: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    static func toDays(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

// Hand-written: the generic cell rate algorithm, calendar quotas, bans and bounded sharded counters.
// None of the listed libraries rate-limits; the locks are the standard library's Synchronization.Mutex.
import Synchronization

/// The in-process ``RateLimitStore``: counters in memory, split over lock-protected shards so that
/// event loops rarely wait on each other.
///
/// Memory stays bounded: an entry is dropped once it is idle (every window's bucket full again, no
/// ban running, no quota counted in the current period), and each shard holds at most
/// `maxKeys / shards` entries; when a shard is full and nothing in it has expired, the least recently
/// used of a small sample is evicted (the approximation Redis uses), so a flood of distinct keys
/// costs a bounded amount of memory. An evicted key starts afresh, which errs towards allowing.
public final class InProcessRateLimitStore: RateLimitStore, Sendable {
    struct Entry {
        /// Theoretical arrival time per window (generic cell rate algorithm).
        var tats: [Double]
        var quotaPeriodStart: Double = 0
        var quotaUsed: Int = 0
        var violationsStart: Double = 0
        var violations: Int = 0
        var bannedUntil: Double = 0
        var lastSeen: Double = 0
        /// When the entry becomes idle and may be dropped.
        var expires: Double = 0
    }

    struct Shard {
        var entries: [String: Entry] = [:]
        var lastSweep: Double = 0
    }

    final class Box: Sendable {
        let shard = Mutex(Shard())
    }

    private let shards: [Box]
    private let mask: Int
    /// Most entries one shard keeps.
    public let maxKeysPerShard: Int
    /// A shard is swept for idle entries at most this often (seconds) on the insert path.
    let sweepInterval: Double

    /// - Parameters:
    ///   - maxKeys: upper bound on keys kept (spread over the shards).
    ///   - shards: a power of two; more shards, less contention.
    public init(maxKeys: Int = 100_000, shards: Int = 64, sweepInterval: Double = 1) {
        var n = 1
        while n < max(1, shards) { n <<= 1 }
        self.shards = (0..<n).map { _ in Box() }
        mask = n - 1
        maxKeysPerShard = max(1, (maxKeys + n - 1) / n)
        self.sweepInterval = sweepInterval
    }

    /// Number of keys held now (for tests and metrics).
    public var count: Int { shards.reduce(0) { $0 + $1.shard.withLock { $0.entries.count } } }

    /// Upper bound of keys this store will ever hold.
    public var capacity: Int { maxKeysPerShard * shards.count }

    public func consume(key: String, rule: RateLimitRule, now: Double) -> RateLimitDecision {
        let box = shards[key.hashValue & mask]
        return box.shard.withLock { shard in
            if shard.entries[key] == nil {
                makeRoom(&shard, now: now)
            } else if now - shard.lastSweep > 60 {
                // Long-lived shards whose keys never change still shed idle entries now and then.
                sweep(&shard, now: now)
            }
            return Self.decide(
                &shard.entries[key, default: Entry(tats: [Double](repeating: 0, count: rule.windows.count))],
                rule: rule, now: now)
        }
    }

    private func makeRoom(_ shard: inout Shard, now: Double) {
        if shard.entries.count >= maxKeysPerShard {
            if now - shard.lastSweep >= sweepInterval { sweep(&shard, now: now) }
            if shard.entries.count >= maxKeysPerShard { evictOne(&shard) }
        } else if now - shard.lastSweep >= 60 {
            sweep(&shard, now: now)
        }
    }

    private func sweep(_ shard: inout Shard, now: Double) {
        shard.lastSweep = now
        shard.entries = shard.entries.filter { $0.value.expires > now }
    }

    private func evictOne(_ shard: inout Shard) {
        // Sampled LRU: the oldest of the first few entries in hash order (effectively random).
        var victim: String?
        var oldest = Double.infinity
        for (k, e) in shard.entries.prefix(8) where e.lastSeen < oldest {
            oldest = e.lastSeen
            victim = k
        }
        if let victim { shard.entries[victim] = nil }
    }

    /// The whole decision for one key, under its shard's lock: ban, then windows, then quota; counts
    /// only an allowed request.
    static func decide(_ e: inout Entry, rule: RateLimitRule, now: Double) -> RateLimitDecision {
        e.lastSeen = now
        if e.tats.count != rule.windows.count { e.tats = [Double](repeating: 0, count: rule.windows.count) }
        defer { e.expires = expiry(e, rule: rule) }
        if e.bannedUntil > now { return .banned(until: e.bannedUntil) }

        // Windows: a request passes when every window's theoretical arrival time is within tolerance.
        var worst: (index: Int, wait: Double)?
        for (i, w) in rule.windows.enumerated() {
            let tat = max(e.tats[i], now)
            let wait = tat - now - w.tolerance
            if wait > 1e-9, wait > (worst?.wait ?? 0) { worst = (i, wait) }
        }
        if let worst {
            let banned = recordViolation(&e, rule: rule, now: now)
            return .rateLimited(
                window: worst.index, retryAfter: worst.wait, windows: statuses(e, rule: rule, now: now), bannedUntil: banned)
        }

        var quotaReset: Double?
        if let q = rule.quota {
            let (start, end) = q.period.bounds(containing: now)
            if e.quotaPeriodStart != start {
                e.quotaPeriodStart = start
                e.quotaUsed = 0
            }
            quotaReset = end
            if e.quotaUsed >= q.limit {
                let banned = recordViolation(&e, rule: rule, now: now)
                return .quotaExceeded(used: e.quotaUsed, resetAt: end, bannedUntil: banned)
            }
            e.quotaUsed += 1
        }
        for (i, w) in rule.windows.enumerated() {
            e.tats[i] = max(e.tats[i], now) + w.interval
        }
        return .allowed(
            windows: statuses(e, rule: rule, now: now), quotaUsed: rule.quota == nil ? nil : e.quotaUsed, quotaResetAt: quotaReset)
    }

    /// Counts a refusal; returns the ban's end when this one starts a ban.
    static func recordViolation(_ e: inout Entry, rule: RateLimitRule, now: Double) -> Double? {
        guard let ban = rule.ban else { return nil }
        if e.violations == 0 || now - e.violationsStart > ban.within {
            e.violationsStart = now
            e.violations = 0
        }
        e.violations += 1
        guard e.violations >= ban.violations else { return nil }
        e.violations = 0
        e.bannedUntil = now + ban.duration
        return e.bannedUntil
    }

    static func statuses(_ e: Entry, rule: RateLimitRule, now: Double) -> [WindowStatus] {
        rule.windows.enumerated().map { i, w in
            let ahead = max(0, e.tats[i] - now)
            let remaining = max(0, Int(((Double(w.burst) * w.interval - ahead) / w.interval + 1e-9).rounded(.down)))
            return WindowStatus(remaining: min(remaining, w.burst), resetIn: ahead)
        }
    }

    static func expiry(_ e: Entry, rule: RateLimitRule) -> Double {
        var t = e.tats.max() ?? 0
        t = max(t, e.bannedUntil)
        if let ban = rule.ban, e.violations > 0 { t = max(t, e.violationsStart + ban.within) }
        if let q = rule.quota, e.quotaUsed > 0 { t = max(t, q.period.bounds(containing: e.quotaPeriodStart).end) }
        return t
    }
}

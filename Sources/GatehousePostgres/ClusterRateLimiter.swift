import Foundation
import GatehouseChecks
import GatehouseStore
import Logging
import Synchronization

/// Rate limits counted across a cluster's nodes (`rate_limit` with `scope: cluster`): counters in
/// the cluster store, and on each node a share of each counter leased ahead of use, so that the
/// request path never waits on PostgreSQL.
///
/// Each limit of a policy (a `rate` window, a `limits` entry, the `quota`) is a fixed window per
/// key (`period` long; for the quota, the calendar day or month). The row
/// `rate_counters(policy, key, window_start)` counts the requests the nodes have leased in it. A
/// node serves a request from its lease; when the lease runs low, the reconciler (every
/// `interval`, on a thread of its own) asks for more with one statement for every key at once
/// (`used = used + want`, returning the new total), and is granted what the limit leaves. The
/// first request of a key in a window on a node is allowed before any lease arrives and charged
/// with the next one.
///
/// Accuracy, per key and window, with N nodes and leases of at most L requests (L = limit / 10, at
/// least 1; an eighth of what the counter leaves once that is less):
/// - at most limit + N requests are allowed (each node's first request of the window is allowed
///   before its lease is known);
/// - under load that continues to the end of the window at least limit - N × L are, since a node
///   may hold up to L leased requests its callers do not use; requests can be refused on one node
///   while another holds unused leases, for up to one reconcile interval.
/// `bench/cluster` measures it under load; docs/cluster.md reports the figures.
///
/// While the store is unreachable, leases already held are used up; beyond them `on_store_error`
/// decides: `allow` counts on this node alone (with the policy's full limit), `deny` refuses with
/// 503 `rate_limit_store_unavailable`. Differences from `scope: node`: windows are fixed, not
/// token buckets (`burst` is ignored), and `ban` is not available.
public final class ClusterRateLimiter: ClusterRateLimits, Sendable {
    let database: PGDatabase
    let logger: Logger
    let interval: Double
    let stores = Mutex<[String: ClusterRateLimitStore]>([:])
    /// When a reconcile last succeeded, whether the last attempt failed, and when the round now
    /// waiting on the store began (nil between rounds).
    let lastSuccess = Mutex<(time: Double, failing: Bool, roundStarted: Double?)>((Date().timeIntervalSince1970, false, nil))
    /// Most lease requests in one statement (6 parameters each; PostgreSQL takes 65,535).
    static let maxTuples = 2000
    let stopping = Atomic<Bool>(false)
    let lastCleanup = Mutex<Double>(0)
    let thread = Mutex<Thread?>(nil)

    public init(database: PGDatabase, interval: Double = 0.05, logger: Logger) {
        self.database = database
        self.interval = interval
        self.logger = logger
    }

    public func store(
        policy id: String, rule: RateLimitRule, onStoreError: StoreErrorMode, local: InProcessRateLimitStore
    )
        -> any RateLimitStore
    {
        startIfNeeded()
        return stores.withLock { stores in
            if let s = stores[id], s.rule == rule, s.mode == onStoreError { return s }
            let s = ClusterRateLimitStore(policy: id, rule: rule, mode: onStoreError, local: local, limiter: self)
            stores[id] = s
            return s
        }
    }

    /// Whether the store has not answered for longer than `downAfter`: the last round failed, or
    /// the round in progress has been waiting that long (a server that stopped answering, not
    /// only one that refuses connections).
    func storeDown(now: Double) -> Bool {
        lastSuccess.withLock { s in
            if s.failing && now - s.time > Self.downAfter { return true }
            if let started = s.roundStarted, now - started > Self.downAfter { return true }
            return false
        }
    }

    /// Seconds without an answer after which the store counts as unreachable.
    static let downAfter = 1.0

    func startIfNeeded() {
        thread.withLock { t in
            guard t == nil else { return }
            let th = Thread { [self] in
                while !stopping.load(ordering: .relaxed) {
                    reconcile()
                    Thread.sleep(forTimeInterval: interval)
                }
            }
            th.name = "gatehouse-cluster-ratelimit"
            th.start()
            t = th
        }
    }

    public func stop() { stopping.store(true, ordering: .relaxed) }

    /// One round: every store's lease requests in one statement, the grants handed back.
    func reconcile() {
        let now = Date().timeIntervalSince1970
        let all = stores.withLock { Array($0.values) }
        var requests: [(ClusterRateLimitStore, LeaseRequest)] = []
        for s in all { for r in s.leaseRequests(now: now) { requests.append((s, r)) } }
        if !requests.isEmpty {
            lastSuccess.withLock { $0.roundStarted = now }
            var done = 0
            do {
                // Chunk by chunk, each chunk's grants handed back as soon as it committed: a
                // later chunk's failure does not undo them. Each chunk that commits counts as
                // the store answering.
                for chunk in stride(from: 0, to: requests.count, by: Self.maxTuples) {
                    let part = requests[chunk..<min(requests.count, chunk + Self.maxTuples)]
                    let totals = try upsert(part.map(\.1))
                    for (i, (s, r)) in part.enumerated() { s.grant(r, total: totals[i]) }
                    done = chunk + part.count
                    let t = Date().timeIntervalSince1970
                    lastSuccess.withLock { $0 = (t, false, done < requests.count ? t : nil) }
                }
            } catch {
                for (s, r) in requests[done...] { s.failed(r) }
                let wasFailing = lastSuccess.withLock { v -> Bool in
                    defer {
                        v.failing = true
                        v.roundStarted = nil
                    }
                    return v.failing
                }
                if !wasFailing {
                    logger.error(
                        "cluster rate limits cannot reach the cluster store: nodes use up their leases, then on_store_error decides",
                        metadata: ["error": "\(error)"])
                }
            }
        }
        if now - lastCleanup.withLock({ $0 }) > 60 {
            lastCleanup.withLock { $0 = now }
            // One node at a time (the others skip), a bounded batch a minute (indexed by expiry).
            _ = try? database.write { tx in
                guard try tx.scalar("SELECT pg_try_advisory_xact_lock(?)::int", [PGSchema.lockKey + 1]) == Int64(1) else { return }
                try tx.execute(
                    "DELETE FROM rate_counters WHERE ctid IN (SELECT ctid FROM rate_counters WHERE expires_at < ? LIMIT 10000)", [now - 60])
            }
        }
    }

    /// Adds each request's `want` to its counter and returns the new totals, in order.
    func upsert(_ requests: [LeaseRequest]) throws -> [Int64] {
        var args: [SQLValue] = []
        var tuples: [String] = []
        for (i, r) in requests.enumerated() {
            tuples.append("(?, ?, ?, ?, ?, ?)")
            // Each limit of a policy counts apart: two limits whose windows start together (a day
            // window and a daily quota) must not share a row.
            args += [
                .integer(Int64(i)), .text(r.policy), .text("\(r.limit)|\(r.key)"), .double(r.windowStart), .integer(Int64(r.want)),
                .double(r.expires),
            ]
        }
        let sql = """
            WITH wanted (n, policy, key, window_start, want, expires_at) AS (VALUES \(tuples.joined(separator: ", "))),
            counted AS (
                INSERT INTO rate_counters (policy, key, window_start, used, expires_at)
                SELECT policy, key, window_start, want, expires_at FROM wanted
                ON CONFLICT (policy, key, window_start) DO UPDATE SET used = rate_counters.used + excluded.used
                RETURNING policy, key, window_start, used)
            SELECT w.n, c.used FROM wanted w JOIN counted c
                ON c.policy = w.policy AND c.key = w.key AND c.window_start = w.window_start
            """
        // Typed casts: VALUES with parameters has no column types of its own.
        let typed = sql.replacingOccurrences(
            of: "(?, ?, ?, ?, ?, ?)", with: "(?::bigint, ?::text, ?::text, ?::float8, ?::bigint, ?::float8)")
        let rows = try database.autocommit { tx in try tx.rows(typed, SQLArguments(args)) }
        var totals = [Int64](repeating: 0, count: requests.count)
        for r in rows { totals[Int(r["n"] as Int64)] = r["used"] }
        return totals
    }
}

/// One lease asked of the cluster store.
struct LeaseRequest: Sendable {
    var policy: String
    var key: String
    /// Which limit of the policy (windows first, then the quota).
    var limit: Int
    var windowStart: Double
    var want: Int
    var expires: Double
    /// Requests allowed before the lease, charged by it.
    var debt: Int
}

/// One policy's shared counters on one node.
final class ClusterRateLimitStore: RateLimitStore, Sendable {
    let policy: String
    let rule: RateLimitRule
    let mode: StoreErrorMode
    let local: InProcessRateLimitStore
    /// Weak: a configuration generation may outlive the gateway (its limiter); then the store
    /// counts as unreachable.
    weak let limiter: ClusterRateLimiter?
    /// Per key, one slot per limit.
    let slots = Mutex<[String: [Slot]]>([:])
    /// The limits: (count, how to find the window containing a time).
    let limits: [(count: Int, lease: Int)]
    /// Most keys held (the policy's `max_keys`).
    let maxKeys: Int

    /// Makes room for a key: drops the best of a few keys looked at, in this order of preference:
    /// a key whose windows are all over; one that holds nothing (no lease, no debt, no request in
    /// flight); one that holds only unused leases (dropping them is conservative: the store has
    /// counted them as used). A key with a debt or a request in flight is never dropped (its
    /// allowed requests would go uncounted), nor one whose counter is full in a window still
    /// running: that mark is what refuses it, and a key dropped and back starts afresh (its first
    /// request is allowed before a lease), so a caller refused by the limit could otherwise buy
    /// itself requests by flooding the node with new keys. False when none of those looked at
    /// can go.
    func evictOne(_ all: inout [String: [Slot]], now: Double) -> Bool {
        var best: (key: String, rank: Int)?
        var looked = 0
        for (k, slots) in all {
            looked += 1
            if let rank = Self.evictionRank(slots, now: now), rank < (best?.rank ?? Int.max) {
                best = (k, rank)
                if rank <= 1 { break }
            }
            if looked >= 16 { break }
        }
        guard let best else { return false }
        all[best.key] = nil
        return true
    }

    /// How readily a key can be dropped (lower first), or nil when it must stay.
    static func evictionRank(_ slots: [Slot], now: Double) -> Int? {
        if slots.allSatisfy({ $0.windowEnd <= now }) { return 0 }
        guard slots.allSatisfy({ $0.debt == 0 && !$0.inFlight && !($0.exhausted && $0.windowEnd > now) }) else { return nil }
        return slots.allSatisfy({ $0.available == 0 }) ? 1 : 2
    }

    struct Slot {
        var windowStart: Double = -1
        var windowEnd: Double = -1
        /// Leased and not yet used.
        var available = 0
        /// Allowed before a lease: charged with the next request.
        var debt = 0
        /// Whether the first request of the window may go before a lease.
        var credit = 1
        /// The cluster total last seen (capped at the limit).
        var seen = 0
        /// Used here since `seen` was read.
        var usedSince = 0
        var inFlight = false
        /// The counter is full for this window (a grant came back short).
        var exhausted = false
    }

    init(policy: String, rule: RateLimitRule, mode: StoreErrorMode, local: InProcessRateLimitStore, limiter: ClusterRateLimiter) {
        self.policy = policy
        self.rule = rule
        self.mode = mode
        self.local = local
        self.limiter = limiter
        maxKeys = local.capacity
        var l = rule.windows.map { (count: $0.count, lease: max(1, $0.count / 10)) }
        if let q = rule.quota { l.append((count: q.limit, lease: max(1, q.limit / 10))) }
        limits = l
    }

    func bounds(_ i: Int, _ now: Double) -> (Double, Double) {
        if i < rule.windows.count {
            let p = rule.windows[i].period
            let start = (now / p).rounded(.down) * p
            return (start, start + p)
        }
        let b = rule.quota!.period.bounds(containing: now)
        return (b.start, b.end)
    }

    func consume(key: String, rule: RateLimitRule, now: Double) -> RateLimitDecision {
        enum Outcome {
            case allowed([WindowStatus], Int?, Double?)
            case refused(Int, Double, [WindowStatus], Int)
            case waiting
            case overflow
        }
        let outcome = slots.withLock { all -> Outcome in
            var s: [Slot]
            if let existing = all[key] {
                s = existing
            } else {
                if all.count >= maxKeys && !evictOne(&all, now: now) { return .overflow }
                s = Array(repeating: Slot(), count: limits.count)
            }
            for i in limits.indices {
                let (start, end) = bounds(i, now)
                if s[i].windowStart != start { s[i] = Slot(windowStart: start, windowEnd: end) }
            }
            // Refused by the first limit with nothing to spend.
            for i in limits.indices where s[i].available == 0 && (s[i].credit == 0 || s[i].exhausted) {
                all[key] = s
                if !s[i].exhausted && (limiter?.storeDown(now: now) ?? true) { return .waiting }
                let retry = s[i].exhausted ? s[i].windowEnd - now : 1
                return .refused(i, retry, statuses(s, now), min(limits[i].count, s[i].seen + s[i].usedSince))
            }
            for i in limits.indices {
                if s[i].available > 0 {
                    s[i].available -= 1
                } else {
                    s[i].credit -= 1
                    s[i].debt += 1
                }
                s[i].usedSince += 1
            }
            all[key] = s
            let statuses = statuses(s, now)
            let q = rule.quota.map { _ in min(limits[limits.count - 1].count, s[limits.count - 1].seen + s[limits.count - 1].usedSince) }
            return .allowed(Array(statuses.prefix(rule.windows.count)), q, rule.quota.map { _ in s[limits.count - 1].windowEnd })
        }
        switch outcome {
        case .allowed(let w, let q, let r): return .allowed(windows: w, quotaUsed: q, quotaResetAt: r)
        case .refused(let i, let retry, let statuses, let used):
            if i >= rule.windows.count {
                return .quotaExceeded(used: used, resetAt: now + max(0, retry), bannedUntil: nil)
            }
            return .rateLimited(window: i, retryAfter: max(0, retry), windows: Array(statuses.prefix(rule.windows.count)), bannedUntil: nil)
        case .overflow:
            switch mode {
            case .allow: return local.consume(key: key, rule: rule, now: now)
            case .deny:
                return .storeUnavailable(
                    detail:
                        "this node holds cluster counters for as many keys as it may (max_keys \(maxKeys)), each with a lease or a request in flight; new keys cannot be counted",
                    retryAfter: 1)
            }
        case .waiting:
            switch mode {
            case .allow: return local.consume(key: key, rule: rule, now: now)
            case .deny:
                let since = limiter?.lastSuccess.withLock { $0.time } ?? 0
                return .storeUnavailable(
                    detail:
                        "the cluster store has been unreachable for \(Int(now - since)) s and this node's share of the limit is used up",
                    retryAfter: 1)
            }
        }
    }

    func statuses(_ s: [Slot], _ now: Double) -> [WindowStatus] {
        limits.indices.map { i in
            WindowStatus(
                remaining: max(0, limits[i].count - s[i].seen - s[i].usedSince), resetIn: max(0, s[i].windowEnd - now))
        }
    }

    /// The leases this node should ask for now: slots of current windows running low.
    func leaseRequests(now: Double) -> [LeaseRequest] {
        slots.withLock { all in
            var out: [LeaseRequest] = []
            var idle: [String] = []
            for (key, s) in all {
                var slots = s
                var live = false
                for i in slots.indices {
                    guard slots[i].windowEnd > now else { continue }
                    live = true
                    let low = slots[i].available * 2 <= limits[i].lease
                    guard !slots[i].inFlight, !slots[i].exhausted, slots[i].debt > 0 || (low && slots[i].usedSince > 0) else { continue }
                    slots[i].inFlight = true
                    out.append(
                        LeaseRequest(
                            policy: policy, key: key, limit: i, windowStart: slots[i].windowStart, want: lease(i, slots[i]) + slots[i].debt,
                            expires: slots[i].windowEnd, debt: slots[i].debt))
                }
                if live { all[key] = slots } else { idle.append(key) }
            }
            for k in idle { all[k] = nil }
            return out
        }
    }

    /// How much to lease: L, or less as the counter nears its limit (an eighth of what it leaves),
    /// so that few leased requests are stranded on a node when the window fills.
    func lease(_ i: Int, _ slot: Slot) -> Int {
        max(1, min(limits[i].lease, (limits[i].count - slot.seen) / 8))
    }

    /// Applies a grant: the counter's new total says how much of `want` fitted under the limit.
    func grant(_ r: LeaseRequest, total: Int64) {
        let limit = Int64(limits[r.limit].count)
        let before = total - Int64(r.want)
        let granted = Int(max(0, min(Int64(r.want), limit - before)))
        slots.withLock { all in
            guard var s = all[r.key], s[r.limit].windowStart == r.windowStart else { return }
            s[r.limit].inFlight = false
            s[r.limit].debt -= r.debt
            // The debt is charged whether or not it fitted (those requests were allowed).
            s[r.limit].available += max(0, granted - r.debt)
            s[r.limit].seen = Int(min(limit, total))
            s[r.limit].usedSince = 0
            if granted < r.want { s[r.limit].exhausted = true }
            all[r.key] = s
        }
    }

    func failed(_ r: LeaseRequest) {
        slots.withLock { all in
            guard var s = all[r.key], s[r.limit].windowStart == r.windowStart else { return }
            s[r.limit].inFlight = false
            all[r.key] = s
        }
    }
}

import GatehouseChecks
import GatehouseCore
import Yams

extension PolicyTypes {
    /// `rate_limit`: `key`, `rate` + `burst` (one window) or `limits` (several), `quota`, `ban`,
    /// `headers`, `max_keys`, `ipv6_prefix`, `scope` (`node`, the default, or `cluster`) and
    /// `on_store_error` (`allow` or `deny`, for `scope: cluster`).
    ///
    /// The counter store is created here, once per policy, so every route that lists the policy
    /// shares its counters (add `route` to `key` to count routes apart).
    static let rateLimit = PolicyType(
        name: "rate_limit",
        keys: [
            "key", "rate", "burst", "limits", "quota", "ban", "headers", "max_keys", "ipv6_prefix", "scope", "on_store_error",
        ]
    ) { id, node, f, r in
        var parts: [RateLimitKeyPart] = []
        if let k = f["key"] {
            let items: [ConfigNode]
            if case .sequence = (k.node) { items = r.list(k) } else { items = [k] }
            for item in items {
                guard let s = r.oneOf(item, RateLimitKeyPart.allCases.map(\.rawValue)) else { continue }
                parts.append(RateLimitKeyPart(rawValue: s)!)
            }
        } else {
            parts = [.ip]
        }

        var windows: [RateWindow] = []
        func window(_ rateNode: ConfigNode, _ burstNode: ConfigNode?) {
            guard let text = r.string(rateNode) else { return }
            guard let (count, period) = parseRate(text) else {
                r.error(rateNode, "\"\(text)\" is not a rate (expected COUNT/UNIT, e.g. 10/second, 100/minute, 1000/hour, 5/10s)")
                return
            }
            // The same bound as an explicit burst: counts stay far from integer overflow.
            guard count <= 10_000_000 else {
                r.error(rateNode, "\"\(text)\": the count is at most 10000000 per period")
                return
            }
            let burst = burstNode.flatMap { r.int($0, range: 1...10_000_000) }
            let name = "\(id).\(count)-per-\(periodLabel(period))"
            windows.append(RateWindow(count: count, period: period, burst: burst, name: name))
        }
        if let rate = f["rate"] {
            window(rate, f["burst"])
        } else if let b = f["burst"] {
            r.error(b, "burst needs a rate next to it (e.g. rate: 10/second, burst: 20)")
        }
        if let limits = f["limits"] {
            for item in r.list(limits) {
                guard let lf = r.mapping(item, known: ["rate", "burst"], required: ["rate"]), let rate = lf["rate"] else { continue }
                window(rate, lf["burst"])
            }
        }

        var quota: Quota?
        if let q = f["quota"], let qf = r.mapping(q, known: ["limit", "per"], required: ["limit", "per"]) {
            if let limit = qf["limit"].flatMap({ r.int($0, range: 1...Int(Int32.max)) }),
                let per = qf["per"].flatMap({ r.oneOf($0, QuotaPeriod.allCases.map(\.rawValue)) })
            {
                quota = Quota(limit: limit, period: QuotaPeriod(rawValue: per)!, name: "\(id).quota-per-\(per)")
            }
        }
        var ban: AbuseBan?
        if let b = f["ban"], let bf = r.mapping(b, known: ["violations", "within", "for"], required: ["violations", "within", "for"]) {
            if let v = bf["violations"].flatMap({ r.int($0, range: 1...1_000_000) }), let w = bf["within"].flatMap(r.duration),
                let d = bf["for"].flatMap(r.duration)
            {
                ban = AbuseBan(violations: v, within: w, duration: d)
            }
        }
        if windows.isEmpty, quota == nil, f["rate"] == nil, f["limits"] == nil {
            r.error(node, "a rate_limit policy needs rate (with optional burst), limits, or quota")
        }
        // Counted on this node (the default) or across the cluster's nodes.
        var cluster = false
        if let n = f["scope"], let scope = r.oneOf(n, ["node", "cluster"]) {
            cluster = scope == "cluster"
            if cluster {
                r.needsClusterStore.append(n)
                if let b = f["ban"] {
                    r.error(b, "ban is counted per node: it is not available with scope: cluster (use a scope: node policy beside it)")
                }
            }
        }
        var onStoreError = StoreErrorMode.allow
        if let n = f["on_store_error"], let mode = r.oneOf(n, StoreErrorMode.allCases.map(\.rawValue)) {
            onStoreError = StoreErrorMode(rawValue: mode)!
            if !cluster { r.error(n, "on_store_error applies to scope: cluster (a node's own counters cannot be unreachable)") }
        }
        let headers = f["headers"].flatMap(r.bool) ?? true
        let maxKeys = f["max_keys"].flatMap { r.int($0, range: 64...100_000_000) } ?? 100_000
        let store = InProcessRateLimitStore(maxKeys: maxKeys)
        let rule = RateLimitRule(windows: windows, quota: quota, ban: ban)
        // IPv6 clients are counted per /64 unless told otherwise (128: per address).
        let ipv6Prefix = f["ipv6_prefix"].flatMap { r.int($0, range: 1...128) } ?? RateLimitCheck.defaultIPv6Prefix
        let check = RateLimitCheck(id: id, keyParts: parts, rule: rule, store: store, headersOnAllowed: headers, ipv6Prefix: ipv6Prefix)
        guard cluster else { return { _ in check } }
        // The shared store comes from the gateway (the configuration is read before it exists);
        // it hands out one store per policy, so every route listing the policy shares it.
        let keyParts = parts
        let mode = onStoreError
        return { context in
            guard let shared = context.clusterRateLimits else { return check }
            return RateLimitCheck(
                id: id, keyParts: keyParts, rule: rule, store: shared.store(policy: id, rule: rule, onStoreError: mode, local: store),
                headersOnAllowed: headers, ipv6Prefix: ipv6Prefix)
        }
    }

    /// "10/second" → (10, 1); "5/10s" → (5, 10).
    static func parseRate(_ text: String) -> (Int, Double)? {
        let pieces = text.split(separator: "/", maxSplits: 1).map { String($0.trimmingSpaces) }
        guard pieces.count == 2, let count = Int(pieces[0]), count > 0 else { return nil }
        let units: [String: Double] = [
            "second": 1, "sec": 1, "s": 1, "minute": 60, "min": 60, "m": 60, "hour": 3600, "h": 3600,
            "day": 86400, "d": 86400,
        ]
        if let u = units[pieces[1]] { return (count, u) }
        if let d = TimeText.parseDuration(pieces[1]), d > 0 { return (count, d) }
        return nil
    }

    static func periodLabel(_ p: Double) -> String {
        switch p {
        case 1: return "second"
        case 60: return "minute"
        case 3600: return "hour"
        case 86400: return "day"
        default: return TimeText.duration(p).split(separator: " ").joined()
        }
    }
}

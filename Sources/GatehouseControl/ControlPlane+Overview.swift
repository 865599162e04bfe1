import Foundation
import GatehouseStore

/// What the console's overview shows for a period: requests, allowed and denied, denials by
/// reason over time, the most denied applications and routes, latency percentiles and what
/// shadow checks would have denied. Read from the per-minute rollups (`CallRollups`), never from
/// the calls themselves.
public struct Overview: Sendable, Codable, Equatable {
    /// One bucket of the period.
    public struct Point: Sendable, Codable, Equatable {
        /// Seconds since 1970 at which the bucket starts.
        public var start: Double
        public var requests: Int64
        public var denied: Int64
        public var shadowWouldDeny: Int64
        /// Denials in the bucket by reason code (only reasons with a denial).
        public var deniedByReason: [String: Int64]
    }

    /// Calls of one status and reason (`reason` nil: none recorded).
    public struct StatusCount: Sendable, Codable, Equatable {
        public var status: Int
        public var reason: String?
        public var count: Int64
    }

    /// Denials of one application or route.
    public struct Denials: Sendable, Codable, Equatable {
        /// The application's id, or the route.
        public var key: String
        /// The application's name (nil for a route, or an application since deleted).
        public var name: String?
        public var denied: Int64
    }

    /// The period, whole minutes: `since` rounded down, `until` up.
    public var since: Double
    public var until: Double
    /// The buckets' length in seconds.
    public var bucket: Double
    public var requests: Int64
    /// Calls forwarded or answered (everything not denied; upstream failures included).
    public var allowed: Int64
    /// Calls a check denied (a reason that is not an upstream failure).
    public var denied: Int64
    /// Calls a shadow check would have denied (each counted once, whatever the number of checks).
    public var shadowWouldDeny: Int64
    /// Total time percentiles in milliseconds, from the rollups' histograms (nil with no calls).
    public var latencyP50Millis: Double?
    public var latencyP99Millis: Double?
    public var meanMillis: Double?
    /// Every bucket of the period, oldest first, empty ones included.
    public var series: [Point]
    /// Denials by reason over the whole period, most first.
    public var deniedByReason: [Denials]
    /// Calls by status and reason, by status then reason.
    public var byStatus: [StatusCount]
    public var topDeniedApplications: [Denials]
    public var topDeniedRoutes: [Denials]
}

extension ControlPlane {
    /// An integer column's sum as an integer on both dialects (PostgreSQL's sum of a BIGINT is a
    /// NUMERIC).
    static func sum(_ column: String) -> String { "CAST(sum(\(column)) AS BIGINT)" }

    /// How many buckets a period may be cut into.
    public static let maximumOverviewBuckets = 10_000

    /// The overview of `since..<until` in buckets of `bucket` seconds (a whole number of
    /// minutes), read from the rollups; a tenant-scoped actor sees only its tenant's
    /// applications' calls (as in `calls`).
    public func overview(_ actor: ControlActor, since: Double, until: Double, bucket: Double = 3600, top: Int = 10) throws -> Overview {
        try require(actor, .viewer, "reading the call log")
        guard since.isFinite, until.isFinite, since < until else {
            throw ControlError.invalid("the period is empty: since must be before until", field: "since")
        }
        guard bucket.isFinite, bucket >= 60, bucket.truncatingRemainder(dividingBy: 60) == 0 else {
            throw ControlError.invalid("bucket \(bucket) is not a whole number of minutes (60, 300, 3600, …)", field: "bucket")
        }
        let from = CallRollups.minute(since)
        let to = Int64((until / 60).rounded(.up))
        let step = Int64(bucket / 60)
        let firstBucket = (from / step) * step
        let buckets = (to - firstBucket + step - 1) / step
        guard buckets <= Self.maximumOverviewBuckets else {
            throw ControlError.invalid(
                "the period holds \(buckets) buckets of \(Int(bucket)) s; at most \(Self.maximumOverviewBuckets): choose a longer bucket",
                field: "bucket")
        }
        guard (1...1000).contains(top) else { throw ControlError.invalid("top \(top) is out of range (1...1000)", field: "top") }

        var conds = ["minute >= ?", "minute < ?"]
        var args: [any SQLBindable] = [from, to]
        if let scope = actor.tenant {
            conds.append("application_id IN (SELECT id FROM consumers WHERE tenant = ?)")
            args.append(scope)
        }
        let whereSQL = " FROM call_rollups WHERE " + conds.joined(separator: " AND ")
        let arguments = SQLArguments(args)
        let histogram = (0..<CallRollups.bucketCount).map { "\(Self.sum("h\($0)")) AS h\($0)" }.joined(separator: ", ")

        return try db.read { tx in
            // 1. By status and reason, with the latency histogram: the period's totals.
            var byStatus: [Overview.StatusCount] = []
            var requests: Int64 = 0, denied: Int64 = 0, shadow: Int64 = 0, totalMillis = 0.0
            var hist = [Int64](repeating: 0, count: CallRollups.bucketCount)
            var byReason: [String: Int64] = [:]
            for r in try tx.rows(
                "SELECT status, reason, \(Self.sum("count")) AS n, \(Self.sum("denied")) AS d, \(Self.sum("shadow_would_deny")) AS s, sum(total_ms_sum) AS t, \(histogram)"
                    + whereSQL + " GROUP BY status, reason ORDER BY status, reason", arguments)
            {
                let reason: String = r["reason"]
                let n: Int64 = r["n"], d: Int64 = r["d"]
                byStatus.append(Overview.StatusCount(status: r["status"], reason: reason.isEmpty ? nil : reason, count: n))
                requests += n
                denied += d
                shadow += r["s"]
                totalMillis += r["t"]
                if d > 0 { byReason[reason, default: 0] += d }
                for i in hist.indices { hist[i] += r["h\(i)"] }
            }

            // 2. Per bucket and reason: the series and denials over time.
            var points: [Int64: Overview.Point] = [:]
            for r in try tx.rows(
                "SELECT (minute / \(step)) * \(step) AS b, reason, \(Self.sum("count")) AS n, \(Self.sum("denied")) AS d, \(Self.sum("shadow_would_deny")) AS s"
                    + whereSQL + " GROUP BY b, reason", arguments)
            {
                let b: Int64 = r["b"], d: Int64 = r["d"], reason: String = r["reason"]
                var p = points[b] ?? Overview.Point(start: Double(b * 60), requests: 0, denied: 0, shadowWouldDeny: 0, deniedByReason: [:])
                p.requests += r["n"]
                p.denied += d
                p.shadowWouldDeny += r["s"]
                if d > 0 { p.deniedByReason[reason, default: 0] += d }
                points[b] = p
            }
            var series: [Overview.Point] = []
            series.reserveCapacity(Int(buckets))
            var b = firstBucket
            while b < to {
                series.append(
                    points[b] ?? Overview.Point(start: Double(b * 60), requests: 0, denied: 0, shadowWouldDeny: 0, deniedByReason: [:]))
                b += step
            }

            // 3. The most denied applications and routes.
            func mostDenied(_ column: String) throws -> [Overview.Denials] {
                try tx.rows(
                    "SELECT \(column) AS k, \(Self.sum("denied")) AS d" + whereSQL
                        + " AND denied > 0 GROUP BY \(column) ORDER BY d DESC, k LIMIT \(top)",
                    arguments
                ).map { Overview.Denials(key: $0["k"], name: nil, denied: $0["d"]) }
            }
            var apps = try mostDenied("application_id").filter { !$0.key.isEmpty }
            if !apps.isEmpty {
                let names = try tx.rows(
                    "SELECT id, name FROM consumers WHERE id IN (\(Array(repeating: "?", count: apps.count).joined(separator: ", ")))",
                    SQLArguments(apps.map(\.key)))
                let byID = Dictionary(names.map { ($0["id"] as String, $0["name"] as String) }, uniquingKeysWith: { a, _ in a })
                for i in apps.indices { apps[i].name = byID[apps[i].key] }
            }
            let routes = try mostDenied("route")

            return Overview(
                since: Double(from * 60), until: Double(to * 60), bucket: bucket, requests: requests, allowed: requests - denied,
                denied: denied, shadowWouldDeny: shadow,
                latencyP50Millis: CallRollups.percentile(0.5, of: hist), latencyP99Millis: CallRollups.percentile(0.99, of: hist),
                meanMillis: requests > 0 ? totalMillis / Double(requests) : nil, series: series,
                deniedByReason: byReason.map { Overview.Denials(key: $0.key, name: nil, denied: $0.value) }
                    .sorted { ($0.denied, $1.key) > ($1.denied, $0.key) },
                byStatus: byStatus, topDeniedApplications: apps, topDeniedRoutes: routes)
        }
    }
}

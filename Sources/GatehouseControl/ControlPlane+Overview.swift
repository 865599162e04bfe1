import Foundation
import GatehouseStore

/// What the console's overview shows for a period: requests, allowed and denied, denials by
/// reason over time, the most denied applications and routes, latency percentiles and what
/// shadow checks would have denied. Read from the rollups (`CallRollups`: hourly rows for the
/// whole hours of a period cut into buckets of hours, minute rows for the rest), never from the
/// calls themselves.
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
        return try overview(
            since: since, until: until, bucket: bucket, top: top,
            filter: actor.tenant.map { (condition: "application_id IN (SELECT id FROM consumers WHERE tenant = ?)", argument: $0) })
    }

    /// The overview of the rollup rows `filter` keeps (all rows without one): a tenant's
    /// applications for a scoped admin, one application for its developers. Every rollup table
    /// a filtered read uses has the `application_id` column the filter names.
    func overview(
        since: Double, until: Double, bucket: Double, top: Int, filter: (condition: String, argument: String)?
    ) throws -> Overview {
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

        // Buckets of whole hours begin and end on hours: the whole hours of the period read the
        // hourly rows, the minutes before the first and after the last whole hour the minute rows.
        // Other buckets read minute rows throughout (an hour's row cannot be cut into them).
        var segments: [(from: Int64, to: Int64, hourly: Bool)] = [(from, to, false)]
        let firstHour = Int64((Double(from) / 60).rounded(.up)) * 60, lastHour = Int64((Double(to) / 60).rounded(.down)) * 60
        if step % 60 == 0 && firstHour < lastHour {
            segments = [(from, firstHour, false), (firstHour, lastHour, true), (lastHour, to, false)].filter { $0.from < $0.to }
        }
        // Filtered (a tenant's applications, or one application): each application is a range of
        // the hourly tables' keys.
        let scopeSQL = filter.map { " AND " + $0.condition } ?? ""
        func arguments(_ segment: (from: Int64, to: Int64, hourly: Bool)) -> SQLArguments {
            var args: [any SQLBindable] = [segment.from, segment.to]
            if let filter { args.append(filter.argument) }
            return SQLArguments(args)
        }
        // Unfiltered, the first pass needs neither route nor application: the small tables.
        func outcomesTable(hourly: Bool) -> CallRollups.Table {
            switch (filter == nil, hourly) {
            case (true, false): .outcomes
            case (true, true): .hourlyOutcomes
            case (false, false): .full
            case (false, true): .hourlyApplications
            }
        }
        let histogram = (0..<CallRollups.bucketCount).map { "\(Self.sum("h\($0)")) AS h\($0)" }.joined(separator: ", ")

        return try db.read { tx in
            // 1. One pass over the period's rows, by bucket, status and reason (a few rows per
            // bucket): the totals, the histogram, the series and denials over time.
            var byStatus: [Int: [String: Int64]] = [:]
            var requests: Int64 = 0, denied: Int64 = 0, shadow: Int64 = 0, totalMillis = 0.0
            var hist = [Int64](repeating: 0, count: CallRollups.bucketCount)
            var byReason: [String: Int64] = [:]
            var points: [Int64: Overview.Point] = [:]
            for segment in segments {
                for r in try tx.rows(
                    "SELECT (minute / \(step)) * \(step) AS b, status, reason, \(Self.sum("count")) AS n, \(Self.sum("denied")) AS d, "
                        + "\(Self.sum("shadow_would_deny")) AS s, sum(total_ms_sum) AS t, \(histogram)"
                        + " FROM \(outcomesTable(hourly: segment.hourly).rawValue) WHERE minute >= ? AND minute < ?\(scopeSQL)"
                        + " GROUP BY b, status, reason", arguments(segment))
                {
                    let b: Int64 = r["b"], reason: String = r["reason"]
                    let n: Int64 = r["n"], d: Int64 = r["d"], s: Int64 = r["s"]
                    byStatus[r["status"], default: [:]][reason, default: 0] += n
                    requests += n
                    denied += d
                    shadow += s
                    totalMillis += r["t"]
                    if d > 0 { byReason[reason, default: 0] += d }
                    for i in hist.indices { hist[i] += r["h\(i)"] }
                    var p =
                        points[b] ?? Overview.Point(start: Double(b * 60), requests: 0, denied: 0, shadowWouldDeny: 0, deniedByReason: [:])
                    p.requests += n
                    p.denied += d
                    p.shadowWouldDeny += s
                    if d > 0 { p.deniedByReason[reason, default: 0] += d }
                    points[b] = p
                }
            }
            var series: [Overview.Point] = []
            series.reserveCapacity(Int(buckets))
            var b = firstBucket
            while b < to {
                series.append(
                    points[b] ?? Overview.Point(start: Double(b * 60), requests: 0, denied: 0, shadowWouldDeny: 0, deniedByReason: [:]))
                b += step
            }

            // 2. The most denied applications and routes, from the denial rows only (a partial
            // index holds the minute ones, `call_rollups_denials`; the hourly table holds nothing else).
            var byApplication: [String: Int64] = [:], byRoute: [String: Int64] = [:]
            for segment in segments {
                let source =
                    segment.hourly
                    ? "\(CallRollups.Table.hourlyDenials.rawValue) WHERE minute >= ? AND minute < ?"
                    : "\(CallRollups.Table.full.rawValue) WHERE minute >= ? AND minute < ? AND denied > 0"
                for r in try tx.rows(
                    "SELECT application_id AS a, route AS r, \(Self.sum("denied")) AS d FROM \(source)\(scopeSQL) GROUP BY application_id, route",
                    arguments(segment))
                {
                    let d: Int64 = r["d"]
                    byApplication[r["a"], default: 0] += d
                    byRoute[r["r"], default: 0] += d
                }
            }
            func most(_ counts: [String: Int64]) -> [Overview.Denials] {
                counts.map { Overview.Denials(key: $0.key, name: nil, denied: $0.value) }
                    .sorted { ($0.denied, $1.key) > ($1.denied, $0.key) }
            }
            var apps = Array(most(byApplication).filter { !$0.key.isEmpty }.prefix(top))
            if !apps.isEmpty {
                let names = try tx.rows(
                    "SELECT id, name FROM consumers WHERE id IN (\(Array(repeating: "?", count: apps.count).joined(separator: ", ")))",
                    SQLArguments(apps.map(\.key)))
                let byID = Dictionary(names.map { ($0["id"] as String, $0["name"] as String) }, uniquingKeysWith: { a, _ in a })
                for i in apps.indices { apps[i].name = byID[apps[i].key] }
            }
            let routes = Array(most(byRoute).prefix(top))
            let statusCounts = byStatus.keys.sorted().flatMap { status in
                byStatus[status]!.keys.sorted().map { reason in
                    Overview.StatusCount(status: status, reason: reason.isEmpty ? nil : reason, count: byStatus[status]![reason]!)
                }
            }

            return Overview(
                since: Double(from * 60), until: Double(to * 60), bucket: bucket, requests: requests, allowed: requests - denied,
                denied: denied, shadowWouldDeny: shadow,
                latencyP50Millis: CallRollups.percentile(0.5, of: hist), latencyP99Millis: CallRollups.percentile(0.99, of: hist),
                meanMillis: requests > 0 ? totalMillis / Double(requests) : nil, series: series,
                deniedByReason: most(byReason), byStatus: statusCounts, topDeniedApplications: apps, topDeniedRoutes: routes)
        }
    }
}

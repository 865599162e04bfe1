import Benchmark
import Foundation
import GatehouseControl
import GatehouseStore

// The console overview (`ControlPlane.overview`) over a store holding the rollups of 10 million
// calls. Run from Benchmarks/:
//   swift package --allow-writing-to-package-directory benchmark --target OverviewBenchmarks
// The store is filled once, at /tmp/gatehouse-overview-bench/store.db, and reused by later runs
// while it holds the same figures (delete the directory to fill it again).
//
// What the 10 million calls look like (see `OverviewFill`): 7 days (10,080 minutes) ending at a
// fixed time, 992 calls a minute on average with a daily cycle (0.4× to 1.6× the mean); 200
// applications in 4 tenants and 30 routes, each chosen by a Zipf law (s = 1.1 and 1.0: a few
// applications and routes carry most traffic, as in a real API); ten outcomes (status and
// reason): 200 84 %, 201 5 %, 429 rate_limited 3 %, 401 missing_credentials 2 %, 403
// subscription_required 1.5 %, 401 invalid_credentials 1 %, 502 upstream_unavailable 1 %, 403
// ip_not_allowed 0.5 %, 504 upstream_timeout 0.5 %, 400 bad_request 0.5 %; 2 % of allowed calls
// with a shadow would-deny; total times from 0.2 ms (denials) to seconds (upstream timeouts).

/// A store filled with the rollups of 10 million calls, and a control plane on it.
final class OverviewFixture: @unchecked Sendable {
    static let shared = OverviewFixture()
    static let calls = 10_000_000
    static let minutes = 7 * 1440
    /// The period's end (a whole day, UTC).
    static let end = 1_800_000_000.0 - 1_800_000_000.0.truncatingRemainder(dividingBy: 86400)

    let store: SQLiteStore
    let control: ControlPlane
    let rows: Int
    let scoped: ControlActor

    init() {
        let dir = NSTemporaryDirectory() + "gatehouse-overview-bench"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        store = try! SQLiteStore(path: dir + "/store.db")
        control = ControlPlane(store: store)
        let db = store.sqlDatabase
        let filled =
            (try! db.read { tx -> Int64? in
                try tx.scalar(
                    "SELECT CAST(sum(count) AS BIGINT) FROM call_rollups WHERE (SELECT sum(count) FROM call_rollup_outcomes) = (SELECT sum(count) FROM call_rollups)"
                        + " AND (SELECT sum(count) FROM call_rollup_outcomes_hourly) = (SELECT sum(count) FROM call_rollups)"
                        + " AND (SELECT sum(count) FROM call_rollup_applications_hourly) = (SELECT sum(count) FROM call_rollups)"
                )
            }) ?? 0
        if filled != Int64(Self.calls) {
            try! db.write { tx in
                try tx.execute("DELETE FROM call_rollups")
                try tx.execute("DELETE FROM call_rollup_outcomes")
                try tx.execute("DELETE FROM consumers")
            }
            OverviewFill.fill(store, calls: Self.calls, minutes: Self.minutes, end: Self.end)
            // The hourly rows, summed from the minute rows as the writer's would be.
            try! db.write { tx in try CallRollups.rebuildHourly(tx) }
        }
        rows = (try! db.read { tx -> Int? in try tx.scalar("SELECT count(*) FROM call_rollups") }) ?? 0
        scoped = ControlActor(name: "bench", role: .viewer, tenant: "tenant-1", source: "bench")
        print("overview fixture: \(rows) rollup rows for \(Self.calls) calls over \(Self.minutes) minutes")
        for table in CallRollups.Table.allCases where table != .full {
            let n = (try! db.read { tx -> Int? in try tx.scalar("SELECT count(*) FROM \(table.rawValue)") }) ?? 0
            print("  \(table.rawValue): \(n) rows")
        }
    }
}

/// Deterministic traffic (SplitMix64), aggregated per minute as the call-log writer does.
enum OverviewFill {
    struct RNG {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    }

    /// A cumulative distribution to sample by binary search.
    struct CDF {
        let cumulative: [Double]
        init(weights: [Double]) {
            let total = weights.reduce(0, +)
            var acc = 0.0
            cumulative = weights.map {
                acc += $0 / total; return acc
            }
        }
        static func zipf(_ n: Int, s: Double) -> CDF { CDF(weights: (1...n).map { 1 / pow(Double($0), s) }) }
        func sample(_ rng: inout RNG) -> Int {
            let u = rng.unit()
            var lo = 0, hi = cumulative.count - 1
            while lo < hi {
                let mid = (lo + hi) / 2
                if cumulative[mid] < u { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }
    }

    static let outcomes: [(status: Int, reason: String, weight: Double, millis: Double)] = [
        (200, "", 84, 18), (201, "", 5, 35), (429, "rate_limited", 3, 0.2), (401, "missing_credentials", 2, 0.15),
        (403, "subscription_required", 1.5, 0.25), (401, "invalid_credentials", 1, 0.3), (502, "upstream_unavailable", 1, 3),
        (403, "ip_not_allowed", 0.5, 0.1), (504, "upstream_timeout", 0.5, 30_000), (400, "bad_request", 0.5, 0.2),
    ]

    struct Key: Hashable {
        var route: Int
        var outcome: Int
        var app: Int
    }

    struct Totals {
        var count: Int64 = 0
        var shadow: Int64 = 0
        var millis = 0.0
        var buckets = [Int64](repeating: 0, count: CallRollups.bucketCount)
    }

    static func fill(_ store: SQLiteStore, calls: Int, minutes: Int, end: Double) {
        let db = store.sqlDatabase
        let apps = (0..<200).map { "app-\($0)" }
        try! db.write { tx in
            for (i, a) in apps.enumerated() {
                try tx.execute(
                    "INSERT INTO consumers (id, name, status, tenant, created_at) VALUES (?, ?, 'active', ?, 0)", [a, a, "tenant-\(i % 4)"])
            }
        }
        var rng = RNG(state: 13)
        let appCDF = CDF.zipf(apps.count, s: 1.1)
        let routeCDF = CDF.zipf(30, s: 1.0)
        let outcomeCDF = CDF(weights: outcomes.map(\.weight))
        let firstMinute = Int64(end / 60) - Int64(minutes)
        // Calls per minute: a daily cycle, scaled so that the total is exactly `calls`.
        let weights = (0..<minutes).map { 1 + 0.6 * sin(2 * Double.pi * Double($0 % 1440) / 1440) }
        let scale = Double(calls) / weights.reduce(0, +)
        var perMinute = weights.map { Int(($0 * scale).rounded(.down)) }
        for i in 0..<(calls - perMinute.reduce(0, +)) { perMinute[i % minutes] += 1 }

        let columns =
            "minute, route, status, reason, application_id, count, denied, shadow_would_deny, total_ms_sum, "
            + (0..<CallRollups.bucketCount).map { "h\($0)" }.joined(separator: ", ")
        let width = 9 + CallRollups.bucketCount
        let tuple = "(" + Array(repeating: "?", count: width).joined(separator: ", ") + ")"
        var pending: [SQLValue] = []
        var tuples = 0
        var total = 0
        func flush(_ tx: any SQLTransaction) throws {
            guard tuples > 0 else { return }
            var args = SQLArguments([])
            args.values = pending
            try tx.execute(
                "INSERT INTO call_rollups (\(columns)) VALUES " + Array(repeating: tuple, count: tuples).joined(separator: ", "), args)
            pending.removeAll(keepingCapacity: true)
            tuples = 0
        }
        // A day per transaction.
        for dayStart in stride(from: 0, to: minutes, by: 1440) {
            try! db.write { tx in
                for m in dayStart..<min(minutes, dayStart + 1440) {
                    var rows: [Key: Totals] = [:]
                    for _ in 0..<perMinute[m] {
                        let o = outcomeCDF.sample(&rng)
                        let key = Key(route: routeCDF.sample(&rng), outcome: o, app: appCDF.sample(&rng))
                        // Log-normal-ish around the outcome's typical time.
                        let millis = outcomes[o].millis * exp((rng.unit() - 0.5) * 1.6)
                        let shadow: Int64 = outcomes[o].reason.isEmpty && rng.unit() < 0.02 ? 1 : 0
                        rows[key, default: Totals()].count += 1
                        rows[key]!.shadow += shadow
                        rows[key]!.millis += millis
                        rows[key]!.buckets[CallRollups.bucket(millis)] += 1
                    }
                    // The same calls by outcome alone (`call_rollup_outcomes`).
                    var byOutcome: [Int: Totals] = [:]
                    for (k, t) in rows {
                        byOutcome[k.outcome, default: Totals()].count += t.count
                        byOutcome[k.outcome]!.shadow += t.shadow
                        byOutcome[k.outcome]!.millis += t.millis
                        for i in t.buckets.indices { byOutcome[k.outcome]!.buckets[i] += t.buckets[i] }
                    }
                    for (o, t) in byOutcome.sorted(by: { $0.key < $1.key }) {
                        var args = SQLArguments([])
                        args.values =
                            [
                                .integer(firstMinute + Int64(m)), .integer(Int64(outcomes[o].status)), .text(outcomes[o].reason),
                                .integer(t.count), .integer(CallRollups.isDenial(reason: outcomes[o].reason) ? t.count : 0),
                                .integer(t.shadow), .double(t.millis),
                            ] + t.buckets.map { .integer($0) }
                        try tx.execute(
                            "INSERT INTO call_rollup_outcomes (minute, status, reason, count, denied, shadow_would_deny, total_ms_sum, "
                                + (0..<CallRollups.bucketCount).map { "h\($0)" }.joined(separator: ", ") + ") VALUES ("
                                + Array(repeating: "?", count: 7 + CallRollups.bucketCount).joined(separator: ", ") + ")", args)
                    }
                    for (k, t) in rows.sorted(by: {
                        ($0.key.route, $0.key.outcome, $0.key.app) < ($1.key.route, $1.key.outcome, $1.key.app)
                    }) {
                        let o = outcomes[k.outcome]
                        pending += [
                            .integer(firstMinute + Int64(m)), .text("/api/v1/resource-\(k.route)"), .integer(Int64(o.status)),
                            .text(o.reason), .text(apps[k.app]), .integer(t.count),
                            .integer(CallRollups.isDenial(reason: o.reason) ? t.count : 0), .integer(t.shadow), .double(t.millis),
                        ]
                        pending += t.buckets.map { .integer($0) }
                        tuples += 1
                        total += Int(t.count)
                        if tuples == 1000 { try flush(tx) }
                    }
                }
                try flush(tx)
            }
        }
        precondition(total == calls, "filled \(total) calls, not \(calls)")
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal], warmupIterations: 3, maxDuration: .seconds(10), maxIterations: 100)
    let f = OverviewFixture.shared
    let end = OverviewFixture.end
    // Each period every tenant (an unscoped admin) and one tenant (a scoped admin, a quarter of
    // the applications). The first three end on a whole hour; the last two start and end
    // mid-hour, so that minute rows are read at both edges of the hourly ones.
    let periods: [(name: String, since: Double, bucket: Double)] = [
        ("last hour, minute buckets", end - 3600, 60),
        ("last 24 hours, hourly buckets", end - 86400, 3600),
        ("7 days, 6-hour buckets (10 million calls)", end - 7 * 86400, 6 * 3600),
    ]
    for p in periods {
        Benchmark("overview, \(p.name)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try! f.control.overview(.cli, since: p.since, until: end, bucket: p.bucket))
            }
        }
        Benchmark("overview, \(p.name), one tenant") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try! f.control.overview(f.scoped, since: p.since, until: end, bucket: p.bucket))
            }
        }
    }
    Benchmark("overview, 24 hours from mid-hour to mid-hour, hourly buckets") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! f.control.overview(.cli, since: end - 86400 - 1800, until: end - 1800, bucket: 3600))
        }
    }
    Benchmark("overview, 24 hours from mid-hour to mid-hour, hourly buckets, one tenant") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! f.control.overview(f.scoped, since: end - 86400 - 1800, until: end - 1800, bucket: 3600))
        }
    }
}

import Foundation
import GatehouseControl
import GatehouseCore
import GatehousePostgres
import GatehouseStore
import Testing

/// The overview reads the per-minute rollups; its figures must be the call log's.
@Suite struct OverviewTests {
    static func call(
        _ id: String, time: Double, route: String, status: Int, reason: String? = nil, application: String?, millis: Double,
        shadow: Bool = false
    ) -> CallRecord {
        var entries = [TraceEntry(check: "ip", type: "ip", mode: .enforce, outcome: .allow, note: "ok", reason: nil, micros: 3)]
        if shadow {
            entries.append(
                TraceEntry(
                    check: "new-key", type: "api_key", mode: .shadow, outcome: .shadowDeny, note: "shadow: would have denied: no key",
                    reason: .missingCredentials, micros: 2))
        }
        if let reason {
            entries.append(
                TraceEntry(
                    check: "key", type: "api_key", mode: .enforce, outcome: .deny, note: "denied", reason: ReasonCode(reason), micros: 1))
        }
        return CallRecord(
            requestID: id, time: time, route: route, consumer: nil, keyID: nil, client: "10.0.0.1", method: "GET", path: "/\(route)",
            host: nil, status: status, upstreamMillis: nil, totalMillis: millis, decidingCheck: reason == nil ? nil : "key", reason: reason,
            detail: nil, hint: nil, required: [], presented: [], trace: DecisionTrace(entries: entries), upstreamTarget: nil,
            applicationID: application)
    }

    /// Every call of the log through the control plane's reader, by status and reason.
    static func logCounts(_ w: World, _ actor: ControlActor) throws -> [String: Int64] {
        var counts: [String: Int64] = [:]
        var cursor: String?
        repeat {
            let page = try w.control.calls(actor, page: PageRequest(limit: PageRequest.maximumLimit, cursor: cursor))
            for r in page.items { counts["\(r.status) \(r.reason ?? "-")", default: 0] += 1 }
            cursor = page.nextCursor
        } while cursor != nil
        return counts
    }

    static func overviewCounts(_ o: Overview) -> [String: Int64] {
        Dictionary(o.byStatus.map { ("\($0.status) \($0.reason ?? "-")", $0.count) }, uniquingKeysWith: +)
    }

    @Test(arguments: StoreKind.allCases) func theOverviewCountsWhatTheCallLogHolds(_ kind: StoreKind) throws {
        let w = try World(kind)
        let checkout = try w.control.application(w.opA, "checkout").id
        let billing = try w.control.application(w.opB, "billing").id
        let t0 = w.clock.now  // a whole minute
        var records: [CallRecord] = []
        for i in 0..<120 {
            let time = t0 + Double(i) * 1.5  // three minutes
            let app = i % 3 == 0 ? billing : (i % 3 == 1 ? checkout : nil)
            switch i % 10 {
            case 0, 1:
                records.append(
                    Self.call(
                        "d\(i)", time: time, route: "orders", status: 403, reason: "subscription_required", application: app, millis: 0.4))
            case 2:
                records.append(
                    Self.call("d\(i)", time: time, route: "pay", status: 429, reason: "rate_limited", application: app, millis: 0.2))
            case 3:
                records.append(
                    Self.call("d\(i)", time: time, route: "pay", status: 502, reason: "upstream_unavailable", application: app, millis: 30))
            case 4: records.append(Self.call("d\(i)", time: time, route: "orders", status: 200, application: app, millis: 12, shadow: true))
            default:
                records.append(Self.call("d\(i)", time: time, route: "orders", status: 200, application: app, millis: 5 + Double(i % 7)))
            }
        }
        // A request id that repeats (a proxy's X-Request-Id seen twice): stored as two records.
        records.append(Self.call("same-id", time: t0 + 10, route: "pay", status: 200, application: checkout, millis: 3))
        records.append(
            Self.call("same-id", time: t0 + 11, route: "pay", status: 403, reason: "not_owner", application: checkout, millis: 1))
        if let pg = w.temp.pg {
            // A node's retry after a failure that hid the commit delivers the same rows again:
            // they are stored once and counted once.
            try w.temp.store.startSpool()
            _ = try w.temp.store.insertCalls(records)
            let rows = try w.temp.store.spooledCalls(limit: 1000)
            #expect(try pg.deliverCalls(node: "test-node", rows) == records.count)
            #expect(try pg.deliverCalls(node: "test-node", rows) == 0)
        } else {
            try w.temp.insertCalls(records)
        }

        let o = try w.control.overview(.cli, since: t0, until: t0 + 600, bucket: 60)
        let log = try Self.logCounts(w, .cli)
        #expect(log.values.reduce(0, +) == Int64(records.count))
        #expect(Self.overviewCounts(o) == log)
        #expect(o.requests == Int64(records.count))
        let denials = records.filter { $0.reason != nil && $0.reason != "upstream_unavailable" }.count
        #expect(o.denied == Int64(denials))
        #expect(o.allowed == o.requests - o.denied)
        #expect(o.shadowWouldDeny == 12)
        #expect(o.deniedByReason.first?.key == "subscription_required" && o.deniedByReason.first?.denied == 24)
        #expect(Set(o.deniedByReason.map(\.key)) == ["subscription_required", "rate_limited", "not_owner"])
        #expect(o.topDeniedRoutes.map(\.key) == ["orders", "pay"])
        #expect(o.topDeniedApplications.contains { $0.name == "checkout" } && o.topDeniedApplications.contains { $0.name == "billing" })
        // Ten one-minute buckets, the first three holding every call.
        #expect(o.series.count == 10)
        #expect(o.series.map(\.requests).reduce(0, +) == o.requests)
        #expect(o.series[3...].allSatisfy { $0.requests == 0 })
        #expect(o.series.map { $0.deniedByReason.values.reduce(0, +) } == o.series.map(\.denied))
        // Most calls took 5 to 12 ms; the slowest 30 ms.
        let p50 = try #require(o.latencyP50Millis), p99 = try #require(o.latencyP99Millis)
        #expect(p50 > 0.2 && p50 < 13)
        #expect(p99 > 12 && p99 <= 52)

        // A tenant-scoped operator sees its applications' calls only, as in the call log.
        for actor in [w.opA, w.opB] {
            let scoped = try w.control.overview(actor, since: t0, until: t0 + 600, bucket: 300)
            #expect(Self.overviewCounts(scoped) == (try Self.logCounts(w, actor)))
            #expect(scoped.topDeniedApplications.count == 1)
        }
    }

    /// A bucket's figures, summed over buckets.
    struct BucketSums: Equatable {
        var requests: Int64 = 0, denied: Int64 = 0, shadowWouldDeny: Int64 = 0
        var deniedByReason: [String: Int64] = [:]
        mutating func add(_ p: Overview.Point) {
            requests += p.requests
            denied += p.denied
            shadowWouldDeny += p.shadowWouldDeny
            deniedByReason.merge(p.deniedByReason, uniquingKeysWith: +)
        }
    }

    /// Whole hours of a period in buckets of hours read the hourly rows; buckets of minutes read
    /// the minute rows. Both give the same figures, for an aligned period and one that starts and
    /// ends mid-hour, unscoped and tenant-scoped, with a request id that repeats and a delivery
    /// that a cluster node repeats.
    @Test(arguments: StoreKind.allCases) func hourlyAndMinuteRowsGiveTheSameOverview(_ kind: StoreKind) throws {
        let w = try World(kind)
        let checkout = try w.control.application(w.opA, "checkout").id
        let billing = try w.control.application(w.opB, "billing").id
        let t0 = w.clock.now  // a whole hour
        var records: [CallRecord] = []
        for i in 0..<420 {
            let time = t0 + 17 * 60 + Double(i) * 30  // 17 minutes past t0 to 3 hours 47 minutes
            let app = [checkout, billing, nil][i % 3]
            let route = ["orders", "pay", "search"][(i / 3) % 3]
            switch i % 6 {
            case 0:
                records.append(
                    Self.call(
                        "m\(i)", time: time, route: route, status: 403, reason: "subscription_required", application: app, millis: 0.4))
            case 1:
                records.append(
                    Self.call("m\(i)", time: time, route: route, status: 429, reason: "rate_limited", application: app, millis: 0.2))
            case 2:
                records.append(
                    Self.call("m\(i)", time: time, route: route, status: 502, reason: "upstream_unavailable", application: app, millis: 30))
            case 3: records.append(Self.call("m\(i)", time: time, route: route, status: 200, application: app, millis: 12, shadow: true))
            default:
                records.append(Self.call("m\(i)", time: time, route: route, status: 200, application: app, millis: Double(i % 50) * 0.9))
            }
        }
        records.append(
            Self.call("m5", time: t0 + 2 * 3600 + 9, route: "pay", status: 403, reason: "not_owner", application: checkout, millis: 1))
        if let pg = w.temp.pg {
            try w.temp.store.startSpool()
            _ = try w.temp.store.insertCalls(records)
            let rows = try w.temp.store.spooledCalls(limit: 1000)
            #expect(try pg.deliverCalls(node: "test-node", rows) == records.count)
            #expect(try pg.deliverCalls(node: "test-node", rows) == 0)
        } else {
            for chunk in stride(from: 0, to: records.count, by: 100) {
                try w.temp.insertCalls(Array(records[chunk..<min(records.count, chunk + 100)]))
            }
        }

        let periods = [(t0, t0 + 4 * 3600), (t0 + 23 * 60 + 10, t0 + 3 * 3600 + 7 * 60)]
        for actor in [ControlActor.cli, w.opA, w.opB] {
            for (since, until) in periods {
                let hourly = try w.control.overview(actor, since: since, until: until, bucket: 3600)
                let minutes = try w.control.overview(actor, since: since, until: until, bucket: 60)
                #expect(hourly.requests > 0)
                #expect(hourly.requests == minutes.requests)
                #expect(hourly.denied == minutes.denied && hourly.allowed == minutes.allowed)
                #expect(hourly.shadowWouldDeny == minutes.shadowWouldDeny)
                #expect(hourly.byStatus == minutes.byStatus)
                #expect(hourly.deniedByReason == minutes.deniedByReason)
                #expect(hourly.topDeniedApplications == minutes.topDeniedApplications)
                #expect(hourly.topDeniedRoutes == minutes.topDeniedRoutes)
                #expect(hourly.latencyP50Millis == minutes.latencyP50Millis && hourly.latencyP99Millis == minutes.latencyP99Millis)
                let mean = try #require(hourly.meanMillis), minuteMean = try #require(minutes.meanMillis)
                #expect(abs(mean - minuteMean) <= 1e-9 * mean)  // sums of times added in another order
                // The minute buckets summed by hour are the hour buckets.
                var byHour: [Double: BucketSums] = [:]
                for p in minutes.series { byHour[(p.start / 3600).rounded(.down) * 3600, default: BucketSums()].add(p) }
                var hours: [Double: BucketSums] = [:]
                for p in hourly.series { hours[p.start, default: BucketSums()].add(p) }
                #expect(hours == byHour)
                #expect(hourly.series.count == byHour.count)
            }
            // The aligned period holds every call: the call log's counts.
            let all = try w.control.overview(actor, since: periods[0].0, until: periods[0].1, bucket: 3600)
            #expect(Self.overviewCounts(all) == (try Self.logCounts(w, actor)))
        }
    }

    /// A cluster store from before `pg-4-hourly-rollups` gets its hourly rows summed from its
    /// minute rows when a node migrates it: the rows delivery would have written.
    @Test func theClusterMigrationSumsTheHoursOfAnExistingStore() throws {
        let w = try World(.postgres)
        let pg = try #require(w.temp.pg)
        let checkout = try w.control.application(w.opA, "checkout").id
        let t0 = w.clock.now
        try w.temp.insertCalls(
            (0..<90).map { i in
                let reason: String? = i % 4 == 0 ? "rate_limited" : nil
                return Self.call(
                    "p\(i)", time: t0 + 600 + Double(i) * 120, route: i % 2 == 0 ? "a" : "b", status: reason == nil ? 200 : 429,
                    reason: reason, application: i % 3 == 0 ? nil : checkout, millis: Double(i % 9) * 1.3, shadow: i % 5 == 0)
            })
        let histogram = (0..<20).map { "h\($0)" }.joined(separator: ", ")
        let values = "count, denied, shadow_would_deny, \(histogram), round(total_ms_sum::numeric, 6)::text AS t"
        let queries = [
            "SELECT minute, status, reason, \(values) FROM call_rollup_outcomes_hourly ORDER BY 1, 2, 3",
            "SELECT application_id, minute, status, reason, \(values) FROM call_rollup_applications_hourly ORDER BY 1, 2, 3, 4",
            "SELECT minute, application_id, route, denied FROM call_rollup_denials_hourly ORDER BY 1, 2, 3",
        ]
        func hourly() throws -> [[SQLValue]] { try pg.database.read { tx in try queries.flatMap { try tx.rows($0, []).map(\.values) } } }
        let delivered = try hourly()
        #expect(delivered.count > 10)
        try pg.database.write { tx in
            for t in ["call_rollup_outcomes_hourly", "call_rollup_applications_hourly", "call_rollup_denials_hourly"] {
                try tx.execute("DROP TABLE \(t)")
            }
            try tx.execute("DELETE FROM schema_migrations WHERE name = 'pg-4-hourly-rollups'")
        }
        #expect(try pg.migrate() == ["pg-4-hourly-rollups"])
        #expect(try hourly() == delivered)
    }

    @Test func retentionRemovesTheRollupsWithTheirCalls() throws {
        let w = try World(.sqlite)
        let t0 = w.clock.now
        try w.temp.insertCalls(
            (0..<6).map { Self.call("r\($0)", time: t0 + Double($0) * 60, route: "r", status: 200, application: nil, millis: 1) })
        #expect(try w.control.overview(.cli, since: t0, until: t0 + 3600).requests == 6)
        try w.temp.store.purgeCalls(before: t0 + 180)
        #expect(try w.temp.store.callCount() == 3)
        #expect(try w.control.overview(.cli, since: t0, until: t0 + 3600).requests == 3)
    }

    @Test func aPeriodOrBucketThatMakesNoSenseIsRefused() throws {
        let w = try World(.sqlite)
        let t0 = w.clock.now
        #expect(throws: ControlError.self) { try w.control.overview(.cli, since: t0, until: t0) }
        #expect(throws: ControlError.self) { try w.control.overview(.cli, since: t0, until: t0 + 60, bucket: 90) }
        #expect(throws: ControlError.self) { try w.control.overview(.cli, since: 0, until: t0, bucket: 60) }
    }
}

import GatehouseCore
import GatehouseHTTP1
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The data plane's metrics, recorded through swift-metrics: the server bootstraps the backend
/// (a Prometheus registry, `MetricsExposition` in GatehouseServer) that `/metrics` renders.
///
/// Label values are route names, statuses, check ids, reason codes and the check mode — never
/// request data. Each labelled `Counter` and `Timer` is created once per event loop and kept in that
/// loop's ``RequestCounts`` cache, so a request costs dictionary look-ups (mostly one comparison)
/// and the metrics' own updates, and no lock shared between loops beyond them.
package final class GatewayMetrics: Sendable {
    /// What the data plane reports for each request it answered (`GatewayHandler.log`).
    struct RequestSample {
        var route: String?
        var status: Int
        /// Set when the request was denied.
        var reason: ReasonCode?
        /// The check that denied it (nil when allowed, or denied before any check ran).
        var check: String?
        /// From the head's arrival to the response's end.
        var totalNanos: UInt64
        /// From the request's first byte upstream to the response's end (nil: never forwarded).
        var upstreamNanos: UInt64?
        /// How long a new upstream connection took to open (nil: a pooled one was reused).
        var connectNanos: UInt64?
    }

    /// Metric names, one place for the code, the tests and docs/configuration.md.
    enum Name {
        static let requests = "gatehouse_requests_total"
        static let denials = "gatehouse_denials_total"
        static let requestDuration = "gatehouse_request_duration_seconds"
        static let upstreamResponse = "gatehouse_upstream_response_seconds"
        static let upstreamConnect = "gatehouse_upstream_connect_seconds"
        static let connectionsOpen = "gatehouse_connections_open"
        static let connectionsRefused = "gatehouse_connections_refused_total"
        static let callLogQueueRecords = "gatehouse_calllog_queue_records"
        static let callLogQueueBytes = "gatehouse_calllog_queue_bytes"
        static let configGeneration = "gatehouse_config_generation"
    }

    /// Histogram buckets for the three durations: from half a millisecond (a denial answered from
    /// memory) to the 10 s beyond which upstream timeouts usually cut in.
    package static let durationBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// Reason codes that are not access decisions (the catalogue says so in their meaning): the
    /// gateway answered with them, but nothing denied the request, so they are counted in
    /// `gatehouse_requests_total` only, not in `gatehouse_denials_total`.
    static let notAccessDecisions: Set<ReasonCode> = [
        .upstreamUnavailable, .upstreamTimeout, .requestTimeout, .gatewayBusy, .gatewayShuttingDown,
    ]

    /// Each event loop's cache; a loop is one thread, so a thread-specific value is a per-loop one
    /// that `countShadowDenial` finds without being handed the loop.
    private let perLoop = ThreadSpecificVariable<RequestCounts>()

    /// What was read at scrape time and is set into the gauges and counters below.
    private let scraped = NIOLockedValueBox(ScrapeState())

    package init() {}

    /// The counters of the calling event loop (looked up once per connection, on its loop).
    func requestCounts(for loop: any EventLoop) -> RequestCounts {
        // Off its loop (not the case in the gateway), a private cache: correct, just not shared
        // with the loop's other connections.
        guard loop.inEventLoop else { return RequestCounts() }
        return currentCounts()
    }

    /// Hands the calling event loop's buffered durations to the histograms (on that loop: its
    /// sweep, and before a scrape).
    package func flushCurrentLoop() {
        perLoop.currentValue?.flush()
    }

    private func currentCounts() -> RequestCounts {
        if let counts = perLoop.currentValue { return counts }
        let counts = RequestCounts()
        perLoop.currentValue = counts
        return counts
    }

    /// A denial a shadow-mode check would have made; counted on the calling event loop's cache.
    func countShadowDenial(route: String, check: String, reason: ReasonCode) {
        currentCounts().countShadowDenial(route: route, check: check, reason: reason)
    }

    /// What the gateway reads at scrape time for the gauges and the refused-connections counter.
    package struct Snapshot {
        package var connectionsOpen: Int
        package var connectionsRefused: Int
        package var callLogQueueRecords: Int
        package var callLogQueueBytes: Int
        package var configGeneration: Int

        package init(connectionsOpen: Int, connectionsRefused: Int, callLogQueueRecords: Int, callLogQueueBytes: Int, configGeneration: Int)
        {
            self.connectionsOpen = connectionsOpen
            self.connectionsRefused = connectionsRefused
            self.callLogQueueRecords = callLogQueueRecords
            self.callLogQueueBytes = callLogQueueBytes
            self.configGeneration = configGeneration
        }
    }

    private struct ScrapeState {
        var refusedReported = 0
        var gauges: Gauges?
    }

    private struct Gauges {
        let connectionsOpen = Gauge(label: Name.connectionsOpen)
        let connectionsRefused = Counter(label: Name.connectionsRefused)
        let callLogQueueRecords = Gauge(label: Name.callLogQueueRecords)
        let callLogQueueBytes = Gauge(label: Name.callLogQueueBytes)
        let configGeneration = Gauge(label: Name.configGeneration)
    }

    /// Sets the values read at scrape time into their gauges and counters (before the backend
    /// renders them).
    package func scrape(_ now: Snapshot) {
        scraped.withLockedValue { state in
            let g = state.gauges ?? Gauges()
            state.gauges = g
            g.connectionsOpen.record(now.connectionsOpen)
            g.callLogQueueRecords.record(now.callLogQueueRecords)
            g.callLogQueueBytes.record(now.callLogQueueBytes)
            g.configGeneration.record(now.configGeneration)
            // The connection registry keeps a total; the counter takes what was added since the
            // last scrape.
            if now.connectionsRefused > state.refusedReported {
                g.connectionsRefused.increment(by: now.connectionsRefused - state.refusedReported)
            }
            state.refusedReported = max(state.refusedReported, now.connectionsRefused)
        }
    }

    /// One event loop's cache of labelled metrics. Only that loop's thread touches it, so it takes
    /// no lock; the metrics it holds are shared by all loops and summed by the registry.
    final class RequestCounts: @unchecked Sendable {
        // @unchecked: confined to one event-loop thread (see `GatewayMetrics.requestCounts(for:)`).

        private struct Key: Hashable {
            var route: String
            var status: Int
            var reason: String
            var check: String
        }

        private struct ShadowKey: Hashable {
            var route: String
            var check: String
            var reason: ReasonCode
        }

        /// The three duration histograms of one route. The upstream ones are created with their
        /// first sample, so a route that never forwards (or matched nothing) shows no empty series.
        private final class RouteTimers {
            let route: String
            let total: Timer
            lazy var upstream = Timer(label: Name.upstreamResponse, dimensions: [("route", route)])
            lazy var connect = Timer(label: Name.upstreamConnect, dimensions: [("route", route)])

            init(route: String) {
                self.route = route
                total = Timer(label: Name.requestDuration, dimensions: [("route", route)])
            }
        }

        /// The metrics one kind of answer updates.
        private final class Series {
            let requests: Counter
            /// Set for an enforced denial: an answer with a reason code that is an access decision.
            let denials: Counter?
            let timers: RouteTimers

            init(_ key: Key, timers: RouteTimers) {
                requests = Counter(
                    label: Name.requests,
                    dimensions: [("route", key.route), ("status", String(key.status)), ("reason", key.reason)])
                let isDenial = !key.reason.isEmpty && !GatewayMetrics.notAccessDecisions.contains(ReasonCode(key.reason))
                denials =
                    !isDenial
                    ? nil
                    : Counter(
                        label: Name.denials,
                        dimensions: [
                            ("route", key.route), ("check", key.check), ("reason", key.reason),
                            ("status", String(key.status)), ("mode", "enforce"),
                        ])
                self.timers = timers
            }
        }

        private var series: [Key: Series] = [:]
        private var routes: [String: RouteTimers] = [:]
        private var shadow: [ShadowKey: Counter] = [:]
        /// The last series counted: consecutive requests mostly share route, status, reason and
        /// check, so most requests cost a comparison instead of hashing.
        private var last: (key: Key, series: Series)?

        /// Durations waiting for `flush`: a histogram's `record` takes a lock that every event loop
        /// shares (swift-prometheus), so the request path only appends here; the loop's sweep
        /// (every 250 ms) and each scrape hand them over.
        private struct Pending {
            var timers: RouteTimers
            var total: UInt64
            var upstream: UInt64?
            var connect: UInt64?
        }
        private var pending: [Pending] = []
        /// Beyond this many buffered samples the request that adds one flushes them.
        static let pendingLimit = 4096

        /// One answered request, as the data plane saw it. Counters are atomic increments; the
        /// durations wait for `flush`.
        func record(_ s: RequestSample) {
            let series = self.series(route: s.route ?? "", status: s.status, reason: s.reason?.rawValue ?? "", check: s.check ?? "")
            series.requests.increment()
            series.denials?.increment()
            pending.append(Pending(timers: series.timers, total: s.totalNanos, upstream: s.upstreamNanos, connect: s.connectNanos))
            if pending.count >= Self.pendingLimit { flush() }
        }

        /// Records the buffered durations into their histograms.
        func flush() {
            guard !pending.isEmpty else { return }
            for p in pending {
                p.timers.total.recordNanoseconds(Int64(clamping: p.total))
                if let u = p.upstream { p.timers.upstream.recordNanoseconds(Int64(clamping: u)) }
                if let c = p.connect { p.timers.connect.recordNanoseconds(Int64(clamping: c)) }
            }
            pending.removeAll(keepingCapacity: true)
        }

        private func series(route: String, status: Int, reason: String, check: String) -> Series {
            if let last, last.key.status == status, last.key.route == route, last.key.reason == reason, last.key.check == check {
                return last.series
            }
            let key = Key(route: route, status: status, reason: reason, check: check)
            let found: Series
            if let s = series[key] {
                found = s
            } else {
                let timers = routes[route] ?? RouteTimers(route: route)
                routes[route] = timers
                found = Series(key, timers: timers)
                series[key] = found
            }
            last = (key, found)
            return found
        }

        /// A denial a shadow-mode check would have made. Its status is the one the catalogue gives
        /// the reason (as a `Denial` built without an explicit status has).
        func countShadowDenial(route: String, check: String, reason: ReasonCode) {
            let key = ShadowKey(route: route, check: check, reason: reason)
            if let counter = shadow[key] {
                counter.increment()
                return
            }
            let status = ReasonCatalogue.entry(reason)?.status ?? 403
            let counter = Counter(
                label: Name.denials,
                dimensions: [
                    ("route", route), ("check", check), ("reason", reason.rawValue),
                    ("status", String(status)), ("mode", "shadow"),
                ])
            shadow[key] = counter
            counter.increment()
        }
    }
}

import Benchmark
import GatehouseChecks
import GatehouseCore

/// The cost of `rate_limit` on the hot path: one evaluation per request, as the data plane does it.
///
/// The framework calls each closure once per sample, so stores, checks and requests are built
/// outside it: a sample then measures warm state, and its 1,000 iterations are reported per call.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3))

    let rule = RateLimitRule(windows: [
        RateWindow(count: 1_000_000, period: 1, name: "bench.per-second"),
        RateWindow(count: 1_000_000_000, period: 3600, name: "bench.per-hour"),
    ])
    // Each call advances the clock by 1 µs, so the buckets refill as they would under real traffic.
    let start = 1_795_000_000.0
    let tick = 0.000_001

    let ip = IPAddress("203.0.113.7")
    let withFields = RateLimitCheck(id: "bench", keyParts: [.ip], rule: rule, store: InProcessRateLimitStore())
    Benchmark("rate_limit allow, one key, RateLimit fields on") { benchmark in
        var now = start
        for _ in benchmark.scaledIterations {
            now += tick
            var r = PolicyRequest(method: "GET", path: "/orders", clientAddress: ip, routeName: "orders", now: now)
            blackHole(withFields.evaluate(&r))
            blackHole(r.responseHeaders)
        }
    }

    let withoutFields = RateLimitCheck(id: "bench", keyParts: [.ip], rule: rule, store: InProcessRateLimitStore(), headersOnAllowed: false)
    Benchmark("rate_limit allow, one key, fields off") { benchmark in
        var now = start
        for _ in benchmark.scaledIterations {
            now += tick
            var r = PolicyRequest(method: "GET", path: "/orders", clientAddress: ip, routeName: "orders", now: now)
            blackHole(withoutFields.evaluate(&r))
        }
    }

    // Many callers: 10,000 consumers in turn, so the shards' dictionaries are populated.
    let byConsumer = RateLimitCheck(
        id: "bench", keyParts: [.consumer], rule: rule, store: InProcessRateLimitStore(), headersOnAllowed: false)
    let principals = (0..<10_000).map { Principal(method: "api_key", consumerID: "c\($0)", consumerName: "consumer-\($0)") }
    Benchmark("rate_limit allow, 10k consumers in turn") { benchmark in
        var now = start
        var i = 0
        for _ in benchmark.scaledIterations {
            now += tick
            var r = PolicyRequest(method: "GET", path: "/orders", principal: principals[i], routeName: "orders", now: now)
            i = i == principals.count - 1 ? 0 : i + 1
            blackHole(byConsumer.evaluate(&r))
        }
    }

    // Refusals: the key is over its limit, so each call builds a 429 denial.
    let tight = RateLimitCheck(
        id: "bench", keyParts: [.ip], rule: RateLimitRule(windows: [RateWindow(count: 1, period: 3600, name: "bench.per-hour")]),
        store: InProcessRateLimitStore())
    Benchmark("rate_limit refuse (429 denial built)") { benchmark in
        for _ in benchmark.scaledIterations {
            var r = PolicyRequest(method: "GET", path: "/orders", clientAddress: ip, routeName: "orders", now: start)
            blackHole(tight.evaluate(&r))
        }
    }

    // The store alone: the part a cluster store would replace.
    let store = InProcessRateLimitStore()
    Benchmark("InProcessRateLimitStore.consume, one key") { benchmark in
        var now = start
        for _ in benchmark.scaledIterations {
            now += tick
            blackHole(store.consume(key: "i=203.0.113.7|", rule: rule, now: now))
        }
    }

    // A flood of distinct keys against a bounded store (10,000 keys): the eviction path.
    let bounded = InProcessRateLimitStore(maxKeys: 10_000)
    let floodRule = RateLimitRule(windows: [RateWindow(count: 10, period: 3600, name: "bench.flood")])
    let floodKeys = (0..<100_000).map { "i=198.51.\($0 >> 8 & 255).\($0 & 255)#\($0)|" }
    Benchmark("InProcessRateLimitStore.consume, flood of distinct keys, bound 10k") { benchmark in
        var now = start
        var i = 0
        for _ in benchmark.scaledIterations {
            now += tick
            blackHole(bounded.consume(key: floodKeys[i], rule: floodRule, now: now))
            i = i == floodKeys.count - 1 ? 0 : i + 1
        }
        precondition(bounded.count <= bounded.capacity)
    }
}

import Benchmark
import GatehouseChecks
import GatehouseCore

/// The cost of `rate_limit` on the hot path: one evaluation per request, as the data plane does it.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
        maxDuration: .seconds(3), maxIterations: 10_000_000)

    let rule = RateLimitRule(windows: [
        RateWindow(count: 1_000_000_000, period: 1, name: "bench.per-second"),
        RateWindow(count: 1_000_000_000, period: 3600, name: "bench.per-hour"),
    ])
    let now = 1_795_000_000.0

    // One caller: every request hits the same key (the common case for a busy API key).
    Benchmark("rate_limit allow, one key, RateLimit fields on") { benchmark in
        let check = RateLimitCheck(id: "bench", keyParts: [.ip], rule: rule, store: InProcessRateLimitStore())
        let template = PolicyRequest(method: "GET", path: "/orders", clientAddress: IPAddress("203.0.113.7"), routeName: "orders", now: now)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var r = template
            blackHole(check.evaluate(&r))
            blackHole(r.responseHeaders)
        }
    }

    Benchmark("rate_limit allow, one key, fields off") { benchmark in
        let check = RateLimitCheck(id: "bench", keyParts: [.ip], rule: rule, store: InProcessRateLimitStore(), headersOnAllowed: false)
        let template = PolicyRequest(method: "GET", path: "/orders", clientAddress: IPAddress("203.0.113.7"), routeName: "orders", now: now)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var r = template
            blackHole(check.evaluate(&r))
        }
    }

    // Many callers: 10,000 addresses in turn, so the shards' dictionaries are populated.
    Benchmark("rate_limit allow, 10k keys by consumer") { benchmark in
        let check = RateLimitCheck(id: "bench", keyParts: [.consumer], rule: rule, store: InProcessRateLimitStore(), headersOnAllowed: false)
        let templates = (0..<10_000).map { i in
            var r = PolicyRequest(method: "GET", path: "/orders", routeName: "orders", now: now)
            r.principal = Principal(method: "api_key", consumerID: "c\(i)", consumerName: "consumer-\(i)")
            return r
        }
        benchmark.startMeasurement()
        var i = 0
        for _ in benchmark.scaledIterations {
            var r = templates[i]
            i = i == templates.count - 1 ? 0 : i + 1
            blackHole(check.evaluate(&r))
        }
    }

    // Refusals: the key is over its limit, so each call builds a 429 denial.
    Benchmark("rate_limit refuse (429 denial built)") { benchmark in
        let tight = RateLimitRule(windows: [RateWindow(count: 1, period: 3600, name: "bench.per-hour")])
        let check = RateLimitCheck(id: "bench", keyParts: [.ip], rule: tight, store: InProcessRateLimitStore())
        let template = PolicyRequest(method: "GET", path: "/orders", clientAddress: IPAddress("203.0.113.7"), routeName: "orders", now: now)
        var first = template
        _ = check.evaluate(&first)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var r = template
            blackHole(check.evaluate(&r))
        }
    }

    // The store alone, the part a cluster store would replace.
    Benchmark("InProcessRateLimitStore.consume, one key") { benchmark in
        let store = InProcessRateLimitStore()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(store.consume(key: "i=203.0.113.7|", rule: rule, now: now))
        }
    }
}

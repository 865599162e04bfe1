import Benchmark
import GatehouseCore
import GatehouseWAF
import WAFFixtures

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput], maxDuration: .seconds(3))

    let engine = WAFEngine()
    func formRequest(_ body: [UInt8]) -> PolicyRequest {
        PolicyRequest(
            method: "POST", path: "/signup",
            headers: HeaderList([("Content-Type", "application/x-www-form-urlencoded"), ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")]),
            contentLength: body.count, body: body, routeName: "signup")
    }
    let form = formRequest(formBody)
    let many = formRequest(manyFieldsBody)

    Benchmark("WAF inspect 1 KiB form body (12 fields)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(engine.inspect(form))
        }
    }

    Benchmark("WAF inspect 1 KiB form body (64 short fields)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(engine.inspect(many))
        }
    }

    let attack = PolicyRequest(
        method: "GET", path: "/search", query: "q=1%27+UNION+SELECT+username%2Cpassword+FROM+users--&page=2",
        headers: HeaderList([("User-Agent", "Mozilla/5.0")]))
    Benchmark("WAF inspect query with SQL injection", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(engine.inspect(attack))
        }
    }

    let json = Array(
        #"{"user":{"name":"Conan O'Brien","email":"c@example.com"},"items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"note":"Leave it at the door; thanks!"}"#
            .utf8)
    let jsonRequest = PolicyRequest(
        method: "POST", path: "/orders", headers: HeaderList([("Content-Type", "application/json")]), body: json)
    Benchmark("WAF inspect small JSON body", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(engine.inspect(jsonRequest))
        }
    }
}

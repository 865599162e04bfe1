import Benchmark
import GatehouseCore
import GatehouseWAF

/// A 1 KiB application/x-www-form-urlencoded body of ordinary fields (the goal: under 20 µs).
let formBody: [UInt8] = {
    var fields = [
        "name=Tim+O%27Reilly", "email=tim%40example.com", "company=O%27Reilly+Media", "phone=%2B1+555+0100",
        "address=1+Union+Street%2C+San+Francisco", "plan=team", "newsletter=yes",
        "comment=" + String(repeating: "Great+product%3B+we%27d+select+it+again.+", count: 12),
    ]
    var body = fields.joined(separator: "&")
    var pad = 0
    while body.utf8.count < 1024 { fields.append("f\(pad)=x"); pad += 1; body = fields.joined(separator: "&") }
    return Array(body.utf8.prefix(1024))
}()

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput], maxDuration: .seconds(3))

    let engine = WAFEngine()
    let formRequest = PolicyRequest(
        method: "POST", path: "/signup",
        headers: HeaderList([("Content-Type", "application/x-www-form-urlencoded"), ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")]),
        contentLength: formBody.count, body: formBody, routeName: "signup")

    Benchmark("WAF inspect 1 KiB form body", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(engine.inspect(formRequest))
        }
    }

    let attack = PolicyRequest(method: "GET", path: "/search", query: "q=1%27+UNION+SELECT+username%2Cpassword+FROM+users--&page=2",
                               headers: HeaderList([("User-Agent", "Mozilla/5.0")]))
    Benchmark("WAF inspect query with SQL injection", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(engine.inspect(attack))
        }
    }

    let json = Array(#"{"user":{"name":"Conan O'Brien","email":"c@example.com"},"items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"note":"Leave it at the door; thanks!"}"#.utf8)
    let jsonRequest = PolicyRequest(method: "POST", path: "/orders", headers: HeaderList([("Content-Type", "application/json")]), body: json)
    Benchmark("WAF inspect small JSON body", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(engine.inspect(jsonRequest))
        }
    }
}

import Benchmark
import GatehouseCore
import GatehouseWAF

/// A 1 KiB `application/x-www-form-urlencoded` body the way sign-up and contact forms send it:
/// a dozen fields, one of them free text with apostrophes, semicolons and SQL words.
let formBody: [UInt8] = {
    var body = [
        "name=Tim+O%27Reilly", "email=tim%40example.com", "company=O%27Reilly+Media", "phone=%2B1+555+0100",
        "address=1+Union+Street%2C+San+Francisco", "country=US", "plan=team", "seats=12", "newsletter=yes",
        "referrer=https%3A%2F%2Fwww.example.org%2Fpricing", "csrf=9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "comment=" + String(repeating: "Great+product%3B+we%27d+select+it+again.+", count: 20),
    ].joined(separator: "&")
    body = String(body.prefix(1024))
    return Array(body.utf8)
}()

/// The same kilobyte split into 64 short fields: the per-field cost dominates.
let manyFieldsBody: [UInt8] = {
    var fields: [String] = []
    var i = 0
    while fields.joined(separator: "&").utf8.count < 1024 { fields.append("field\(i)=value+\(i)"); i += 1 }
    return Array(fields.joined(separator: "&").utf8.prefix(1024))
}()

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

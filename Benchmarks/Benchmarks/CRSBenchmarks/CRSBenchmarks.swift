import Benchmark
import Foundation
import GatehouseCore
import GatehouseSecLang

/// The Core Rule Set (Debian's modsecurity-crs 3.3.4, paranoia level 1, threshold 5) over the
/// requests the built-in WAF's benchmarks use: the goal is a 1 KiB form body under 30 µs.
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

/// What a browser sends with a form post.
let browserHeaders: [(String, String)] = [
    ("Host", "api.example.com"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
    ("Accept", "text/html,application/xhtml+xml"), ("Accept-Language", "en-US,en;q=0.9"), ("Accept-Encoding", "gzip, deflate"),
    ("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", String(formBody.count)),
    ("Cookie", "session=abc123; theme=dark"),
]

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput], maxDuration: .seconds(3))
    guard FileManager.default.fileExists(atPath: "/usr/share/modsecurity-crs/rules") else {
        print("CRSBenchmarks: /usr/share/modsecurity-crs is missing (apt-get install modsecurity-crs); nothing to measure")
        return
    }
    let check: CRSCheck
    do {
        check = try CRSSettings().load(baseDirectory: "/").check("waf")
    } catch {
        print("CRSBenchmarks: the Core Rule Set does not load: \(error)")
        return
    }
    let form = PolicyRequest(
        method: "POST", path: "/signup", headers: HeaderList(browserHeaders), host: "api.example.com", contentLength: formBody.count,
        body: formBody, routeName: "signup")
    Benchmark("CRS PL1 1 KiB form body (12 fields)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(check.inspect(form))
        }
    }

    let attack = PolicyRequest(
        method: "GET", path: "/search", query: "q=1%27+UNION+SELECT+username%2Cpassword+FROM+users--&page=2",
        headers: HeaderList(Array(browserHeaders.prefix(5))), host: "api.example.com")
    Benchmark("CRS PL1 query with SQL injection") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(check.inspect(attack))
        }
    }
}

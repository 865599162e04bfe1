// The Core Rule Set's inspection cost per request, outside the benchmark framework, so that a
// profiler (perf record) sees only the engine. The requests are CRSBenchmarks' own.
//
//   swift build -c release --product CRSCPU && .build/release/CRSCPU [--seconds 5] [--request form|attack]
//   perf stat -e instructions:u .build/release/CRSCPU --iterations 2000   # minus --iterations 0
//
// Prints, per one-second batch, the mean wall and thread CPU time per inspection; then the
// median batch. With `--iterations N` it runs exactly N inspections and prints nothing else, for
// counting instructions (stable on a busy machine, unlike time).

import Foundation
import GatehouseCore
import GatehouseSecLang

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

let browserHeaders: [(String, String)] = [
    ("Host", "api.example.com"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
    ("Accept", "text/html,application/xhtml+xml"), ("Accept-Language", "en-US,en;q=0.9"), ("Accept-Encoding", "gzip, deflate"),
    ("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", String(formBody.count)),
    ("Cookie", "session=abc123; theme=dark"),
]

var seconds = 5
var which = "form"
var iterations: Int? = nil
var arguments = CommandLine.arguments.dropFirst()
while let a = arguments.popFirst() {
    switch a {
    case "--seconds": seconds = Int(arguments.popFirst() ?? "") ?? seconds
    case "--request": which = arguments.popFirst() ?? which
    case "--iterations": iterations = Int(arguments.popFirst() ?? "")
    default:
        print("usage: CRSCPU [--seconds N] [--request form|attack]")
        exit(2)
    }
}

let check: CRSCheck
do {
    check = try CRSSettings().load(baseDirectory: "/").check("waf")
} catch {
    print("CRSCPU: the Core Rule Set does not load: \(error)")
    exit(1)
}
let request: PolicyRequest
switch which {
case "attack":
    request = PolicyRequest(
        method: "GET", path: "/search", query: "q=1%27+UNION+SELECT+username%2Cpassword+FROM+users--&page=2",
        headers: HeaderList(Array(browserHeaders.prefix(5))), host: "api.example.com")
default:
    request = PolicyRequest(
        method: "POST", path: "/signup", headers: HeaderList(browserHeaders), host: "api.example.com", contentLength: formBody.count,
        body: formBody, routeName: "signup")
}
if let iterations {
    for _ in 0..<iterations { _ = check.inspect(request) }
    exit(0)
}
func threadCPU() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}
print("first verdict: \(check.inspect(request))")
var wall: [Double] = []
var cpu: [Double] = []
for _ in 0..<seconds {
    let start = DispatchTime.now().uptimeNanoseconds
    let startCPU = threadCPU()
    var n = 0
    while DispatchTime.now().uptimeNanoseconds - start < 1_000_000_000 {
        for _ in 0..<20 { _ = check.inspect(request) }
        n += 20
    }
    wall.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1000 / Double(n))
    cpu.append(Double(threadCPU() - startCPU) / 1000 / Double(n))
    print(String(format: "%.1f µs wall, %.1f µs CPU per inspection (%d inspections)", wall.last!, cpu.last!, n))
}
print(String(format: "median batch: %.1f µs wall, %.1f µs CPU", wall.sorted()[wall.count / 2], cpu.sorted()[cpu.count / 2]))

// The Core Rule Set's inspection cost per request, outside the benchmark framework, so that a
// profiler (perf record) sees only the engine. The requests are CRSBenchmarks' own (WAFFixtures).
//
//   swift build -c release --product CRSCPU && .build/release/CRSCPU [--seconds 5] [--request form|attack]
//   valgrind --tool=callgrind --toggle-collect='$s16GatehouseSecLang8CRSCheckV7inspect*' \
//       CRSCPU --iterations 40     # minus --iterations 20: see docs/performance.md
//
// Prints, per one-second batch, the mean wall and thread CPU time per inspection; then the
// median batch. With `--iterations N` it runs exactly N inspections and prints nothing else, for
// counting instructions (stable on a busy machine, unlike time).

import Foundation
import GatehouseCore
import GatehouseSecLang
import WAFFixtures

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
let request = which == "attack" ? sqlInjectionRequest : browserFormRequest
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

import Benchmark
import Foundation
import GatehouseCore
import GatehouseSecLang
import WAFFixtures

/// The Core Rule Set (Debian's modsecurity-crs 3.3.4, paranoia level 1, threshold 5) over the
/// requests the built-in WAF's benchmarks use (`WAFFixtures`): the goal is a 1 KiB form body
/// under 30 µs.
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
    let form = browserFormRequest
    Benchmark("CRS PL1 1 KiB form body (12 fields)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(check.inspect(form))
        }
    }

    let attack = sqlInjectionRequest
    Benchmark("CRS PL1 query with SQL injection") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(check.inspect(attack))
        }
    }
}

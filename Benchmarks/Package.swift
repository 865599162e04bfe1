// swift-tools-version:6.1
import PackageDescription

// Micro-benchmarks (ordo-one/benchmark). Run from this directory:
//   swift package --allow-writing-to-package-directory benchmark                      # all
//   swift package --allow-writing-to-package-directory benchmark --target WAFBenchmarks
//   swift package --allow-writing-to-package-directory benchmark --target CRSBenchmarks   # needs modsecurity-crs
//   (also RateLimitBenchmarks, JWTBenchmarks, CallLogBenchmarks, OverviewBenchmarks)
// Call-log writer CPU per record without the framework (release build):
//   swift build -c release --product CallLogCPU && .build/release/CallLogCPU [--mode insert|writer]
// The Core Rule Set per request without the framework (for perf record):
//   swift build -c release --product CRSCPU && .build/release/CRSCPU [--seconds 5] [--request form|attack]
// The dependency is named explicitly: SwiftPM would otherwise name it after the checkout's directory.
let package = Package(
    name: "GatehouseBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "gatehouse", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The requests the WAF benchmarks share.
        .target(
            name: "WAFFixtures",
            dependencies: [.product(name: "GatehouseCore", package: "gatehouse")],
            path: "Benchmarks/WAFFixtures"
        ),
        .executableTarget(
            name: "WAFBenchmarks",
            dependencies: [
                "WAFFixtures",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "GatehouseWAF", package: "gatehouse"),
                .product(name: "GatehouseCore", package: "gatehouse"),
            ],
            path: "Benchmarks/WAFBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The OWASP Core Rule Set through the SecLang engine (`waf` policies with `crs:`).
        .executableTarget(
            name: "CRSBenchmarks",
            dependencies: [
                "WAFFixtures",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "GatehouseSecLang", package: "gatehouse"),
                .product(name: "GatehouseCore", package: "gatehouse"),
            ],
            path: "Benchmarks/CRSBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "RateLimitBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "GatehouseChecks", package: "gatehouse"),
                .product(name: "GatehouseCore", package: "gatehouse"),
            ],
            path: "Benchmarks/RateLimitBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "JWTBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "GatehouseChecks", package: "gatehouse"),
                .product(name: "GatehouseCore", package: "gatehouse"),
            ],
            path: "Benchmarks/JWTBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Realistic call-log records and CPU-time helpers shared by the two call-log targets below.
        .target(
            name: "CallLogFixtures",
            dependencies: [
                .product(name: "GatehouseStore", package: "gatehouse"),
                .product(name: "GatehouseCore", package: "gatehouse"),
            ],
            path: "Benchmarks/CallLogFixtures"
        ),
        .executableTarget(
            name: "CallLogBenchmarks",
            dependencies: [
                "CallLogFixtures",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "GatehouseStore", package: "gatehouse"),
            ],
            path: "Benchmarks/CallLogBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The console overview over the rollups of 10 million calls (a store filled once, in /tmp).
        .executableTarget(
            name: "OverviewBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "GatehouseStore", package: "gatehouse"),
                .product(name: "GatehouseControl", package: "gatehouse"),
            ],
            path: "Benchmarks/OverviewBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // Standalone: prints process CPU per record for insertCalls or the whole CallLogWriter.
        .executableTarget(
            name: "CallLogCPU",
            dependencies: ["CallLogFixtures", .product(name: "GatehouseStore", package: "gatehouse")],
            path: "Benchmarks/CallLogCPU"
        ),
        // The Core Rule Set's cost per request without the framework, for profiling (perf record).
        .executableTarget(
            name: "CRSCPU",
            dependencies: [
                "WAFFixtures",
                .product(name: "GatehouseSecLang", package: "gatehouse"),
                .product(name: "GatehouseCore", package: "gatehouse"),
            ],
            path: "Benchmarks/CRSCPU"
        ),
    ]
)

// swift-tools-version:6.1
import PackageDescription

// Micro-benchmarks (ordo-one/benchmark). Run from this directory:
//   swift package --allow-writing-to-package-directory benchmark                      # all
//   swift package --allow-writing-to-package-directory benchmark --target WAFBenchmarks
//   (also RateLimitBenchmarks, JWTBenchmarks)
// The dependency is named explicitly: SwiftPM would otherwise name it after the checkout's directory.
let package = Package(
    name: "GatehouseBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "gatehouse", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "WAFBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "GatehouseWAF", package: "gatehouse"),
                .product(name: "GatehouseCore", package: "gatehouse"),
            ],
            path: "Benchmarks/WAFBenchmarks",
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
    ]
)

// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    // Release builds skip the run-time exclusivity checks (swift_beginAccess on every access to a
    // class's stored property): ~1.5 % of the data plane's CPU. Debug builds, where the tests run,
    // keep them, so an overlapping access still traps there.
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "gatehouse",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gatehouse", targets: ["gatehouse"]),
        .library(name: "GatehouseCore", targets: ["GatehouseCore"]),
        .library(name: "GatehouseIdentity", targets: ["GatehouseIdentity"]),
        .library(name: "GatehouseChecks", targets: ["GatehouseChecks"]),
        .library(name: "GatehouseWAF", targets: ["GatehouseWAF"]),
        .library(name: "GatehouseSecLang", targets: ["GatehouseSecLang"]),
        .library(name: "GatehouseConfig", targets: ["GatehouseConfig"]),
        .library(name: "GatehouseStore", targets: ["GatehouseStore"]),
        .library(name: "GatehouseProxy", targets: ["GatehouseProxy"]),
        .library(name: "GatehouseServer", targets: ["GatehouseServer"]),
        .library(name: "GatehouseTesting", targets: ["GatehouseTesting"]),
        .library(name: "GatehouseDoctor", targets: ["GatehouseDoctor"]),
        .library(name: "GatehouseControl", targets: ["GatehouseControl"]),
        .library(name: "GatehouseAdmin", targets: ["GatehouseAdmin"]),
        .library(name: "GatehouseCharts", targets: ["GatehouseCharts"]),
        .library(name: "GatehouseConsole", targets: ["GatehouseConsole"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.24.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "4.1.0"..<"6.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.15.0"),
        // swift-certificates' own dependency, declared because client-certificate parsing uses it directly.
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        // The /metrics exposition: a swift-metrics backend over a Prometheus collector registry.
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.0.0"),
        // The admin REST API (`/admin/v1`) on the admin listener.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // The console's HTML templates (compiled into the binary).
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        // Hummingbird's request and response types (HTTPField, HTTPFields).
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.24.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        // Cluster mode's shared store.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        // Request tracing (off unless `tracing:` is configured): the Tracing API, and swift-otel's
        // OTLP/HTTP exporter only (the gRPC trait would pull in grpc-swift for nothing).
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // Policy model: requests, checks, verdicts, denials, traces, the reason catalogue. No I/O.
        .target(name: "GatehouseCore", swiftSettings: swiftSettings),
        // Who callers are, as stored: consumer and key records, the credential directory, the API
        // key format. The store and the checks both build on it; neither on the other.
        .target(
            name: "GatehouseIdentity",
            dependencies: ["GatehouseCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Concrete checks: ip, api key, request shape, jwt, basic, mtls, scopes, roles, owner, tenant,
        // rate limit, cors, csrf.
        .target(
            name: "GatehouseChecks",
            dependencies: [
                "GatehouseCore", "GatehouseIdentity",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                // The rate limit's near-limit counter.
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Request inspection engine: decoders, detectors, anomaly scoring, and its check adapter.
        .target(name: "GatehouseWAF", dependencies: ["GatehouseCore"], swiftSettings: swiftSettings),
        // PCRE2 (8-bit, with JIT) from the system: the regular expressions of SecLang rules are PCRE.
        .systemLibrary(name: "CPCRE2", pkgConfig: "libpcre2-8", providers: [.apt(["libpcre2-dev"])]),
        // SecLang (the ModSecurity rule language): loads and runs the OWASP Core Rule Set and user
        // rule files over a parsed request, phases 1 and 2.
        .target(
            name: "GatehouseSecLang",
            dependencies: [
                "GatehouseCore", "GatehouseWAF", "CPCRE2",
                // t:sha1 and t:md5.
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // YAML -> validated, typed configuration with source positions; builds routes and chains.
        .target(
            name: "GatehouseConfig",
            dependencies: [
                "GatehouseCore", "GatehouseIdentity", "GatehouseChecks", "GatehouseWAF",
                // The `crs:` block of a `waf` policy: rule files are loaded when the configuration is read.
                "GatehouseSecLang",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // Charts rendered on the server as SVG (the console's overview): no dependencies.
        .target(name: "GatehouseCharts", swiftSettings: swiftSettings),
        // Persistence: consumers, keys, call log. SQLite (GRDB, WAL).
        .target(
            name: "GatehouseStore",
            dependencies: [
                "GatehouseCore", "GatehouseIdentity",
                .product(name: "GRDB", package: "GRDB.swift"),
                // The sqlite3 C API, for the call log's insert loop (see CallRowBinder).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Cluster mode: the shared PostgreSQL store (the control plane's tables, the call log in
        // daily partitions, cluster rate-limit counters), change propagation by LISTEN/NOTIFY, and
        // each node's replica of what the data plane reads, kept on local disk.
        .target(
            name: "GatehousePostgres",
            dependencies: [
                "GatehouseCore", "GatehouseIdentity", "GatehouseStore",
                // `scope: cluster` rate limits implement the checks' counter-store protocol.
                "GatehouseChecks",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The control plane's service layer: tenants, applications, credentials, services,
        // subscriptions, admin identities and the audit log, each operation authorised for an
        // `Actor` and audited in the transaction that makes the change.
        .target(
            name: "GatehouseControl",
            dependencies: [
                "GatehouseCore", "GatehouseIdentity", "GatehouseStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
            ],
            swiftSettings: swiftSettings
        ),
        // The admin REST API on Hummingbird: `/admin/v1/…`, its OpenAPI document, and the admin
        // listener's `/metrics`, `/healthz`, `/status`.
        .target(
            name: "GatehouseAdmin",
            dependencies: [
                "GatehouseCore", "GatehouseIdentity", "GatehouseStore", "GatehouseControl",
                // The console's pages under `/console` on the same listener.
                "GatehouseConsole",
                .product(name: "Hummingbird", package: "hummingbird"),
                // The Authorization header's Basic and Bearer forms.
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                // Application passwords set through the API.
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            resources: [.copy("openapi.json")],
            swiftSettings: swiftSettings
        ),
        // The operator console on the admin listener (`/console/…`): server-rendered pages over the
        // control plane, and the web pieces the developer portal shares (server-side sessions,
        // CSRF, security headers, explained refusal pages, templates, static assets). The
        // developer portal (`/portal/…`) is here too, on those pieces.
        .target(
            name: "GatehouseConsole",
            dependencies: [
                "GatehouseCore", "GatehouseIdentity", "GatehouseStore", "GatehouseControl", "GatehouseCharts", "GatehouseChecks",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The gateway's HTTP/1 codec: request and response heads, bodies, writers. Strict where
        // parsers disagree (request smuggling); compared with NIOHTTP1's parser in its tests.
        .target(
            name: "GatehouseHTTP1",
            dependencies: [
                "GatehouseCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The data plane on SwiftNIO: the decision (Gatekeeper), the connection's state machine, the
        // channel handler and upstream leg that carry them out, upstream pools, metrics recorded.
        .target(
            name: "GatehouseProxy",
            dependencies: [
                "GatehouseCore", "GatehouseIdentity", "GatehouseChecks", "GatehouseConfig", "GatehouseStore", "GatehouseHTTP1",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ],
            swiftSettings: swiftSettings
        ),
        // The server around the data plane: the gateway service (listeners, TLS, drain, reload),
        // the admin listener, the metrics backend, SIGHUP.
        .target(
            name: "GatehouseServer",
            dependencies: [
                "GatehouseCore", "GatehouseIdentity", "GatehouseChecks", "GatehouseConfig", "GatehouseStore", "GatehouseHTTP1",
                "GatehouseProxy", "GatehouseControl", "GatehouseAdmin", "GatehousePostgres",
                // The console's settings (`console:`), handed to the admin listener.
                "GatehouseConsole",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // For tests and demos: the demo upstream (also `gatehouse demo-upstream` and the embedded
        // defaults' upstream), a gateway served in the test's own process, stub checks.
        .target(
            name: "GatehouseTesting",
            dependencies: [
                "GatehouseCore", "GatehouseChecks", "GatehouseConfig", "GatehouseHTTP1", "GatehouseStore", "GatehouseProxy",
                "GatehouseServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Diagnosis of any 403: response classifier + knowledge base, token inspector, probe,
        // nginx/Apache analyzers, log analyzer.
        .target(
            name: "GatehouseDoctor",
            dependencies: [
                "GatehouseCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            resources: [.copy("Knowledge"), .copy("LogKnowledge")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "gatehouse",
            dependencies: [
                "GatehouseCore", "GatehouseIdentity", "GatehouseChecks", "GatehouseWAF", "GatehouseSecLang", "GatehouseConfig",
                "GatehouseStore", "GatehouseProxy", "GatehouseServer", "GatehouseTesting", "GatehouseDoctor", "GatehouseControl",
                "GatehousePostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // `--admin URL`: the control commands through a running gateway's admin API.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // `UnixSignal` and `UnixSignalsSequence`, for the SIGHUP reload loop.
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "GatehouseCoreTests", dependencies: ["GatehouseCore", "GatehouseTesting"], swiftSettings: swiftSettings),
        .testTarget(
            name: "GatehouseChecksTests",
            dependencies: [
                "GatehouseChecks", "GatehouseIdentity", "GatehouseCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "GatehouseWAFTests", dependencies: ["GatehouseWAF", "GatehouseCore"], swiftSettings: swiftSettings),
        .testTarget(name: "GatehouseChartsTests", dependencies: ["GatehouseCharts"], swiftSettings: swiftSettings),
        .testTarget(
            name: "GatehouseSecLangTests",
            // Yams: the Core Rule Set's regression tests are YAML.
            dependencies: ["GatehouseSecLang", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseConfigTests", dependencies: ["GatehouseConfig", "GatehouseIdentity", "GatehouseCore"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "GatehouseStoreTests",
            // GRDB: to write rows as older versions did.
            dependencies: [
                "GatehouseStore", "GatehouseIdentity", "GatehouseCore", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseProxyTests",
            // NIOEmbedded: the connection handlers driven without sockets. NIOHTTP1: the reference
            // parser the gateway's codec is compared with. GatehouseStore: the call log they write.
            dependencies: [
                "GatehouseProxy", "GatehouseHTTP1", "GatehouseCore", "GatehouseConfig", "GatehouseIdentity", "GatehouseChecks",
                "GatehouseStore", "GatehouseServer", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseAdminTests",
            // The service layer and the admin API, the latter driven through Hummingbird's router
            // test client (no socket).
            dependencies: [
                "GatehouseControl", "GatehouseAdmin", "GatehouseStore", "GatehouseIdentity", "GatehouseCore", "GatehouseChecks",
                // The console's session store, on both stores.
                "GatehouseConsole",
                // The same suite on a cluster's PostgreSQL (a server of the tests' own).
                "GatehousePostgres", "GatehouseTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseConsoleTests",
            // The console driven through Hummingbird's router test client (no socket), on the
            // admin listener's router.
            dependencies: [
                "GatehouseConsole", "GatehouseAdmin", "GatehouseControl", "GatehouseStore", "GatehouseCore", "GatehouseChecks",
                "GatehouseCharts",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GatehouseDoctorTests",
            dependencies: ["GatehouseDoctor", "GatehouseCore"],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
        // What the end-to-end and adversarial tests share: the real `gatehouse` binary started on
        // loopback, raw sockets, a capturing upstream, a test PKI.
        .target(
            name: "GatehouseTestSupport",
            dependencies: [
                "GatehouseCore", "GatehouseProxy", "GatehouseServer", "GatehouseTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/GatehouseTestSupport",
            swiftSettings: swiftSettings
        ),
        // Attacks on a live gateway, one test per finding of a security review (named by it), so the
        // next review adds rows here.
        .testTarget(
            name: "GatehouseAdversarialTests",
            dependencies: [
                "GatehouseTestSupport", "GatehouseCore", "GatehouseIdentity", "GatehouseChecks", "GatehouseConfig", "GatehouseProxy",
                "GatehouseServer", "GatehouseTesting", "GatehouseStore", "GatehouseControl", "GatehouseAdmin",
                // A cluster node's limiter, attacked directly (S40).
                "GatehousePostgres", .product(name: "Logging", package: "swift-log"),
                // The store's audit table, attacked directly.
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        // End-to-end: the real `gatehouse` binary in front of a real upstream.
        .testTarget(
            name: "GatehouseIntegrationTests",
            dependencies: [
                "GatehouseTestSupport",
                "GatehouseCore", "GatehouseProxy", "GatehouseServer", "GatehouseTesting", "GatehouseConfig", "GatehouseStore",
                "GatehouseControl", "GatehousePostgres",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                // Client certificates for the mTLS handshake tests.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                // The gateway run in-process as a service.
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

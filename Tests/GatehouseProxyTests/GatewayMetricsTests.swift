import GatehouseCore
import NIOCore
import NIOEmbedded
import GatehouseServer
import Testing

@testable import GatehouseProxy

/// The per-loop metrics cache, recorded into the process's registry and read back from its
/// exposition. Route names are unique to each test: the registry is shared by the whole process.
@Suite struct GatewayMetricsTests {
    @Test func reasonsThatAreNotAccessDecisionsAreTheCataloguesOwn() {
        for entry in ReasonCatalogue.all {
            #expect(
                GatewayMetrics.notAccessDecisions.contains(entry.code) == entry.meaning.contains("Not an access decision"),
                "\(entry.code)")
        }
    }

    @Test func eachKindOfAnswerIsCountedInItsOwnSeries() throws {
        // The backend first: metrics created before it go nowhere.
        _ = MetricsExposition.bootstrap()
        let metrics = GatewayMetrics()
        let loop = EmbeddedEventLoop()
        let counts = metrics.requestCounts(for: loop)
        // Alternating kinds, so the cache's shortcut for a repeat of the previous kind is left and
        // taken again.
        let samples: [GatewayMetrics.RequestSample] = [
            .init(route: "m-orders", status: 200, totalNanos: 1_000_000, upstreamNanos: 900_000, connectNanos: 100_000),
            .init(route: "m-orders", status: 401, reason: .missingCredentials, check: "m-key", totalNanos: 200_000),
            .init(route: "m-orders", status: 200, totalNanos: 1_000_000, upstreamNanos: 900_000),
            .init(route: "m-orders", status: 200, totalNanos: 3_000_000_000, upstreamNanos: 2_900_000_000),
            .init(route: "m-orders", status: 502, reason: .upstreamUnavailable, totalNanos: 5_000_000, connectNanos: 4_000_000),
            .init(route: "m-orders", status: 401, reason: .missingCredentials, check: "m-key", totalNanos: 200_000),
        ]
        for s in samples { counts.record(s) }
        loop.execute { metrics.countShadowDenial(route: "m-orders", check: "m-ip", reason: .ipNotAllowed) }
        loop.run()
        // Durations wait on their loop until it hands them over (its sweep, or before a scrape):
        // none is in the histograms yet.
        let before = String(
            decoding: MetricsExposition.render(
                metrics, .init(connectionsOpen: 3, connectionsRefused: 0, callLogQueueRecords: 0, callLogQueueBytes: 0, configGeneration: 1)
            ), as: UTF8.self)
        #expect(before.contains(#"gatehouse_request_duration_seconds_count{route="m-orders"} 0"#))
        loop.execute { metrics.flushCurrentLoop() }
        loop.run()

        let text = String(
            decoding: MetricsExposition.render(
                metrics, .init(connectionsOpen: 3, connectionsRefused: 0, callLogQueueRecords: 0, callLogQueueBytes: 0, configGeneration: 1)
            ), as: UTF8.self)
        let lines = Set(text.split(separator: "\n").map(String.init))
        #expect(lines.contains(#"gatehouse_requests_total{route="m-orders",status="200",reason=""} 3"#))
        #expect(lines.contains(#"gatehouse_requests_total{route="m-orders",status="401",reason="missing_credentials"} 2"#))
        #expect(lines.contains(#"gatehouse_requests_total{route="m-orders",status="502",reason="upstream_unavailable"} 1"#))
        #expect(
            lines.contains(
                #"gatehouse_denials_total{route="m-orders",check="m-key",reason="missing_credentials",status="401",mode="enforce"} 2"#))
        #expect(
            lines.contains(#"gatehouse_denials_total{route="m-orders",check="m-ip",reason="ip_not_allowed",status="403",mode="shadow"} 1"#))
        // An upstream failure is answered with a reason code but is no denial.
        #expect(!text.contains(#"gatehouse_denials_total{route="m-orders",check="",reason="upstream_unavailable""#))
        #expect(lines.contains(#"gatehouse_request_duration_seconds_count{route="m-orders"} 6"#))
        #expect(lines.contains(#"gatehouse_request_duration_seconds_bucket{route="m-orders",le="0.0005"} 2"#))
        #expect(lines.contains(#"gatehouse_request_duration_seconds_bucket{route="m-orders",le="2.5"} 5"#))
        #expect(lines.contains(#"gatehouse_upstream_response_seconds_count{route="m-orders"} 3"#))
        #expect(lines.contains(#"gatehouse_upstream_connect_seconds_count{route="m-orders"} 2"#))
        #expect(lines.contains("gatehouse_connections_open 3.0"))
        try loop.syncShutdownGracefully()
    }
}

import GatehouseConfig
import Testing

/// `tracing:`: off unless configured, a collector URL that is http(s) with a host and a port,
/// and the optional service name, sample ratio and wire protocol.
@Suite struct TracingConfigTests {
    let base = "upstreams:\n  app: { targets: [\"http://127.0.0.1:9000\"] }\nroutes:\n  - match: { path: /a }\n    upstream: app\n"

    @Test func tracingIsOffUnlessConfigured() throws {
        #expect(try load(base).tracing == nil)
    }

    @Test func aCollectorURLGivesTheTracesEndpointAndTheDefaults() throws {
        let t = try #require(try load(base + "tracing: { otlp: http://127.0.0.1:4318 }\n").tracing)
        #expect(t.otlp == "http://127.0.0.1:4318")
        #expect(t.tracesEndpoint == "http://127.0.0.1:4318/v1/traces")
        #expect(t.serviceName == "gatehouse")
        #expect(t.sampleRatio == 1)
        #expect(t.wireProtocol == .protobuf)

        let u = try #require(
            try load(
                base + """
                    tracing:
                      otlp: https://collector.internal:4318/otel/
                      service_name: edge-gateway
                      sample_ratio: 0.25
                      protocol: http/json
                    """
            ).tracing)
        #expect(u.tracesEndpoint == "https://collector.internal:4318/otel/v1/traces")
        #expect(u.serviceName == "edge-gateway")
        #expect(u.sampleRatio == 0.25)
        #expect(u.wireProtocol == .json)
    }

    @Test func badTracingValuesAreReportedWithTheirPosition() {
        let cases: [(String, String)] = [
            (
                "tracing: { otlp: grpc://127.0.0.1:4317 }",
                "t.yaml:6:18: tracing.otlp: \"grpc://127.0.0.1:4317\": the OTLP exporter speaks http or https only (expected e.g. http://127.0.0.1:4318)"
            ),
            (
                "tracing: { otlp: http://127.0.0.1 }",
                "t.yaml:6:18: tracing.otlp: \"http://127.0.0.1\" has no port (expected e.g. http://127.0.0.1:4318)"
            ),
            (
                "tracing: { otlp: \"http://:4318\" }",
                "t.yaml:6:18: tracing.otlp: \"http://:4318\" has no host (expected e.g. http://127.0.0.1:4318)"
            ),
            (
                "tracing: { otlp: collector }",
                "t.yaml:6:18: tracing.otlp: \"collector\" is not a URL (expected e.g. http://127.0.0.1:4318)"
            ),
            (
                "tracing: { otlp: \"http://127.0.0.1:4318?x=1\" }",
                "t.yaml:6:18: tracing.otlp: \"http://127.0.0.1:4318?x=1\": a collector URL takes no user, query or fragment"
            ),
            (
                "tracing: { otlp: http://127.0.0.1:4318, sample_ratio: 1.5 }",
                "t.yaml:6:55: tracing.sample_ratio: sample_ratio must be a number from 0 to 1 (e.g. 0.1 keeps one trace in ten)"
            ),
            (
                "tracing: { otlp: http://127.0.0.1:4318, sample_ratio: half }",
                "t.yaml:6:55: tracing.sample_ratio: sample_ratio must be a number from 0 to 1 (e.g. 0.1 keeps one trace in ten)"
            ),
            (
                "tracing: { otlp: http://127.0.0.1:4318, service_name: \"\" }",
                "t.yaml:6:55: tracing.service_name: service_name must not be empty"
            ),
            (
                "tracing: { otlp: http://127.0.0.1:4318, protocol: grpc }",
                "t.yaml:6:51: tracing.protocol: \"grpc\" is not valid (expected one of: http/protobuf, http/json)"
            ),
        ]
        for (yaml, expected) in cases {
            #expect(issues(base + yaml + "\n") == [expected], "\(yaml)")
        }
        #expect(issues(base + "tracing: { service_name: x }\n").first?.contains("otlp") == true)
        #expect(issues(base + "tracing: { otlp: http://127.0.0.1:4318, sampler: always }\n").first?.contains("sampler") == true)
    }
}

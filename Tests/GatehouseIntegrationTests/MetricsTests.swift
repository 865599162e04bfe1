import Foundation
import GatehouseProxy
import GatehouseTestSupport
import NIOHTTP1
import Testing
import GatehouseServer
import GatehouseTesting

/// A gateway with an admin listener: one route open, one behind an API key, one with a shadow-mode
/// IP check, one rate-limited. `UP` is replaced by the upstream's port.
private let metricsYAML = """
    admin: 127.0.0.1:0
    upstreams:
      app: { targets: ["http://127.0.0.1:UP"], timeout: 2s, connect_timeout: 1s }
    routes:
      - name: open
        match: { path: /open }
        upstream: app
      - name: orders
        match: { path: "/orders/{id}" }
        upstream: app
        policies: [api-key]
      - name: shadowed
        match: { path: /shadowed }
        upstream: app
        policies: [{ policy: office-ip, mode: shadow }]
      - name: limited
        match: { path: /limited }
        upstream: app
        policies: [five-per-minute]
    policies:
      api-key: { type: api_key, header: X-API-Key }
      office-ip: { type: ip, allow: [10.0.0.0/8] }
      five-per-minute: { type: rate_limit, key: ip, rate: 5/minute, burst: 5 }
    """

/// One sample of the exposition, as the Prometheus text parser of `prometheus_client` read it.
struct ParsedSample: Equatable, CustomStringConvertible {
    var name: String
    var labels: [String: String]
    var value: Double
    var description: String { "\(name)\(labels.sorted { $0.key < $1.key }) \(value)" }
}

/// Parses Prometheus text with `prometheus_client.parser.text_string_to_metric_families` in a
/// python3 child process; nil when python3 or the package is missing (a failure under CI=true).
func parsePrometheus(_ text: String) throws -> (types: [String: String], samples: [ParsedSample])? {
    let script = """
        import json, sys
        from prometheus_client.parser import text_string_to_metric_families
        types, samples = {}, []
        for family in text_string_to_metric_families(sys.stdin.read()):
            types[family.name] = family.type
            for s in family.samples:
                samples.append({"name": s.name, "labels": s.labels, "value": s.value})
        print(json.dumps({"types": types, "samples": samples}))
        """
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script]
    let input = Pipe(), out = Pipe(), err = Pipe()
    p.standardInput = input
    p.standardOutput = out
    p.standardError = err
    do { try p.run() } catch {
        unavailable("python3 could not be started: \(error)")
        return nil
    }
    input.fileHandleForWriting.write(Data(text.utf8))
    try input.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    if p.terminationStatus != 0 {
        if e.contains("ModuleNotFoundError") || p.terminationStatus == 127 {
            unavailable("python3 with prometheus_client is needed (pip install -r .ci/requirements.txt): \(e)")
            return nil
        }
        Issue.record("the Prometheus text parser rejected the exposition: \(e)\n\(text)")
        return nil
    }
    let json = try JSONSerialization.jsonObject(with: o) as? [String: Any] ?? [:]
    let types = json["types"] as? [String: String] ?? [:]
    let samples = (json["samples"] as? [[String: Any]] ?? []).map {
        ParsedSample(
            name: $0["name"] as? String ?? "", labels: $0["labels"] as? [String: String] ?? [:],
            value: ($0["value"] as? NSNumber)?.doubleValue ?? .nan)
    }
    return (types, samples)
}

private func unavailable(_ why: String) {
    if inCI {
        Issue.record("\(why) (CI=true: a missing prerequisite fails the test)")
    } else {
        print("SKIPPED: \(why)")
    }
}

@Suite(.serialized) struct MetricsIntegrationTests {
    @Test func metricsAreRenderedByThePrometheusRegistryAndReadByAPrometheusParser() async throws {
        let upstream = try await startUpstream()
        let gateway = try GatewayProcess(yaml: metricsYAML.replacingOccurrences(of: "UP", with: String(upstream.port)))
        // Request data that must never reach a label.
        let pathMarker = "path-marker-7f3a"
        let keyMarker = "key-marker-91c2"

        #expect(try await send(.GET, gateway.url + "/open?q=\(pathMarker)").status == 200)
        let missing = try await send(.GET, gateway.url + "/orders/\(pathMarker)")
        #expect(missing.status == 401)
        #expect(missing.json["reason"] as? String == "missing_credentials")
        let malformed = try await send(.GET, gateway.url + "/orders/\(pathMarker)", headers: [("X-API-Key", keyMarker)])
        #expect(malformed.status == 401)
        #expect(malformed.json["reason"] as? String == "malformed_credentials")
        let notFound = try await send(.GET, gateway.url + "/\(pathMarker)")
        #expect(notFound.status == 404)
        #expect(notFound.json["reason"] as? String == "route_not_found")
        #expect(try await send(.GET, gateway.url + "/shadowed").status == 200)
        // The 4th and 5th of 5 allowed requests leave the bucket at 80 % and 100 % used.
        for _ in 0..<5 { #expect(try await send(.GET, gateway.url + "/limited").status == 200) }

        let scrape = try await send(.GET, "http://127.0.0.1:\(gateway.adminPort ?? 0)/metrics")
        #expect(scrape.status == 200)
        #expect(scrape.headers.first(name: "content-type") == "text/plain; version=0.0.4; charset=utf-8")
        #expect(!scrape.body.contains(pathMarker))
        #expect(!scrape.body.contains(keyMarker))
        guard let (types, samples) = try parsePrometheus(scrape.body) else {
            gateway.stop()
            await upstream.stop()
            return
        }
        func values(_ name: String) -> [[String: String]: Double] {
            Dictionary(samples.filter { $0.name == name }.map { ($0.labels, $0.value) }, uniquingKeysWith: +)
        }

        #expect(types["gatehouse_requests"] == "counter")
        #expect(types["gatehouse_denials"] == "counter")
        #expect(types["gatehouse_request_duration_seconds"] == "histogram")
        #expect(types["gatehouse_connections_open"] == "gauge")
        #expect(
            values("gatehouse_requests_total") == [
                ["route": "open", "status": "200", "reason": ""]: 1,
                ["route": "orders", "status": "401", "reason": "missing_credentials"]: 1,
                ["route": "orders", "status": "401", "reason": "malformed_credentials"]: 1,
                ["route": "", "status": "404", "reason": "route_not_found"]: 1,
                ["route": "shadowed", "status": "200", "reason": ""]: 1,
                ["route": "limited", "status": "200", "reason": ""]: 5,
            ])
        #expect(
            values("gatehouse_denials_total") == [
                ["route": "orders", "check": "api-key", "reason": "missing_credentials", "status": "401", "mode": "enforce"]: 1,
                ["route": "orders", "check": "api-key", "reason": "malformed_credentials", "status": "401", "mode": "enforce"]: 1,
                ["route": "", "check": "", "reason": "route_not_found", "status": "404", "mode": "enforce"]: 1,
                ["route": "shadowed", "check": "office-ip", "reason": "ip_not_allowed", "status": "403", "mode": "shadow"]: 1,
            ])
        #expect(values("gatehouse_ratelimit_near_limit_total") == [["policy": "five-per-minute"]: 2])
        // Every answered request is timed; only forwarded ones have an upstream time.
        #expect(
            values("gatehouse_request_duration_seconds_count") == [
                ["route": "open"]: 1, ["route": "orders"]: 2, ["route": ""]: 1, ["route": "shadowed"]: 1, ["route": "limited"]: 5,
            ])
        #expect(
            values("gatehouse_upstream_response_seconds_count") == [
                ["route": "open"]: 1, ["route": "shadowed"]: 1, ["route": "limited"]: 5,
            ])
        // The first forwarded request opened a connection; later ones may reuse it.
        let connects = values("gatehouse_upstream_connect_seconds_count")
        #expect(connects[["route": "open"]] == 1)
        #expect(connects.values.reduce(0, +) <= 7)
        #expect(values("gatehouse_request_duration_seconds_bucket")[["route": "limited", "le": "+Inf"]] == 5)
        #expect(values("gatehouse_config_generation") == [[:]: 1])
        #expect(values("gatehouse_connections_refused_total") == [[:]: 0])
        #expect(values("gatehouse_calllog_dropped_total") == [[:]: 0])
        #expect(values("gatehouse_connections_open").count == 1)
        #expect(values("gatehouse_calllog_queue_records").count == 1)
        #expect(values("gatehouse_calllog_queue_bytes").count == 1)
        #expect(values("gatehouse_calllog_written_total").count == 1)

        // Labels come from the configuration and the reason catalogue, never from the request.
        let allowedLabelValues: Set<String> = [
            "", "open", "orders", "shadowed", "limited", "api-key", "office-ip", "five-per-minute",
            "enforce", "shadow", "missing_credentials", "malformed_credentials",
            "route_not_found", "ip_not_allowed", "200", "401", "403", "404",
        ]
        for s in samples {
            for (name, value) in s.labels where name != "le" {
                #expect(allowedLabelValues.contains(value), "label \(name)=\(value) of \(s)")
            }
        }

        // The call log's counters now reach the registry: written records show there.
        var written = 0.0
        for _ in 0..<50 {
            let text = try await send(.GET, "http://127.0.0.1:\(gateway.adminPort ?? 0)/metrics").body
            written = try parsePrometheus(text)?.samples.first { $0.name == "gatehouse_calllog_written_total" }?.value ?? 0
            if written == 10 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(written == 10)
        gateway.stop()
        await upstream.stop()
    }
}

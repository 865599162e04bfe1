import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// One route open, one behind an API key; the key's query form shows that `url.path` is redacted
/// as in the call log. `UP` is the upstream's port, `TRACING` the `tracing:` line (or nothing).
private let tracingYAML = """
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
    policies:
      api-key: { type: api_key, query: api_key }
    TRACING
    """

/// A span as an OTLP/HTTP JSON export carries it.
private struct ExportedSpan: CustomStringConvertible {
    var name: String
    var kind: Int
    var traceID: String
    var spanID: String
    var parentSpanID: String
    var attributes: [String: String]
    var serviceName: String?
    var description: String { "\(name) kind=\(kind) trace=\(traceID) span=\(spanID) parent=\(parentSpanID) \(attributes)" }

    /// OTLP's span kinds.
    static let server = 2, client = 3
}

/// Ids as hex: the OTLP JSON mapping writes them as hex, protobuf's generic JSON as base64.
private func hexID(_ value: Any?) -> String {
    guard let s = value as? String, !s.isEmpty else { return "" }
    if s.count % 2 == 0, s.allSatisfy(\.isHexDigit), s.count == 32 || s.count == 16 { return s.lowercased() }
    guard let data = Data(base64Encoded: s) else { return s }
    return data.map { String(format: "%02x", $0) }.joined()
}

/// Every span of every export request the receiver recorded.
private func exportedSpans(_ receiver: CaptureUpstream) throws -> [ExportedSpan] {
    var spans: [ExportedSpan] = []
    for request in receiver.requests where request.path == "/v1/traces" {
        let body = try JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any] ?? [:]
        for rs in body["resourceSpans"] as? [[String: Any]] ?? [] {
            let resource = (rs["resource"] as? [String: Any])?["attributes"] as? [[String: Any]] ?? []
            let service = attributes(resource)["service.name"]
            for ss in rs["scopeSpans"] as? [[String: Any]] ?? [] {
                for s in ss["spans"] as? [[String: Any]] ?? [] {
                    spans.append(
                        ExportedSpan(
                            name: s["name"] as? String ?? "", kind: (s["kind"] as? NSNumber)?.intValue ?? 0,
                            traceID: hexID(s["traceId"]), spanID: hexID(s["spanId"]), parentSpanID: hexID(s["parentSpanId"]),
                            attributes: attributes(s["attributes"] as? [[String: Any]] ?? []), serviceName: service))
                }
            }
        }
    }
    return spans
}

/// OTLP attributes as text (`intValue` is a string in OTLP JSON).
private func attributes(_ list: [[String: Any]]) -> [String: String] {
    var out: [String: String] = [:]
    for a in list {
        guard let key = a["key"] as? String, let value = a["value"] as? [String: Any], let v = value.values.first else { continue }
        out[key] = (v as? String) ?? (v as? NSNumber)?.stringValue ?? "\(v)"
    }
    return out
}

/// The trace id of a `traceparent` value (`00-<trace id>-<span id>-<flags>`).
private func traceID(ofTraceparent value: String?) -> String? {
    guard let parts = value?.split(separator: "-"), parts.count == 4, parts[1].count == 32 else { return nil }
    return String(parts[1])
}

/// An OTLP/HTTP collector's answer to an export: success, nothing rejected.
private let collectorReply = CannedResponse("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

@Suite(.serialized) struct TracingIntegrationTests {
    @Test func spansAreExportedOverOTLPAndTheUpstreamContinuesTheTrace() async throws {
        let upstream = try await CaptureUpstream()
        let collector = try await CaptureUpstream { _ in collectorReply }
        let gateway = try GatewayProcess(
            yaml: tracingYAML.replacingOccurrences(of: "UP", with: String(upstream.port))
                .replacingOccurrences(of: "TRACING", with: "tracing: { otlp: \(collector.url), service_name: edge, protocol: http/json }"))
        // A client that is not a trusted proxy names a trace: it must not be continued.
        let clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
        let allowed = try await send(
            .GET, gateway.url + "/open?q=1",
            headers: [("traceparent", "00-\(clientTrace)-00f067aa0ba902b7-01")])
        #expect(allowed.status == 200)
        let denied = try await send(.GET, gateway.url + "/orders/7?api_key=secret-key-marker")
        #expect(denied.status == 401)
        #expect(denied.json["reason"] as? String == "malformed_credentials")
        // Graceful shutdown flushes the queued spans.
        #expect(gateway.stop() == 0)

        let spans = try exportedSpans(collector)
        let server = spans.filter { $0.kind == ExportedSpan.server }
        let client = spans.filter { $0.kind == ExportedSpan.client }
        #expect(server.count == 2, "\(spans)")
        #expect(client.count == 1, "\(spans)")
        #expect(spans.allSatisfy { $0.serviceName == "edge" })

        let allow = try #require(server.first { $0.name == "GET open" }, "\(spans)")
        #expect(allow.attributes["http.request.method"] == "GET")
        #expect(allow.attributes["url.path"] == "/open?q=1")
        #expect(allow.attributes["http.response.status_code"] == "200")
        #expect(allow.attributes["gatehouse.decision"] == "allow")
        #expect(allow.attributes["gatehouse.route"] == "open")
        #expect(allow.attributes["gatehouse.request_id"] == allowed.requestID)
        #expect(allow.attributes["gatehouse.reason"] == nil)
        #expect(allow.traceID != clientTrace)
        #expect(allow.parentSpanID == "")

        let deny = try #require(server.first { $0.name == "GET orders" }, "\(spans)")
        #expect(deny.attributes["gatehouse.decision"] == "deny")
        #expect(deny.attributes["gatehouse.deciding_check"] == "api-key")
        #expect(deny.attributes["gatehouse.reason"] == denied.json["reason"] as? String)
        #expect(deny.attributes["http.response.status_code"] == "401")
        #expect(deny.attributes["gatehouse.request_id"] == denied.requestID)
        // The key stays out of the span as it stays out of the call log.
        #expect(deny.attributes["url.path"]?.hasPrefix("/orders/7?api_key=") == true)
        #expect(deny.attributes["url.path"]?.contains("secret-key-marker") == false)
        #expect(deny.traceID != allow.traceID)

        let up = try #require(client.first)
        #expect(up.traceID == allow.traceID)
        #expect(up.parentSpanID == allow.spanID)
        #expect(up.attributes["server.address"] == "127.0.0.1")
        #expect(up.attributes["server.port"] == String(upstream.port))
        #expect(up.attributes["http.response.status_code"] == "200")

        // The upstream received the upstream span's context, once, in place of the client's.
        let seen = try #require(upstream.requests.first)
        #expect(seen.values("traceparent").count == 1)
        #expect(traceID(ofTraceparent: seen.first("traceparent")) == allow.traceID)
        #expect(seen.first("traceparent")?.split(separator: "-")[2] == Substring(up.spanID))
        await collector.stop()
        await upstream.stop()
    }

    @Test func aTrustedProxysTraceparentIsContinued() async throws {
        let upstream = try await CaptureUpstream()
        let collector = try await CaptureUpstream { _ in collectorReply }
        let gateway = try GatewayProcess(
            yaml: "trusted_proxies: [127.0.0.1/32]\n"
                + tracingYAML
                .replacingOccurrences(of: "UP", with: String(upstream.port))
                .replacingOccurrences(of: "TRACING", with: "tracing: { otlp: \(collector.url), protocol: http/json }"))
        let proxyTrace = "0af7651916cd43dd8448eb211c80319c"
        let proxySpan = "b7ad6b7169203331"
        #expect(try await send(.GET, gateway.url + "/open", headers: [("traceparent", "00-\(proxyTrace)-\(proxySpan)-01")]).status == 200)
        #expect(gateway.stop() == 0)

        let spans = try exportedSpans(collector)
        let server = try #require(spans.first { $0.kind == ExportedSpan.server }, "\(spans)")
        #expect(server.traceID == proxyTrace)
        #expect(server.parentSpanID == proxySpan)
        #expect(server.serviceName == "gatehouse")
        #expect(traceID(ofTraceparent: upstream.requests.first?.first("traceparent")) == proxyTrace)
        await collector.stop()
        await upstream.stop()
    }

    @Test func withTracingOffTheGatewayAddsNoTraceparent() async throws {
        let upstream = try await CaptureUpstream()
        let gateway = try GatewayProcess(
            yaml: tracingYAML.replacingOccurrences(of: "UP", with: String(upstream.port))
                .replacingOccurrences(of: "TRACING", with: ""))
        #expect(try await send(.GET, gateway.url + "/open").status == 200)
        // A client's own field passes as before: `traceparent` is not among the untrusted headers.
        let clientValue = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        #expect(try await send(.GET, gateway.url + "/open", headers: [("traceparent", clientValue)]).status == 200)
        // `tracing:` is read at start: a reload that adds it says so and changes nothing.
        let yaml = try String(contentsOfFile: gateway.configPath, encoding: .utf8)
        try (yaml + "\ntracing: { otlp: \"http://127.0.0.1:9\" }\n").write(toFile: gateway.configPath, atomically: true, encoding: .utf8)
        gateway.signal(SIGHUP)
        var warned = false
        for _ in 0..<50 where !warned {
            try await Task.sleep(for: .milliseconds(100))
            warned = gateway.stderr.contains("tracing: is read at start only")
        }
        #expect(warned, "\(gateway.stderr)")
        #expect(try await send(.GET, gateway.url + "/open").status == 200)
        gateway.stop()
        let requests = upstream.requests
        #expect(requests.count == 3)
        #expect(requests.first?.values("traceparent") == [])
        #expect(requests[1].values("traceparent") == [clientValue])
        #expect(requests.last?.values("traceparent") == [])
        await upstream.stop()
    }
}

@Suite(.serialized) struct TracingProtobufTests {
    @Test func theDefaultExportIsOTLPProtobuf() async throws {
        let upstream = try await CaptureUpstream()
        let collector = try await CaptureUpstream { _ in
            CannedResponse("HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n")
        }
        let gateway = try GatewayProcess(
            yaml: tracingYAML.replacingOccurrences(of: "UP", with: String(upstream.port))
                .replacingOccurrences(of: "TRACING", with: "tracing: { otlp: \(collector.url) }"))
        #expect(try await send(.GET, gateway.url + "/open").status == 200)
        #expect(gateway.stop() == 0)
        let exports = collector.requests
        #expect(!exports.isEmpty)
        for export in exports {
            #expect(export.method == "POST")
            #expect(export.path == "/v1/traces")
            #expect(export.first("content-type") == "application/x-protobuf")
        }
        // Protobuf keeps strings as UTF-8: the span's name and the service's are in the body.
        let body = exports.flatMap(\.body)
        #expect(String(decoding: body, as: UTF8.self).contains("GET open"))
        #expect(String(decoding: body, as: UTF8.self).contains("gatehouse"))
        await collector.stop()
        await upstream.stop()
    }
}

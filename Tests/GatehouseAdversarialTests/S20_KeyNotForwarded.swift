import Foundation
import GatehouseTestSupport
import Testing

/// S20 (upstream half): the API key an `api_key` check read, from its header or query parameter,
/// was forwarded to the upstream, which never needs it.
@Suite("S20 API key not forwarded", .serialized) struct S20KeyNotForwarded {
    static func yaml(_ port: Int, forward: Bool = false) -> String {
        """
        upstreams:
          app: { targets: ["http://127.0.0.1:\(port)"] }
        routes:
          - name: keyed
            match: { path: /keyed }
            upstream: app
            policies: [by-header]
          - name: keyed-query
            match: { path: /keyed-query }
            upstream: app
            policies: [by-query]
        policies:
          by-header: { type: api_key, header: X-API-Key\(forward ? ", forward_key: true" : "") }
          by-query: { type: api_key, query: api_key }
        """
    }

    static func key(_ gw: GatewayProcess) async throws -> String {
        #expect(try gw.cli(["consumers", "create", "acme"]).status == 0)
        let key = try gw.cli(["keys", "create", "--consumer", "acme", "--quiet"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for _ in 0..<40 {
            if try attack(gw, "GET /keyed HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nConnection: close\r\n\r\n").status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        return key
    }

    @Test func theKeyStaysAtTheGateway() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream.port))
        defer { gw.stop() }
        let key = try await Self.key(gw)
        #expect(try attack(gw, "GET /keyed?x=1 HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nConnection: close\r\n\r\n").status == 200)
        #expect(try attack(gw, "GET /keyed-query?x=1&api_key=\(key)&y=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status == 200)
        #expect(try attack(gw, "GET /keyed-query?api_key=\(key) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").status == 200)
        // The other parameters reach the upstream byte for byte, separators included: it reads
        // the same parameters the checks did.
        #expect(
            try attack(gw, "GET /keyed-query?role=user;role=admin&api_key=\(key)&z=%41 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .status == 200)
        let seen = upstream.requests
        #expect(seen.contains { $0.target == "/keyed-query?role=user;role=admin&z=%41" })
        #expect(seen.count >= 4)
        for r in seen { #expect(!r.rawHead.contains(key), "the key reached the upstream: \(r.rawHead)") }
        #expect(seen.contains { $0.target == "/keyed?x=1" })
        #expect(seen.contains { $0.target == "/keyed-query?x=1&y=2" })
        #expect(seen.contains { $0.target == "/keyed-query" })
    }

    @Test func aRouteCanAskForIt() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream.port, forward: true))
        defer { gw.stop() }
        let key = try await Self.key(gw)
        #expect(upstream.requests.last?.first("x-api-key") == key)
    }
}

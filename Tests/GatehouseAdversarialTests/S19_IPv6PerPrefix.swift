import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S19: per-address rate limits counted each full IPv6 address, so a client holding a /64 (the
/// usual allocation to one subscriber) rotated through it: 20 of 20 requests passed a 2/min limit.
@Suite("S19 IPv6 per prefix", .serialized) struct S19IPv6PerPrefix {
    static func yaml(_ upstream: CaptureUpstream, prefix: String = "") -> String {
        """
        upstreams:
          app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
        trusted_proxies: [127.0.0.1/32]
        routes:
          - name: limited
            match: { path: /limited }
            upstream: app
            policies: [rl-ip]
        policies:
          rl-ip: { type: rate_limit, key: ip, rate: 2/hour\(prefix) }
        """
    }

    func statuses(_ gw: GatewayProcess, _ addresses: [String]) async throws -> [Int] {
        var out: [Int] = []
        for a in addresses { out.append(try await send(.GET, gw.url + "/limited", headers: [("X-Forwarded-For", a)]).status) }
        return out
    }

    @Test func rotatingWithinOneSlash64IsOneClient() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream))
        defer { gw.stop() }
        let rotating = (1...14).map { "2001:db8:1:2::\($0)" }
        let got = try await statuses(gw, rotating)
        #expect(got == [200, 200] + Array(repeating: 429, count: 12))
        #expect(upstream.requests.count == 2)
        let refused = try await send(.GET, gw.url + "/limited", headers: [("X-Forwarded-For", "2001:db8:1:2:ffff:ffff:ffff:ffff")])
        #expect(refused.status == 429)
        #expect((refused.json["detail"] as? String)?.contains("ip 2001:db8:1:2::/64") == true)
        // Another /64 is another client; IPv4 clients are still counted per address.
        #expect(try await statuses(gw, ["2001:db8:1:3::1", "198.51.100.1", "198.51.100.2"]) == [200, 200, 200])
    }

    @Test func ipv6PrefixIsConfigurable() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let perAddress = try GatewayProcess(yaml: Self.yaml(upstream, prefix: ", ipv6_prefix: 128"))
        defer { perAddress.stop() }
        #expect(try await statuses(perAddress, (1...4).map { "2001:db8:1:2::\($0)" }) == [200, 200, 200, 200])
        let perSlash48 = try GatewayProcess(yaml: Self.yaml(upstream, prefix: ", ipv6_prefix: 48"))
        defer { perSlash48.stop() }
        #expect(try await statuses(perSlash48, ["2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:1:4::1"]) == [200, 200, 429])
        // Out of range is a configuration error.
        let dir = try TempDir()
        let path = try dir.write(
            "bad.yaml", "listen: 127.0.0.1:0\nstore: { sqlite: g.db }\n" + Self.yaml(upstream, prefix: ", ipv6_prefix: 129"))
        let check = try gatehouse(["check", path])
        #expect(check.status == 2)
        #expect(check.stdout.contains("ipv6_prefix") || check.stderr.contains("ipv6_prefix"))
    }
}

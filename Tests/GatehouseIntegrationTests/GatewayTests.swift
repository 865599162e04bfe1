import GatehouseTestSupport
import GatehouseProxy
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import GatehouseServer
import GatehouseTesting

/// Configuration shared by most tests; `UP` is replaced by the upstream's port.
let baseYAML = """
    admin: 127.0.0.1:0
    upstreams:
      app: { targets: ["http://127.0.0.1:UP"], timeout: 1s, connect_timeout: 1s }
      down: { targets: ["http://127.0.0.1:DOWN"], connect_timeout: 1s }
    trusted_proxies: [10.9.0.0/16]
    routes:
      - name: open
        match: { methods: [GET, POST], path: /open }
        upstream: app
      - name: slow
        match: { path: /slow }
        upstream: app
      - name: orders
        match: { methods: [GET, POST, PUT], path: "/orders/{id}" }
        upstream: app
        policies: [api-key, shape]
      - name: office
        match: { path: /office }
        upstream: app
        policies: [office-ip]
      - name: blocked
        match: { path: /blocked }
        upstream: app
        policies: [blocklist]
      - name: shadowed
        match: { path: /shadowed }
        upstream: app
        policies: [{ policy: office-ip, mode: shadow }]
      - name: quiet
        match: { path: /quiet }
        upstream: app
        exposure: minimal
        policies: [api-key]
      - name: gone
        match: { path: /gone }
        upstream: down
      - name: upload
        match: { methods: [PUT, POST], path: /upload }
        upstream: app
    policies:
      api-key: { type: api_key, header: X-API-Key }
      shape: { type: request, methods: [GET, POST], content_types: [application/json], max_body: 1KiB, max_headers: 4KiB }
      office-ip: { type: ip, allow: [10.0.0.0/8] }
      blocklist: { type: ip, deny: [127.0.0.0/8] }
    """

/// A closed port: bound then released, so connecting is refused.
func closedPort() throws -> Int {
    let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
    close(s)
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// A running gateway with upstream, a consumer and a key.
final class Fixture {
    let upstream: GatehouseTesting.DemoUpstream
    let gateway: any GatewayUnderTest
    let key: String
    let keyID: String
    let adminPort: Int

    /// `process`: the gateway runs as a process of its own (for what is per process: metrics).
    init(process: Bool = false) async throws {
        upstream = try await startUpstream()
        // nothing listens on port 1: connections are refused
        let yaml = baseYAML.replacingOccurrences(of: "UP", with: String(upstream.port)).replacingOccurrences(of: "DOWN", with: "1")

        gateway = process ? try GatewayProcess(yaml: yaml) : try await LocalGateway(yaml: yaml)
        adminPort = gateway.adminPort ?? 0
        #expect(try gateway.cli(["consumers", "create", "acme"]).status == 0)
        let created = try gateway.cli(["keys", "create", "--consumer", "acme", "--quiet"])
        key = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        keyID = String(key.split(separator: "_")[1])
        // The gateway picks up new keys within about a second.
        for _ in 0..<40 {
            if try await send(.GET, gateway.url + "/orders/1", headers: [("X-API-Key", key)]).status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func stop() async {
        gateway.shutDown()
        await upstream.stop()
    }
}

@Suite(.serialized) struct GatewayIntegrationTests {
    @Test func allowedCallIsProxiedWithForwardingHeadersAndRequestID() async throws {
        let f = try await Fixture()
        let r = try await send(.GET, f.gateway.url + "/orders/42?x=1", headers: [("X-API-Key", f.key)])
        #expect(r.status == 200)
        #expect(r.requestID.count == 27)
        let echo = r.json
        #expect(echo["uri"] as? String == "/orders/42?x=1")
        let h = echo["headers"] as? [String: String] ?? [:]
        #expect(h["x-forwarded-for"] == "127.0.0.1")
        #expect(h["x-forwarded-proto"] == "http")
        #expect(h["x-forwarded-host"] == "127.0.0.1:\(f.gateway.port)")
        #expect(h["x-request-id"] == r.requestID)
        let rec = try await f.gateway.record(r.requestID)
        #expect(rec["status"] as? Int == 200)
        #expect(rec["consumer"] as? String == "acme")
        #expect(rec["keyID"] as? String == f.keyID)
        #expect(rec["route"] as? String == "orders")
        // The key itself is never logged.
        let logs = try f.gateway.cli(["logs", "--json", "--limit", "1000"])
        #expect(!logs.stdout.contains(f.key))
        #expect(!f.gateway.stderr.contains(f.key))
        await f.stop()
    }

    @Test func untrustedClientCannotSetRequestIDOrForwardedFor() async throws {
        let f = try await Fixture()
        let r = try await send(
            .GET, f.gateway.url + "/open", headers: [("X-Request-Id", "chosen-by-client"), ("X-Forwarded-For", "10.9.1.1")])
        #expect(r.status == 200)
        #expect(r.requestID != "chosen-by-client")
        let h = r.json["headers"] as? [String: String] ?? [:]
        #expect(h["x-forwarded-for"] == "127.0.0.1")
        // The spoofed X-Forwarded-For does not get the caller into the office allow list.
        let office = try await send(.GET, f.gateway.url + "/office", headers: [("X-Forwarded-For", "10.1.2.3")])
        #expect(office.status == 403)
        #expect(office.json["reason"] as? String == "ip_not_allowed")
        await f.stop()
    }

    @Test func streamsLargeBodiesBothWays() async throws {
        // A process of its own: its peak resident memory is measured.
        let upstream = try await startUpstream()
        let gateway = try GatewayProcess(
            yaml: baseYAML.replacingOccurrences(of: "UP", with: String(upstream.port)).replacingOccurrences(of: "DOWN", with: "1"))
        defer { gateway.stop() }
        // 256 MiB up, streamed in chunks with no Content-Length.
        var req = HTTPClientRequest(url: gateway.url + "/upload")
        req.method = .PUT
        let chunk = ByteBuffer(repeating: 0x61, count: 1 << 20)
        // The same buffer 256 times: its storage is shared, so the test itself holds 1 MiB.
        let chunks = AsyncStream<ByteBuffer> { cont in
            for _ in 0..<256 { cont.yield(chunk) }
            cont.finish()
        }
        req.body = .stream(chunks, length: .unknown)
        let resp = try await HTTPClient.shared.execute(req, timeout: .seconds(60))
        let body = try await resp.body.collect(upTo: 1 << 20)
        #expect(resp.status == .ok)
        let echo = try JSONSerialization.jsonObject(with: Data(String(buffer: body).utf8)) as? [String: Any]
        #expect(echo?["body_bytes"] as? Int == 256 << 20)
        // 32 MiB down.
        let down = try await HTTPClient.shared.execute(
            HTTPClientRequest(url: gateway.url + "/open?bytes=\(32 << 20)"), timeout: .seconds(60))
        var total = 0
        for try await part in down.body { total += part.readableBytes }
        #expect(total == 32 << 20)
        // The gateway never held the bodies: its peak resident memory stays far below their size.
        let status = try String(contentsOfFile: "/proc/\(gateway.process.processIdentifier)/status", encoding: .utf8)
        let peakKiB =
            status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
            .flatMap { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first }.flatMap { Int($0) } ?? 0
        #expect(peakKiB > 0)
        #expect(peakKiB < 128 * 1024, "gateway peak RSS \(peakKiB) KiB after streaming 256 MiB up and 32 MiB down")
        await upstream.stop()
    }

    @Test func credentialReasons() async throws {
        let f = try await Fixture()
        let url = f.gateway.url + "/orders/1"

        let missing = try await send(.GET, url)
        #expect(missing.status == 401)
        #expect(missing.json["reason"] as? String == "missing_credentials")
        #expect(missing.headers.first(name: "www-authenticate")?.hasPrefix("APIKey") == true)
        #expect(missing.headers.first(name: "content-type") == "application/problem+json")
        for field in ["type", "title", "status", "detail", "instance", "reason", "check", "required", "presented", "hint", "request_id"] {
            #expect(missing.json[field] != nil, "problem body lacks \(field)")
        }
        #expect(missing.json["request_id"] as? String == missing.requestID)
        #expect(missing.json["type"] as? String == "docs/reasons.md#missing_credentials")

        // One character changed: caught by the checksum before any lookup.
        var typo = Array(f.key)
        typo[20] = typo[20] == "a" ? "b" : "a"
        let malformed = try await send(.GET, url, headers: [("X-API-Key", String(typo))])
        #expect(malformed.status == 401)
        #expect(malformed.json["reason"] as? String == "malformed_credentials")
        #expect(!malformed.body.contains(String(typo)))

        // Well-formed but unknown: a key from another store.
        let other = try TempDir()
        _ = try gatehouse(["consumers", "create", "someone", "--store", other.path + "/o.db"])
        let foreign = try gatehouse(["keys", "create", "--consumer", "someone", "--quiet", "--store", other.path + "/o.db"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let invalid = try await send(.GET, url, headers: [("X-API-Key", foreign)])
        #expect(invalid.status == 401)
        #expect(invalid.json["reason"] as? String == "invalid_credentials")
        #expect(invalid.headers.first(name: "www-authenticate")?.contains("error=\"invalid_key\"") == true)
        #expect(!invalid.body.contains(foreign))

        // Expired.
        let short = try f.gateway.cli(["keys", "create", "--consumer", "acme", "--expires", "1s", "--quiet"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try await Task.sleep(for: .milliseconds(2200))
        let expired = try await send(.GET, url, headers: [("X-API-Key", short)])
        #expect(expired.status == 401)
        #expect(expired.json["reason"] as? String == "expired_credentials")
        #expect((expired.json["detail"] as? String)?.contains("expired") == true)

        // Revoked: takes effect on the running gateway.
        #expect(try f.gateway.cli(["keys", "revoke", f.keyID]).status == 0)
        var revoked = try await send(.GET, url, headers: [("X-API-Key", f.key)])
        for _ in 0..<40 where revoked.status == 200 {
            try await Task.sleep(for: .milliseconds(100))
            revoked = try await send(.GET, url, headers: [("X-API-Key", f.key)])
        }
        #expect(revoked.status == 401)
        #expect(revoked.json["reason"] as? String == "revoked_credentials")

        // Suspended consumer.
        let fresh = try f.gateway.cli(["keys", "create", "--consumer", "acme", "--quiet"]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
        #expect(try f.gateway.cli(["consumers", "suspend", "acme"]).status == 0)
        var suspended = try await send(.GET, url, headers: [("X-API-Key", fresh)])
        for _ in 0..<40 where suspended.status != 403 {
            try await Task.sleep(for: .milliseconds(100))
            suspended = try await send(.GET, url, headers: [("X-API-Key", fresh)])
        }
        #expect(suspended.status == 403)
        #expect(suspended.json["reason"] as? String == "consumer_suspended")

        // Every denial has a call-log record that explain renders.
        for r in [missing, malformed, invalid, expired, revoked, suspended] {
            let rec = try await f.gateway.record(r.requestID)
            #expect(rec["reason"] as? String == r.json["reason"] as? String)
            #expect(rec["status"] as? Int == r.status)
            let text = try f.gateway.cli(["explain", r.requestID])
            #expect(text.stdout.contains("Reason: \(r.json["reason"] as? String ?? "?")"))
            #expect(text.stdout.contains("Decided by: check api-key"))
        }
        await f.stop()
    }

    @Test func requestShapeReasons() async throws {
        let f = try await Fixture()
        let url = f.gateway.url + "/orders/1"
        let auth = ("X-API-Key", f.key)

        let put = try await send(.PUT, url, headers: [auth, ("Content-Type", "application/json")], body: "{}")
        #expect(put.status == 405)
        #expect(put.json["reason"] as? String == "method_not_allowed")
        #expect(put.headers.first(name: "allow") == "GET, POST")

        let delete = try await send(.DELETE, url, headers: [auth])
        #expect(delete.status == 405)
        #expect(delete.headers.first(name: "allow") == "GET, POST, PUT")
        #expect(delete.json["reason"] as? String == "method_not_allowed")

        let xml = try await send(.POST, url, headers: [auth, ("Content-Type", "application/xml")], body: "<a/>")
        #expect(xml.status == 415)
        #expect(xml.json["reason"] as? String == "unsupported_media_type")
        #expect((xml.json["required"] as? [String]) == ["application/json"])

        let big = try await send(
            .POST, url, headers: [auth, ("Content-Type", "application/json")],
            body: "{\"a\":\"" + String(repeating: "x", count: 2000) + "\"}")
        #expect(big.status == 413)
        #expect(big.json["reason"] as? String == "body_too_large")

        let headers = try await send(.GET, url, headers: [auth, ("X-Big", String(repeating: "y", count: 5000))])
        #expect(headers.status == 431)
        #expect(headers.json["reason"] as? String == "headers_too_large")

        let notFound = try await send(.GET, f.gateway.url + "/nowhere")
        #expect(notFound.status == 404)
        #expect(notFound.json["reason"] as? String == "route_not_found")

        for r in [put, delete, xml, big, headers, notFound] {
            let rec = try await f.gateway.record(r.requestID)
            #expect(rec["reason"] as? String == r.json["reason"] as? String)
        }
        await f.stop()
    }

    @Test func ipReasonsAndShadowMode() async throws {
        // A process of its own: the metrics are counted per process.
        let f = try await Fixture(process: true)
        let office = try await send(.GET, f.gateway.url + "/office")
        #expect(office.status == 403)
        #expect(office.json["reason"] as? String == "ip_not_allowed")
        #expect(office.json["detail"] as? String == "127.0.0.1 is not in allow list office-ip (10.0.0.0/8)")

        let blocked = try await send(.GET, f.gateway.url + "/blocked")
        #expect(blocked.status == 403)
        #expect(blocked.json["reason"] as? String == "ip_denied")

        let shadow = try await send(.GET, f.gateway.url + "/shadowed")
        #expect(shadow.status == 200)
        let rec = try await f.gateway.record(shadow.requestID)
        let trace = (rec["trace"] as? [String: Any])?["entries"] as? [[String: Any]] ?? []
        #expect(trace.first?["outcome"] as? String == "shadow_deny")
        #expect(trace.first?["reason"] as? String == "ip_not_allowed")
        let text = try f.gateway.cli(["explain", shadow.requestID]).stdout
        #expect(text.contains("shadow: would have denied"))
        #expect(text.contains("ALLOWED 200"))
        // Counted for the operator, per route, check and reason.
        let metrics = try await send(.GET, "http://127.0.0.1:\(f.adminPort)/metrics").body
        #expect(
            metrics.contains(
                "gatehouse_denials_total{route=\"shadowed\",check=\"office-ip\",reason=\"ip_not_allowed\",status=\"403\",mode=\"shadow\"} 1"
            ))
        #expect(
            metrics.contains(
                "gatehouse_denials_total{route=\"office\",check=\"office-ip\",reason=\"ip_not_allowed\",status=\"403\",mode=\"enforce\"} 1")
        )
        #expect(metrics.contains("gatehouse_requests_total{route=\"office\",status=\"403\",reason=\"ip_not_allowed\"} 1"))
        #expect(metrics.contains("gatehouse_calllog_dropped_total 0"))
        await f.stop()
    }

    @Test func minimalExposureShowsOnlyReasonAndRequestID() async throws {
        let f = try await Fixture()
        let r = try await send(.GET, f.gateway.url + "/quiet")
        #expect(r.status == 401)
        #expect(r.json["reason"] as? String == "missing_credentials")
        #expect(r.json["request_id"] as? String == r.requestID)
        #expect(r.json["detail"] == nil)
        #expect(r.json["hint"] == nil)
        // The operator still has the detail.
        let rec = try await f.gateway.record(r.requestID)
        #expect((rec["detail"] as? String)?.contains("requires an API key") == true)
        await f.stop()
    }

    @Test func logsFiltersAndFollows() async throws {
        let f = try await Fixture()
        let denied = try await send(.GET, f.gateway.url + "/office")
        _ = try await f.gateway.record(denied.requestID)
        let filtered = try f.gateway.cli(["logs", "--status", "403", "--reason", "ip_not_allowed", "--since", "1h"])
        #expect(filtered.stdout.contains(denied.requestID))
        #expect(!filtered.stdout.contains(" 200 "))
        #expect(try f.gateway.cli(["logs", "--route", "no-such-route"]).stdout.isEmpty)

        // --follow prints records written after it started.
        let follower = Process()
        follower.executableURL = URL(fileURLWithPath: Binary.path)
        follower.arguments = ["logs", "--follow", "--reason", "route_not_found", "--store", f.gateway.storePath]
        let out = Pipe()
        follower.standardOutput = out
        let collected = Collected()
        out.fileHandleForReading.readabilityHandler = { h in collected.append(h.availableData) }
        try follower.run()
        try await Task.sleep(for: .milliseconds(300))
        let later = try await send(.GET, f.gateway.url + "/not-a-route")
        var seen = ""
        for _ in 0..<50 where !seen.contains(later.requestID) {
            try await Task.sleep(for: .milliseconds(100))
            seen = collected.text
        }
        out.fileHandleForReading.readabilityHandler = nil
        follower.terminate()
        follower.waitUntilExit()
        #expect(seen.contains(later.requestID))
        await f.stop()
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let f = try await Fixture()
        // Three requests in one write: allowed (slow upstream), denied, allowed; the last closes.
        let reply = try rawExchange(
            port: f.gateway.port,
            "GET /open?delay_ms=300&n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /office HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /open?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        // Responses follow each other directly (a body is not followed by a line break).
        let statuses = reply.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
        #expect(statuses == ["200", "403", "200"])
        let first = try #require(reply.range(of: "n=1"))
        let third = try #require(reply.range(of: "n=3"))
        #expect(first.lowerBound < third.lowerBound)
        await f.stop()
    }

    @Test func malformedHTTPGetsAProblemWithARequestID() async throws {
        let f = try await Fixture()
        let reply = try rawExchange(port: f.gateway.port, "GET /open HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 400"))
        #expect(reply.contains("X-Request-Id: "))
        #expect(reply.contains("\"reason\":\"bad_request\""))
        await f.stop()
    }

    @Test func upstreamFailuresAreNotDenials() async throws {
        let f = try await Fixture()
        let gone = try await send(.GET, f.gateway.url + "/gone")
        #expect(gone.status == 502)
        #expect(gone.json["reason"] as? String == "upstream_unavailable")
        #expect((gone.json["detail"] as? String)?.contains("connection refused") == true)

        let slow = try await send(.GET, f.gateway.url + "/slow?delay_ms=3000")
        #expect(slow.status == 504)
        #expect(slow.json["reason"] as? String == "upstream_timeout")

        // The connection pool still works after a timeout.
        let ok = try await send(.GET, f.gateway.url + "/open")
        #expect(ok.status == 200)
        let rec = try await f.gateway.record(slow.requestID)
        #expect(rec["status"] as? Int == 504)
        // Counted as requests with their reason, not as denials.
        let metrics = try await send(.GET, "http://127.0.0.1:\(f.adminPort)/metrics").body
        #expect(metrics.contains("gatehouse_requests_total{route=\"gone\",status=\"502\",reason=\"upstream_unavailable\"} 1"))
        #expect(metrics.contains("gatehouse_requests_total{route=\"slow\",status=\"504\",reason=\"upstream_timeout\"} 1"))
        #expect(!metrics.contains("gatehouse_denials_total{route=\"gone\""))
        #expect(!metrics.contains("gatehouse_denials_total{route=\"slow\""))
        await f.stop()
    }
}

@Suite(.serialized) struct ConfigLifecycleTests {
    @Test func badConfigIsRejectedWithFileLineColumn() throws {
        let dir = try TempDir()
        let file = try dir.write(
            "bad.yaml",
            """
            listen: 127.0.0.1:8080
            upstreams:
              app: { targets: ["http://127.0.0.1:9000"] }
            routes:
              - name: r
                match: { path: /x }
                upstream: app
                policies: [office-ip]
            policies:
              office-ip:
                type: ip
                allow: [10.0.0.0/8, 10.0.0.0/33]
                alow: [1.2.3.4]
            """)
        let r = try gatehouse(["check", file])
        #expect(r.status == 2)
        #expect(
            r.stderr.contains(
                "bad.yaml:12:25: policies.office-ip.allow[1]: \"10.0.0.0/33\" is not a CIDR block (IPv4 prefix length is 0...32)"))
        #expect(r.stderr.contains("bad.yaml:13:5: policies.office-ip.alow: unknown key \"alow\"; did you mean \"allow\"?"))
        let good = try dir.write(
            "good.yaml",
            "upstreams:\n  app: { targets: [\"http://127.0.0.1:9000\"] }\nroutes:\n  - match: { path: /x }\n    upstream: app\n")
        #expect(try gatehouse(["check", good]).status == 0)
    }

    @Test func sighupWithBadFileKeepsServingAndGoodFileApplies() async throws {
        let up = try await startUpstream()
        let yaml =
            "upstreams:\n  app: { targets: [\"http://127.0.0.1:\(up.port)\"] }\nroutes:\n  - name: a\n    match: { path: /a }\n    upstream: app\n"
        let g = try GatewayProcess(yaml: yaml)
        defer { g.stop() }
        #expect(try await send(.GET, g.url + "/a").status == 200)

        // A broken file: rejected, old config keeps serving, errors logged with position.
        try
            ("listen: 127.0.0.1:\(g.port)\nstore: { sqlite: gatehouse.db }\n" + yaml
            + "  - match: { path: /b, methodz: [GET] }\n    upstream: app\n")
            .write(toFile: g.configPath, atomically: true, encoding: .utf8)
        g.signal(SIGHUP)
        for _ in 0..<50 where !g.stderr.contains("configuration rejected") {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(g.stderr.contains("configuration rejected"))
        #expect(g.stderr.contains("gatehouse.yaml:9:24: routes[1].match.methodz: unknown key \"methodz\"; did you mean \"methods\"?"))
        #expect(try await send(.GET, g.url + "/a").status == 200)
        #expect(try await send(.GET, g.url + "/b").status == 404)

        // A good file: applied.
        try ("listen: 127.0.0.1:\(g.port)\nstore: { sqlite: gatehouse.db }\n" + yaml + "  - match: { path: /b }\n    upstream: app\n")
            .write(toFile: g.configPath, atomically: true, encoding: .utf8)
        g.signal(SIGHUP)
        var status = 0
        for _ in 0..<30 {
            status = try await send(.GET, g.url + "/b").status
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(status == 200)
        await up.stop()
    }

    @Test func sigtermDrainsInFlightRequests() async throws {
        let up = try await startUpstream()
        let yaml =
            "upstreams:\n  app: { targets: [\"http://127.0.0.1:\(up.port)\"], timeout: 10s }\nroutes:\n  - name: a\n    match: { path: /a }\n    upstream: app\n"
        let g = try GatewayProcess(yaml: yaml)
        let url = g.url
        // A request the upstream answers after 1.5 s is in flight when SIGTERM arrives.
        let inFlight = Task { try await send(.GET, url + "/a?delay_ms=1500") }
        try await Task.sleep(for: .milliseconds(400))
        g.signal(SIGTERM)
        let reply = try await inFlight.value
        #expect(reply.status == 200)
        g.process.waitUntilExit()
        #expect(g.process.terminationStatus == 0)
        let rec = try gatehouse(["explain", reply.requestID, "--json", "--store", g.storePath])
        #expect(rec.status == 0)
        #expect(rec.stdout.contains("\"status\" : 200"))
        await up.stop()
    }

    @Test func sigtermLosesNoLoggedCall() async throws {
        let up = try await startUpstream()
        let yaml =
            "upstreams:\n  app: { targets: [\"http://127.0.0.1:\(up.port)\"] }\nroutes:\n  - name: a\n    match: { path: /a }\n    upstream: app\n"
        let g = try GatewayProcess(yaml: yaml)
        var ids: [String] = []
        for i in 0..<300 {
            let r = try await send(.GET, g.url + "/a?n=\(i)")
            ids.append(r.requestID)
        }
        // Stop immediately: records still queued must be flushed before exit.
        #expect(g.stop() == 0)
        let logs = try gatehouse(["logs", "--json", "--limit", "10000", "--store", g.storePath])
        let logged = Set(
            logs.stdout.split(separator: "\n").compactMap { line -> String? in
                (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["requestID"] as? String
            })
        #expect(logged.count == 300)
        #expect(Set(ids).isSubset(of: logged))
        await up.stop()
    }
}

@Suite(.serialized) struct CallLogBackpressureTests {
    /// With the store locked by another process and a tiny queue, the gateway keeps serving, drops
    /// what does not fit, and says so in its own log.
    @Test func aStalledStoreNeverBlocksRequests() async throws {
        let up = try await startUpstream()
        let yaml =
            "log: { queue: 5, batch: 1 }\nupstreams:\n  app: { targets: [\"http://127.0.0.1:\(up.port)\"] }\nroutes:\n  - name: a\n    match: { path: /a }\n    upstream: app\n"
        let g = try GatewayProcess(yaml: yaml)
        // Hold an exclusive lock on the store from another process for a few seconds.
        let locker = Process()
        locker.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        locker.arguments = [
            "python3", "-c",
            """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
            c.execute('BEGIN EXCLUSIVE')
            print('locked', flush=True)
            sys.stdin.readline()
            c.execute('COMMIT')
            """, g.storePath,
        ]
        let out = Pipe(), input = Pipe()
        locker.standardOutput = out
        locker.standardInput = input
        try locker.run()
        _ = out.fileHandleForReading.readData(ofLength: 7)
        // Every request is answered while the store stays locked.
        var statuses: [Int] = []
        for i in 0..<60 { statuses.append(try await send(.GET, g.url + "/a?n=\(i)").status) }
        #expect(statuses.allSatisfy { $0 == 200 })
        input.fileHandleForWriting.write(Data("done\n".utf8))
        locker.waitUntilExit()
        #expect(g.stop() == 0)
        #expect(g.stderr.contains("call log fell behind: dropped"))
        await up.stop()
    }
}

/// Bytes collected from a pipe's readability handler.
final class Collected: @unchecked Sendable {
    // @unchecked: data is guarded by lock.
    private let lock = NSLock()
    private var data = Data()
    func append(_ d: Data) { lock.lock(); data.append(d); lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}

@Suite(.serialized) struct UpstreamBalancingTests {
    @Test func roundRobinAcrossTargetsAndFailoverWhenOneIsDown() async throws {
        let a = try await startUpstream()
        let b = try await startUpstream()
        let yaml =
            "upstreams:\n  app: { targets: [\"http://127.0.0.1:\(a.port)\", \"http://127.0.0.1:\(b.port)\"] }\n"
            + "routes:\n  - name: r\n    match: { path: /r }\n    upstream: app\n"
        let g = try await LocalGateway(yaml: yaml)
        // One client connection, so one event loop: its pool alternates between the targets.
        let client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(connectionPool: .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 1)))
        var servedBy: [Int] = []
        for _ in 0..<6 { servedBy.append(try await send(.GET, g.url + "/r", client: client).json["served_by"] as? Int ?? 0) }
        #expect(Set(servedBy) == [a.port, b.port])
        #expect(zip(servedBy, servedBy.dropFirst()).allSatisfy { $0 != $1 })

        // Target b goes away: every call still succeeds, through a.
        await b.stop()
        for _ in 0..<4 {
            let r = try await send(.GET, g.url + "/r", client: client)
            #expect(r.status == 200)
            #expect(r.json["served_by"] as? Int == a.port)
        }
        try await client.shutdown()
        g.stop()
        await a.stop()
    }
}

@Suite(.serialized) struct ResponseHeaderTests {
    /// Headers a check adds (CORS) join the upstream's `Vary` instead of replacing it.
    @Test func varyFromAPolicyIsMergedWithTheUpstreams() async throws {
        let up = try await startUpstream()
        let g = try await LocalGateway(
            yaml: """
                upstreams:
                  app: { targets: ["http://127.0.0.1:\(up.port)"] }
                routes:
                  - name: r
                    match: { path: /r }
                    upstream: app
                    policies: [web]
                policies:
                  web: { type: cors, origins: ["https://app.example.com"], methods: [GET] }
                """)
        let r = try await send(.GET, g.url + "/r?vary=Accept-Encoding", headers: [("Origin", "https://app.example.com")])
        #expect(r.status == 200)
        #expect(r.headers.first(name: "access-control-allow-origin") == "https://app.example.com")
        let vary = r.headers[canonicalForm: "vary"].map(String.init)
        #expect(vary.contains("Accept-Encoding"))
        #expect(vary.contains("Origin"))
        g.stop()
        await up.stop()
    }
}

@Suite(.serialized) struct CallLogSecretTests {
    /// A key sent in a query parameter the operator named (not a usual secret name) is still kept out of the log.
    @Test func configuredKeyParameterIsRedacted() async throws {
        let up = try await startUpstream()
        let g = try await LocalGateway(
            yaml: """
                upstreams:
                  app: { targets: ["http://127.0.0.1:\(up.port)"] }
                routes:
                  - name: r
                    match: { path: /r }
                    upstream: app
                    policies: [qkey]
                policies:
                  qkey: { type: api_key, query: gh_credential }
                """)
        #expect(try g.cli(["consumers", "create", "acme"]).status == 0)
        let key = try g.cli(["keys", "create", "--consumer", "acme", "--quiet"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        var reply = try await send(.GET, g.url + "/r?x=1&gh_credential=" + key)
        for _ in 0..<40 where reply.status != 200 {
            try await Task.sleep(for: .milliseconds(100))
            reply = try await send(.GET, g.url + "/r?x=1&gh_credential=" + key)
        }
        #expect(reply.status == 200)
        let record = try await g.record(reply.requestID)
        #expect(record["path"] as? String == "/r?x=1&gh_credential=[redacted]")
        let logs = try g.cli(["logs", "--json", "--limit", "1000"]).stdout
        #expect(!logs.contains(key))
        g.stop()
        await up.stop()
    }
}

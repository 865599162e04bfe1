import GatehouseTestSupport
import AsyncHTTPClient
import Foundation
import GatehouseProxy
import NIOCore
import NIOHTTP1
import Testing
import GatehouseServer
import GatehouseTesting

/// Routes and policies for rate limits, quotas, bans, CORS and CSRF; `UP` is the upstream's port.
let trafficYAML = """
    upstreams:
      app: { targets: ["http://127.0.0.1:UP"], timeout: 5s }
    routes:
      - name: limited
        match: { methods: [GET], path: /limited }
        upstream: app
        policies: [per-ip]
      - name: burst
        match: { path: /burst }
        upstream: app
        policies: [burst-5]
      - name: steady
        match: { path: /steady }
        upstream: app
        policies: [ten-per-second]
      - name: per-consumer
        match: { path: /mine }
        upstream: app
        policies: [api-key, per-consumer]
      - name: quota
        match: { path: /quota }
        upstream: app
        policies: [daily]
      - name: ban
        match: { path: /ban }
        upstream: app
        policies: [strict]
      - name: shadow-limit
        match: { path: /shadow-limit }
        upstream: app
        policies: [{ policy: strict-shadow, mode: shadow }]
      - name: web
        match: { methods: [GET, POST, PUT], path: /web }
        upstream: app
        policies: [web-cors, api-key]
      - name: shadow-cors
        match: { path: /shadow-cors }
        upstream: app
        policies: [{ policy: web-cors, mode: shadow }]
      - name: form
        match: { methods: [GET, POST], path: /form }
        upstream: app
        policies: [csrf]
      - name: shadow-csrf
        match: { methods: [POST], path: /shadow-csrf }
        upstream: app
        policies: [{ policy: csrf, mode: shadow }]
    policies:
      api-key: { type: api_key, header: X-API-Key }
      per-ip: { type: rate_limit, key: ip, rate: 1/10s, burst: 3 }
      burst-5: { type: rate_limit, key: [ip, route], rate: 1/minute, burst: 5 }
      ten-per-second: { type: rate_limit, key: ip, rate: 10/second, burst: 5, headers: false }
      per-consumer: { type: rate_limit, key: consumer, limits: [{ rate: 2/minute }, { rate: 1000/hour }] }
      daily: { type: rate_limit, key: ip, quota: { limit: 2, per: day } }
      strict: { type: rate_limit, key: ip, rate: 1/minute, ban: { violations: 2, within: 1m, for: 10m } }
      strict-shadow: { type: rate_limit, key: ip, rate: 1/minute }
      web-cors:
        type: cors
        origins: ["https://app.example.com", "https://*.partner.example"]
        methods: [GET, POST]
        headers: [Content-Type, X-API-Key]
        credentials: true
        max_age: 10m
        expose_headers: [X-Request-Id]
      csrf: { type: csrf, session_cookie: session }
    """

/// A gateway with `trafficYAML` in front of an echoing upstream.
final class TrafficFixture {
    let upstream: GatehouseTesting.DemoUpstream
    let gateway: LocalGateway

    init() async throws {
        upstream = try await startUpstream()
        gateway = try await LocalGateway(yaml: trafficYAML.replacingOccurrences(of: "UP", with: String(upstream.port)))
    }

    func key(for consumer: String) async throws -> String {
        #expect(try gateway.cli(["consumers", "create", consumer]).status == 0)
        let key = try gateway.cli(["keys", "create", "--consumer", consumer, "--quiet"]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
        // The gateway picks up new keys within about a second; /web answers 401 until then.
        for _ in 0..<40 {
            if try await send(.GET, gateway.url + "/web", headers: [("X-API-Key", key)]).status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        return key
    }

    func trace(_ requestID: String) async throws -> [[String: Any]] {
        (try await gateway.record(requestID)["trace"] as? [String: Any])?["entries"] as? [[String: Any]] ?? []
    }

    func stop() async {
        gateway.stop()
        await upstream.stop()
    }
}

@Suite(.serialized) struct TrafficIntegrationTests {
    @Test func rateLimitRefuses429WithFieldsThenRecovers() async throws {
        let f = try await TrafficFixture()
        let url = f.gateway.url + "/limited"
        var statuses: [Int] = []
        var last: Reply?
        for _ in 0..<4 {
            let r = try await send(.GET, url)
            statuses.append(r.status)
            last = r
        }
        // Four calls well within 10 s: the burst of 3 passes, the fourth is refused.
        #expect(statuses == [200, 200, 200, 429])
        let r = try #require(last)
        #expect(r.json["reason"] as? String == "rate_limited")
        let retry = try #require(Int(r.headers.first(name: "retry-after") ?? ""), "no Retry-After")
        #expect((1...10).contains(retry))
        #expect(r.headers.first(name: "ratelimit-policy") == "\"per-ip.1-per-10s\";q=1;w=10")
        #expect(r.headers.first(name: "ratelimit")?.hasPrefix("\"per-ip.1-per-10s\";r=0;t=") == true)
        #expect((r.json["policy"] as? [String]) == ["per-ip.1-per-10s"])
        #expect((r.json["limit"] as? [String]) == ["1 per 10 s, burst 3"])
        #expect((r.json["reset"] as? [String])?.first?.hasSuffix("Z") == true)
        #expect((r.json["detail"] as? String)?.contains("retry in \(retry) s") == true)
        // The refusal is in the call log with its reason.
        let rec = try await f.gateway.record(r.requestID)
        #expect(rec["reason"] as? String == "rate_limited")
        #expect(rec["decidingCheck"] as? String == "per-ip")

        // After waiting as Retry-After says, the call passes; allowed responses carry the fields too.
        try await Task.sleep(for: .milliseconds(retry * 1000 + 100))
        let again = try await send(.GET, url)
        #expect(again.status == 200)
        #expect(again.headers.first(name: "ratelimit-policy") == "\"per-ip.1-per-10s\";q=1;w=10")
        #expect(again.headers.first(name: "ratelimit")?.hasPrefix("\"per-ip.1-per-10s\";r=") == true)
        await f.stop()
    }

    @Test func burstThenRefusalAndKeysAreIndependent() async throws {
        let f = try await TrafficFixture()
        var passed = 0
        for _ in 0..<8 where try await send(.GET, f.gateway.url + "/burst").status == 200 { passed += 1 }
        #expect(passed == 5)

        // Keyed by consumer: acme's refusals do not touch globex.
        let acme = try await f.key(for: "acme")
        let globex = try await f.key(for: "globex")
        let a = [
            try await send(.GET, f.gateway.url + "/mine", headers: [("X-API-Key", acme)]).status,
            try await send(.GET, f.gateway.url + "/mine", headers: [("X-API-Key", acme)]).status,
            try await send(.GET, f.gateway.url + "/mine", headers: [("X-API-Key", acme)]).status,
        ]
        #expect(a == [200, 200, 429])
        let g = try await send(.GET, f.gateway.url + "/mine", headers: [("X-API-Key", globex)])
        #expect(g.status == 200)
        // Two windows at once: both are advertised.
        #expect(
            g.headers.first(name: "ratelimit-policy")
                == "\"per-consumer.2-per-minute\";q=2;w=60, \"per-consumer.1000-per-hour\";q=1000;w=3600")
        let refused = try await send(.GET, f.gateway.url + "/mine", headers: [("X-API-Key", acme)])
        #expect((refused.json["detail"] as? String)?.contains("for consumer acme") == true)
        await f.stop()
    }

    @Test func accuracyAtAKnownRate() async throws {
        // 10/second with a burst of 5, offered 40/second for 2 s. What got through is compared with
        // a token bucket run over the gateway's own arrival times (the call log's, the times the
        // bucket saw): whatever the client's scheduling delays on a busy machine (a stall longer
        // than the burst refills loses tokens to the cap), the counts must agree.
        let f = try await TrafficFixture()
        let url = f.gateway.url + "/steady"
        var outcomes: [(id: String, passed: Bool)] = []
        let clock = ContinuousClock()
        let start = clock.now
        for i in 0..<80 {
            try await Task.sleep(until: start + .milliseconds(25 * i), clock: clock)
            let r = try await send(.GET, url)
            outcomes.append((r.requestID, r.status == 200))
            if r.status != 200 { #expect(r.json["reason"] as? String == "rate_limited") }
        }
        var times: [Double] = []
        for o in outcomes {
            times.append(try #require(try await f.gateway.record(o.id)["time"] as? Double))
        }
        var tokens = 5.0
        var last = times[0]
        var simulated = 0
        for t in times {
            tokens = min(5, tokens + 10 * (t - last))
            last = t
            if tokens >= 1 {
                tokens -= 1
                simulated += 1
            }
        }
        let passed = outcomes.filter(\.passed).count
        #expect(
            abs(passed - simulated) <= 1,
            "passed \(passed), a token bucket over the gateway's arrival times passes \(simulated) over \(times.last! - times[0]) s")
        // And the limit did limit.
        #expect(passed < outcomes.count)
        await f.stop()
    }

    @Test func quotaAndAbuseBan() async throws {
        let f = try await TrafficFixture()
        let q = [try await send(.GET, f.gateway.url + "/quota").status, try await send(.GET, f.gateway.url + "/quota").status]
        #expect(q == [200, 200])
        let over = try await send(.GET, f.gateway.url + "/quota")
        #expect(over.status == 429)
        #expect(over.json["reason"] as? String == "quota_exceeded")
        #expect(Int(over.headers.first(name: "retry-after") ?? "") ?? 0 > 0)
        #expect((over.json["detail"] as? String)?.contains("2 per day") == true)

        // 1/minute; two violations within a minute ban the address for 10 minutes.
        #expect(try await send(.GET, f.gateway.url + "/ban").status == 200)
        #expect(try await send(.GET, f.gateway.url + "/ban").json["reason"] as? String == "rate_limited")
        let second = try await send(.GET, f.gateway.url + "/ban")
        #expect(second.json["reason"] as? String == "rate_limited")
        #expect((second.json["detail"] as? String)?.contains("started a ban until") == true)
        let banned = try await send(.GET, f.gateway.url + "/ban")
        #expect(banned.status == 403)
        #expect(banned.json["reason"] as? String == "abuse_banned")
        let ends = (banned.json["ban_ends"] as? [String])?.first ?? ""
        #expect(ends.hasSuffix("Z"))
        #expect((banned.json["detail"] as? String)?.contains("until \(ends)") == true)
        #expect(Int(banned.headers.first(name: "retry-after") ?? "") ?? 0 > 500)
        await f.stop()
    }

    @Test func shadowModeForAllThreeChecks() async throws {
        let f = try await TrafficFixture()
        // rate_limit: the second call would have been refused.
        _ = try await send(.GET, f.gateway.url + "/shadow-limit")
        let limited = try await send(.GET, f.gateway.url + "/shadow-limit")
        // cors: a disallowed origin.
        let cors = try await send(.GET, f.gateway.url + "/shadow-cors", headers: [("Origin", "https://evil.example")])
        // csrf: a cross-site POST with the session cookie.
        let csrf = try await send(
            .POST, f.gateway.url + "/shadow-csrf",
            headers: [("Cookie", "session=s1"), ("Origin", "https://evil.example"), ("Sec-Fetch-Site", "cross-site")], body: "x=1")
        for (reply, reason) in [(limited, "rate_limited"), (cors, "cors_origin_not_allowed"), (csrf, "csrf_origin_mismatch")] {
            #expect(reply.status == 200, "shadow \(reason) was enforced")
            let trace = try await f.trace(reply.requestID)
            #expect(trace.first?["outcome"] as? String == "shadow_deny")
            #expect(trace.first?["reason"] as? String == reason)
            _ = try await f.gateway.record(reply.requestID)
            let text = try f.gateway.cli(["explain", reply.requestID]).stdout
            #expect(text.contains("shadow: would have denied"), "explain for shadow \(reason): \(text)")
        }
        // Shadow mode does not add the refusal's headers.
        #expect(limited.headers.first(name: "retry-after") == nil)
        await f.stop()
    }

    @Test func corsPreflightsAreAnsweredByTheGatewayBeforeAuthentication() async throws {
        let f = try await TrafficFixture()
        let url = f.gateway.url + "/web"
        let ok = try await send(
            .OPTIONS, url,
            headers: [
                ("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "content-type, x-api-key"),
            ])
        #expect(ok.status == 204)
        #expect(ok.headers.first(name: "access-control-allow-origin") == "https://app.example.com")
        #expect(ok.headers.first(name: "access-control-allow-methods") == "GET, POST")
        #expect(ok.headers.first(name: "access-control-allow-headers") == "content-type, x-api-key")
        #expect(ok.headers.first(name: "access-control-allow-credentials") == "true")
        #expect(ok.headers.first(name: "access-control-max-age") == "600")
        let okRec = try await f.gateway.record(ok.requestID)
        #expect(okRec["decidingCheck"] as? String == "web-cors")
        #expect(okRec["upstreamTarget"] == nil)  // answered by the gateway, not the upstream

        let cases: [([(String, String)], String, [String])] = [
            (
                [("Origin", "https://evil.example"), ("Access-Control-Request-Method", "GET")], "cors_origin_not_allowed",
                ["https://evil.example", "https://app.example.com"]
            ),
            // PUT is a method of the route, but not one the CORS policy allows cross-origin.
            (
                [("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "PUT")], "cors_method_not_allowed",
                ["PUT", "GET, POST"]
            ),
            (
                [
                    ("Origin", "https://eu.partner.example"), ("Access-Control-Request-Method", "POST"),
                    ("Access-Control-Request-Headers", "x-debug"),
                ],
                "cors_header_not_allowed", ["x-debug", "content-type, x-api-key"]
            ),
        ]
        for (headers, reason, mentions) in cases {
            let r = try await send(.OPTIONS, url, headers: headers)
            #expect(r.status == 403)
            #expect(r.json["reason"] as? String == reason)
            #expect(r.headers.first(name: "access-control-allow-origin") == nil)
            // The browser hides this response from the page; the operator finds it with explain.
            _ = try await f.gateway.record(r.requestID)  // records reach the store within a fraction of a second
            let text = try f.gateway.cli(["explain", r.requestID]).stdout
            #expect(text.contains(reason))
            for m in mentions { #expect(text.contains(m), "explain lacks \(m): \(text)") }
        }
        await f.stop()
    }

    @Test func corsActualRequestsAndCSRF() async throws {
        let f = try await TrafficFixture()
        let key = try await f.key(for: "webapp")
        let r = try await send(.GET, f.gateway.url + "/web", headers: [("Origin", "https://app.example.com"), ("X-API-Key", key)])
        #expect(r.status == 200)
        #expect(r.headers.first(name: "access-control-allow-origin") == "https://app.example.com")
        #expect(r.headers.first(name: "vary") == "Origin")
        #expect(r.headers.first(name: "access-control-allow-credentials") == "true")
        #expect(r.headers.first(name: "access-control-expose-headers") == "X-Request-Id")
        let evil = try await send(.GET, f.gateway.url + "/web", headers: [("Origin", "https://evil.example"), ("X-API-Key", key)])
        #expect(evil.status == 403)
        #expect(evil.json["reason"] as? String == "cors_origin_not_allowed")
        // A later check's refusal still carries the CORS fields, so the page can read why.
        let noKey = try await send(.GET, f.gateway.url + "/web", headers: [("Origin", "https://app.example.com")])
        #expect(noKey.status == 401)
        #expect(noKey.headers.first(name: "access-control-allow-origin") == "https://app.example.com")

        let own = "http://127.0.0.1:\(f.gateway.port)"
        let cross = try await send(
            .POST, f.gateway.url + "/form", headers: [("Cookie", "session=s1"), ("Origin", "https://evil.example")], body: "a=1")
        #expect(cross.status == 403)
        #expect(cross.json["reason"] as? String == "csrf_origin_mismatch")
        #expect((cross.json["detail"] as? String)?.contains("header checked: Origin") == true)
        #expect((cross.json["checked_header"] as? [String]) == ["Origin"])
        let same = try await send(.POST, f.gateway.url + "/form", headers: [("Cookie", "session=s1"), ("Origin", own)], body: "a=1")
        #expect(same.status == 200)
        let site = try await send(
            .POST, f.gateway.url + "/form", headers: [("Cookie", "session=s1"), ("Sec-Fetch-Site", "same-site")], body: "a=1")
        #expect(site.json["reason"] as? String == "csrf_origin_mismatch")
        #expect((site.json["checked_header"] as? [String]) == ["Sec-Fetch-Site"])
        await f.stop()
    }

    @Test func configRefusesStarWithCredentialsAndBadRates() throws {
        let dir = try TempDir()
        let path = try dir.write(
            "bad.yaml",
            """
            listen: 127.0.0.1:0
            store: { sqlite: x.db }
            upstreams: { app: { targets: ["http://127.0.0.1:1"] } }
            routes: [{ name: r, match: { path: /r }, upstream: app, policies: [c, l] }]
            policies:
              c: { type: cors, origins: ["*"], credentials: true }
              l: { type: rate_limit, rate: 10/fortnight }
            """)
        let r = try gatehouse(["check", path])
        #expect(r.status != 0)
        let out = r.stdout + r.stderr
        #expect(out.contains("bad.yaml:6:"))
        #expect(out.contains("cannot be combined with credentials"))
        #expect(out.contains("bad.yaml:7:"))
        #expect(out.contains("\"10/fortnight\" is not a rate"))
    }
}

import GatehouseTestSupport
import AsyncHTTPClient
import Foundation
import GatehouseProxy
import NIOCore
import NIOHTTP1
import Testing
import GatehouseServer
import GatehouseTesting

/// The WAF through the live gateway: blocks explained, excerpts only where the route allows,
/// detect mode logging without blocking.
@Suite(.serialized) struct WAFGatewayTests {
    @Test func blocksAreExplainedAndDetectModeOnlyLogs() async throws {
        let up = try await startUpstream()
        let g = try await LocalGateway(
            yaml: """
                upstreams:
                  app: { targets: ["http://127.0.0.1:\(up.port)"] }
                routes:
                  - name: search
                    match: { path: /search }
                    upstream: app
                    policies: [waf]
                  - name: search-detailed
                    match: { path: /search-detailed }
                    upstream: app
                    exposure: detailed
                    policies: [waf]
                  - name: search-detect
                    match: { path: /search-detect }
                    upstream: app
                    policies: [{ policy: waf, mode: detect }]
                  - name: comments
                    match: { methods: [POST], path: /comments }
                    upstream: app
                    policies: [waf]
                policies:
                  waf: { type: waf, paranoia: 1 }
                """)
        let attack = "id=1%27%20OR%20%271%27%3D%271"

        let blocked = try await send(.GET, g.url + "/search?" + attack)
        #expect(blocked.status == 403)
        #expect(blocked.json["reason"] as? String == "waf_blocked")
        let ruleIDs = blocked.json["rule_ids"] as? [String] ?? []
        #expect(!ruleIDs.isEmpty)
        // Default exposure: the caller is not shown the matched excerpt.
        #expect(!blocked.body.contains("OR '1'='1"))
        let record = try await g.record(blocked.requestID)
        let detail = record["detail"] as? String ?? ""
        #expect(detail.contains("query.id"))
        #expect(detail.contains("1' OR '1'='1"))
        let explain = try g.cli(["explain", blocked.requestID]).stdout
        #expect(explain.contains("waf_blocked"))
        #expect(explain.contains(ruleIDs[0]))

        // A route that asks for detailed exposure shows the excerpt.
        let detailed = try await send(.GET, g.url + "/search-detailed?" + attack)
        #expect(detailed.status == 403)
        #expect(detailed.body.contains("query.id"))

        // Detect mode: the call goes through, the trace says what would have been blocked.
        let detected = try await send(.GET, g.url + "/search-detect?" + attack)
        #expect(detected.status == 200)
        let trace = ((try await g.record(detected.requestID))["trace"] as? [String: Any])?["entries"] as? [[String: Any]] ?? []
        #expect(trace.first?["outcome"] as? String == "shadow_deny")
        #expect(trace.first?["reason"] as? String == "waf_blocked")

        // Bodies are inspected; benign prose with quotes and SQL words passes.
        let xss = try await send(
            .POST, g.url + "/comments", headers: [("Content-Type", "application/json")],
            body: #"{"author":"mallory","text":"<svg onload=alert(1)>"}"#)
        #expect(xss.status == 403)
        #expect(xss.json["reason"] as? String == "waf_blocked")
        let benign = try await send(
            .POST, g.url + "/comments", headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: "author=Tim+O%27Reilly&text=Select+a+plan+on+Union+Street%3B+then+drop+by+the+table+at+noon.")
        #expect(benign.status == 200)
        let search = try await send(.GET, g.url + "/search?q=O%27Reilly%20books")
        #expect(search.status == 200)
        g.stop()
        await up.stop()
    }
}

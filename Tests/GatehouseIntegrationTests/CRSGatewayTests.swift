import GatehouseTestSupport
import AsyncHTTPClient
import Foundation
import GatehouseConfig
import GatehouseProxy
import NIOCore
import NIOHTTP1
import Testing
import GatehouseServer
import GatehouseTesting

/// The OWASP Core Rule Set (Debian's `modsecurity-crs`) behind a live gateway: a block names the
/// rule, its message and the variable; an operator's `SecRuleRemoveById` file is honoured; a
/// rule file that does not load is refused at reload and the running configuration keeps serving.
@Suite(.serialized) struct CRSGatewayTests {
    static let crsInstalled = FileManager.default.fileExists(atPath: "/usr/share/modsecurity-crs/rules")

    static func yaml(upstream: Int, include: String?) -> String {
        """
        upstreams:
          app: { targets: ["http://127.0.0.1:\(upstream)"] }
        routes:
          - name: search
            match: { path: /search }
            upstream: app
            policies: [crs]
          - name: search-detailed
            match: { path: /search-detailed }
            upstream: app
            exposure: detailed
            policies: [crs]
          - name: tuned
            match: { path: /tuned }
            upstream: app
            policies: [crs-tuned]
        policies:
          crs: { type: waf, crs: { paranoia: 1, anomaly_threshold: 5 } }
          crs-tuned: { type: waf, crs: { include: [\(include ?? "exclusions.conf")] } }
        """
    }

    @Test(.enabled(if: crsInstalled)) func crsBlocksAreExplainedAndExclusionsHonoured() async throws {
        let up = try await startUpstream()
        let dir = try TempDir()
        _ = try dir.write(
            "exclusions.conf",
            """
            # The search box takes SQL on purpose on /tuned.
            SecRuleRemoveById 942100
            """)
        let g = try await LocalGateway(yaml: Self.yaml(upstream: up.port, include: nil), dir: dir)
        let attack = "id=1%27%20OR%20%271%27%3D%271"

        let blocked = try await send(.GET, g.url + "/search?" + attack)
        #expect(blocked.status == 403)
        #expect(blocked.json["reason"] as? String == "waf_blocked")
        let ruleIDs = blocked.json["rule_ids"] as? [String] ?? []
        #expect(ruleIDs.contains("942100"))
        let rules = (blocked.json["rules"] as? [String] ?? []).joined(separator: "\n")
        #expect(rules.contains("942100 ARGS:id"))
        #expect(rules.contains("SQL Injection Attack Detected"))
        #expect(rules.contains("t:"))
        // Default exposure: the matched value stays out of the body, and is in the log.
        #expect(!blocked.body.contains("OR '1'='1"))
        let record = try await g.record(blocked.requestID)
        #expect((record["detail"] as? String ?? "").contains("1' OR '1'='1"))
        let explain = try g.cli(["explain", blocked.requestID]).stdout
        #expect(explain.contains("waf_blocked"))
        #expect(explain.contains("942100"))
        #expect(explain.contains("SQL Injection Attack Detected"))

        // `exposure: detailed` shows the caller the excerpt too.
        let detailed = try await send(.GET, g.url + "/search-detailed?" + attack)
        #expect(detailed.status == 403)
        #expect(detailed.body.contains("OR '1'='1"))

        // Ordinary text passes.
        #expect(try await send(.GET, g.url + "/search?q=O%27Reilly%20books").status == 200)

        // The operator's exclusion file removes 942100 on the tuned policy only.
        let tuned = try await send(.GET, g.url + "/tuned?" + attack)
        #expect(tuned.status == 200)
        #expect(!((tuned.json["rule_ids"] as? [String]) ?? []).contains("942100"), "\(tuned.body)")

        // `gatehouse waf test` runs a policy's own rule set offline and shows each rule.
        let offline = try gatehouse(["waf", "test", "--config", g.configPath, "--policy", "crs", "http://api/search?" + attack])
        #expect(offline.status == 1)
        #expect(offline.stdout.contains("942100 critical ARGS:id  SQL Injection Attack Detected"), "\(offline.stdout)")
        #expect(offline.stdout.contains("t:urlDecodeUni"))
        #expect(offline.stdout.contains("matched: 1' OR '1'='1"))
        let offlineTuned = try gatehouse(["waf", "test", "--config", g.configPath, "--policy", "crs-tuned", "http://api/search?" + attack])
        #expect(offlineTuned.status == 0, "\(offlineTuned.stdout)")

        // A rule file that does not load is refused with its place; the running configuration
        // keeps serving (the same reload SIGHUP runs).
        _ = try dir.write("broken.conf", "SecRule ARGS \"@rx (unclosed\" \"id:1000,phase:2,deny\"\n")
        try Self.yaml(upstream: up.port, include: "broken.conf").write(toFile: g.configPath, atomically: true, encoding: .utf8)
        let result = g.server.gateway.reload()
        guard case .failure(let error) = result else {
            Issue.record("a broken rule file was accepted")
            return
        }
        #expect(error.description.contains("broken.conf:1"))
        #expect(error.description.contains("crs"))
        let still = try await send(.GET, g.url + "/search?" + attack)
        #expect(still.status == 403)
        #expect((still.json["rule_ids"] as? [String] ?? []).contains("942100"))
        g.stop()
        await up.stop()
    }

    /// `gatehouse waf exclude` turns a logged block into an exclusion scoped to the rule, the
    /// variable and the path; loaded into the policy, it lets that request through and nothing
    /// wider.
    @Test(.enabled(if: crsInstalled)) func aProposedExclusionLetsTheFalsePositiveThroughAndNothingElse() async throws {
        let up = try await startUpstream()
        let dir = try TempDir()
        _ = try dir.write("exclusions.conf", "")
        let g = try await LocalGateway(yaml: Self.yaml(upstream: up.port, include: nil), dir: dir)
        let text = "1%27%20OR%20%271%27%3D%271"
        let blocked = try await send(.GET, g.url + "/search?note=" + text)
        #expect(blocked.status == 403)
        _ = try await g.record(blocked.requestID)

        let proposed = try g.cli(["waf", "exclude", blocked.requestID, "--config", g.configPath, "--id", "12000"])
        #expect(proposed.status == 0, "\(proposed.stderr)")
        #expect(proposed.stdout.contains("SecRule REQUEST_FILENAME \"@streq /search\""), "\(proposed.stdout)")
        #expect(proposed.stdout.contains("id:12000,phase:1"))
        #expect(proposed.stdout.contains("ctl:ruleRemoveTargetById=942100;ARGS:note"))
        #expect(proposed.stderr.contains("checked: the proposal loads after policy crs"), "\(proposed.stderr)")

        // Loaded into the policy: the same request passes; another variable or another path with
        // the same text is still blocked.
        _ = try dir.write("proposed.conf", proposed.stdout)
        let yaml = Self.yaml(upstream: up.port, include: nil).replacingOccurrences(
            of: "crs: { type: waf, crs: { paranoia: 1, anomaly_threshold: 5 } }",
            with: "crs: { type: waf, crs: { paranoia: 1, anomaly_threshold: 5, include: [proposed.conf] } }")
        try yaml.write(toFile: g.configPath, atomically: true, encoding: .utf8)
        guard case .success = g.server.gateway.reload() else {
            Issue.record("the configuration with the proposal did not load")
            return
        }
        #expect(try await send(.GET, g.url + "/search?note=" + text).status == 200)
        #expect(try await send(.GET, g.url + "/search?other=" + text).status == 403)
        #expect(try await send(.GET, g.url + "/search-detailed?note=" + text).status == 403)

        // A request that was not blocked by the WAF has nothing to exclude.
        let allowed = try await send(.GET, g.url + "/search?q=books")
        _ = try await g.record(allowed.requestID)
        let nothing = try g.cli(["waf", "exclude", allowed.requestID])
        #expect(nothing.status == 1)
        #expect(nothing.stderr.contains("was not blocked by the WAF"))
        g.stop()
        await up.stop()
    }

    @Test(.enabled(if: crsInstalled)) func sighupWithABrokenRuleFileKeepsTheRunningRules() async throws {
        let up = try await startUpstream()
        let dir = try TempDir()
        _ = try dir.write("exclusions.conf", "SecRuleRemoveById 942100\n")
        _ = try dir.write("broken.conf", "SecRule ARGS \"@rx (unclosed\" \"id:1000,phase:2,deny\"\n")
        let gateway = try GatewayProcess(yaml: Self.yaml(upstream: up.port, include: nil), dir: dir)
        let attack = "id=1%27%20OR%20%271%27%3D%271"
        #expect(try await send(.GET, gateway.url + "/search?" + attack).status == 403)
        #expect(try await send(.GET, gateway.url + "/tuned?" + attack).status == 200)

        let yaml = try String(contentsOfFile: gateway.configPath, encoding: .utf8)
        try yaml.replacingOccurrences(of: "include: [exclusions.conf]", with: "include: [broken.conf]")
            .write(toFile: gateway.configPath, atomically: true, encoding: .utf8)
        gateway.signal(SIGHUP)
        var rejected = false
        for _ in 0..<50 where !rejected {
            try await Task.sleep(for: .milliseconds(100))
            rejected = gateway.stderr.contains("configuration rejected")
        }
        #expect(rejected, "\(gateway.stderr)")
        #expect(gateway.stderr.contains("broken.conf:1"))
        // The running rules still serve, the exclusion included.
        #expect(try await send(.GET, gateway.url + "/search?" + attack).status == 403)
        #expect(try await send(.GET, gateway.url + "/tuned?" + attack).status == 200)
        gateway.stop()
        await up.stop()
    }
}

import Foundation
import GatehouseCore
import Testing

@testable import GatehouseWAF

@Suite("WAFCheck: denials, notes, exclusions, paranoia")
struct CheckTests {
    @Test func blockIsA403WithRuleIDsAndNoExcerptForTheCaller() throws {
        let check = WAFCheck(id: "waf")
        var req = query("id", "1' or '1'='1")
        guard case .deny(let d) = check.evaluate(&req) else {
            Issue.record("expected a denial")
            return
        }
        #expect(d.status == 403)
        #expect(d.code == "waf_blocked")
        #expect(d.extensions["rule_ids"] == ["942100"])
        #expect(d.detail.contains("query.id"))
        #expect(!d.detail.contains("'1'='1"), "the matched text must not reach the caller's detail")
        let op = try #require(d.operatorDetail)
        #expect(op.contains("1' or '1'='1"))
        #expect(op.contains("942100 sqli query.id score 5"))
        #expect(check.needsBody)
    }

    @Test func allowNoteListsSubThresholdFindings() {
        let check = WAFCheck(id: "waf")
        var req = query("q", "see ../notes.txt for details")
        guard case .allow(let note) = check.evaluate(&req) else {
            Issue.record("expected allow")
            return
        }
        #expect(note?.contains("930110 lfi in query.q (+3)") == true)
    }

    @Test func exclusionAppliesOnItsRouteOnlyAndShowsInTheTrace() {
        let config = WAFConfiguration(exclusions: [WAFExclusion(rule: "942100", field: "query.q", routes: ["search"])])
        let check = WAFCheck(id: "waf", configuration: config)
        var onSearch = query("q", "' or 1=1 --", route: "search")
        guard case .allow(let note) = check.evaluate(&onSearch) else {
            Issue.record("exclusion did not apply on its route")
            return
        }
        #expect(note?.contains("rule 942100 off for query.q on search") == true)
        var elsewhere = query("q", "' or 1=1 --", route: "orders")
        guard case .deny = check.evaluate(&elsewhere) else {
            Issue.record("exclusion leaked to another route")
            return
        }
        var otherField = query("id", "' or 1=1 --", route: "search")
        guard case .deny = check.evaluate(&otherField) else {
            Issue.record("exclusion leaked to another field")
            return
        }
    }

    @Test func detectorExclusionWithGlob() {
        let config = WAFConfiguration(exclusions: [WAFExclusion(detector: "xss", field: "body.*")])
        let r = WAFEngine(configuration: config).inspect(form("html=%3Cscript%3Ex()%3C/script%3E"))
        #expect(!r.blocked)
        #expect(r.appliedExclusions == ["detector xss off for body.*"])
        #expect(r.excluded.first?.finding.field == "body.html")
    }

    @Test func paranoiaLevelAddsRules() {
        let value = "abc' like"
        let pl1 = WAFEngine(configuration: WAFConfiguration(paranoia: 1)).inspect(query("q", value))
        let pl2 = WAFEngine(configuration: WAFConfiguration(paranoia: 2)).inspect(query("q", value))
        #expect(!pl1.ruleIDs.contains("942180"))
        #expect(pl2.ruleIDs.contains("942180"))
    }

    @Test func thresholdDecides() {
        let strict = WAFEngine(configuration: WAFConfiguration(threshold: 3)).inspect(query("q", "see ../notes.txt"))
        #expect(strict.blocked)
        #expect(!WAFEngine().inspect(query("q", "see ../notes.txt")).blocked)
    }

    @Test func validationNamesEachProblem() {
        let bad = WAFConfiguration(
            paranoia: 7, threshold: 0,
            exclusions: [
                WAFExclusion(rule: "999999"), WAFExclusion(detector: "nope"), WAFExclusion(),
                WAFExclusion(rule: "942100", field: "qurey.q"),
                WAFExclusion(rule: "942100", routes: []),
            ], limits: WAFLimits(maxArgs: 0))
        let problems = bad.validate()
        #expect(problems.contains("paranoia is 7; expected 1, 2, 3 or 4"))
        #expect(problems.contains { $0.hasPrefix("threshold is 0") })
        #expect(problems.contains { $0.hasPrefix("exclusions[0].rule \"999999\" is not a WAF rule id") })
        #expect(problems.contains { $0.hasPrefix("exclusions[1].detector \"nope\" is not a detector") })
        #expect(problems.contains { $0.hasPrefix("exclusions[2] names neither a rule nor a detector") })
        #expect(problems.contains { $0.hasPrefix("exclusions[3].field \"qurey.q\" does not name a field") })
        #expect(problems.contains { $0.hasPrefix("exclusions[4].routes is empty") })
        #expect(problems.contains { $0.hasPrefix("limits.max_args is 0") })
        #expect(WAFConfiguration().validate().isEmpty)
    }

    @Test func decodesTheConfiguredShape() throws {
        let json =
            #"{"type": "waf", "paranoia": 2, "threshold": 7, "exclusions": [{"rule": "942100", "field": "query.q", "routes": ["search"]}], "limits": {"max_args": 50}}"#
        let config = try JSONDecoder().decode(WAFConfiguration.self, from: Data(json.utf8))
        #expect(config.paranoia == 2)
        #expect(config.threshold == 7)
        #expect(config.exclusions == [WAFExclusion(rule: "942100", field: "query.q", routes: ["search"])])
        #expect(config.limits == WAFLimits(maxArgs: 50))
        #expect(config.validate().isEmpty)
        let defaults = try JSONDecoder().decode(WAFConfiguration.self, from: Data(#"{"type": "waf"}"#.utf8))
        #expect(defaults == WAFConfiguration())
    }

    @Test func detectModeIsTheChainsShadowMode() {
        let chain = PolicyChain([ChainLink(WAFCheck(id: "waf"), mode: .shadow)])
        var req = query("q", "<script>alert(1)</script>")
        let result = chain.evaluate(&req)
        #expect(result.denial == nil)
        #expect(result.trace.entries.first?.outcome == .shadowDeny)
        #expect(result.shadowDenials.first?.denial.extensions["rule_ids"]?.contains("941100") == true)
    }
}

import Foundation
import GatehouseConfig
import GatehouseCore
import Testing

/// The built-in tokenizers as a second opinion beside the Core Rule Set (`crs.second_opinion`):
/// what a caller and an operator see when a regex-only SQL injection or XSS match is lowered.
@Suite struct CRSSecondOpinionTests {
    static let crsInstalled = FileManager.default.fileExists(atPath: "/usr/share/modsecurity-crs/rules")

    let dir: String = {
        let d = NSTemporaryDirectory() + "crs-second-opinion-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    /// The `waf` policy's check, built from a `crs:` block.
    func check(_ crs: String, files: [String: String] = [:]) throws -> any PolicyCheck {
        for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
        let yaml = """
            upstreams:
              app: { targets: ["http://127.0.0.1:9000"] }
            routes:
              - { name: r, match: { path: /search }, upstream: app, policies: [waf] }
            policies:
              waf: { type: waf, crs: \(crs) }
            """
        let doc = try ConfigLoader.read(yaml: yaml, file: dir + "/gatehouse.yaml", baseDirectory: dir)
        let config = doc.provision(BuildContext(directory: NoDirectory(), baseDirectory: dir))
        return try #require(config.router.routes.first?.chain.links.first?.check)
    }

    /// `GET /search?q=…` as a browser sends it.
    func search(_ q: String) -> PolicyRequest {
        let encoded = q.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? q
        return PolicyRequest(
            method: "GET", path: "/search", query: "q=" + encoded,
            headers: HeaderList([("User-Agent", "Mozilla/5.0"), ("Accept", "*/*")]), host: "api.example", routeName: "r")
    }

    func verdict(_ check: any PolicyCheck, _ q: String) -> Verdict {
        var request = search(q)
        return check.evaluate(&request)
    }

    // 942190 (MSSQL code execution and information gathering) matches "union select" in prose; the
    // SQL tokenizer finds no injection there.
    static let prose = "union select committee meeting"

    @Test(.enabled(if: crsInstalled)) func aRegexOnlySQLMatchOnProseIsLoweredAndAllowed() throws {
        let verdict = verdict(try check("{ second_opinion: true }"), Self.prose)
        guard case .allow(let note) = verdict else {
            Issue.record("expected allow, got \(verdict)")
            return
        }
        #expect(note?.contains("CRS score 3 < 5") == true)
        #expect(note?.contains("CRS alone scored 5 and would have blocked (949110)") == true)
        #expect(note?.contains("942190 in ARGS:q (regex hit, tokenizer found no SQL: scored 3 not 5)") == true)
    }

    @Test(.enabled(if: crsInstalled)) func theLoweredScoreIsConfigurable() throws {
        let verdict = verdict(try check("{ second_opinion: true, second_opinion_score: 2 }"), Self.prose)
        guard case .allow(let note) = verdict else {
            Issue.record("expected allow, got \(verdict)")
            return
        }
        #expect(note?.contains("scored 2 not 5") == true)
    }

    @Test(.enabled(if: crsInstalled)) func withoutTheSecondOpinionTheSameProseIsBlockedAsCRSBlocksIt() throws {
        for crs in ["{ second_opinion: false }", "{ paranoia: 1 }"] {
            let verdict = verdict(try check(crs), Self.prose)
            guard case .deny(let denial) = verdict else {
                Issue.record("\(crs): expected deny, got \(verdict)")
                continue
            }
            #expect(denial.code == .wafBlocked)
            #expect(denial.extensions["rule_ids"] == ["942190", "949110"])
            #expect(
                denial.detail
                    == "GET /search scored 5 (threshold 5, PL1): 942190 ARGS:q (t:urlDecodeUni): "
                    + "Detects MSSQL code execution and information gathering attempts")
        }
    }

    @Test(.enabled(if: crsInstalled)) func aRealInjectionIsStillBlocked() throws {
        let verdict = verdict(try check("{ second_opinion: true }"), "1' union select password from users--")
        guard case .deny(let denial) = verdict else {
            Issue.record("expected deny, got \(verdict)")
            return
        }
        #expect(denial.extensions["rule_ids"]?.contains("942100") == true)
        #expect(denial.extensions["rule_ids"]?.last == "949110")
        #expect(!denial.detail.contains("tokenizer found no SQL"))
    }

    @Test(.enabled(if: crsInstalled)) func aBlockOnALoweredTotalNamesBothScoresAndTheLoweredRules() throws {
        // Three unconfirmed critical matches in one field (942190, 942270, 942360): 3 + 3 + 3 still
        // reaches the threshold.
        let verdict = verdict(try check("{ second_opinion: true }"), "union select committee meeting) as chair from home")
        guard case .deny(let denial) = verdict else {
            Issue.record("expected deny, got \(verdict)")
            return
        }
        #expect(denial.detail.hasPrefix("GET /search scored 9 (threshold 5, PL1, CRS alone 15): 942190 ARGS:q"))
        #expect(
            denial.detail.contains(
                "942270 ARGS:q (t:urlDecodeUni): Looking for basic sql injection. Common attack string for mysql, oracle and others; regex hit, tokenizer found no SQL: scored 3 not 5"
            ))
        #expect(denial.presented == ["inbound anomaly score 9 (CRS alone 15)"])
        #expect(denial.extensions["rule_ids"] == ["942190", "942270", "942360", "949110"])
    }

    @Test(.enabled(if: crsInstalled)) func aUsersOwnDenyRuleStillBlocks() throws {
        let mine = """
            SecRule ARGS:q "@contains committee" "id:10001,phase:2,deny,status:403,log,msg:'no committees here'"
            """
        let check = try check("{ second_opinion: true, include: [mine.conf] }", files: ["mine.conf": mine])
        let verdict = verdict(check, Self.prose)
        guard case .deny(let denial) = verdict else {
            Issue.record("expected deny, got \(verdict)")
            return
        }
        // The anomaly evaluation no longer blocks on 3; the rule after it still runs and denies.
        #expect(denial.extensions["rule_ids"]?.last == "10001")
        #expect(denial.detail.contains("10001 ARGS:q"))
        #expect(denial.detail.contains("no committees here"))
    }

    @Test(.enabled(if: crsInstalled)) func otherFamiliesKeepTheirCRSScore() throws {
        // 930120 (an OS file) is not a rule the tokenizers speak for.
        let verdict = verdict(try check("{ second_opinion: true }"), "/etc/passwd")
        guard case .deny(let denial) = verdict else {
            Issue.record("expected deny, got \(verdict)")
            return
        }
        #expect(denial.extensions["rule_ids"]?.contains("930120") == true)
        #expect(!denial.detail.contains("tokenizer"))
    }

    @Test func aWrongValueIsAConfigurationError() throws {
        #expect(throws: ConfigError.self) { _ = try check("{ second_opinion: maybe }") }
    }
}

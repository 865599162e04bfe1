import Foundation
import GatehouseSecLang
import Testing

/// Builds an engine from rule text.
func engine(_ text: String, strict: Bool = false) throws -> SecLangEngine {
    var loader = SecLangLoader(strict: strict)
    try loader.load(text: text, file: "rules.conf")
    return SecLangEngine(rules: loader.build())
}

func request(
    _ method: String = "GET", _ target: String = "/", headers: [(String, String)] = [("Host", "localhost")], body: String = ""
) -> SecLangRequest {
    var h = headers.map { (name: Array($0.0.utf8), value: Array($0.1.utf8)) }
    if !body.isEmpty {
        h.append((Array("Content-Length".utf8), Array(String(body.utf8.count).utf8)))
        if !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
            h.append((Array("Content-Type".utf8), Array("application/x-www-form-urlencoded".utf8)))
        }
    }
    return SecLangRequest(method: method, target: Array(target.utf8), headers: h, body: Array(body.utf8))
}

@Suite("SecLang engine: rules, chains, actions")
struct EngineTests {
    @Test func ruleMatchesAnArgumentAndReportsWhatMatched() throws {
        let e = try engine(
            #"""
            SecRule ARGS "@rx (?i)union\s+select" "id:1001,phase:2,deny,status:403,t:none,t:urlDecodeUni,msg:'SQLi',logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
            """#)
        let out = e.evaluate(request("GET", "/?q=1%20UNION%20%20SELECT%20x&ok=1"))
        let m = try #require(out.matches.first)
        #expect(m.id == 1001)
        #expect(m.variable == "ARGS:q")
        #expect(m.logdata == "ARGS:q=1 UNION  SELECT x")
        #expect(m.transformations == ["urlDecodeUni"])
        #expect(m.message == "SQLi")
        #expect(out.interruption?.ruleID == 1001)
        #expect(out.interruption?.status == 403)
        #expect(out.interruption?.action == "deny")
        #expect(!e.evaluate(request("GET", "/?q=union+card")).logged(1001))
    }

    @Test func detectionOnlyLogsWithoutInterrupting() throws {
        let e = try engine(
            """
            SecRuleEngine DetectionOnly
            SecRule REQUEST_METHOD "@streq DELETE" "id:1,phase:1,deny"
            """)
        let out = e.evaluate(request("DELETE"))
        #expect(out.logged(1))
        #expect(out.interruption == nil)
    }

    @Test func blockTakesTheDefaultDisruptiveActionOfItsPhase() throws {
        let e = try engine(
            """
            SecDefaultAction "phase:2,log,auditlog,deny,status:418"
            SecRule ARGS:a "@streq x" "id:2,phase:2,block"
            SecRule ARGS:a "@streq y" "id:3,phase:2,pass,nolog"
            """)
        #expect(e.evaluate(request("GET", "/?a=x")).interruption?.status == 418)
        let passed = e.evaluate(request("GET", "/?a=y"))
        #expect(passed.interruption == nil)
        #expect(passed.matches.first?.logged == false)
    }

    @Test func chainNeedsEveryLinkAndCaptureFeedsTheNext() throws {
        let e = try engine(
            """
            SecRule REQUEST_HEADERS:Content-Type "@rx charset=([a-z0-9-]+)" "id:10,phase:1,capture,t:lowercase,chain,setvar:tx.first=1"
                SecRule TX:1 "!@within utf-8|iso-8859-1" "setvar:tx.second=1"
            """)
        let bad = e.evaluate(request(headers: [("Content-Type", "text/plain; charset=UTF-7")]))
        #expect(bad.logged(10))
        #expect(bad.tx["second"] == Array("1".utf8))
        let good = e.evaluate(request(headers: [("Content-Type", "text/plain; charset=utf-8")]))
        #expect(!good.logged(10))
        // ModSecurity 2: a link's own actions run when that link matches, even if the chain fails.
        #expect(good.tx["first"] == Array("1".utf8))
        #expect(good.tx["second"] == nil)
    }

    @Test func setvarArithmeticDeletionAndMacros() throws {
        let e = try engine(
            """
            SecAction "id:20,phase:1,nolog,pass,setvar:tx.score=5,setvar:tx.gone=1,setvar:'tx.inc=%{tx.score}'"
            SecAction "id:21,phase:1,nolog,pass,setvar:tx.score=+3,setvar:tx.inc=-1,setvar:!tx.gone"
            SecRule TX:SCORE "@ge 8" "id:22,phase:1,pass,msg:'score %{tx.score}'"
            """)
        let out = e.evaluate(request())
        #expect(out.tx["score"] == Array("8".utf8))
        #expect(out.tx["inc"] == Array("4".utf8))
        #expect(out.tx["gone"] == nil)
        #expect(out.matches.first { $0.id == 22 }?.message == "score 8")
    }

    @Test func skipAfterJumpsToTheMarker() throws {
        let e = try engine(
            """
            SecRule REQUEST_METHOD "@streq GET" "id:30,phase:1,pass,nolog,skipAfter:END"
            SecAction "id:31,phase:1,pass"
            SecMarker END
            SecAction "id:32,phase:1,pass"
            """)
        let out = e.evaluate(request())
        #expect(!out.logged(31))
        #expect(out.logged(32))
        #expect(e.evaluate(request("POST")).logged(31))
    }

    @Test func countsExclusionsAndRegexKeys() throws {
        let e = try engine(
            """
            SecRule &ARGS "@gt 2" "id:40,phase:2,pass"
            SecRule ARGS|!ARGS:safe "@contains <" "id:41,phase:2,pass"
            SecRule ARGS:/^x-/ "@streq hit" "id:42,phase:2,pass"
            SecRule &REQUEST_HEADERS:X-Missing "@eq 0" "id:43,phase:1,pass"
            """)
        let out = e.evaluate(request("GET", "/?a=1&b=2&safe=%3Cb%3E&X-Y=hit"))
        #expect(out.logged(40))
        #expect(!out.logged(41))
        #expect(out.logged(42))
        #expect(out.logged(43))
        #expect(e.evaluate(request("GET", "/?a=%3C")).logged(41))
    }

    @Test func runtimeControlsRemoveRulesAndTargets() throws {
        let e = try engine(
            """
            SecRule REQUEST_FILENAME "@beginsWith /admin" "id:50,phase:1,pass,nolog,ctl:ruleRemoveById=60,ctl:ruleRemoveTargetById=61;ARGS:html"
            SecRule ARGS "@contains <" "id:60,phase:2,pass"
            SecRule ARGS "@contains <" "id:61,phase:2,pass"
            """)
        let admin = e.evaluate(request("GET", "/admin/x?html=%3Cb%3E"))
        #expect(!admin.logged(60))
        #expect(!admin.logged(61))
        let other = e.evaluate(request("GET", "/x?html=%3Cb%3E"))
        #expect(other.logged(60))
        #expect(other.logged(61))
    }

    @Test func configurationTimeExclusions() throws {
        let e = try engine(
            """
            SecRule ARGS "@contains <" "id:70,phase:2,pass,tag:'attack-xss'"
            SecRule ARGS "@contains <" "id:71,phase:2,pass"
            SecRule ARGS "@contains <" "id:72,phase:2,pass,tag:'attack-xss'"
            SecRuleRemoveById 71
            SecRuleUpdateTargetById 70 "!ARGS:comment"
            SecRuleRemoveByTag attack-xss
            """)
        let out = e.evaluate(request("POST", "/", body: "comment=%3Cb%3E"))
        #expect(out.matches.isEmpty)
        let e2 = try engine(
            """
            SecRule ARGS "@contains <" "id:70,phase:2,pass"
            SecRuleUpdateTargetById 70 "!ARGS:comment"
            """)
        #expect(!e2.evaluate(request("POST", "/", body: "comment=%3Cb%3E")).logged(70))
        #expect(e2.evaluate(request("POST", "/", body: "other=%3Cb%3E")).logged(70))
    }

    @Test func unsupportedConstructsAreReportedWithTheirPlace() throws {
        var loader = SecLangLoader()
        try loader.load(
            text: """
                SecRule GEO:COUNTRY_CODE "@geoLookup" "id:80,phase:1,pass"
                SecRule ARGS "@rx a" "id:81,phase:2,pass,t:parityEven7bit,exec:/bin/true"
                SecFooBar On
                SecRule XML://item/name "@rx x" "id:82,phase:2,pass"
                """, file: "user.conf")
        let messages = loader.build().diagnostics.map(\.description)
        #expect(messages.contains("user.conf:1: unsupported variable GEO"))
        #expect(messages.contains("user.conf:1: unsupported operator @geoLookup: the rule never matches"))
        #expect(messages.contains("user.conf:2: unsupported transformation t:parityEven7bit"))
        #expect(messages.contains("user.conf:2: unsupported action exec"))
        #expect(messages.contains("user.conf:3: unsupported directive SecFooBar"))
        #expect(messages.contains("user.conf:4: XPath //item/name is not evaluated: XML://item/name reads all text"))

        var strict = SecLangLoader(strict: true)
        #expect(throws: SecLangError(.unsupported, "")) { try strict.load(text: "SecFooBar On", file: "user.conf") }
    }

    @Test func badRegexIsAnErrorNamingTheLine() throws {
        var loader = SecLangLoader()
        do {
            try loader.load(text: "\nSecRule ARGS \"@rx (unclosed\" \"id:90,phase:2,pass\"", file: "bad.conf")
            Issue.record("a regex that does not compile must fail the load")
        } catch {
            #expect(error.code == .invalidRegex)
            #expect(error.message.hasPrefix("bad.conf:2:"))
        }
    }

    @Test func multipartBodiesFillFilesAndStrictnessFlags() throws {
        let e = try engine(
            """
            SecRule FILES "@endsWith .php" "id:100,phase:2,pass"
            SecRule FILES_NAMES "@streq upload" "id:101,phase:2,pass"
            SecRule ARGS_POST:note "@streq hello" "id:102,phase:2,pass"
            SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:103,phase:2,pass"
            SecRule MULTIPART_UNMATCHED_BOUNDARY "!@eq 0" "id:104,phase:2,pass"
            """)
        let body = [
            "--b", "Content-Disposition: form-data; name=\"note\"", "", "hello", "--b",
            "Content-Disposition: form-data; name=\"upload\"; filename=\"shell.php\"", "Content-Type: text/plain", "", "x", "--b--", "",
        ].joined(separator: "\r\n")
        let ok = e.evaluate(request("POST", "/", headers: [("Content-Type", "multipart/form-data; boundary=b")], body: body))
        #expect(ok.logged(100) && ok.logged(101) && ok.logged(102))
        #expect(!ok.logged(103) && !ok.logged(104))
        let truncated = String(body.dropLast(8))
        let bad = e.evaluate(request("POST", "/", headers: [("Content-Type", "multipart/form-data; boundary=b")], body: truncated))
        #expect(bad.logged(104))
    }

    @Test func xmlBodiesExposeTextAndAttributes() throws {
        let e = try engine(
            """
            SecRule REQUEST_HEADERS:Content-Type "@rx xml" "id:110,phase:1,pass,nolog,ctl:requestBodyProcessor=XML"
            SecRule XML:/* "@contains secret-text" "id:111,phase:2,pass"
            SecRule XML://@* "@streq attr-value" "id:112,phase:2,pass"
            SecRule REQBODY_ERROR "!@eq 0" "id:113,phase:2,pass"
            """)
        let xml = "<?xml version=\"1.0\"?><a k=\"attr-value\"><b>secret-text</b></a>"
        let out = e.evaluate(request("POST", "/", headers: [("Content-Type", "text/xml")], body: xml))
        #expect(out.logged(111) && out.logged(112) && !out.logged(113))
        #expect(e.evaluate(request("POST", "/", headers: [("Content-Type", "text/xml")], body: "<a><b></a>")).logged(113))
    }

    @Test func includeAndPhraseFilesResolveBesideTheIncludingFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("seclang-include-\(getpid())")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("rules"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "Include rules/*.conf\n".write(to: dir.appendingPathComponent("main.conf"), atomically: true, encoding: .utf8)
        try "SecRule ARGS \"@pmFromFile words.data\" \"id:120,phase:2,pass\"\n".write(
            to: dir.appendingPathComponent("rules/a.conf"), atomically: true, encoding: .utf8)
        try "# a comment\nwget\ncurl\n".write(to: dir.appendingPathComponent("rules/words.data"), atomically: true, encoding: .utf8)
        var loader = SecLangLoader()
        try loader.load(file: dir.appendingPathComponent("main.conf").path)
        let e = SecLangEngine(rules: loader.build())
        #expect(e.evaluate(request("GET", "/?cmd=CURL+x")).logged(120))
        #expect(!e.evaluate(request("GET", "/?cmd=ls")).logged(120))
    }

    @Test func multiMatchTestsEveryStepOfTheChain() throws {
        // ARGS:v is "%3Cx" (the query string is decoded once) and t:urlDecode makes it "<x":
        // without multiMatch the operator sees only "<x", with it "%3Cx" first.
        let e = try engine(
            """
            SecRule ARGS:v "@beginsWith %3C" "id:130,phase:2,pass,t:none,t:urlDecode"
            SecRule ARGS:v "@beginsWith %3C" "id:131,phase:2,pass,t:none,t:urlDecode,multiMatch"
            """)
        let out = e.evaluate(request("GET", "/?v=%253Cx"))
        #expect(!out.logged(130))
        #expect(out.logged(131))
    }

    @Test func allowStopsTheRemainingRulesAndRuleEngineOffStopsEverything() throws {
        let e = try engine(
            """
            SecRule REMOTE_ADDR "@ipMatch 127.0.0.1" "id:140,phase:1,allow,nolog"
            SecRule ARGS "@contains <" "id:141,phase:2,deny"
            """)
        #expect(e.evaluate(request("GET", "/?a=%3C")).interruption == nil)
        let off = try engine(
            """
            SecRule REQUEST_HEADERS:X-Off "@streq 1" "id:150,phase:1,pass,nolog,ctl:ruleEngine=Off"
            SecRule ARGS "@contains <" "id:151,phase:2,deny"
            """)
        #expect(off.evaluate(request("GET", "/?a=%3C", headers: [("Host", "x"), ("X-Off", "1")])).matches.allSatisfy { $0.id == 150 })
        #expect(off.evaluate(request("GET", "/?a=%3C")).interruption?.ruleID == 151)
    }

    @Test func pathCookiesAndJSONBecomeVariables() throws {
        let e = try engine(
            """
            SecRule REQUEST_HEADERS:Content-Type "@beginsWith application/json" "id:160,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
            SecRule REQUEST_FILENAME "@streq /a b/c.php" "id:161,phase:1,pass"
            SecRule REQUEST_BASENAME "@streq c.php" "id:162,phase:1,pass"
            SecRule REQUEST_COOKIES:session "@streq abc" "id:163,phase:1,pass"
            SecRule REQUEST_COOKIES_NAMES "@streq theme" "id:164,phase:1,pass"
            SecRule ARGS:json.user.name "@streq bob" "id:165,phase:2,pass"
            SecRule ARGS_NAMES "@streq json.tags.array_1" "id:166,phase:2,pass"
            """)
        let out = e.evaluate(
            request(
                "POST", "/a%20b/c.php",
                headers: [("Host", "x"), ("Cookie", "session=abc; theme=dark"), ("Content-Type", "application/json")],
                body: #"{"user":{"name":"bob"},"tags":["a","b"]}"#))
        for id in 161...166 { #expect(out.logged(id), "rule \(id)") }
    }
}

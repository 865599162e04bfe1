import Foundation
import GatehouseSecLang
import Testing

/// The engine's shortcuts (the prologue run once at load, and skipping a value whose own
/// prefilter literals rule a regex out) must never change an outcome: every request of the CRS
/// regression suite gives the same interruption, the same matches in the same order (rule,
/// variable, value, logged) and the same TX with them as without, on the suite's configuration
/// (paranoia level 4, detection only) and on Debian's CRS at paranoia level 1 blocking.
@Suite("SecLang engine shortcuts")
struct ShortcutTests {
    /// What a caller of the engine can see of an outcome, as text: the interruption, every match
    /// (rule, variable, value, logged, message, log data, every variable that ran its actions),
    /// TX and the body error.
    static func describe(_ o: SecLangOutcome) -> String {
        let matches = o.matches.map { m in
            let hits = m.hits.map { "\($0.variable)=\(String(decoding: $0.value, as: UTF8.self))" }.joined(separator: ",")
            return "\(m.id) \(m.variable)=\(String(decoding: m.value, as: UTF8.self)) \(m.logged) [\(m.message)] [\(m.logdata)] {\(hits)}"
        }
        let tx = o.tx.sorted { $0.key < $1.key }.map { "\($0.key)=\(String(decoding: $0.value, as: UTF8.self))" }
        return
            "\(String(describing: o.interruption)) | \(matches.joined(separator: "; ")) | \(tx.joined(separator: ",")) | \(o.bodyError ?? "")"
    }

    /// Requests whose outcome differs with the shortcuts and without them.
    static func differences(_ engine: SecLangEngine, _ requests: [SecLangRequest], removing: [ClosedRange<Int>] = []) -> [String] {
        var out: [String] = []
        for (k, request) in requests.enumerated() {
            let fast = describe(engine.evaluate(request, removing: removing))
            let plain = describe(engine.evaluate(request, removing: removing, plain: true))
            if fast != plain {
                out.append("request \(k) \(request.method) \(String(decoding: request.target, as: UTF8.self)): \(fast) != \(plain)")
            }
        }
        return out
    }

    @Test(arguments: ["regression", "blocking"])
    func shortcutsChangeNoOutcome(configuration: String) throws {
        let root = try #require(RegressionSuite.testsDirectory, "the CRS regression suite (shared/conformance/crs-v3.3.4) is missing")
        let rules = configuration == "regression" ? try RegressionSuite.loadRuleSet() : try RegressionSuite.blockingRuleSet()
        let engine = SecLangEngine(rules: rules)
        // The shortcut is there to be taken: Debian's CRS opens with its setup and initialisation
        // rules; the suite's configuration puts a rule that reads a header after its settings
        // (whose `ctl:` actions the prologue then carries), which ends the prologue there.
        let expected = configuration == "regression" ? 2 : 20
        #expect(engine.prologueRuleCount >= expected, "prologue of \(engine.prologueRuleCount) rules")
        let requests = try RegressionSuite.loadCases(from: root).flatMap { $0.stages.compactMap(\.request) }
        #expect(requests.count > 2000)
        let differences = ShortcutTests.differences(engine, requests)
        #expect(differences.isEmpty, "\(differences.count) differ: \(differences.prefix(3))")
        if configuration == "blocking" {
            let blocked = requests.filter { engine.evaluate($0).interruption != nil }.count
            #expect(blocked > 1000, "\(blocked) blocked")
            // As the second opinion runs it again: without the anomaly evaluation.
            let without = ShortcutTests.differences(engine, Array(requests.prefix(600)), removing: [949110...949111])
            #expect(without.isEmpty, "\(without.count) differ without 949110: \(without.prefix(3))")
        }
    }

    /// Rules before and inside the prologue that touch what it carries: a capture from the request,
    /// the body processor, MATCHED_VAR, the per-request SESSION collection, a SecAction-only prologue.
    @Test(arguments: [
        // Independent rules first (a body-processor switch, a rule reading SESSION), then a
        // prologue of SecActions and TX rules, then rules reading what came before.
        """
        SecRuleEngine On
        SecRule REQUEST_HEADERS:Content-Type "@rx ^application/json" "id:101,phase:1,pass,nolog,t:lowercase,ctl:requestBodyProcessor=JSON"
        SecRule SESSION "@rx ." "id:102,phase:1,pass,nolog"
        SecAction "id:103,phase:1,pass,nolog,setvar:session.flag=evil,setvar:tx.mode=strict"
        SecRule &TX:limit "@eq 0" "id:104,phase:1,pass,nolog,setvar:tx.limit=5"
        SecRule MATCHED_VAR "@rx json" "id:201,phase:1,deny,status:403"
        SecRule SESSION "@rx evil" "id:202,phase:1,pass,log,msg:'session %{MATCHED_VAR}'"
        SecRule ARGS "@rx attack" "id:203,phase:2,deny,status:403,msg:'%{tx.mode} %{tx.limit}'"
        """,
        // A SecAction-only prologue after a rule that sets MATCHED_VAR from the request.
        """
        SecRuleEngine On
        SecRule REQUEST_HEADERS:Content-Type "@rx ^application/json" "id:101,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
        SecAction "id:103,phase:1,pass,nolog,setvar:tx.mode=strict"
        SecRule MATCHED_VAR "@rx json" "id:201,phase:1,deny,status:403"
        """,
        // A capture before the prologue: no prologue then, and the capture reaches rule 200.
        """
        SecRuleEngine On
        SecRule REQUEST_HEADERS:X-Role "@rx ^(admin)$" "id:100,phase:1,pass,nolog,capture"
        SecAction "id:103,phase:1,pass,nolog,setvar:tx.crs_setup_version=334"
        SecRule TX:1 "@streq admin" "id:200,phase:1,deny,status:403"
        """,
        // A prologue link that matches while its chain fails: MATCHED_VAR is still its value.
        """
        SecRuleEngine On
        SecRule REQUEST_HEADERS:Content-Type "@rx ^application/json" "id:101,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
        SecAction "id:103,phase:1,pass,nolog,setvar:tx.a=prologue-value"
        SecRule TX:a "@rx prologue" "id:104,phase:1,pass,nolog,chain"
            SecRule TX:a "@streq nothing" "setvar:tx.b=1"
        SecRule MATCHED_VAR "@rx json" "id:201,phase:1,deny,status:403"
        """,
    ])
    func shortcutsChangeNoOutcomeAroundThePrologue(rules text: String) throws {
        var loader = SecLangLoader()
        try loader.load(text: text, file: "edges.conf")
        let engine = SecLangEngine(rules: loader.build())
        let requests = [
            SecLangRequest(method: "GET", target: Array("/".utf8)),
            SecLangRequest(
                method: "POST", target: Array("/api".utf8), headers: [(Array("Content-Type".utf8), Array("application/json".utf8))],
                body: Array(#"{"q":"attack"}"#.utf8)),
            SecLangRequest(method: "GET", target: Array("/".utf8), headers: [(Array("X-Role".utf8), Array("admin".utf8))]),
            SecLangRequest(method: "GET", target: Array("/?q=attack".utf8), headers: [(Array("X-Role".utf8), Array("user".utf8))]),
        ]
        let differences = ShortcutTests.differences(engine, requests)
        #expect(differences.isEmpty, "\(differences)")
        // The JSON request is refused by rule 201 with and without the shortcuts.
        // The prologue is exercised where it may run, and refused after a capture.
        if text.contains("capture") {
            #expect(engine.prologueRuleCount == 0)
            #expect(engine.evaluate(requests[2]).interruption?.ruleID == 200)
        } else {
            #expect(engine.prologueRuleCount > 0)
        }
    }

    /// The literal scan ignores ASCII case, which is what lets a value and its lower- or upper-cased
    /// form share one scan.
    @Test func literalScansIgnoreCase() throws {
        let index = try RegressionSuite.blockingRuleSet().prefilter
        let texts = (0..<256).map { [UInt8($0)] } + (try RegressionSuite.wafCorpusTexts())
        func scan(_ v: [UInt8]) -> [UInt64] {
            var present = [UInt64](repeating: 0, count: index.words)
            index.scan(v, into: &present)
            return present
        }
        var found = 0
        for v in texts {
            let plain = scan(v)
            found += plain.contains { $0 != 0 } ? 1 : 0
            #expect(scan(Transformation.lowercase.transform(v)) == plain)
            #expect(scan(Transformation.uppercase.transform(v)) == plain)
        }
        #expect(found > 500)
    }

    /// A transformation skipped because a value's byte summary shows none of the bytes it acts on
    /// must be one that would have changed nothing: over every input of up to two bytes, every
    /// three-byte input over the bytes transformations care about, and every text of the WAF
    /// corpora (as written, upper-cased and percent-decoded).
    @Test func byteSummariesSkipOnlyTransformationsThatChangeNothing() throws {
        var inputs: [[UInt8]] = [[]]
        for a in 0..<256 {
            inputs.append([UInt8(a)])
            for b in 0..<256 { inputs.append([UInt8(a), UInt8(b)]) }
        }
        let special = Array(" \t\n\u{0B}\u{0C}\r%+&\\/.*#;'\"-xX0aA^,(".utf8) + [0, 0xA0, 0xC3, 0x80]
        for a in special { for b in special { for c in special { inputs.append([a, b, c]) } } }
        inputs += try RegressionSuite.wafCorpusTexts()
        #expect(inputs.count > 70_000)
        var wrong: [String] = []
        for t in Transformation.allCases {
            for v in inputs where t.apply(v, summary: ByteSummary(of: v)) != t.transform(v) {
                wrong.append("\(t.rawValue) on \(v.prefix(20))")
                break
            }
        }
        #expect(wrong.isEmpty, "\(wrong)")
    }

    /// A path `normalisePath` hands back unchanged must be one that splitting and joining its
    /// segments leaves as it is: every path of up to eight bytes over `/`, `.`, `\` and `a`.
    @Test func normalPathsAreThoseRebuildingLeavesAlone() {
        let alphabet: [UInt8] = [0x2F, 0x2E, 0x5C, 0x61]
        var paths: [[UInt8]] = [[]]
        var level: [[UInt8]] = [[]]
        for _ in 0..<8 {
            level = level.flatMap { p in alphabet.map { p + [$0] } }
            paths += level
        }
        var wrong: [String] = []
        for p in paths {
            let slashes = p.map { $0 == 0x5C ? 0x2F : $0 }
            if T.normalisePath(p, windows: false) != T.rebuiltPath(p) { wrong.append("\(p)") }
            if T.normalisePath(p, windows: true) != T.rebuiltPath(slashes) { wrong.append("windows \(p)") }
        }
        #expect(paths.count > 80_000)
        #expect(wrong.isEmpty, "\(wrong.prefix(10))")
    }
    /// A name's lowercase key, written straight into a string, is what decoding the lowercased
    /// bytes gives, invalid UTF-8 included: random names of up to 40 bytes, most of them ASCII.
    @Test func loweredNamesAreDecodedLowercaseBytes() {
        var g = SplitMix(seed: 0x6c6f_7765_7265_6421)
        let bytes: [UInt8] = Array("aZ09_-.:%".utf8) + [0, 0x80, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0xFF]
        var wrong: [[UInt8]] = []
        for _ in 0..<20_000 {
            let key = (0..<Int.random(in: 0...40, using: &g)).map { _ in
                Bool.random(using: &g) ? UInt8.random(in: 0x20...0x7E, using: &g) : bytes.randomElement(using: &g)!
            }
            let expected = String(decoding: key.map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 }, as: UTF8.self)
            if Entry.lowered(key) != expected || Entry(key: key, value: []).lowerKey != expected { wrong.append(key) }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
    }
    /// Named entities are found by their packed bytes: random names around the five that exist
    /// (any case, with and without `;`, then a byte that ends a name) decode exactly when their
    /// lowercase form is one of them.
    @Test func namedEntitiesDecodeByName() {
        let known: [String: UInt8] = ["quot": 0x22, "amp": 0x26, "lt": 0x3C, "gt": 0x3E, "nbsp": 0xA0]
        let letters = Array("qQuUoOtTaAmMpPlLgGnNbBsS1x".utf8)
        var g = SplitMix(seed: 0x656e_7469_7469_6573)
        var wrong: [String] = []
        for round in 0..<30_000 {
            let name: [UInt8] =
                round % 3 == 0
                ? Array(known.keys.randomElement(using: &g)!.utf8).map { Bool.random(using: &g) ? $0 & ~0x20 : $0 }
                : (0..<Int.random(in: 0...6, using: &g)).map { _ in letters.randomElement(using: &g)! }
            let end: [UInt8] = [[0x3B], [], [0x20], [0x26]].randomElement(using: &g)!
            let input = Array("x".utf8) + [0x26] + name + end + Array("!".utf8)
            let expected: [UInt8]
            if let byte = known[String(decoding: name, as: UTF8.self).lowercased()] {
                expected = Array("x".utf8) + [byte] + (end == [0x3B] ? [] : end) + Array("!".utf8)
            } else {
                expected = input
            }
            if Transformation.htmlEntityDecode.transform(input) != expected { wrong.append(String(decoding: input, as: UTF8.self)) }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
    }

    /// The transformations that write into storage of the input's size give what the plain
    /// byte-at-a-time definitions below give: every input of up to three bytes over the bytes
    /// they treat specially, and every text of the WAF corpora.
    @Test func inPlaceTransformationsMatchTheirDefinitions() throws {
        func cmdLine(_ v: [UInt8]) -> [UInt8] {
            var out: [UInt8] = []
            var space = false
            for c0 in v {
                switch c0 {
                case 0x22, 0x27, 0x5C, 0x5E: continue
                case 0x2C, 0x3B, 0x20, 0x09, 0x0A, 0x0D:
                    if !space { out.append(0x20) }
                    space = true
                    continue
                case 0x2F, 0x28: if space, out.last == 0x20 { out.removeLast() }
                default: break
                }
                out.append(c0 &- 0x41 < 26 ? c0 | 0x20 : c0)
                space = false
            }
            return out
        }
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) || c == 0xA0 }
        let definitions: [(Transformation, ([UInt8]) -> [UInt8])] = [
            (.lowercase, { $0.map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 } }),
            (.uppercase, { $0.map { $0 &- 0x61 < 26 ? $0 & ~0x20 : $0 } }),
            (.removeWhitespace, { $0.filter { !isSpace($0) } }),
            (.removeNulls, { $0.filter { $0 != 0 } }),
            (.replaceNulls, { $0.map { $0 == 0 ? 0x20 : $0 } }),
            (.cmdLine, cmdLine),
            (
                .compressWhitespace,
                { v in
                    var out: [UInt8] = []
                    var inSpace = false
                    for c in v {
                        if isSpace(c) {
                            if !inSpace { out.append(0x20) }
                            inSpace = true
                        } else {
                            out.append(c)
                            inSpace = false
                        }
                    }
                    return out
                }
            ),
        ]
        let special = Array(" \t\n\u{0B}\r\"'\\^,;/(aZ".utf8) + [0, 0xA0, 0xC3]
        var inputs: [[UInt8]] = [[]]
        for a in special {
            inputs.append([a])
            for b in special {
                inputs.append([a, b])
                for c in special { inputs.append([a, b, c]) }
            }
        }
        inputs += try RegressionSuite.wafCorpusTexts()
        var wrong: [String] = []
        for (t, definition) in definitions {
            for v in inputs where t.transform(v) != definition(v) {
                wrong.append("\(t.rawValue) on \(v.prefix(20))")
                break
            }
        }
        #expect(wrong.isEmpty, "\(wrong)")
    }
}

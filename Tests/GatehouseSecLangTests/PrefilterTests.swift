import Foundation
import GatehouseSecLang
import Testing

/// The literal prefilter of @rx rules: what it derives from patterns, and that it never skips a
/// rule whose regex would match.
@Suite("Regex literal prefilter")
struct PrefilterTests {
    func atom(_ s: String) -> Requirement { .atom(Array(s.utf8)) }

    @Test func literalsAreDerivedFromPatterns() {
        #expect(PatternLiterals.requirement(of: #"(?i)union\s+select"#) == .and([atom("union"), atom("select")]))
        #expect(PatternLiterals.requirement(of: "(?:foo|bar)baz") == .or([atom("barbaz"), atom("foobaz")]))
        #expect(PatternLiterals.requirement(of: "<script[^>]*>") == .and([atom("<script"), atom(">")]))
        #expect(PatternLiterals.requirement(of: "(?=abc)def") == atom("def"))
        #expect(PatternLiterals.requirement(of: "Java[Ss]cript:") == atom("javascript:"))
        #expect(PatternLiterals.requirement(of: #"\x3cIMG"#) == atom("<img"))
        #expect(PatternLiterals.requirement(of: "abc?d") == .or([atom("abcd"), atom("abd")]))
        #expect(PatternLiterals.requirement(of: "(?:abc)+x{2,}") == atom("abc"))
    }

    @Test func whatCannotBeModelledHasNoCondition() {
        // Back references, extended mode, short common literals, quantified-away parts.
        #expect(PatternLiterals.requirement(of: #"(abc)\1"#) == .all)
        #expect(PatternLiterals.requirement(of: "(?x) union select") == .all)
        #expect(PatternLiterals.requirement(of: "a.*b") == .all)
        #expect(PatternLiterals.requirement(of: "(?:select)*") == .all)
        #expect(PatternLiterals.requirement(of: "[^a]+") == .all)
        #expect(PatternLiterals.requirement(of: "abc|.") == .all)
        #expect(PatternLiterals.requirement(of: "(unclosed") == .all)
    }

    /// Constructs PCRE reads in its own way (found by a differential review against libpcre2):
    /// each now means "no condition" or the set PCRE matches.
    @Test func pcreCornersAreNotMisread() {
        for pattern in [
            #"<script\E?"#, #"evil\Q\E?"#, "union(?#c)?select", #"zzz\Qab\E?yyy"#, #"[\c]abc]"#, #"[\Q]abc\E]"#,
            #"[\E]abc]"#, "[[:x]|abc:]]zzz", "abc{,3}", "abc{ 0,1 }", "(?i)?abc",
        ] {
            #expect(PatternLiterals.requirement(of: pattern) == .all, "\(pattern)")
        }
        // `\v` in a class is every vertical space, not one byte.
        let vertical = PatternLiterals.requirement(of: #"abc[\v]def"#)
        #expect(vertical.isMet(by: Array("abc\ndef".utf8)))
    }

    /// Random patterns over a small grammar and random subjects over the same bytes: wherever
    /// libpcre2 matches, the derived requirement is met.
    /// An OR of ANDs becomes clauses that each hold for every match: `(a ∧ b) ∨ c` is
    /// `(a ∨ c) ∧ (b ∨ c)`, where a single clause would have had to drop `a` or `b`.
    @Test func formulasBecomeClausesByDistribution() {
        func names(_ clauses: [[[UInt8]]]) -> Set<[String]> {
            Set(clauses.map { $0.map { String(decoding: $0, as: UTF8.self) }.sorted() })
        }
        #expect(
            names(PrefilterIndex.clauses(of: .or([.and([atom("aaa"), atom("bbb")]), atom("ccc")]))) == [["aaa", "ccc"], ["bbb", "ccc"]])
        #expect(names(PrefilterIndex.clauses(of: .and([atom("aaa"), .or([atom("bbb"), atom("ccc")])]))) == [["aaa"], ["bbb", "ccc"]])
        #expect(PrefilterIndex.clauses(of: .or([.and([atom("aaa"), atom("bbb")]), .all])).isEmpty)
        // Nothing to require: an OR of nothing, an empty literal (it occurs everywhere).
        #expect(PrefilterIndex.clauses(of: .or([])).isEmpty)
        #expect(PrefilterIndex.clauses(of: .atom([])).isEmpty)
        #expect(names(PrefilterIndex.clauses(of: .and([.or([atom(""), atom("aaa")]), atom("bbb")]))) == [["bbb"]])
        // A flat OR of many literals is one clause, each literal once.
        let many = (0..<3000).map { atom("w\($0)") }
        let flat = PrefilterIndex.clauses(of: .or(many + many))
        #expect(flat.count == 1 && flat[0].count == 3000)
        // Too many clauses: the most specific are kept, never more than the limit.
        let wide = Requirement.or(
            (0..<6).map { i in .and((0..<6).map { j in atom(String(repeating: Character(UnicodeScalar(97 + j)!), count: 3 + i)) }) })
        let kept = PrefilterIndex.clauses(of: wide)
        #expect(!kept.isEmpty && kept.count <= PrefilterIndex.maxClauses)
        // The rule 941160 shape: a quote or `<` start, an event name, then `=`; or `<` alone. A
        // value with a quote and an event name but neither `=` nor `<` is ruled out.
        let xss = Requirement.or([.and([.or([atom("'"), atom("<")]), atom("onload"), atom("=")]), atom("<")])
        let clauses = PrefilterIndex.clauses(of: xss)
        #expect(clauses.contains { Set($0) == Set([Array("=".utf8), Array("<".utf8)]) })
    }

    /// Patterns that are plain strings are matched without PCRE2: the same answer and the same
    /// TX:0 as PCRE2 gives, anchored or not, with or without case, on random subjects.
    @Test func plainStringPatternsMatchAsPCREDoes() throws {
        var rng = SplitMix(seed: 0x6c69_7465_7261_6c73)
        let patterns = [
            "^header_name_", "__utm", "^__utm", "utm$", "^ab$", "a-b", #"a\.b"#, #"\/x"#, "A_b", "^A", "b'", "<a", "%2f", "a b",
            // Not plain: left to PCRE2 (compared all the same).
            "a.b", "a+", "(?i)ab", #"\$"#, "a|b", "[ab]", #"\x41"#, "^", "$", "",
        ]
        let alphabet = Array("abAB_-./'<% 2fhtmu$\n".utf8)
        let scratch = RegexScratch()
        var wrong: [String] = []
        var shortcuts = 0
        for p in patterns {
            for caseless in [false, true] {
                guard let fast = try? PCRERegex(p, caseless: caseless),
                    let slow = try? PCRERegex(p, caseless: caseless, literalShortcut: false)
                else {
                    continue
                }
                if fast.literal != nil { shortcuts += 1 }
                for _ in 0..<400 {
                    let s = (0..<rng.next(9)).map { _ in alphabet[rng.next(alphabet.count)] }
                    let (a, b) = (fast.match(s, captures: true, scratch: scratch), slow.match(s, captures: true, scratch: scratch))
                    let text = String(decoding: s, as: UTF8.self)
                    if a.map({ $0.first ?? nil }) != b.map({ $0.first ?? nil }) || fast.matches(text, scratch: scratch) != (b != nil) {
                        wrong.append("\(p) caseless \(caseless) on \(text.debugDescription)")
                    }
                }
            }
        }
        #expect(shortcuts >= 20)
        #expect(wrong.isEmpty, "\(wrong.prefix(10))")
    }

    @Test func randomPatternsAgreeWithPCRE() throws {
        var rng = SplitMix(seed: 0x6761_7465_686f_7573)
        let pieces = [
            "a", "b", "c", "ab", "abc", "<", ">", "'", " ", "-", "]", ":", #"\v"#, #"\s"#, #"\d"#, #"\w"#, #"\x41"#, #"\Qa-c\E"#,
            #"\E"#, "(?#c)", "(?i)", "(?-i)", "[abc]", "[^a]", "[a-c]", #"[\v]"#, #"[\]a]"#, "[[:alpha:]]", "[-a]", "[a-]", ".",
            "^", "$", #"\b"#, #"\n"#,
        ]
        let quantifiers = ["", "", "", "?", "*", "+", "{2}", "{0,1}", "{1,}", "??", "+?", "*+", "{,2}", "{1, 2}"]
        func pattern(_ depth: Int) -> String {
            var out = ""
            for _ in 0..<(1 + rng.next(4)) {
                var item: String
                switch rng.next(depth > 2 ? 1 : 5) {
                case 1: item = "(?:" + pattern(depth + 1) + ")"
                case 2: item = "(" + pattern(depth + 1) + "|" + pattern(depth + 1) + ")"
                case 3: item = "(?=" + pattern(depth + 1) + ")"
                default: item = pieces[rng.next(pieces.count)]
                }
                out += item + quantifiers[rng.next(quantifiers.count)]
            }
            return out
        }
        let alphabet: [UInt8] = Array("abcAB<>' -]:\n".utf8) + [0x0B, 0x0C, 0x0D, 0x41]
        let subjects: [[UInt8]] = (0..<400).map { _ in (0..<rng.next(9)).map { _ in alphabet[rng.next(alphabet.count)] } }
        let scratch = RegexScratch()
        var compiled = 0
        var checked = 0
        var wrong: [String] = []
        for _ in 0..<8000 {
            let p = pattern(0)
            guard let re = try? PCRERegex(p) else { continue }
            compiled += 1
            let requirement = PatternLiterals.requirement(of: p)
            if requirement == .all { continue }
            for s in subjects where re.match(s, captures: false, scratch: scratch) != nil {
                checked += 1
                if !requirement.isMet(by: s) { wrong.append("\(p) on \(String(decoding: s, as: UTF8.self).debugDescription)") }
                // The clauses the index tests, in conjunctive normal form, each hold too.
                for clause in PrefilterIndex.clauses(of: requirement) where !Requirement.or(clause.map { .atom($0) }).isMet(by: s) {
                    wrong.append(
                        "clause \(clause.map { String(decoding: $0, as: UTF8.self) }) of \(p) on \(String(decoding: s, as: UTF8.self).debugDescription)"
                    )
                }
            }
        }
        print("prefilter fuzz: \(compiled) patterns compiled, \(checked) matches checked")
        #expect(checked > 1000)
        #expect(wrong.isEmpty, "\(wrong.prefix(10))")
    }

    /// Every @rx rule of the Core Rule Set with a prefilter, over every payload and request text
    /// of the WAF corpora (in the case written and upper-cased): wherever the regex matches, the
    /// prefilter lets the rule run.
    @Test func coreRuleSetPrefiltersNeverSkipAMatch() throws {
        let rules = try RegressionSuite.loadRuleSet()
        let index = rules.prefilter
        var prefiltered: [(Rule, PCRERegex, PrefilterIndex.Condition)] = []
        var rxRules = 0
        for phase in rules.phases {
            for first in phase {
                var link: Rule? = first
                while let rule = link {
                    link = rule.chained
                    guard case .rx(let re) = rule.op else { continue }
                    rxRules += 1
                    if let f = index.condition(for: rule) { prefiltered.append((rule, re, f)) }
                }
            }
        }
        print("prefilter: \(prefiltered.count) of \(rxRules) @rx rule links have one; \(index.atomCount) literals")
        #expect(prefiltered.count > rxRules / 2)

        let texts = try RegressionSuite.wafCorpusTexts()
        #expect(texts.count > 1000)
        let scratch = RegexScratch()
        var matches = 0
        var missed: [String] = []
        for text in texts {
            var present = [UInt64](repeating: 0, count: index.words)
            index.scan(text, into: &present)
            for (rule, re, formula) in prefiltered where re.match(text, captures: false, scratch: scratch) != nil {
                matches += 1
                if !formula.holds(present) { missed.append("rule \(rule.id) on \(String(decoding: text, as: UTF8.self))") }
            }
        }
        print("prefilter: \(matches) regex matches over \(texts.count) texts checked")
        #expect(matches > 100)
        #expect(missed.isEmpty, "\(missed.prefix(10))")
    }
}

/// A small seeded generator, so that a failing case comes back on the next run.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
}

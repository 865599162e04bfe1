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

        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../corpus/waf").standardized
        var texts: [[UInt8]] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: corpus.path) where file.hasSuffix(".jsonl") {
            let text = try String(contentsOf: corpus.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") where line.hasPrefix("{") {
                guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
                for key in ["decoded", "url", "body"] {
                    guard let s = object[key] as? String else { continue }
                    texts.append(Array(s.utf8))
                    texts.append(Array(s.uppercased().utf8))
                    if let d = s.removingPercentEncoding { texts.append(Array(d.utf8)) }
                }
            }
        }
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

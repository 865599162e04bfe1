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
    static func blockingRuleSet() throws -> RuleSet {
        var loader = SecLangLoader()
        try loader.load(text: "SecRuleEngine On", file: "engine.conf")
        try loader.load(file: RegressionSuite.setupFile)
        let dir = RegressionSuite.rulesDirectory
        for f in try FileManager.default.contentsOfDirectory(atPath: dir).filter({ $0.hasSuffix(".conf") }).sorted() {
            try loader.load(file: dir + "/" + f)
        }
        return loader.build()
    }

    @Test(arguments: ["regression", "blocking"])
    func shortcutsChangeNoOutcome(configuration: String) throws {
        let root = try #require(RegressionSuite.testsDirectory, "the CRS regression suite (shared/conformance/crs-v3.3.4) is missing")
        let rules = configuration == "regression" ? try RegressionSuite.loadRuleSet() : try ShortcutTests.blockingRuleSet()
        let engine = SecLangEngine(rules: rules)
        // The shortcut is there to be taken: Debian's CRS opens with its setup and initialisation
        // rules; the suite's configuration puts a rule that reads a header after its settings
        // (whose `ctl:` actions the prologue then carries), which ends the prologue there.
        let expected = configuration == "regression" ? 2 : 20
        #expect(engine.prologueRuleCount >= expected, "prologue of \(engine.prologueRuleCount) rules")
        let requests = try RegressionSuite.loadCases(from: root).flatMap { $0.stages.compactMap(\.request) }
        #expect(requests.count > 2000)
        var differences: [String] = []
        var interrupted = 0
        for (k, request) in requests.enumerated() {
            let fast = engine.evaluate(request)
            let plain = engine.evaluate(request, plain: true)
            if fast.interruption != nil { interrupted += 1 }
            let a = fast.matches.map { "\($0.id) \($0.variable)=\(String(decoding: $0.value, as: UTF8.self)) \($0.logged)" }
            let b = plain.matches.map { "\($0.id) \($0.variable)=\(String(decoding: $0.value, as: UTF8.self)) \($0.logged)" }
            if fast.interruption != plain.interruption || a != b || fast.tx != plain.tx {
                differences.append("request \(k) \(request.method) \(String(decoding: request.target, as: UTF8.self))")
            }
        }
        #expect(differences.isEmpty, "\(differences.count) differ: \(differences.prefix(5))")
        if configuration == "blocking" { #expect(interrupted > 1000, "\(interrupted) blocked") }
    }
}

import Foundation
import GatehouseSecLang
import Testing

/// The Core Rule Set 3.3.4 loaded from Debian's package and run against its own regression suite.
@Suite("Core Rule Set conformance")
struct ConformanceTests {
    /// The pass rate on expressible tests reached, rounded down; the suite fails below it.
    static let minimumPassRate = 1.0

    @Test func coreRuleSetLoadsWithEveryGapReported() throws {
        let rules = try RegressionSuite.loadRuleSet()
        #expect(rules.ruleCount > 400)
        for d in rules.diagnostics { print("seclang load: \(d)") }
        // Each report names its file and line.
        #expect(rules.diagnostics.allSatisfy { $0.location.line > 0 && !$0.location.file.isEmpty })
    }

    @Test func regressionSuitePassRate() throws {
        let root = try #require(RegressionSuite.testsDirectory, "the CRS regression suite (shared/conformance/crs-v3.3.4) is missing")
        let engine = SecLangEngine(rules: try RegressionSuite.loadRuleSet())
        let cases = try RegressionSuite.loadCases(from: root)
        let report = RegressionSuite.run(engine, cases)
        print(report.table)
        for (title, reason) in report.skipped { print("skipped \(title): \(reason)") }
        if ProcessInfo.processInfo.environment["SECLANG_FAILURES"] != nil {
            for f in report.failures { print("failed \(f)") }
        }
        #expect(report.rate >= ConformanceTests.minimumPassRate, "pass rate \(report.rate) on \(report.run) tests")
    }
}

import Foundation
import GatehouseSecLang
import Synchronization
import Testing

/// Malformed input must never trap: every decoder, parser and operator runs on attacker bytes.
/// Deterministic: exhaustive short inputs over the bytes decoders act on, and the regression
/// suite's structured bodies cut at many points.
@Suite("SecLang robustness")
struct RobustnessTests {
    /// Bytes that start or end an escape, entity, comment, path segment or multi-byte sequence.
    static let alphabet: [UInt8] = Array("%uU\\x&#;/*.-0aF9'\"<\r\n ".utf8) + [0x00, 0xC3, 0xE2, 0xF0, 0x80, 0xFF]

    @Test func everyTransformationTakesEveryShortInput() {
        var inputs: [[UInt8]] = [[]]
        for a in RobustnessTests.alphabet {
            inputs.append([a])
            for b in RobustnessTests.alphabet {
                inputs.append([a, b])
                for c in RobustnessTests.alphabet where a == 0x25 || a == 0x5C || a == 0x26 || a == 0x2F || a >= 0x80 {
                    inputs.append([a, b, c])
                }
            }
        }
        var outputs = 0
        for t in Transformation.allCases {
            for input in inputs { outputs += t.apply(input).count >= 0 ? 1 : 0 }
        }
        #expect(outputs == Transformation.allCases.count * inputs.count)
    }

    @Test func truncatedAndSplicedBodiesNeverTrap() throws {
        let root = try #require(RegressionSuite.testsDirectory, "the CRS regression suite (shared/conformance/crs-v3.3.4) is missing")
        let engine = SecLangEngine(rules: try RegressionSuite.loadRuleSet())
        let requests = try RegressionSuite.loadCases(from: root).flatMap { $0.stages.compactMap(\.request) }
        // Bodies a processor parses (multipart, XML, JSON), cut at four points and with a stray
        // byte spliced in at two.
        func contentType(_ r: SecLangRequest) -> String { String(decoding: r.header("Content-Type") ?? [], as: UTF8.self).lowercased() }
        let withBody = requests.filter { !$0.body.isEmpty }
        // Every multipart body; one in ten XML and JSON bodies (the Java tests repeat one XML shape).
        let multipart = withBody.filter { contentType($0).contains("multipart") }
        let documents = withBody.filter { contentType($0).contains("xml") || contentType($0).contains("json") }
        let structured = multipart + documents.enumerated().filter { $0.offset % 10 == 0 }.map(\.element)
        // Each variant is an independent request; run them on all cores.
        var variants: [SecLangRequest] = []
        for r in structured {
            for k in 1...4 {
                var cut = r
                cut.body = Array(r.body.prefix(r.body.count * k / 5))
                variants.append(cut)
            }
            for (k, byte) in [UInt8(0x00), 0x22].enumerated() {
                var spliced = r
                spliced.body.insert(byte, at: r.body.count * (k + 1) / 3)
                variants.append(spliced)
            }
        }
        let runs = Mutex(0)
        let all = variants
        DispatchQueue.concurrentPerform(iterations: all.count) { k in
            _ = engine.evaluate(all[k])
            runs.withLock { $0 += 1 }
        }
        #expect(runs.withLock { $0 } == structured.count * 6)
        #expect(structured.count > 20)
    }
}

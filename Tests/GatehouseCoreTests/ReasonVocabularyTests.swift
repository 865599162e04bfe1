import Foundation
import GatehouseCore
import Testing

/// One vocabulary: every reason code is a named constant (`ReasonCode.swift`), the catalogue holds
/// exactly those, and no source file spells a code as a bare string.
@Suite struct ReasonVocabularyTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `name → code` for every `public static let name: ReasonCode = "code"`.
    static func namedConstants() throws -> [String: String] {
        let text = try String(contentsOf: root.appendingPathComponent("Sources/GatehouseCore/ReasonCode.swift"), encoding: .utf8)
        let pattern = try NSRegularExpression(pattern: #"public static let (\w+): ReasonCode = "([a-z_]+)""#)
        var out: [String: String] = [:]
        for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            out[String(text[Range(m.range(at: 1), in: text)!])] = String(text[Range(m.range(at: 2), in: text)!])
        }
        return out
    }

    @Test func theCatalogueHoldsExactlyTheNamedConstants() throws {
        let named = Set(try Self.namedConstants().values)
        let catalogued = Set(ReasonCatalogue.all.map(\.code.rawValue))
        #expect(named.count > 40)
        #expect(named.subtracting(catalogued).sorted() == [], "named but not catalogued")
        #expect(catalogued.subtracting(named).sorted() == [], "catalogued but not named")
    }

    @Test func constantNamesAreTheCodesInCamelCase() throws {
        for (name, code) in try Self.namedConstants() {
            let parts = code.split(separator: "_")
            let camel = String(parts[0]) + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
            #expect(name == camel, "\(name) names \(code)")
        }
    }

    @Test func noSourceSpellsAReasonCodeAsABareString() throws {
        let codes = Set(try Self.namedConstants().values)
        // A code as a literal where a ReasonCode is expected: `code: "…"`, `ReasonCode("…")`,
        // `ReasonCode(rawValue: "…")`, `.code == "…"`, `reason: "…"`.
        let pattern = try NSRegularExpression(
            pattern: #"(code: |ReasonCode\(|ReasonCode\(rawValue: |\.code == |\.code != |reason: )"([a-z_]+)""#)
        var found: [String] = []
        let sources = Self.root.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
        for case let url as URL in files where url.pathExtension == "swift" && url.lastPathComponent != "ReasonCode.swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let code = String(text[Range(m.range(at: 2), in: text)!])
                if codes.contains(code) { found.append("\(url.path.replacingOccurrences(of: sources.path + "/", with: "")): \(code)") }
            }
        }
        #expect(found == [], "use the named constant (ReasonCode.\\(name)) instead")
    }
}

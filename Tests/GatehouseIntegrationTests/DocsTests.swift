import GatehouseTestSupport
import Foundation
import Testing

@Suite struct DocsTests {
    /// The package root, found from this source file's location.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func reasonsDocMatchesTheCatalogue() throws {
        let generated = try gatehouse(["reasons", "--markdown"]).stdout
        let onDisk = try String(contentsOf: Self.root.appendingPathComponent("docs/reasons.md"), encoding: .utf8)
        #expect(generated == onDisk, "docs/reasons.md is stale: regenerate with `gatehouse reasons --markdown > docs/reasons.md`")
    }
}

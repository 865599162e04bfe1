import Foundation
import GatehouseCore
import Testing

@testable import GatehouseWAF

/// Runs every request of the corpora in corpus/waf through the engine and checks its expectation.
@Suite("Corpora")
struct CorpusTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func load(_ name: String) throws -> [(id: String, expect: String, request: PolicyRequest)] {
        let url = root.appendingPathComponent("corpus/waf/\(name).jsonl")
        let text = try String(contentsOf: url, encoding: .utf8)
        var out: [(String, String, PolicyRequest)] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let urlText = try #require(obj["url"] as? String)
            var path = Substring(urlText), q: String?
            if let i = urlText.firstIndex(of: "?") { path = urlText[..<i]; q = String(urlText[urlText.index(after: i)...]) }
            var headers = HeaderList()
            for (k, v) in (obj["headers"] as? [String: String] ?? [:]).sorted(by: { $0.key < $1.key }) { headers.add(k, v) }
            let body = (obj["body"] as? String).map { Array($0.utf8) }
            out.append(
                (
                    obj["id"] as! String, obj["expect"] as! String,
                    PolicyRequest(method: obj["method"] as? String ?? "GET", path: String(path), query: q, headers: headers, body: body)
                ))
        }
        return out
    }

    @Test(arguments: ["sqli", "xss", "lfi", "rce", "ssrf", "protocol", "scanner", "benign"])
    func corpus(_ name: String) throws {
        let rows = try Self.load(name)
        #expect(rows.count >= 10, "corpus \(name) has \(rows.count) requests")
        for row in rows {
            let report = engine.inspect(row.request)
            #expect(
                report.blocked == (row.expect == "block"),
                "\(row.id): expected \(row.expect), got score \(report.total) \(report.findings.map { "\($0.ruleID) \($0.field) \($0.excerpt)" })"
            )
        }
    }
}

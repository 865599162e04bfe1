import Foundation
import GatehouseDoctor
import Testing

@Suite("Knowledge base")
struct KnowledgeBaseTests {
    static var files: [URL] {
        let knowledge = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/GatehouseDoctor/Knowledge")
        return
            (try? FileManager.default.contentsOfDirectory(at: knowledge, includingPropertiesForKeys: nil).filter {
                $0.pathExtension == "json"
            }.sorted { $0.path < $1.path }) ?? []
    }

    @Test("every knowledge file in the source tree is valid", arguments: files)
    func validFile(_ file: URL) throws {
        do {
            _ = try KnowledgeBase(files: [(file.lastPathComponent, try Data(contentsOf: file))])
        } catch let e as KnowledgeError {
            Issue.record("\(e.file): \(e.reason)")
        }
    }

    @Test("the bundled knowledge covers every system family of the issue")
    func coverage() {
        let ids = Set(Fixtures.knowledge.systems.map(\.system))
        for id in [
            "aws-s3", "aws-api-gateway", "aws-cloudfront", "aws-waf", "google-cloud", "azure-arm", "azure-storage", "cloudflare", "akamai",
            "imperva", "sucuri", "f5-bigip", "fastly", "nginx", "apache-httpd", "microsoft-iis", "istio-envoy", "kong", "tyk", "traefik",
            "haproxy", "gatehouse", "github-api", "gitlab-api", "stripe-api", "slack-api", "atlassian-api", "kubernetes-apiserver",
            "django", "django-rest-framework", "spring-security", "rails", "laravel",
        ] {
            #expect(ids.contains(id), "no knowledge file for \(id)")
        }
    }

    @Test("every signature cites a documentation URL")
    func sources() {
        for s in Fixtures.knowledge.systems {
            for sig in s.signatures { #expect(sig.source.hasPrefix("https://"), "\(s.system)/\(sig.id) cites '\(sig.source)'") }
        }
    }

    static let valid =
        #"{"system":"x-api","name":"X","layer":"api_provider","signatures":[{"id":"a","when":[{"header":"x-id"}],"identifies":0.5,"evidence":"x-id","source":"https://x.example/docs"}]}"#

    @Test(
        "invalid knowledge files fail with the file and the reason",
        arguments: [
            (
                valid.replacingOccurrences(of: #""source":"https://x.example/docs""#, with: #""source":"my notes""#),
                "must cite the public documentation URL"
            ),
            (
                valid.replacingOccurrences(of: #"{"header":"x-id"}"#, with: #"{"body":"(unclosed"}"#),
                "invalid regular expression '(unclosed'"
            ),
            (
                valid.replacingOccurrences(of: #""identifies":0.5"#, with: #""identifies":0.5,"cause":"because","strength":0.5"#),
                "invalid value at .signatures[0].cause"
            ),
            (valid.replacingOccurrences(of: #""layer":"api_provider""#, with: #""layer":"somewhere""#), "layer 'somewhere' is not one of"),
            (valid.replacingOccurrences(of: #"{"header":"x-id"}"#, with: #"{"header":"x-id","body":"a"}"#), "must set exactly one of"),
            (valid.replacingOccurrences(of: #""identifies":0.5"#, with: #""identifies":1.5"#), "weights are between 0 and 1"),
            (valid.replacingOccurrences(of: #""id":"a","#, with: ""), "missing field 'id'"),
            ("{not json", "not valid JSON"),
        ])
    func invalid(_ text: String, _ reason: String) {
        #expect {
            _ = try KnowledgeBase(files: [("broken.json", Data(text.utf8))])
        } throws: { error in
            guard let e = error as? KnowledgeError else { return false }
            return e.file == "broken.json" && e.reason.contains(reason)
        }
    }

    @Test("GATEHOUSE_KNOWLEDGE_DIR is honoured and reports a bad directory")
    func environmentDirectory() throws {
        #expect(throws: KnowledgeError.self) { try KnowledgeBase.load(directory: URL(fileURLWithPath: "/nonexistent-knowledge")) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(Self.valid.utf8).write(to: dir.appendingPathComponent("x.json"))
        let kb = try KnowledgeBase.load(directory: dir)
        #expect(kb.systems.map(\.system) == ["x-api"])
    }
}

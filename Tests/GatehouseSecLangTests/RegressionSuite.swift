import Foundation
import Synchronization
import GatehouseSecLang
import Yams

/// The OWASP Core Rule Set v3.3.4 regression suite (shared/conformance/crs-v3.3.4), read from its
/// YAML and run offline against the engine loaded with Debian's CRS 3.3.4.
enum RegressionSuite {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let rulesDirectory = "/usr/share/modsecurity-crs/rules"
    static let setupFile = "/etc/modsecurity/crs/crs-setup.conf"
    static let fixture = repoRoot.appendingPathComponent("Tests/GatehouseSecLangTests/Fixtures/crs-regression-setup.conf").path

    /// The suite's tests directory: shared/ beside the checkout (as CI lays it out), else the
    /// workplace's shared/.
    static var testsDirectory: String? {
        let candidates = [
            repoRoot.deletingLastPathComponent().appendingPathComponent("shared/conformance/crs-v3.3.4/tests/regression/tests").path,
            "/work/shared/conformance/crs-v3.3.4/tests/regression/tests",
        ]
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// CRS as the regression suite expects it: crs-setup.conf, the suite's settings, every rule file.
    static func loadRuleSet() throws -> RuleSet {
        var loader = SecLangLoader()
        try loader.load(file: setupFile)
        try loader.load(file: fixture)
        try loadRules(into: &loader)
        return loader.build()
    }

    /// Debian's CRS as shipped (crs-setup.conf: paranoia level 1, anomaly scoring, threshold 5)
    /// with the engine On, blocking: CRS itself decides.
    static func blockingRuleSet() throws -> RuleSet {
        var loader = SecLangLoader()
        try loader.load(text: "SecRuleEngine On", file: "engine.conf")
        try loader.load(file: setupFile)
        try loadRules(into: &loader)
        return loader.build()
    }

    /// Every rule file of the rules directory, in name order.
    static func loadRules(into loader: inout SecLangLoader) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: rulesDirectory).filter { $0.hasSuffix(".conf") }.sorted()
        for f in files { try loader.load(file: rulesDirectory + "/" + f) }
    }

    /// Every payload and request text of the WAF corpora (corpus/waf: `decoded`, `url`, `body`), as
    /// written, upper-cased and percent-decoded: the inputs the prefilter and shortcut tests run.
    static func wafCorpusTexts() throws -> [[UInt8]] {
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
        return texts
    }

    /// One stage of a test: a request and what the log must and must not contain.
    struct Stage {
        var request: SecLangRequest?
        var skip: String?
        /// The web server answers 400 itself and the module never sees the request.
        var refusedByServer = false
        var mustLog: [Int] = []
        var mustNotLog: [Int] = []
    }

    /// One test (`test_title`) of a rule's YAML file.
    struct Case {
        var ruleFile: String
        var title: String
        var stages: [Stage]
        var skip: String? { stages.lazy.compactMap(\.skip).first }
    }

    static func loadCases(from root: String) throws -> [Case] {
        var out: [Case] = []
        let fm = FileManager.default
        for dir in try fm.contentsOfDirectory(atPath: root).sorted() {
            let dirPath = root + "/" + dir
            for file in try fm.contentsOfDirectory(atPath: dirPath).filter({ $0.hasSuffix(".yaml") }).sorted() {
                let text = try String(contentsOfFile: dirPath + "/" + file, encoding: .utf8)
                guard let doc = try Yams.compose(yaml: text) else { continue }
                let enabled = doc["meta"]?["enabled"]?.bool ?? true
                for test in doc["tests"]?.sequence ?? [] {
                    let title = test["test_title"]?.string ?? file
                    var stages: [Stage] = []
                    for s in test["stages"]?.sequence ?? [] {
                        var stage = parseStage(s["stage"] ?? s)
                        if !enabled { stage.skip = "disabled in the suite (meta.enabled: false)" }
                        stages.append(stage)
                    }
                    out.append(Case(ruleFile: dir, title: title, stages: stages))
                }
            }
        }
        return out
    }

    static func ids(_ node: Node?) -> [Int] {
        guard let text = node?.string else { return [] }
        let digits = text.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }.filter { $0 >= 100000 }
        return Array(digits.prefix(1))
    }

    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    static func parseStage(_ node: Node) -> Stage {
        var stage = Stage()
        let input = node["input"]
        let output = node["output"]
        stage.mustLog = ids(output?["log_contains"])
        stage.mustNotLog = ids(output?["no_log_contains"])
        if stage.mustLog.isEmpty && stage.mustNotLog.isEmpty {
            if output?["status"] != nil {
                stage.skip = "expects only a response status, which the web server in front of ModSecurity produces"
            } else if output?["expect_error"] != nil {
                stage.skip = "expects the connection to fail (web server behaviour)"
            } else {
                stage.skip = "no log expectation"
            }
            return stage
        }
        guard let input else {
            stage.skip = "no input"
            return stage
        }
        if input["raw_request"] != nil || input["encoded_request"] != nil {
            stage.skip = "raw socket framing (raw_request/encoded_request) that a parsed request cannot express"
            return stage
        }
        let method = input["method"]?.string ?? "GET"
        let uri = input["uri"]?.string ?? "/"
        let version = input["version"]?.string ?? "HTTP/1.1"
        var headers: [(name: [UInt8], value: [UInt8])] = []
        if case .mapping(let m)? = input["headers"] {
            for (k, v) in m { headers.append((bytes(k.string ?? ""), bytes(v.string ?? ""))) }
        }
        var body: [UInt8] = []
        if let data = input["data"] {
            if case .sequence(let seq) = data {
                body = bytes(seq.map { $0.string ?? "" }.joined(separator: "\r\n"))
            } else {
                body = bytes(data.string ?? "")
            }
        }
        let stopMagic = input["stop_magic"]?.bool ?? false
        func has(_ name: String) -> Bool { headers.contains { String(decoding: $0.name, as: UTF8.self).lowercased() == name } }
        if !stopMagic && !body.isEmpty {
            // What the suite's HTTP client adds unless told not to.
            if !has("content-length") { headers.append((bytes("Content-Length"), bytes(String(body.count)))) }
            if !has("content-type") { headers.append((bytes("Content-Type"), bytes("application/x-www-form-urlencoded"))) }
        }
        // The web server removes chunked framing before the module sees the body, and with it
        // a Content-Length header (Apache unsets it when Transfer-Encoding is present).
        if headers.contains(where: {
            String(decoding: $0.name, as: UTF8.self).lowercased() == "transfer-encoding"
                && String(decoding: $0.value, as: UTF8.self).lowercased().contains("chunked")
        }) {
            body = dechunk(body)
            headers.removeAll { String(decoding: $0.name, as: UTF8.self).lowercased() == "content-length" }
        }
        // A bare CR or LF inside a header value is refused by the web server (400) before any
        // module runs.
        stage.refusedByServer = headers.contains { $0.name.contains(0x0D) || $0.value.contains(0x0D) || $0.value.contains(0x0A) }
        stage.request = SecLangRequest(method: method, target: bytes(uri), httpVersion: version, headers: headers, body: body)
        return stage
    }

    static func dechunk(_ b: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < b.count {
            guard let lineEnd = b[i...].firstIndex(of: 0x0A) else { break }
            let sizeText = String(decoding: b[i..<lineEnd], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16), size > 0 else { break }
            let start = lineEnd + 1
            let end = min(b.count, start + size)
            out += b[start..<end]
            i = end
            while i < b.count, b[i] == 0x0D || b[i] == 0x0A { i += 1 }
        }
        return out
    }

    /// Per rule file: tests passed, run, skipped; and what failed.
    struct Report {
        struct Row {
            var passed = 0
            var run = 0
            var skipped = 0
        }
        var rows: [String: Row] = [:]
        var failures: [String] = []
        var skipped: [(String, String)] = []

        var passed: Int { rows.values.reduce(0) { $0 + $1.passed } }
        var run: Int { rows.values.reduce(0) { $0 + $1.run } }
        var skippedCount: Int { rows.values.reduce(0) { $0 + $1.skipped } }
        var rate: Double { run == 0 ? 0 : Double(passed) / Double(run) }

        var table: String {
            var lines = ["| Rule file | Passed | Run | Skipped | Pass rate |", "| --- | ---: | ---: | ---: | ---: |"]
            for (file, r) in rows.sorted(by: { $0.key < $1.key }) {
                let pct = r.run == 0 ? "-" : String(format: "%.1f %%", 100 * Double(r.passed) / Double(r.run))
                lines.append("| \(file) | \(r.passed) | \(r.run) | \(r.skipped) | \(pct) |")
            }
            lines.append("| **all** | \(passed) | \(run) | \(skippedCount) | \(String(format: "%.2f %%", 100 * rate)) |")
            return lines.joined(separator: "\n")
        }
    }

    /// Runs every case (on all cores: the engine is shared, each request has its own state).
    static func run(_ engine: SecLangEngine, _ cases: [Case]) -> Report {
        let results = Mutex([String?](repeating: nil, count: cases.count))
        DispatchQueue.concurrentPerform(iterations: cases.count) { k in
            let c = cases[k]
            guard c.skip == nil else { return }
            var why: [String] = []
            for stage in c.stages {
                guard let request = stage.request else { continue }
                let outcome = stage.refusedByServer ? SecLangOutcome.empty : engine.evaluate(request)
                for id in stage.mustLog where !outcome.logged(id) { why.append("\(id) did not log") }
                for id in stage.mustNotLog where outcome.logged(id) { why.append("\(id) logged") }
            }
            results.withLock { $0[k] = why.joined(separator: ", ") }
        }
        let failures = results.withLock { $0 }
        var report = Report()
        for (k, c) in cases.enumerated() {
            var row = report.rows[c.ruleFile] ?? Report.Row()
            defer { report.rows[c.ruleFile] = row }
            if let reason = c.skip {
                row.skipped += 1
                report.skipped.append((c.title, reason))
                continue
            }
            row.run += 1
            if let why = failures[k], !why.isEmpty {
                report.failures.append("\(c.title): \(why)")
            } else {
                row.passed += 1
            }
        }
        return report
    }
}

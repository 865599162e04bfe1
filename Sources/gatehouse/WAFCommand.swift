import ArgumentParser
import Foundation
import GatehouseChecks
import GatehouseConfig
import GatehouseCore
import GatehouseSecLang
import GatehouseStore
import GatehouseWAF
import Logging

/// `gatehouse waf …`: run requests through the WAF offline.
struct WAFCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "waf",
        abstract: "Run requests through the web application firewall offline and show what fires.",
        subcommands: [WAFTestCommand.self, WAFRulesCommand.self, WAFExcludeCommand.self]
    )
}

/// The `waf` policy with a `crs:` block named `policy` (the first when nil) that a route of the
/// configuration `file` uses, with the configuration's directory.
func crsPolicy(in file: String, named policy: String?) throws -> (check: CRSCheck?, baseDirectory: String) {
    let document: ConfigDocument
    do {
        document = try ConfigLoader.read(file: file)
    } catch let e as ConfigError {
        throw ValidationError(e.description)
    }
    let built = document.provision(
        BuildContext(directory: StoreDirectory(logger: Logger(label: "gatehouse")), baseDirectory: document.baseDirectory))
    let checks = built.router.routes.flatMap { $0.chain.links }.compactMap { $0.check as? CRSCheck }
    return (checks.first(where: { policy == nil || $0.id == policy }), document.baseDirectory)
}

/// `gatehouse waf rules`: the rule catalogue.
struct WAFRulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules", abstract: "List every WAF rule: id, detector, paranoia level, score.")

    func run() {
        for r in WAFRuleCatalogue.all {
            print(
                "\(r.id)  \(r.detector.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) PL\(r.paranoia)  +\(r.score)  \(r.title)"
            )
        }
    }
}

/// `gatehouse waf test`: one request from curl-like flags, or a file of requests (JSON lines).
struct WAFTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Inspect one request (curl-like flags) or a file of requests, offline, and show what fires.",
        discussion: """
            One request:  gatehouse waf test -X POST -H 'Content-Type: application/json' -d '{"q":"1 or 1=1"}' 'http://api/search?id=1'
            A file:       gatehouse waf test --file requests.jsonl [--json]

            The file holds one JSON object per line (blank lines and lines starting with # are skipped):
              {"id": "sqli-1", "method": "GET", "url": "/search?q=%27%20or%201%3D1--",
               "headers": {"User-Agent": "curl/8"}, "body": "…", "body_base64": "…", "route": "search"}
            Only "url" is required; "method" defaults to GET (POST when a body is given). Other members
            (category, expect, note) are copied to --json output.

            The Core Rule Set:  --crs (Debian's CRS 3.3 at --paranoia/--threshold), --crs-include FILE for your
            own rule files (SecRuleRemoveById, ...), or --config FILE [--policy NAME] for a `waf` policy with a
            `crs:` block. Each rule that fired is shown with its id, message, variable, transformations and the
            matched value. --second-opinion lets the built-in tokenizers lower CRS SQL injection and XSS matches
            they do not confirm (`crs.second_opinion`); the output then shows CRS's own score beside the lowered one.

            Exit status: 0 when every request was allowed, 1 when at least one would be blocked, 64 on bad input.
            """
    )

    @Option(name: .customShort("X"), help: "HTTP method.") var method: String?
    @Option(name: .customShort("H"), help: "A header, 'Name: value' (repeatable).") var header: [String] = []
    @Option(name: .customShort("d"), help: "Request body (as sent). '@FILE' reads a file.") var data: String?
    @Option(help: "Paranoia level 1-4.") var paranoia: Int = 1
    @Option(help: "Anomaly threshold.") var threshold: Int = 5
    @Option(help: "Route name (for exclusions).") var route: String = ""
    @Option(name: .customLong("exclude"), help: "Exclusion RULE_OR_DETECTOR[:FIELD][@ROUTE,...], e.g. 942100:query.q@search (repeatable).")
    var exclusions: [String] = []
    @Option(name: .long, help: "A file of requests, one JSON object per line ('-' reads standard input).") var file: String?
    @Flag(help: "Machine-readable output: one JSON object per request.") var json = false
    @Flag(help: "Run the OWASP Core Rule Set (Debian's modsecurity-crs) instead of the built-in detectors.") var crs = false
    @Option(name: .customLong("crs-include"), help: "A SecLang file loaded after the Core Rule Set (repeatable; implies --crs).")
    var crsInclude: [String] = []
    @Flag(
        inversion: .prefixedNo,
        help: "With --crs: the built-in tokenizers' second opinion on CRS's SQL injection and XSS matches (off, as in a policy).")
    var secondOpinion = false
    @Option(name: .customLong("second-opinion-score"), help: "With --crs: what a match the tokenizer does not confirm scores.")
    var secondOpinionScore: Int = 3
    @Option(name: .customLong("second-opinion-variables"), help: "With --crs: arguments (argument values only) or all.")
    var secondOpinionVariables: String = "arguments"
    @Flag(name: .customLong("second-opinion-commands"), help: "With --crs: the second opinion on command injection rules (932xxx) too.")
    var secondOpinionCommands = false
    @Option(help: "A configuration file whose `waf` policy with a `crs:` block to run.") var config: String?
    @Option(help: "With --config: the policy's name (default: the first waf policy with crs).") var policy: String?
    @Argument(help: "URL or path with query, e.g. 'http://host/search?q=x' or '/search?q=x'.") var url: String?

    func run() throws {
        let requests = try readRequests()
        if let check = try crsCheck() {
            var blocked = 0
            for (request, extra, label) in requests {
                let report = check.inspect(request)
                if report.blocked { blocked += 1 }
                outputCRS(report, check: check, request: request, extra: extra, label: label)
            }
            if file != nil, !json { print("\n\(requests.count) requests: \(blocked) blocked, \(requests.count - blocked) allowed") }
            if blocked > 0 { throw ExitCode(1) }
            return
        }
        var config = WAFConfiguration(paranoia: paranoia, threshold: threshold)
        for e in exclusions { config.exclusions.append(try parseExclusion(e)) }
        let problems = config.validate()
        guard problems.isEmpty else {
            throw ValidationError(problems.joined(separator: "\n"))
        }
        let engine = WAFEngine(configuration: config)
        var anyBlocked = false
        var blocked = 0
        for (request, extra, label) in requests {
            let report = engine.inspect(request)
            if report.blocked { blocked += 1; anyBlocked = true }
            output(report, request: request, extra: extra, label: label)
        }
        if file != nil, !json { print("\n\(requests.count) requests: \(blocked) blocked, \(requests.count - blocked) allowed") }
        if anyBlocked { throw ExitCode(1) }
    }

    /// The requests to inspect: the URL and flags, or every line of `--file`.
    func readRequests() throws -> [(PolicyRequest, [String: Any], String)] {
        guard let file else {
            guard let url else { throw ValidationError("give a URL (or --file FILE)") }
            let request = try requestFromFlags(url)
            return [(request, [:], request.summary)]
        }
        let text: String
        if file == "-" {
            var lines: [String] = []
            while let l = readLine(strippingNewline: true) { lines.append(l) }
            text = lines.joined(separator: "\n")
        } else {
            guard let d = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read request file \(file)")
            }
            text = String(decoding: d, as: UTF8.self)
        }
        var out: [(PolicyRequest, [String: Any], String)] = []
        var lineNo = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let (request, extra) = try requestFromJSON(String(trimmed), file: file, line: lineNo)
            out.append((request, extra, (extra["id"] as? String) ?? "\(file):\(lineNo)"))
        }
        return out
    }

    /// The Core Rule Set check the flags ask for, nil for the built-in detectors.
    func crsCheck() throws -> CRSCheck? {
        if let config {
            guard let check = try crsPolicy(in: config, named: policy).check else {
                throw ValidationError(
                    "\(config) has no waf policy with a crs block" + (policy.map { " named \($0)" } ?? "") + " used by a route")
            }
            return check
        }
        guard crs || !crsInclude.isEmpty else { return nil }
        guard let variables = CRSSettings.SecondOpinionVariables(rawValue: secondOpinionVariables) else {
            throw ValidationError("--second-opinion-variables is arguments or all, not \(secondOpinionVariables)")
        }
        let settings = CRSSettings(
            paranoia: paranoia, anomalyThreshold: threshold, include: crsInclude, secondOpinion: secondOpinion,
            secondOpinionScore: secondOpinionScore, secondOpinionVariables: variables, secondOpinionCommands: secondOpinionCommands)
        do {
            let loaded = try settings.load(baseDirectory: FileManager.default.currentDirectoryPath)
            if !json { for w in loaded.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) } }
            return loaded.check("waf")
        } catch {
            throw ValidationError("the rule files do not load: \(error.description)")
        }
    }

    func outputCRS(_ report: CRSReport, check: CRSCheck, request: PolicyRequest, extra: [String: Any], label: String) {
        let s = check.settings
        if json {
            var obj: [String: Any] = [:]
            for (k, v) in extra where ["id", "category", "expect", "note"].contains(k) { obj[k] = v }
            obj["request"] = request.summary + (request.query.map { "?" + $0 } ?? "")
            obj["engine"] = "crs"
            obj["verdict"] = report.blocked ? "block" : "allow"
            obj["blocked"] = report.blocked
            obj["total"] = report.score
            obj["second_opinion"] = s.secondOpinion
            obj["crs_total"] = report.crsScore
            obj["crs_blocked"] = report.crsBlocked
            obj["threshold"] = s.anomalyThreshold
            obj["paranoia"] = s.paranoia
            obj["rule_ids"] = report.findings.map { "\($0.ruleID)" }
            obj["findings"] = report.findings.map { f -> [String: Any] in
                var o: [String: Any] = [
                    "rule": "\(f.ruleID)", "message": f.message, "variable": f.variable, "transformations": f.transformations,
                    "excerpt": f.excerpt, "severity": f.severity ?? "",
                ]
                if let so = f.secondOpinion {
                    o["second_opinion"] = ["family": so.family, "crs_score": so.crsScore, "score": so.score, "note": so.description]
                }
                return o
            }
            if let d = try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes]) {
                print(String(decoding: d, as: UTF8.self))
            }
            return
        }
        let alone = report.rescored ? "; CRS alone \(report.crsScore), \(report.crsBlocked ? "block" : "allow")" : ""
        print("\(report.blocked ? "BLOCK" : "allow")  \(label)  CRS score \(report.score)/\(s.anomalyThreshold) (PL\(s.paranoia)\(alone))")
        for f in report.findings {
            print(
                "  \(f.ruleID) \((f.severity ?? "").lowercased().padding(toLength: 8, withPad: " ", startingAt: 0)) \(f.variable)  \(f.message)"
            )
            if !f.transformations.isEmpty { print("         t:\(f.transformations.joined(separator: ",t:"))") }
            print("         matched: \(f.excerpt)")
            if let so = f.secondOpinion { print("         second opinion: \(so)") }
        }
    }

    func parseExclusion(_ text: String) throws -> WAFExclusion {
        var rest = Substring(text)
        var routes: [String]?
        if let at = rest.firstIndex(of: "@") {
            routes = rest[rest.index(after: at)...].split(separator: ",").map(String.init)
            rest = rest[..<at]
        }
        var field: String?
        if let colon = rest.firstIndex(of: ":") {
            field = String(rest[rest.index(after: colon)...])
            rest = rest[..<colon]
        }
        let target = String(rest)
        if target.allSatisfy(\.isNumber) { return WAFExclusion(rule: target, field: field, routes: routes) }
        return WAFExclusion(detector: target, field: field, routes: routes)
    }

    func requestFromFlags(_ url: String) throws -> PolicyRequest {
        var headers = HeaderList()
        for h in header {
            guard let colon = h.firstIndex(of: ":") else { throw ValidationError("header \"\(h)\" is not 'Name: value'") }
            headers.add(String(h[..<colon]), String(h[h.index(after: colon)...].drop(while: { $0 == " " })))
        }
        var body: [UInt8]?
        if let data {
            if data.hasPrefix("@") {
                guard let d = FileManager.default.contents(atPath: String(data.dropFirst())) else {
                    throw ValidationError("cannot read \(data.dropFirst())")
                }
                body = Array(d)
            } else {
                body = Array(data.utf8)
            }
            if !headers.contains("content-type") { headers.add("Content-Type", "application/x-www-form-urlencoded") }
        }
        return makeRequest(method: method ?? (body == nil ? "GET" : "POST"), url: url, headers: headers, body: body, route: route)
    }

    func requestFromJSON(_ line: String, file: String, line lineNo: Int) throws -> (PolicyRequest, [String: Any]) {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ValidationError("\(file):\(lineNo): not a JSON object; expected {\"url\": \"/path?query\", …}")
        }
        guard let url = obj["url"] as? String else {
            throw ValidationError("\(file):\(lineNo): missing \"url\" (a path with query, or a full URL)")
        }
        var headers = HeaderList()
        if let h = obj["headers"] as? [String: Any] {
            for (k, v) in h.sorted(by: { $0.key < $1.key }) { headers.add(k, "\(v)") }
        } else if let h = obj["headers"] as? [[String]] {
            for pair in h where pair.count == 2 { headers.add(pair[0], pair[1]) }
        }
        var body: [UInt8]?
        if let b = obj["body"] as? String { body = Array(b.utf8) }
        if let b64 = obj["body_base64"] as? String {
            guard let d = Data(base64Encoded: b64) else { throw ValidationError("\(file):\(lineNo): body_base64 is not base64") }
            body = Array(d)
        }
        if body != nil, !headers.contains("content-type") { headers.add("Content-Type", "application/x-www-form-urlencoded") }
        let method = (obj["method"] as? String) ?? (body == nil ? "GET" : "POST")
        let request = makeRequest(method: method, url: url, headers: headers, body: body, route: (obj["route"] as? String) ?? route)
        return (request, obj)
    }

    func makeRequest(method: String, url: String, headers: HeaderList, body: [UInt8]?, route: String) -> PolicyRequest {
        var rest = Substring(url)
        var host = ""
        // `http://host/…`; a target that starts with `/` is a path, even with a URL in its query.
        if !rest.hasPrefix("/"), let scheme = rest.range(of: "://") {
            rest = rest[scheme.upperBound...]
            let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
            host = String(rest[..<end]).lowercased()
            rest = rest[end...]
        }
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var path = rest
        var query: String?
        if let q = rest.firstIndex(of: "?") {
            path = rest[..<q]
            query = String(rest[rest.index(after: q)...])
        }
        var h = headers
        if !host.isEmpty, !h.contains("host") { h.add("Host", host) }
        return PolicyRequest(
            method: method.uppercased(), path: path.isEmpty ? "/" : String(path), query: query, headers: h,
            host: host, contentLength: body?.count, body: body, routeName: route)
    }

    func output(_ report: WAFReport, request: PolicyRequest, extra: [String: Any], label: String) {
        if json {
            var obj: [String: Any] = [:]
            for (k, v) in extra where ["id", "category", "expect", "note"].contains(k) { obj[k] = v }
            obj["request"] = request.summary + (request.query.map { "?" + $0 } ?? "")
            obj["verdict"] = report.blocked ? "block" : "allow"
            obj["blocked"] = report.blocked
            obj["total"] = report.total
            obj["threshold"] = report.threshold
            obj["paranoia"] = report.paranoia
            obj["rule_ids"] = report.ruleIDs
            obj["findings"] = report.findings.map(findingJSON)
            obj["excluded"] = report.excluded.map { e -> [String: Any] in
                var f = findingJSON(e.finding)
                f["exclusion"] = e.exclusion.summary
                return f
            }
            if let d = try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .withoutEscapingSlashes]) {
                print(String(decoding: d, as: UTF8.self))
            }
            return
        }
        let verdict = report.blocked ? "BLOCK" : "allow"
        print("\(verdict)  \(label)  score \(report.total)/\(report.threshold) (PL\(report.paranoia), \(report.fieldsInspected) fields)")
        for f in report.findings {
            print(
                "  \(f.ruleID) \(f.detector.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(f.field)  +\(f.score)  \(f.message)"
            )
            print("         matched: \(f.excerpt)" + (f.form == "decoded" ? "" : "  [\(f.form)]"))
        }
        for e in report.excluded {
            print(
                "  excluded: \(e.finding.ruleID) \(e.finding.detector.rawValue) \(e.finding.field) (+\(e.finding.score)) by \(e.exclusion.summary)"
            )
        }
    }

    func findingJSON(_ f: WAFFinding) -> [String: Any] {
        [
            "rule": f.ruleID, "detector": f.detector.rawValue, "field": f.field, "excerpt": f.excerpt, "score": f.score,
            "message": f.message, "form": f.form,
        ]
    }
}

// Log formats are read with the regular expressions and JSON paths of the log knowledge files
// (Sources/GatehouseDoctor/LogKnowledge): no listed library parses these formats.
import Foundation

/// One group of denials found in logs: same source, cause and key (rule id, directive, path…).
public struct LogGroup: Codable, Sendable, Equatable {
    public var source: String
    public var cause: DenialCause
    public var key: String
    public var count: Int
    public var explanation: String
    public var example: String
    public var fix: [String]
    /// The time field of the first and last line of the group, in input order, when the format has one.
    public var firstSeen: String?
    public var lastSeen: String?
    /// Distinct client addresses and paths of the group's lines, in order of appearance (at most 20 each).
    public var clients: [String]
    public var paths: [String]

    enum CodingKeys: String, CodingKey {
        case source, cause, key, count, explanation, example, fix, clients, paths
        case firstSeen = "first_seen", lastSeen = "last_seen"
    }
}

/// One log line as the doctor read it: the format that parsed it, its fields, and the denial it records.
public struct LogLine: Sendable, Equatable {
    /// The system whose format parsed the line (`nil` when no format did).
    public var system: String?
    public var format: String?
    public var fields: [String: String]
    public var denial: LogDenial?
}

/// The denial a log line records.
public struct LogDenial: Sendable, Equatable {
    public var source: String
    public var cause: DenialCause
    public var key: String
    public var explanation: String
    public var fix: [String]
    public var signature: String
}

extension Dictionary where Key == String, Value == String {
    /// Fields of the main pattern win over extracted ones.
    static func + (lhs: [String: String], rhs: [String: String]) -> [String: String] { lhs.merging(rhs) { a, _ in a } }
}

/// Reads logs with the log knowledge base: each line is parsed by the first format that fits
/// (every system's own formats, then the common ones), then the signatures say whether and why it
/// is a denial; denials are grouped by cause and key with counts, first/last time, clients and paths.
public struct LogAnalyzer: Sendable {
    public let knowledge: LogKnowledgeBase
    /// Named groups of each format regex, parsed once.
    let groupNames: [String: [String]]
    /// The vendor-neutral file's wording families and the words that cancel them.
    let wording: [LogSignature]
    let negation: WordNegation?

    public init(knowledge: LogKnowledgeBase) {
        self.knowledge = knowledge
        var names: [String: [String]] = [:]
        let re = try! NSRegularExpression(pattern: #"\(\?<([A-Za-z][A-Za-z0-9]*)>"#)
        for s in knowledge.systems {
            for f in s.formats {
                guard let r = f.regex else { continue }
                let ns = r as NSString
                names[f.id] = re.matches(in: r, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range(at: 1)) }
            }
        }
        groupNames = names
        let generic = knowledge.systems.first { $0.generic == true }
        wording = generic?.wording ?? []
        negation = generic?.negation
    }

    /// The analyzer with the bundled log knowledge (or `GATEHOUSE_LOG_KNOWLEDGE_DIR`).
    public init() throws { self.init(knowledge: try LogKnowledgeBase.standard()) }

    /// Analyzes the lines of several logs; `name` identifies each input in examples.
    public func analyze(_ inputs: [(name: String, text: String)]) -> [LogGroup] {
        var groups: [String: LogGroup] = [:]
        var order: [String] = []
        for (_, text) in inputs {
            for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
                let line = String(rawLine).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
                let read = self.read(line)
                guard let d = read.denial else { continue }
                let id = "\(d.source)|\(d.cause.rawValue)|\(d.key)"
                if groups[id] == nil {
                    order.append(id)
                    groups[id] = LogGroup(
                        source: d.source, cause: d.cause, key: d.key, count: 0, explanation: d.explanation,
                        example: String(line.prefix(300)), fix: d.fix, firstSeen: read.fields["time"], lastSeen: nil, clients: [], paths: []
                    )
                }
                groups[id]!.count += 1
                if let t = read.fields["time"] {
                    if groups[id]!.firstSeen == nil { groups[id]!.firstSeen = t }
                    groups[id]!.lastSeen = t
                }
                if let c = Self.present(read.fields["client"]), !groups[id]!.clients.contains(c), groups[id]!.clients.count < 20 {
                    groups[id]!.clients.append(c)
                }
                if let p = Self.present(read.fields["path"]), !groups[id]!.paths.contains(p), groups[id]!.paths.count < 20 {
                    groups[id]!.paths.append(p)
                }
            }
        }
        return order.compactMap { groups[$0] }.sorted { $0.count > $1.count }
    }

    /// How much of a line is read (bytes of UTF-8).
    static let readLimit = 16_384

    /// Reads one line: the format that parses it, its fields, and the denial it records if any.
    public func read(_ line: String) -> LogLine {
        // A line is read by its first 16 KiB: what a denial's record says fits there, and every
        // pattern's cost stays bounded whatever a caller wrote into a request line or header.
        let capped = line.utf8.count > Self.readLimit ? String(decoding: line.utf8.prefix(Self.readLimit), as: UTF8.self) : line
        var parsed: (system: LogSystemKnowledge, format: LogFormat, fields: [String: String])?
        // A line as a container runtime or syslog relayed it carries a prefix; a system's own format
        // may fit what follows. The common formats (syslog among them) read the line as it is.
        // The prefixes are taken off once: the formats read the line and what its first relay prefix
        // wraps (not behind a syslog priority, which the common syslog format reads), the
        // vendor-neutral reader what is left once every prefix is off.
        let unwrapped = Self.unwrap(capped)
        var line = capped
        let texts = unwrapped.hadPriority ? [line] : [line] + unwrapped.layers.dropFirst().prefix(1)
        outer: for text in texts {
            let object = Self.jsonObject(text)
            for s in knowledge.systems where s.generic != true {
                for f in s.formats {
                    if let fields = parse(text, f, object: object) {
                        parsed = (s, f, fields)
                        line = text
                        break outer
                    }
                }
            }
        }
        if parsed == nil {
            // The common formats read the line as it is first (syslog is one of them), then what a
            // relay prefix wraps (an application's own line behind `docker compose`'s `name-1  | `).
            outer: for text in texts {
                let object = Self.jsonObject(text)
                for s in knowledge.systems where s.generic == true {
                    for f in s.formats {
                        if let fields = parse(text, f, object: object) {
                            parsed = (s, f, fields)
                            line = text
                            break outer
                        }
                    }
                }
            }
        }
        let fields = parsed?.fields ?? [:]
        // What the caller wrote (the request line, referrer, user agent, a logged path or query) is
        // no record of what the server decided: where a format parsed the request, signatures and
        // wording read the line without it.
        let own = parsed.map { Self.withoutCallerText(line, format: $0.format, fields: $0.fields) } ?? line
        // A status the format parsed that is no denial (a 200, a redirect, a 404) is not overruled by
        // free text; a signature that reads a field (a decision field, a WAF's action) still decides.
        let status = Self.statusField(fields["status"])
        let statusSaysServed = status == .served
        // Signatures that can sit inside any log come first, then the parsing system's, then the common ones.
        var candidates: [(LogSystemKnowledge, LogSignature)] = []
        for s in knowledge.systems { candidates += s.signatures.filter { $0.anywhere == true }.map { (s, $0) } }
        if let p = parsed, p.system.generic != true {
            candidates += p.system.signatures.filter { $0.anywhere != true }.map { (p.system, $0) }
        }
        for s in knowledge.systems where s.generic == true {
            candidates += s.signatures.filter { $0.anywhere != true }.map { (s, $0) }
        }
        // The line's words, tokenised once for every signature with `words` and for release wording.
        var lineWords: BodyWords?
        func words() -> BodyWords {
            if let w = lineWords { return w }
            let w = Self.words(own)
            lineWords = w
            return w
        }
        var denial: LogDenial?
        for (system, sig) in candidates {
            if let formats = sig.formats, !formats.contains(parsed?.format.id ?? "") { continue }
            if statusSaysServed, sig.when?.isEmpty ?? true, sig.line != nil || sig.words != nil { continue }
            guard let groups = matches(sig, own, fields, words: words) else { continue }
            // A vendor-neutral signature's wording does not count where the line says the block ended
            // or did not happen (`… no longer rate limited`, `unbanned`, `removed from the blocklist`).
            if system.generic == true, sig.line != nil || sig.words != nil, negation?.releases(words()) == true { continue }
            let source =
                system.generic == true
                ? (parsed.map { $0.system.generic == true ? "unknown" : $0.system.system } ?? "unknown") : system.system
            denial = LogDenial(
                source: source, cause: sig.cause, key: fill(sig.key ?? "-", groups, fields),
                explanation: fill(sig.explanation, groups, fields),
                fix: sig.fix.map { fill($0, groups, fields) }, signature: sig.id)
            break
        }
        var read = LogLine(system: parsed?.system.system, format: parsed?.format.id, fields: fields, denial: denial)
        // A line a system's format reads but none of the signatures explains may still say why in
        // the words a module or plugin wrote into that system's log (a ban or bot module in nginx's
        // error log): the wording families read it, unless its own status says it was no denial.
        // Only for causes the system's own signatures do not describe: where they describe a cause
        // (nginx's file-system errors), their silence on a line is their answer (nginx failing to
        // open its own log is no denial of a request). Only its message counts: what the request
        // carried (quoted strings, paths) and the names of servers and hosts are left out, and a
        // status field that is there but says no denial, or nothing readable, keeps the line as it is.
        if denial == nil, let p = parsed, p.system.generic != true, status == .absent || status == .denial,
            let d = wordingDenial(
                Self.messageOnly(Self.withoutCallerText(unwrapped.innermost, format: p.format, fields: fields)), source: p.system.system,
                fields: fields, excluding: Set(p.system.signatures.map(\.cause)))
        {
            read.denial = d
        }
        // A line no system's own format reads goes to the vendor-neutral reader: its shape gives the
        // fields, and its denial counts when the signatures found none or only a status that does not
        // say why. A line a system's format reads is left to that system's signatures.
        if parsed.map({ $0.system.generic == true }) ?? true, let neutral = readNeutral(unwrapped.innermost, program: unwrapped.program) {
            if let d = neutral.denial, denial == nil || (denial?.cause == .unknown && d.cause != .unknown) { read.denial = d }
            // A vendor-neutral signature's denial names the system the line names (a syslog program…).
            if read.denial?.source == "unknown", let named = neutral.reading.system { read.denial?.source = named }
            read.fields = read.fields + neutral.reading.fields
            if parsed == nil, neutral.reading.format != "neutral-words" {
                read.format = neutral.reading.format
                read.system = neutral.reading.system
            }
        }
        return read
    }

    /// What a line's parsed `status` field says.
    enum StatusField { case absent, denial, served, unreadable }

    /// A denial status (one of `statusDefaults`), another HTTP status (100–599), or a value that is no
    /// status; `absent` without the field.
    static func statusField(_ value: String?) -> StatusField {
        guard let value else { return .absent }
        guard let n = Int(value) else { return .unreadable }
        if statusDefaults[n] != nil { return .denial }
        return (100...599).contains(n) ? .served : .unreadable
    }

    // MARK: Parsing

    /// The keys under which a JSON or logfmt access line records what the caller sent (Traefik's
    /// `RequestPath` and `request_User-Agent` among them), and any `User-Agent` header.
    static let callerKeys =
        "user_agent|useragent|http_user_agent|agent|ua|referer|referrer|http_referer|path|uri|url|request_uri|requesturi|request_url|requesturl|request|query|query_string|querystring|args|requestpath|request_user-agent|request_referer|user-agent"

    /// The fields of an access line's format that hold what the caller sent: its path, query, Host and
    /// user agent or referrer (IIS's `agent`, the unquoted fields between client and status).
    static let callerFields = ["path", "query", "host", "agent"]

    /// The line without what the caller wrote, where the format parsed a request: the quoted strings
    /// of an access line (a status and a method parsed: request line, referrer, user agent) and the
    /// fields its format names as the caller's (path, query, Host, user agent), or the values of a JSON
    /// or logfmt line's user agent, referrer, path and query.
    static func withoutCallerText(_ line: String, format: LogFormat, fields: [String: String]) -> String {
        var line = line
        // An access line: its format parsed a status and a method.
        let accessLine = format.regex != nil && fields["status"] != nil && fields["method"] != nil
        if accessLine, let r = format.regex { line = withoutFields(line, pattern: r, names: callerFields) }
        // An error line's `request: "…"`, `referrer: "…"` and `host: "…"` (nginx) are the caller's words,
        // and so is the path of its `upstream: "http://…/path"` (the address is the server's).
        line = line.replacingPattern(#"(?<=, )(?:request|referrer|host): "(?:[^"\\]|\\.)*""#, with: "-")
            .replacingPattern(#"(?<=, upstream: ")([A-Za-z][A-Za-z0-9+.-]*://[^/"\\]*)(?:[^"\\]|\\.)*""#, with: "$1/-\"")
        let value = #"\s*+(?:"(?:[^"\\]|\\.)*"|\[\s*+(?:"(?:[^"\\]|\\.)*+"\s*+,?+\s*+)*+\])"#
        if format.json != nil {
            return line.replacingPattern(#"(?i)"(?:"# + callerKeys + #")"\s*:"# + value, with: #""-":"-""#)
        }
        if format.logfmt != nil {
            return line.replacingPattern(#"(?i)(?<![A-Za-z0-9_.\-])(?:"# + callerKeys + #")=(?:"(?:[^"\\]|\\.)*"|\S*)"#, with: " ")
        }
        guard accessLine else { return line }
        return line.replacingPattern(#""(?:[^"\\]|\\.)*""#, with: #""-""#)
    }

    /// The line with the named groups' matched text (where the pattern matches it) replaced by `-`:
    /// only those ranges, not the same text elsewhere in the line.
    static func withoutFields(_ line: String, pattern: String, names: [String]) -> String {
        let ns = line as NSString
        guard let m = PatternCache.shared.regex(pattern).firstMatch(in: line, range: NSRange(location: 0, length: ns.length)) else {
            return line
        }
        var ranges: [NSRange] = []
        for name in names where pattern.contains("(?<\(name)>") {
            let r = m.range(withName: name)
            if r.location != NSNotFound, r.length > 1 { ranges.append(r) }
        }
        let out = NSMutableString(string: line)
        for r in ranges.sorted(by: { $0.location > $1.location }) { out.replaceCharacters(in: r, with: "-") }
        return out as String
    }

    /// A message without what names rather than says: quoted file names and request lines, paths,
    /// the `server:`, `host:`, `request:` and kin fields of an error line, and host names.
    static func messageOnly(_ text: String) -> String {
        text.replacingPattern(#"(?i)\b(?:server|host|request|referrer|upstream|subrequest):\s*(?:"(?:[^"\\]|\\.)*"|[^\s,]*)"#, with: " ")
            .replacingPattern(#""(?:/|[A-Za-z]:\\|[A-Z]{3,10} )(?:[^"\\]|\\.)*""#, with: " ")
            .replacingPattern(#"(?:^|(?<=[\s'"(\[=:]))/\S*"#, with: " ")
            .replacingPattern(#"(?<![\w.-])[A-Za-z][\w-]*+(?:\.[A-Za-z0-9-]+)+\b"#, with: " ")
    }

    /// The line without the prefix a relay added: `docker compose` (`name_1  | `), Kubernetes'
    /// container runtime (`2024-01-01T00:00:00.000Z stdout F `) or syslog (`Jun 28 09:08:38 host prog[pid]: `).
    static func withoutRelayPrefix(_ line: String) -> String? {
        let patterns = [
            #"^[A-Za-z0-9_.-]+\s+\|\s"#,
            #"^\d{4}-\d{2}-\d{2}T[\d:.]+(?:Z|[+-]\d{2}:\d{2}) (?:stdout|stderr) [FP] "#,
            #"^(?:[A-Z][a-z]{2} +)?\d{1,2} \d{2}:\d{2}:\d{2} \S+ [^:\[\s]+(?:\[\d+\])?: "#,
        ]
        for p in patterns {
            if let r = line.rangeOfPattern(p) {
                let rest = String(line[r.upperBound...])
                return rest.isEmpty ? nil : rest
            }
        }
        return nil
    }

    func parse(_ line: String, _ f: LogFormat, object: [String: Any]?) -> [String: String]? {
        if let r = f.regex {
            let ns = line as NSString
            guard let m = knowledge.regex(r).firstMatch(in: line, range: NSRange(location: 0, length: ns.length)) else { return nil }
            var fields: [String: String] = [:]
            for name in groupNames[f.id] ?? [] {
                let range = m.range(withName: name)
                if range.location != NSNotFound { fields[name] = ns.substring(with: range) }
            }
            return fields + extract(line, f)
        }
        if let paths = f.json {
            guard let object else { return nil }
            // Each requirement is a path, or alternatives `a|b` of which one must be present.
            for req in f.requires ?? [] {
                guard req.split(separator: "|").contains(where: { !ResponseClassifier.jsonValues(object, path: String($0)).isEmpty }) else {
                    return nil
                }
            }
            var fields: [String: String] = [:]
            for (name, spec) in paths {
                for path in spec.split(separator: "|") {
                    let values = ResponseClassifier.jsonValues(object, path: String(path))
                    if !values.isEmpty {
                        fields[name] = values.joined(separator: ",")
                        break
                    }
                }
            }
            return fields + extract(line, f)
        }
        if let keys = f.logfmt {
            let pairs = Self.logfmt(line)
            guard !pairs.isEmpty else { return nil }
            var fields: [String: String] = [:]
            for (name, spec) in keys {
                for key in spec.split(separator: "|") {
                    if let v = pairs[String(key)] {
                        fields[name] = v
                        break
                    }
                }
            }
            for req in f.requires ?? [] where !req.split(separator: "|").contains(where: { pairs[String($0)] != nil }) { return nil }
            return fields + extract(line, f)
        }
        return nil
    }

    /// Fields found anywhere in the line by the format's `extract` patterns (group 1), where the
    /// main pattern did not set them.
    func extract(_ line: String, _ f: LogFormat) -> [String: String] {
        var out: [String: String] = [:]
        let ns = line as NSString
        for (name, pattern) in f.extract ?? [:] {
            guard let m = knowledge.regex(pattern).firstMatch(in: line, range: NSRange(location: 0, length: ns.length)),
                m.numberOfRanges > 1,
                m.range(at: 1).location != NSNotFound
            else { continue }
            out[name] = ns.substring(with: m.range(at: 1))
        }
        return out
    }

    /// The `key=value` pairs of a logfmt line; quoted values keep their spaces.
    static func logfmt(_ line: String) -> [String: String] {
        var out: [String: String] = [:]
        let re = PatternCache.shared.regex(#"(?<![A-Za-z0-9_.\-])([A-Za-z_][A-Za-z0-9_.\-]*)=("(?:[^"\\]|\\.)*"|\S*)"#)
        let ns = line as NSString
        for m in re.matches(in: line, range: NSRange(location: 0, length: ns.length)) {
            var v = ns.substring(with: m.range(at: 2))
            if v.hasPrefix("\""), v.hasSuffix("\""), v.count >= 2 {
                v = String(v.dropFirst().dropLast()).replacingOccurrences(of: #"\""#, with: "\"")
            }
            out[ns.substring(with: m.range(at: 1))] = v
        }
        return out
    }

    static func jsonObject(_ line: String) -> [String: Any]? {
        let t = line.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix("{") else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(t.utf8)) as? [String: Any]
    }

    // MARK: Matching

    /// The numbered groups of the `line` match (group 0 first) when the signature holds, else nil.
    func matches(_ sig: LogSignature, _ line: String, _ fields: [String: String], words: () -> BodyWords) -> [String]? {
        var groups: [String] = []
        if let l = sig.line {
            let ns = line as NSString
            guard let m = knowledge.regex(l).firstMatch(in: line, range: NSRange(location: 0, length: ns.length)) else { return nil }
            groups = (0..<m.numberOfRanges).map { m.range(at: $0).location == NSNotFound ? "" : ns.substring(with: m.range(at: $0)) }
        }
        if let groups = sig.words, !WordMatcher.matches(groups, within: sig.within ?? 6, in: words(), negation: negation) { return nil }
        for c in sig.when ?? [] {
            let value = fields[c.field]
            var ok: Bool
            if let p = c.value {
                ok = value.map { v in knowledge.regex(p).firstMatch(in: v, range: NSRange(v.startIndex..., in: v)) != nil } ?? false
            } else {
                ok = Self.present(value) != nil
            }
            if c.not == true { ok.toggle() }
            guard ok else { return nil }
        }
        return groups
    }

    /// Fills `{1}` (a group of the line pattern) and `{field:name}` placeholders.
    func fill(_ template: String, _ groups: [String], _ fields: [String: String]) -> String {
        guard template.contains("{") else { return template }
        let re = PatternCache.shared.regex(#"\{(\d+|field:[A-Za-z0-9_]+)\}"#)
        var out = template
        let ns = template as NSString
        for m in re.matches(in: template, range: NSRange(location: 0, length: ns.length)).reversed() {
            let token = ns.substring(with: m.range(at: 1))
            var value: String
            if token.hasPrefix("field:") {
                value = fields[String(token.dropFirst(6))] ?? "-"
            } else {
                let i = Int(token) ?? 0
                value = i < groups.count && !groups[i].isEmpty ? groups[i] : "-"
            }
            if value.count > 200 { value = String(value.prefix(200)) + "…" }
            out = (out as NSString).replacingCharacters(in: m.range, with: value)
        }
        return out
    }

    static func present(_ v: String?) -> String? {
        guard let v, !v.isEmpty, v != "-", v != "[]", v != "null" else { return nil }
        return v
    }

    /// The person-readable summary.
    public static func render(_ groups: [LogGroup]) -> String {
        guard !groups.isEmpty else { return "No denials recognised in these logs." }
        let total = groups.reduce(0) { $0 + $1.count }
        var out = ["\(total) denial\(total == 1 ? "" : "s") in \(groups.count) group\(groups.count == 1 ? "" : "s"):"]
        for g in groups {
            out.append("")
            out.append("\(g.count) × \(g.cause.rawValue) from \(g.source)\(g.key == "-" ? "" : " [\(g.key)]")")
            out.append("  Why: \(g.explanation)")
            if let first = g.firstSeen { out.append("  When: \(first)\(g.lastSeen.map { $0 == first ? "" : " … \($0)" } ?? "")") }
            if !g.clients.isEmpty {
                out.append("  Clients: \(g.clients.prefix(5).joined(separator: ", "))\(g.clients.count > 5 ? ", …" : "")")
            }
            if !g.paths.isEmpty { out.append("  Paths: \(g.paths.prefix(5).joined(separator: ", "))\(g.paths.count > 5 ? ", …" : "")") }
            out.append("  Example: \(g.example)")
            out += g.fix.map { "  Fix: \($0)" }
        }
        return out.joined(separator: "\n")
    }
}

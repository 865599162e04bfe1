import Foundation

/// How one log format is read: a regular expression with named groups, or JSON paths for
/// structured lines. Standard field names: `time`, `client`, `status`, `path`, `method`, `host`,
/// `user`; any other named group or JSON field is available to signatures by its name.
public struct LogFormat: Codable, Sendable {
    public var id: String
    /// A regular expression over the whole line; its named groups are the fields.
    public var regex: String?
    /// For JSON lines: field name → dotted path (`request.remote_ip`; `a|b` tries each path in turn).
    public var json: [String: String]?
    /// For JSON lines: paths that must be present for the line to be of this format.
    public var requires: [String]?
    /// For `key=value` (logfmt) lines: field name → key (`a|b` tries each key in turn).
    public var logfmt: [String: String]?
    /// Fields found anywhere in the line: field name → regex whose group 1 is the value.
    public var extract: [String: String]?
    /// Public documentation of the format.
    public var source: String
}

/// A condition on a parsed field of a log line.
public struct LogFieldCondition: Codable, Sendable {
    public var field: String
    /// Regex the value must match; absent means "present and not `-`".
    public var value: String?
    public var not: Bool?
}

/// A log line that means a denial: matched by `line` (a regex over the raw line) and/or field
/// conditions, it names the cause and the key the denials are grouped by.
public struct LogSignature: Codable, Sendable {
    public var id: String
    /// Only for lines of these formats (ids); absent: any format of this system.
    public var formats: [String]?
    /// True when the line can appear inside another system's log (ModSecurity in an Apache error
    /// log, Envoy's response details in any access log): tried on every line, before the rest.
    public var anywhere: Bool?
    /// Regex over the raw line; its numbered groups may be used as `{1}` in `key` and `explanation`.
    public var line: String?
    public var when: [LogFieldCondition]?
    /// Word groups that must all occur within `within` words of the first (word-level, robust to
    /// rephrasing: `"permission|privilege*"`, inflections match); see `WordMatcher`.
    public var words: [String]?
    public var within: Int?
    public var cause: DenialCause
    /// The grouping key: `{1}`, `{field:name}`; `-` when absent.
    public var key: String?
    public var explanation: String
    public var fix: [String]
    public var source: String
}

/// What the doctor knows about one system's logs (one file in `LogKnowledge/`).
public struct LogSystemKnowledge: Codable, Sendable {
    public var system: String
    public var name: String
    /// True for the vendor-neutral file (common access-log formats, status-code signatures): its
    /// formats are tried after every system's own.
    public var generic: Bool?
    public var formats: [LogFormat]
    public var signatures: [LogSignature]
    /// Vendor-neutral file only: the wording families the vendor-neutral reader tries, in order, on
    /// the message of a line no system's format reads (each a signature with `words`).
    public var wording: [LogSignature]?
    /// Vendor-neutral file only: the words that cancel a denial's wording (`not blocked`, `unbanned`).
    public var negation: WordNegation?
}

/// The loaded log knowledge, with compiled patterns.
public struct LogKnowledgeBase: Sendable {
    public let systems: [LogSystemKnowledge]

    /// Loads the bundled log knowledge, or the directory named by `GATEHOUSE_LOG_KNOWLEDGE_DIR`.
    public static func standard() throws -> LogKnowledgeBase {
        if let dir = ProcessInfo.processInfo.environment["GATEHOUSE_LOG_KNOWLEDGE_DIR"], !dir.isEmpty {
            return try load(directory: URL(fileURLWithPath: dir))
        }
        guard let dir = Bundle.module.url(forResource: "LogKnowledge", withExtension: nil) else {
            throw KnowledgeError(
                file: "LogKnowledge",
                reason: "the bundled log knowledge folder is missing; set GATEHOUSE_LOG_KNOWLEDGE_DIR to a directory of *.json files")
        }
        return try load(directory: dir)
    }

    /// Loads and validates every `*.json` file of a directory.
    public static func load(directory: URL) throws -> LogKnowledgeBase {
        let files: [URL]
        do {
            files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
                .filter { $0.pathExtension == "json" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
        } catch {
            throw KnowledgeError(file: directory.path, reason: "cannot list the log knowledge directory (\(error.localizedDescription))")
        }
        guard !files.isEmpty else { throw KnowledgeError(file: directory.path, reason: "no *.json log knowledge files found") }
        return try LogKnowledgeBase(files: files.map { ($0.lastPathComponent, try Data(contentsOf: $0)) })
    }

    /// Builds the log knowledge from (file name, contents) pairs, validating each.
    public init(files: [(name: String, data: Data)]) throws {
        var systems: [LogSystemKnowledge] = []
        var formatIDs: [String: String] = [:]
        for (name, data) in files {
            func fail(_ reason: String) -> KnowledgeError { KnowledgeError(file: name, reason: reason) }
            let k: LogSystemKnowledge
            do { k = try JSONDecoder().decode(LogSystemKnowledge.self, from: data) } catch {
                throw fail("cannot decode (\(error))")
            }
            func compile(_ pattern: String, _ at: String) throws {
                do { _ = try PatternCache.shared.compile(pattern) } catch {
                    throw fail("\(at) has an invalid regular expression '\(pattern)'")
                }
            }
            for f in k.formats {
                let at = "format '\(f.id)'"
                if let other = formatIDs[f.id] { throw fail("\(at) is already defined in \(other)") }
                formatIDs[f.id] = name
                guard [f.regex != nil, f.json != nil, f.logfmt != nil].filter({ $0 }).count == 1 else {
                    throw fail("\(at) must set exactly one of regex, json, logfmt")
                }
                guard f.source.hasPrefix("https://") || f.source.hasPrefix("http://") else {
                    throw fail("\(at) must cite the documentation of the format in 'source'")
                }
                if let r = f.regex { try compile(r, at) }
                for p in (f.extract ?? [:]).values { try compile(p, at) }
            }
            if k.wording != nil, k.generic != true { throw fail("only the vendor-neutral file (generic: true) has 'wording'") }
            if k.negation != nil, k.generic != true { throw fail("only the vendor-neutral file (generic: true) has 'negation'") }
            if let n = k.negation {
                guard !n.negators.isEmpty, !n.negates.isEmpty, n.within > 0 else {
                    throw fail("'negation' needs negators, the words they negate and a window")
                }
                guard n.source.hasPrefix("https://") || n.source.hasPrefix("http://") else {
                    throw fail("'negation' must cite the public documentation it was learned from in 'source'")
                }
            }
            for w in k.wording ?? [] where (w.words ?? []).isEmpty {
                throw fail("wording family '\(w.id)' needs 'words'")
            }
            for s in k.signatures + (k.wording ?? []) {
                let at = "signature '\(s.id)'"
                guard s.line != nil || !(s.when ?? []).isEmpty || !(s.words ?? []).isEmpty else {
                    throw fail("\(at) needs a 'line' pattern, 'when' conditions or 'words'")
                }
                guard s.source.hasPrefix("https://") || s.source.hasPrefix("http://") else {
                    throw fail("\(at) must cite the public documentation URL it was learned from in 'source'")
                }
                if let l = s.line { try compile(l, at) }
                for c in s.when ?? [] { if let v = c.value { try compile(v, at) } }
            }
            systems.append(k)
        }
        // Every system's own formats before the vendor-neutral ones.
        self.systems = systems.filter { $0.generic != true } + systems.filter { $0.generic == true }
        for s in self.systems {
            for sig in s.signatures {
                for f in sig.formats ?? [] where formatIDs[f] == nil {
                    throw KnowledgeError(file: s.system, reason: "signature '\(sig.id)' names unknown format '\(f)'")
                }
            }
        }
    }

    /// The vendor-neutral knowledge alone (every system's own formats and signatures switched off):
    /// how the doctor reads a format it has no file for.
    public func genericOnly() -> LogKnowledgeBase {
        LogKnowledgeBase(systems: systems.filter { $0.generic == true })
    }

    private init(systems: [LogSystemKnowledge]) { self.systems = systems }

    /// A pattern of the log knowledge, compiled when it was loaded.
    func regex(_ pattern: String) -> NSRegularExpression { PatternCache.shared.regex(pattern) }
}

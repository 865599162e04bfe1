import Foundation

/// One condition of a signature; exactly one of `header`, `status`, `body`, `json`, `cookie`, `fact`,
/// `host`, `url`, `path`, `link`, `words` is set.
public struct SignatureCondition: Codable, Sendable {
    /// Header name (case-insensitive); with `value`, a regex its value must match.
    public var header: String?
    /// Status codes this signature applies to.
    public var status: [Int]?
    /// Regex over the body.
    public var body: String?
    /// Dotted path into a JSON body; `[]` walks every array element (`error.errors[].reason`).
    public var json: String?
    /// Regex over the name of a cookie the response sets.
    public var cookie: String?
    /// A fact the classifier derives (see `DerivedFacts`).
    public var fact: String?
    /// Regex over the lowercased host of the request URL; never holds when the URL is not known.
    public var host: String?
    /// Regex over the request URL as known (scheme, host, path and query); for services that share one
    /// host and are told apart by the path (`www.googleapis.com/storage/…` is Cloud Storage,
    /// `…/youtube/…` the YouTube Data API). Never holds when the URL is not known.
    public var url: String?
    /// Regex over the path of the request URL alone: no scheme, host, query or fragment (`/admin/realms/x`
    /// for `https://h/admin/realms/x?next=/y#z`), so a path written in a query parameter or a fragment
    /// never matches. A documented path of a product is anchored at the path's start (`^/v1/sys/`) or,
    /// when the product may be mounted under a prefix, at a segment's start (`^(/[^/]+)?/remote\.php/`).
    /// Never holds when the URL is not known.
    public var path: String?
    /// Regex over the lowercased host of a URL written in the body (an error message that links to
    /// its vendor's documentation or console); holds when any linked host matches.
    public var link: String?
    /// Word groups that must all occur in the body's words within `within` words of each other.
    /// A group lists alternatives with `|`; an alternative may be several words (`rate limit`);
    /// a word matches itself and its inflections (`-s`, `-es`, `-d`, `-ed`, `-ing`), a word ending
    /// in `*` matches any word it begins. Robust to rephrasing where a regex over one sentence is not.
    public var words: [String]?
    /// How far apart (in words) the `words` groups may be; 12 when absent.
    public var within: Int?
    /// Regex the header or JSON value must match; absent means "present".
    public var value: String?
    /// Inverts the condition.
    public var not: Bool?

    var kindCount: Int {
        [
            header != nil, status != nil, body != nil, json != nil, cookie != nil, fact != nil, host != nil, url != nil, path != nil,
            link != nil, words != nil,
        ].filter { $0 }.count
    }
}

/// A pattern learned from public documentation: it identifies a system, a cause, or both.
public struct Signature: Codable, Sendable {
    public var id: String
    /// All must hold.
    public var when: [SignatureCondition]
    /// How strongly a match says "this system sent the response" (0…1).
    public var identifies: Double?
    /// The cause this match indicates, and how strongly (0…1).
    public var cause: DenialCause?
    public var strength: Double?
    /// Vendor-neutral signatures only: the broader causes this one makes precise. When the system's
    /// own cause is one of them, this cause replaces it whatever the strengths (an expired token is an
    /// invalid credential said precisely; an anonymous caller is not a caller without permission).
    public var refines: [DenialCause]?
    /// True when the match says only that the response passed through this system (a CDN's request
    /// id, a `Server` header), not that the system wrote the denial. When every identifying match of
    /// a system is such a mark and the denial is another's (a body that is not the system's own page,
    /// an application's content type, a request host that is not the system's), the system is not
    /// named: the verdict says the response was served through it (`served_through`).
    public var passage: Bool?
    /// True when the match is a shape many systems write (a plain-text `Forbidden`): it names the system
    /// only when no other system's mark (of passage or its own) is on the response, and it never makes
    /// another system's marks read as those of a front door.
    public var common: Bool?
    /// Shown to the user as the evidence line.
    public var evidence: String
    public var fix: [String]?
    /// Public documentation URL this fact was learned from.
    public var source: String
}

/// Everything the doctor knows about one system (one knowledge file).
public struct SystemKnowledge: Codable, Sendable {
    /// The `denied_by` id: a lowercase vendor-product id.
    public var system: String
    public var name: String
    public var layer: String
    /// True for the file of vendor-neutral evidence; it identifies no system.
    public var generic: Bool?
    /// True for an error format many services share: a front end they answer through (Google's
    /// `*.googleapis.com`) or a shape others copy (S3's XML errors, OpenAI's error object). When the
    /// request host is known and no `host` signature of this file matches it, the shape does not name
    /// this system: the service behind it answered.
    public var sharedFormat: Bool?
    /// Cause assumed when the system is identified but no cause signature matched.
    public var defaultCause: DenialCause?
    public var defaultFix: [String]?
    public var signatures: [Signature]

    enum CodingKeys: String, CodingKey {
        case system, name, layer, generic, signatures
        case defaultCause = "default_cause", defaultFix = "default_fix", sharedFormat = "shared_format"
    }
}

/// A knowledge file that could not be used, with the file and the reason.
public struct KnowledgeError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var reason: String
    public var description: String { "\(file): \(reason)" }
}

/// The loaded set of system knowledge files, with compiled patterns.
public struct KnowledgeBase: Sendable {
    public let systems: [SystemKnowledge]

    /// Layers a knowledge file may declare.
    public static let layers: Set<String> = [
        "cdn", "cdn_waf", "waf", "api_gateway", "service_mesh", "load_balancer", "web_server", "framework",
        "cloud_iam", "object_storage", "api_provider", "platform", "package_registry", "identity_provider", "database_service",
        "self_hosted_app", "ci_cd", "unknown",
    ]

    /// Loads the bundled knowledge, or the directory named by `GATEHOUSE_KNOWLEDGE_DIR` when set.
    public static func standard() throws -> KnowledgeBase {
        if let dir = ProcessInfo.processInfo.environment["GATEHOUSE_KNOWLEDGE_DIR"], !dir.isEmpty {
            return try load(directory: URL(fileURLWithPath: dir))
        }
        guard let dir = Bundle.module.url(forResource: "Knowledge", withExtension: nil) else {
            throw KnowledgeError(
                file: "Knowledge",
                reason: "the bundled knowledge folder is missing; set GATEHOUSE_KNOWLEDGE_DIR to a directory of *.json knowledge files")
        }
        return try load(directory: dir)
    }

    /// Loads and validates every `*.json` file in a directory; the first invalid file throws.
    public static func load(directory: URL) throws -> KnowledgeBase {
        let files: [URL]
        do {
            files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
                .filter { $0.pathExtension == "json" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
        } catch {
            throw KnowledgeError(file: directory.path, reason: "cannot list the knowledge directory (\(error.localizedDescription))")
        }
        guard !files.isEmpty else { throw KnowledgeError(file: directory.path, reason: "no *.json knowledge files found") }
        return try KnowledgeBase(files: files.map { ($0.lastPathComponent, try Data(contentsOf: $0)) })
    }

    /// Builds a knowledge base from (file name, contents) pairs, validating each.
    public init(files: [(name: String, data: Data)]) throws {
        var systems: [SystemKnowledge] = []
        var seen: [String: String] = [:]
        for (name, data) in files {
            let knowledge: SystemKnowledge
            do {
                knowledge = try JSONDecoder().decode(SystemKnowledge.self, from: data)
            } catch let DecodingError.dataCorrupted(ctx) where !ctx.codingPath.isEmpty {
                let expected =
                    ctx.codingPath.last?.stringValue.contains("cause") == true
                    ? " (expected one of: \(DenialCause.allCases.map(\.rawValue).joined(separator: ", ")))" : ""
                throw KnowledgeError(
                    file: name, reason: "invalid value at \(Self.path(ctx.codingPath)): \(ctx.debugDescription)\(expected)")
            } catch let DecodingError.dataCorrupted(ctx) {
                throw KnowledgeError(
                    file: name, reason: "not valid JSON (\(ctx.debugDescription) \(ctx.underlyingError.map { "\($0)" } ?? ""))")
            } catch let DecodingError.keyNotFound(key, ctx) {
                throw KnowledgeError(file: name, reason: "missing field '\(key.stringValue)' at \(Self.path(ctx.codingPath))")
            } catch let DecodingError.typeMismatch(_, ctx) {
                throw KnowledgeError(file: name, reason: "wrong type at \(Self.path(ctx.codingPath)): \(ctx.debugDescription)")
            } catch let DecodingError.valueNotFound(_, ctx) {
                throw KnowledgeError(file: name, reason: "null value at \(Self.path(ctx.codingPath))")
            } catch {
                throw KnowledgeError(file: name, reason: "cannot decode (\(error))")
            }
            try Self.validate(knowledge, file: name)
            if let other = seen[knowledge.system] {
                throw KnowledgeError(file: name, reason: "system id '\(knowledge.system)' is already defined in \(other)")
            }
            seen[knowledge.system] = name
            systems.append(knowledge)
        }
        self.systems = systems
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    }

    static func validate(_ k: SystemKnowledge, file: String) throws {
        func fail(_ reason: String) -> KnowledgeError { KnowledgeError(file: file, reason: reason) }
        guard k.system.range(of: "^[a-z0-9][a-z0-9-]*$", options: .regularExpression) != nil else {
            throw fail("system id '\(k.system)' must be a lowercase vendor-product id such as 'aws-s3'")
        }
        guard layers.contains(k.layer) else {
            throw fail("layer '\(k.layer)' is not one of \(layers.sorted().joined(separator: ", "))")
        }
        guard !k.signatures.isEmpty else { throw fail("has no signatures") }
        var ids = Set<String>()
        for s in k.signatures {
            let at = "signature '\(s.id)'"
            guard ids.insert(s.id).inserted else { throw fail("\(at) is defined twice") }
            guard s.source.hasPrefix("https://") || s.source.hasPrefix("http://") else {
                throw fail("\(at) must cite the public documentation URL it was learned from in 'source' (found '\(s.source)')")
            }
            guard !s.when.isEmpty else { throw fail("\(at) has an empty 'when' list") }
            guard (s.identifies ?? 0) > 0 || s.cause != nil else { throw fail("\(at) neither identifies the system nor names a cause") }
            if k.generic == true, (s.identifies ?? 0) > 0 { throw fail("\(at) is in a generic file and must not identify a system") }
            for w in [s.identifies, s.strength].compactMap({ $0 }) where !(0...1).contains(w) {
                throw fail("\(at) has weight \(w); weights are between 0 and 1")
            }
            if s.cause != nil, s.strength == nil { throw fail("\(at) names a cause but has no 'strength'") }
            if s.passage == true, s.cause != nil || (s.identifies ?? 0) == 0 {
                throw fail("\(at) is a 'passage' mark, which identifies the system and names no cause")
            }
            if s.refines != nil, k.generic != true || s.cause == nil {
                throw fail("\(at) has 'refines', which only a cause signature of the generic file may have")
            }
            for (i, c) in s.when.enumerated() {
                guard c.kindCount == 1 else {
                    throw fail(
                        "\(at) condition \(i) must set exactly one of header, status, body, json, cookie, fact, host, url, path, link, words"
                    )
                }
                if let groups = c.words {
                    guard !groups.isEmpty, groups.allSatisfy({ !WordMatcher.alternatives($0).isEmpty }) else {
                        throw fail("\(at) condition \(i) has an empty 'words' group")
                    }
                }
                if let f = c.fact, !DerivedFacts.known.contains(f) {
                    throw fail(
                        "\(at) condition \(i) names unknown fact '\(f)' (known: \(DerivedFacts.known.sorted().joined(separator: ", ")))")
                }
                for pattern in [c.body, c.value, c.cookie, c.host, c.url, c.path, c.link].compactMap({ $0 }) {
                    do { _ = try PatternCache.shared.compile(pattern, options: Self.patternOptions) } catch {
                        throw fail("\(at) condition \(i) has an invalid regular expression '\(pattern)'")
                    }
                }
            }
        }
    }

    /// The knowledge files' patterns match across lines (a body's `.` matches a newline).
    static let patternOptions: NSRegularExpression.Options = [.dotMatchesLineSeparators]

    /// A pattern of the knowledge, compiled when the knowledge was loaded.
    func regex(_ pattern: String) -> NSRegularExpression { PatternCache.shared.regex(pattern, options: Self.patternOptions) }
}

/// Every regular expression of the doctor, compiled once per pattern and options and shared: the
/// knowledge files' patterns (compiled, and so checked, when a knowledge base loads) and the
/// vendor-neutral reader's own. A compiled expression is immutable, and matching with it is safe
/// from any thread.
final class PatternCache: @unchecked Sendable {
    static let shared = PatternCache()
    private let lock = NSLock()
    private var compiled: [Key: NSRegularExpression] = [:]

    struct Key: Hashable {
        var pattern: String
        var options: UInt
    }

    /// The compiled pattern; throws when it is not a valid regular expression.
    func compile(_ pattern: String, options: NSRegularExpression.Options = []) throws -> NSRegularExpression {
        let key = Key(pattern: pattern, options: options.rawValue)
        lock.lock()
        defer { lock.unlock() }
        if let r = compiled[key] { return r }
        let r = try NSRegularExpression(pattern: pattern, options: options)
        compiled[key] = r
        return r
    }

    /// A pattern known to be valid: one of the doctor's own, or one a knowledge base checked at load.
    func regex(_ pattern: String, options: NSRegularExpression.Options = []) -> NSRegularExpression {
        try! compile(pattern, options: options)
    }
}

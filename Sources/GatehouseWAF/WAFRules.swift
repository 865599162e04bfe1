/// The families of detection; exclusions may name one to turn all its rules off.
public enum WAFDetector: String, Sendable, Codable, CaseIterable {
    case sqli, xss, lfi, rce, ssrf, `protocol`, scanner
}

/// One rule: a stable id (CRS-style ranges, so operators recognise the family), its detector, the
/// paranoia level it starts at, and its anomaly score.
public struct WAFRule: Sendable, Equatable {
    public let id: String
    public let detector: WAFDetector
    public let paranoia: Int
    public let score: Int
    public let title: String
}

/// Every rule the engine can report. Ids are Gatehouse's own; the ranges follow the OWASP CRS
/// layout (920 protocol, 913 scanners, 930 LFI, 932 RCE, 934 SSRF, 941 XSS, 942 SQLi).
public enum WAFRuleCatalogue {
    public static let critical = 5, error = 4, warning = 3, notice = 2

    public static let all: [WAFRule] = [
        .init(id: "913100", detector: .scanner, paranoia: 1, score: critical, title: "Security scanner user-agent"),
        .init(id: "913110", detector: .scanner, paranoia: 1, score: critical, title: "Security scanner request header"),
        .init(id: "920100", detector: .protocol, paranoia: 1, score: critical, title: "Content-Length together with Transfer-Encoding"),
        .init(id: "920110", detector: .protocol, paranoia: 1, score: critical, title: "Invalid Transfer-Encoding"),
        .init(id: "920120", detector: .protocol, paranoia: 1, score: critical, title: "Invalid chunk size"),
        .init(id: "920130", detector: .protocol, paranoia: 1, score: critical, title: "Invalid Content-Length"),
        .init(id: "920140", detector: .protocol, paranoia: 1, score: critical, title: "Null byte in a field"),
        .init(id: "920150", detector: .protocol, paranoia: 1, score: critical, title: "Overlong UTF-8 encoding"),
        .init(id: "920160", detector: .protocol, paranoia: 1, score: warning, title: "Invalid UTF-8"),
        .init(id: "920170", detector: .protocol, paranoia: 1, score: critical, title: "Too many arguments"),
        .init(id: "920180", detector: .protocol, paranoia: 1, score: critical, title: "Argument too long"),
        .init(id: "920190", detector: .protocol, paranoia: 1, score: critical, title: "Malformed multipart body"),
        .init(id: "920200", detector: .protocol, paranoia: 1, score: warning, title: "Body does not parse as its Content-Type"),
        .init(id: "920210", detector: .protocol, paranoia: 2, score: notice, title: "Body larger than the inspection limit"),
        .init(id: "920220", detector: .protocol, paranoia: 2, score: warning, title: "Multiple percent-encoding"),
        .init(id: "930100", detector: .lfi, paranoia: 1, score: critical, title: "Path traversal"),
        .init(id: "930110", detector: .lfi, paranoia: 1, score: warning, title: "Single path traversal segment"),
        .init(id: "930120", detector: .lfi, paranoia: 1, score: critical, title: "Sensitive operating-system file"),
        .init(id: "930125", detector: .lfi, paranoia: 1, score: warning, title: "Sensitive operating-system file named in text"),
        .init(id: "930130", detector: .lfi, paranoia: 1, score: critical, title: "Sensitive application file"),
        .init(id: "930140", detector: .lfi, paranoia: 1, score: critical, title: "Stream wrapper (php://, phar://, zip://, expect://)"),
        .init(id: "932100", detector: .rce, paranoia: 1, score: critical, title: "Unix command after a shell separator"),
        .init(id: "932110", detector: .rce, paranoia: 1, score: critical, title: "Windows command after a shell separator"),
        .init(id: "932120", detector: .rce, paranoia: 1, score: critical, title: "Shell command substitution"),
        .init(id: "932130", detector: .rce, paranoia: 1, score: critical, title: "Shellshock function definition"),
        .init(id: "932140", detector: .rce, paranoia: 1, score: critical, title: "Shell command line as the whole value"),
        .init(id: "932150", detector: .rce, paranoia: 1, score: critical, title: "JNDI / expression lookup (Log4Shell)"),
        .init(id: "932160", detector: .rce, paranoia: 1, score: critical, title: "Code execution function"),
        .init(
            id: "932170", detector: .rce, paranoia: 2, score: warning, title: "Shell command after a separator, with plain-word arguments"),
        .init(id: "934100", detector: .ssrf, paranoia: 1, score: critical, title: "Cloud metadata address"),
        .init(id: "934110", detector: .ssrf, paranoia: 1, score: critical, title: "Dangerous URL scheme"),
        .init(id: "934120", detector: .ssrf, paranoia: 1, score: critical, title: "URL to a loopback, private or obfuscated address"),
        .init(id: "934125", detector: .ssrf, paranoia: 1, score: warning, title: "Internal URL mentioned in text"),
        .init(id: "934130", detector: .ssrf, paranoia: 2, score: warning, title: "URL to a public IP literal"),
        .init(id: "941100", detector: .xss, paranoia: 1, score: critical, title: "Script tag"),
        .init(id: "941105", detector: .xss, paranoia: 1, score: warning, title: "Script or embedding tag named in text"),
        .init(id: "941110", detector: .xss, paranoia: 1, score: critical, title: "Event-handler attribute"),
        .init(id: "941120", detector: .xss, paranoia: 1, score: critical, title: "javascript: or vbscript: URL"),
        .init(id: "941130", detector: .xss, paranoia: 1, score: critical, title: "data: URL carrying markup or script"),
        .init(id: "941140", detector: .xss, paranoia: 1, score: critical, title: "Embedding or document-altering tag"),
        .init(id: "941150", detector: .xss, paranoia: 1, score: critical, title: "JavaScript string breakout with a sink"),
        .init(id: "941160", detector: .xss, paranoia: 1, score: critical, title: "Template expression injection"),
        .init(id: "941170", detector: .xss, paranoia: 1, score: critical, title: "Script in CSS"),
        .init(id: "941180", detector: .xss, paranoia: 1, score: warning, title: "JavaScript sink call"),
        .init(id: "942100", detector: .sqli, paranoia: 1, score: critical, title: "SQL boolean or tautology after a breakout"),
        .init(id: "942110", detector: .sqli, paranoia: 1, score: critical, title: "SQL comment truncation after a string breakout"),
        .init(id: "942120", detector: .sqli, paranoia: 1, score: critical, title: "SQL UNION SELECT"),
        .init(id: "942130", detector: .sqli, paranoia: 1, score: critical, title: "Stacked SQL statement"),
        .init(id: "942140", detector: .sqli, paranoia: 1, score: critical, title: "SQL time-delay function"),
        .init(id: "942150", detector: .sqli, paranoia: 1, score: critical, title: "SQL error-based or fingerprinting function"),
        .init(
            id: "942160", detector: .sqli, paranoia: 1, score: critical,
            title: "SQL clause after a breakout (ORDER BY, GROUP BY, HAVING, INTO)"),
        .init(id: "942170", detector: .sqli, paranoia: 1, score: warning, title: "Complete SQL statement in a field"),
        .init(id: "942180", detector: .sqli, paranoia: 2, score: warning, title: "String breakout followed by an SQL operator"),
    ]

    static let byID: [String: WAFRule] = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0) })

    /// The rule with this id, if any.
    public static func rule(_ id: String) -> WAFRule? { byID[id] }
}

/// One thing that fired: which rule, where, on what.
public struct WAFFinding: Sendable, Equatable, Codable {
    public var ruleID: String
    public var detector: WAFDetector
    /// The field, e.g. `query.id`, `body.comment`, `header.user-agent`, `cookie.session`, `path`.
    public var field: String
    /// The decoded text that matched, shortened to at most 80 characters.
    public var excerpt: String
    public var score: Int
    /// What the rule recognised, e.g. "tautology: OR 1=1 after closing a ' string".
    public var message: String
    /// Which form of the field matched: "decoded" or "raw".
    public var form: String

    public init(
        ruleID: String, detector: WAFDetector, field: String, excerpt: String, score: Int, message: String, form: String = "decoded"
    ) {
        self.ruleID = ruleID
        self.detector = detector
        self.field = field
        self.excerpt = excerpt
        self.score = score
        self.message = message
        self.form = form
    }
}

/// A finding that an exclusion turned off, with the exclusion that did.
public struct WAFExcludedFinding: Sendable, Equatable {
    public var finding: WAFFinding
    public var exclusion: WAFExclusion
}

/// Everything the engine concluded about one request.
public struct WAFReport: Sendable, Equatable {
    /// Findings that count toward the score.
    public var findings: [WAFFinding]
    /// Findings an exclusion turned off.
    public var excluded: [WAFExcludedFinding]
    public var total: Int
    public var threshold: Int
    public var paranoia: Int
    /// Fields inspected (for the operator's trace).
    public var fieldsInspected: Int

    public var blocked: Bool { total >= threshold }
    /// Distinct rule ids that count, in order of first appearance.
    public var ruleIDs: [String] {
        var seen = Set<String>()
        return findings.map(\.ruleID).filter { seen.insert($0).inserted }
    }
    /// Distinct exclusions that applied, as sentences.
    public var appliedExclusions: [String] {
        var seen = Set<String>()
        return excluded.map(\.exclusion.summary).filter { seen.insert($0).inserted }
    }
}

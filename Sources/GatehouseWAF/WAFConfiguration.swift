/// How the WAF inspects requests: paranoia level, anomaly threshold, exclusions and limits.
///
/// Defaults follow the OWASP CRS conventions operators already know: paranoia level 1, an inbound
/// anomaly threshold of 5 (one critical finding blocks), findings scored critical 5, error 4,
/// warning 3, notice 2.
public struct WAFConfiguration: Sendable, Equatable, Codable {
    /// 1 (default, few false positives) to 4 (most rules, most false positives).
    public var paranoia: Int
    /// Anomaly score at which a request is blocked. Default 5.
    public var threshold: Int
    /// Rules or detectors turned off for some fields, optionally on some routes only.
    public var exclusions: [WAFExclusion]
    /// Size limits; exceeding one is itself a finding (protocol detector).
    public var limits: WAFLimits

    public init(paranoia: Int = 1, threshold: Int = 5, exclusions: [WAFExclusion] = [], limits: WAFLimits = WAFLimits()) {
        self.paranoia = paranoia
        self.threshold = threshold
        self.exclusions = exclusions
        self.limits = limits
    }

    enum CodingKeys: String, CodingKey { case paranoia, threshold, exclusions, limits }

    /// Decodes the configuration's snake_case shape; absent keys keep their defaults and other keys
    /// (such as `type: waf`) are ignored.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            paranoia: try c.decodeIfPresent(Int.self, forKey: .paranoia) ?? 1,
            threshold: try c.decodeIfPresent(Int.self, forKey: .threshold) ?? 5,
            exclusions: try c.decodeIfPresent([WAFExclusion].self, forKey: .exclusions) ?? [],
            limits: try c.decodeIfPresent(WAFLimits.self, forKey: .limits) ?? WAFLimits())
    }

    /// Every problem with the values, as sentences naming the key, the value and what was expected.
    /// Empty when the configuration is usable.
    public func validate() -> [String] {
        var problems: [String] = []
        if !(1...4).contains(paranoia) {
            problems.append("paranoia is \(paranoia); expected 1, 2, 3 or 4")
        }
        if threshold < 1 {
            problems.append("threshold is \(threshold); expected a positive anomaly score (5 blocks on one critical finding)")
        }
        for (i, ex) in exclusions.enumerated() {
            let at = "exclusions[\(i)]"
            switch (ex.rule, ex.detector) {
            case (nil, nil):
                problems.append("\(at) names neither a rule nor a detector; expected `rule: \"942100\"` or `detector: sqli`")
            case (.some, .some):
                problems.append("\(at) names both a rule and a detector; expected one of them")
            case (.some(let r), nil):
                if WAFRuleCatalogue.rule(r) == nil {
                    problems.append(
                        "\(at).rule \"\(r)\" is not a WAF rule id; known ids: \(WAFRuleCatalogue.all.map(\.id).joined(separator: ", "))")
                }
            case (nil, .some(let d)):
                if WAFDetector(rawValue: d) == nil {
                    problems.append(
                        "\(at).detector \"\(d)\" is not a detector; expected one of \(WAFDetector.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
            }
            if let f = ex.field {
                let head = f.split(separator: ".", maxSplits: 1).first.map(String.init) ?? f
                let heads = ["query", "body", "header", "cookie", "path"]
                if f.isEmpty || !(heads.contains(head) || f.hasPrefix("*")) {
                    problems.append(
                        "\(at).field \"\(f)\" does not name a field; expected query.NAME, body.NAME, header.NAME, cookie.NAME or path (globs with * allowed)"
                    )
                }
            }
            if let routes = ex.routes, routes.isEmpty {
                problems.append("\(at).routes is empty; leave it out to apply the exclusion on every route")
            }
        }
        if limits.maxArgs < 1 { problems.append("limits.max_args is \(limits.maxArgs); expected at least 1") }
        if limits.maxArgLength < 1 { problems.append("limits.max_arg_length is \(limits.maxArgLength); expected at least 1 byte") }
        if limits.maxBodyInspect < 0 { problems.append("limits.max_body_inspect is \(limits.maxBodyInspect); expected 0 or more bytes") }
        return problems
    }
}

/// "Rule X (or detector Y) off for field Z (on routes R)": the tuning knob for false positives.
public struct WAFExclusion: Sendable, Equatable, Codable {
    /// A rule id such as "942100". Exactly one of `rule` and `detector` is set.
    public var rule: String?
    /// A detector name such as "sqli": every rule of that detector.
    public var detector: String?
    /// The field, e.g. `query.q`, `body.comment`, `header.user-agent`, `cookie.session`; `*`
    /// matches any run of characters (`body.*`). Nil: every field.
    public var field: String?
    /// Route names the exclusion applies on. Nil: every route.
    public var routes: [String]?

    public init(rule: String? = nil, detector: String? = nil, field: String? = nil, routes: [String]? = nil) {
        self.rule = rule
        self.detector = detector
        self.field = field
        self.routes = routes
    }

    /// How the exclusion reads in a trace: "rule 942100 off for query.q on search".
    public var summary: String {
        var s = rule.map { "rule \($0)" } ?? detector.map { "detector \($0)" } ?? "nothing"
        s += " off for " + (field ?? "every field")
        if let routes { s += " on " + routes.joined(separator: ", ") }
        return s
    }

    func matches(ruleID: String, detector det: WAFDetector, field name: String, route: String) -> Bool {
        if let rule, rule != ruleID { return false }
        if let detector, detector != det.rawValue { return false }
        if let routes, !routes.contains(route) { return false }
        if let field, !Glob.matches(pattern: field, name) { return false }
        return true
    }
}

/// Size limits for inspection.
public struct WAFLimits: Sendable, Equatable, Codable {
    /// Most arguments (query + body fields + cookies) a request may carry. Default 255.
    public var maxArgs: Int
    /// Longest argument value in bytes. Default 16384.
    public var maxArgLength: Int
    /// Body bytes inspected; the rest is not parsed. Default 131072 (128 KiB).
    public var maxBodyInspect: Int

    public init(maxArgs: Int = 255, maxArgLength: Int = 16384, maxBodyInspect: Int = 131_072) {
        self.maxArgs = maxArgs
        self.maxArgLength = maxArgLength
        self.maxBodyInspect = maxBodyInspect
    }

    enum CodingKeys: String, CodingKey {
        case maxArgs = "max_args", maxArgLength = "max_arg_length", maxBodyInspect = "max_body_inspect"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = WAFLimits()
        self.init(
            maxArgs: try c.decodeIfPresent(Int.self, forKey: .maxArgs) ?? d.maxArgs,
            maxArgLength: try c.decodeIfPresent(Int.self, forKey: .maxArgLength) ?? d.maxArgLength,
            maxBodyInspect: try c.decodeIfPresent(Int.self, forKey: .maxBodyInspect) ?? d.maxBodyInspect)
    }
}

/// Case-insensitive `*` globs over field names.
enum Glob {
    static func matches(pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.lowercased().utf8), t = Array(text.lowercased().utf8)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == UInt8(ascii: "*") {
                star = pi; mark = ti; pi += 1
            } else if pi < p.count, p[pi] == t[ti] {
                pi += 1; ti += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}

// The OWASP Core Rule Set as a policy check: the `crs:` block of a `type: waf` policy. The rule
// files are read once, when the configuration is read; every request runs phases 1 and 2 over
// the buffered request, and an interrupting rule (CRS's 949110 once the inbound anomaly score
// reaches the threshold, or a user rule that denies) is a 403 `waf_blocked` that names the rules.

import Foundation
import GatehouseCore
import GatehouseWAF

/// Where the Core Rule Set comes from and how it is tuned: what a ModSecurity or Coraza user
/// writes in `modsecurity.conf` + `crs-setup.conf`, as configuration keys.
public struct CRSSettings: Sendable, Equatable {
    /// `tx.paranoia_level`: 1 (default) to 4.
    public var paranoia: Int
    /// `tx.inbound_anomaly_score_threshold`: the anomaly score at which a request is blocked
    /// (default 5: one critical rule).
    public var anomalyThreshold: Int
    /// `crs-setup.conf`, loaded first (Debian's by default). Nil: none.
    public var setup: String?
    /// Rule files, in order; `*` globs in the last path component (`rules/*.conf`).
    public var rules: [String]
    /// Files loaded before the rules (CRS's `REQUEST-900-EXCLUSION-RULES-BEFORE-CRS`: `ctl:`
    /// exclusions that must run before the rules they change).
    public var includeBefore: [String]
    /// Files loaded after the rules (CRS's `RESPONSE-999-EXCLUSION-RULES-AFTER-CRS`:
    /// `SecRuleRemoveById`, `SecRuleUpdateTargetById`, your own rules).
    public var include: [String]
    /// Whether the built-in tokenizers give a second opinion on the SQL injection (942xxx) and XSS
    /// (941xxx) rules: a variable such a rule matched that the tokenizer does not flag scores
    /// `secondOpinionScore` instead of the rule's severity (see `CRSCheck.inspect`).
    public var secondOpinion: Bool
    /// What a 941/942 match the tokenizer does not confirm scores (default 3, CRS's warning).
    public var secondOpinionScore: Int
    /// Which variables the second opinion reads (default: argument values only).
    public var secondOpinionVariables: SecondOpinionVariables
    /// Whether command injection rules (932xxx) get the second opinion of the built-in shell-word
    /// reader too.
    public var secondOpinionCommands: Bool

    /// The variables whose 941/942 matches the tokenizers may lower.
    public enum SecondOpinionVariables: String, Sendable, Equatable {
        /// Values of query, form and JSON arguments (`ARGS:name`): free text.
        case arguments
        /// Every variable: argument names, headers, cookies, the path as well.
        case all
    }

    /// Debian's `modsecurity-crs` package.
    public static let debianSetup = "/etc/modsecurity/crs/crs-setup.conf"
    public static let debianRules = "/usr/share/modsecurity-crs/rules/*.conf"

    public init(
        paranoia: Int = 1, anomalyThreshold: Int = 5, setup: String? = CRSSettings.debianSetup,
        rules: [String] = [CRSSettings.debianRules], includeBefore: [String] = [], include: [String] = [],
        secondOpinion: Bool = false, secondOpinionScore: Int = 3, secondOpinionVariables: SecondOpinionVariables = .arguments,
        secondOpinionCommands: Bool = false
    ) {
        self.secondOpinionVariables = secondOpinionVariables
        self.secondOpinionCommands = secondOpinionCommands
        self.secondOpinion = secondOpinion
        self.secondOpinionScore = secondOpinionScore
        self.paranoia = paranoia
        self.anomalyThreshold = anomalyThreshold
        self.setup = setup
        self.rules = rules
        self.includeBefore = includeBefore
        self.include = include
    }

    /// What loading found that the engine does not do (the rest still runs), as `file:line: what`.
    public struct Loaded: Sendable {
        public let check: @Sendable (_ id: String) -> CRSCheck
        public let warnings: [String]
        public let ruleCount: Int
    }

    /// A rule file that cannot be used: the first problem with its `file:line`.
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads every file (relative paths against `baseDirectory`) and compiles the rules.
    /// Throws on a file that cannot be read, a regex that does not compile or a directive that is
    /// wrong as written; what the engine does not implement comes back as warnings.
    public func load(baseDirectory: String) throws(LoadError) -> Loaded {
        func absolute(_ p: String) -> String {
            p.hasPrefix("/") ? p : (baseDirectory as NSString).appendingPathComponent(p)
        }
        var loader = SecLangLoader()
        var ruleFiles = Set<String>()
        do throws(SecLangError) {
            // ModSecurity's recommended configuration: XML and JSON bodies go to their parsers.
            try loader.load(text: CRSSettings.bodyProcessors, file: "<gatehouse: body processors>")
            if let setup { try loader.load(file: absolute(setup)) }
            try loader.load(text: tuning, file: "<gatehouse: crs paranoia and threshold>")
            for (i, pattern) in (includeBefore + rules + include).enumerated() {
                let path = absolute(pattern)
                let files = path.contains("*") ? SecLangLoader.expand(path, relativeTo: path) : [path]
                if files.isEmpty { throw SecLangError(.missingFile, "\(path) names no file") }
                let isRuleFile = i >= includeBefore.count && i < includeBefore.count + rules.count
                for file in files {
                    if isRuleFile { ruleFiles.insert(file) }
                    try loader.load(file: file)
                }
            }
        } catch {
            throw LoadError(description: error.message)
        }
        let set = loader.build()
        if let wrong = set.diagnostics.first(where: { $0.code != .unsupported }) {
            throw LoadError(description: wrong.description)
        }
        let engine = SecLangEngine(rules: set)
        // Each item of the operator's own files; for the rule set itself (Debian's CRS reports about
        // a hundred: response-phase rules, @geoLookup, @rbl) one line with a count and examples.
        var warnings = set.diagnostics.filter { !ruleFiles.contains($0.location.file) }.map(\.description)
        let inRules = set.diagnostics.filter { ruleFiles.contains($0.location.file) }
        if !inRules.isEmpty {
            warnings.append(
                "\(inRules.count) rule file items are not run by this engine, e.g. "
                    + inRules.prefix(3).map(\.description).joined(separator: "; "))
        }
        let settings = self
        return Loaded(
            check: { id in CRSCheck(id: id, engine: engine, settings: settings) }, warnings: warnings, ruleCount: set.ruleCount)
    }

    /// The `SecAction`s that set the paranoia level and threshold, loaded after `crs-setup.conf`
    /// (whose own 900000 and 900110 are commented out as shipped). REQUEST-901 keeps values that
    /// are already set.
    var tuning: String {
        """
        SecAction "id:9000001,phase:1,pass,nolog,t:none,setvar:tx.paranoia_level=\(paranoia)"
        SecAction "id:9001101,phase:1,pass,nolog,t:none,setvar:tx.inbound_anomaly_score_threshold=\(anomalyThreshold)"
        """
    }

    static let bodyProcessors = """
        SecRule REQUEST_HEADERS:Content-Type "(?:application(?:/soap\\+|/)|text/)xml" \
            "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
        SecRule REQUEST_HEADERS:Content-Type "application/json" \
            "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
        """
}

/// One rule that contributed to a block, as the caller, the log and `gatehouse explain` see it.
public struct CRSFinding: Sendable, Equatable {
    public let ruleID: Int
    public let message: String
    /// The variable that matched, `ARGS:q`.
    public let variable: String
    /// `t:` names applied before the operator, in order.
    public let transformations: [String]
    /// The value the operator matched (after the transformations), at most 120 bytes: for the log
    /// and for callers on routes with `exposure: detailed` only.
    public let excerpt: String
    public let severity: String?
    /// Set when the built-in tokenizer did not confirm this match and it scored less than its
    /// severity (`CRSSettings.secondOpinion`).
    public var secondOpinion: CRSSecondOpinion? = nil

    /// `942100 ARGS:q (t:urlDecodeUni,lowercase): SQL Injection Attack Detected via libinjection`,
    /// then `; regex hit, tokenizer found no SQL: scored 2 not 5` when the second opinion lowered it.
    public var summary: String {
        "\(ruleID) \(variable)" + (transformations.isEmpty ? "" : " (t:" + transformations.joined(separator: ",") + ")") + ": \(message)"
            + (secondOpinion.map { "; \($0)" } ?? "")
    }
}

/// A Core Rule Set match the built-in tokenizer did not confirm, and what it scored instead.
public struct CRSSecondOpinion: Sendable, Equatable, CustomStringConvertible {
    /// `SQL` (942xxx, the SQL tokenizer), `XSS` (941xxx, the HTML tokenizer) or `command`
    /// (932xxx, the shell-word reader).
    public let family: String
    /// What the rule's severity scores in CRS.
    public let crsScore: Int
    /// What it scored here.
    public let score: Int

    /// `regex hit, tokenizer found no SQL: scored 2 not 5`.
    public var description: String { "regex hit, tokenizer found no \(family): scored \(score) not \(crsScore)" }
}

/// What the rules made of one request.
public struct CRSReport: Sendable {
    /// Rules that scored or denied, in the order they ran.
    public let findings: [CRSFinding]
    /// The inbound anomaly score the decision was taken on: `tx.anomaly_score` at the end, less
    /// what the second opinion took off.
    public let score: Int
    /// The rule that stopped the request (949110 for the anomaly threshold), nil when allowed.
    public let interruptedBy: Int?
    /// `tx.anomaly_score` as CRS alone counted it (equal to `score` without a second opinion).
    public let crsScore: Int
    /// The rule that would have stopped the request under CRS alone.
    public let crsInterruptedBy: Int?
    public var blocked: Bool { interruptedBy != nil }
    public var crsBlocked: Bool { crsInterruptedBy != nil }
    /// Whether the second opinion lowered a score.
    public var rescored: Bool { score != crsScore || findings.contains { $0.secondOpinion != nil } }
}

/// The Core Rule Set (or any SecLang rule set) run by the `waf` policy.
///
/// **Second opinion.** With `settings.secondOpinion`, every variable a CRS SQL injection rule
/// (942xxx) or XSS rule (941xxx) matched is read again by the project's tokenizer-based detector
/// (`SQLInjectionDetector`, `XSSDetector`, over the value after the rule's transformations). A
/// match the tokenizer does not flag scores `secondOpinionScore` instead of its severity's score.
/// When CRS's anomaly evaluation (949110, or 949111 with early blocking) stopped the request and
/// the lowered total is below the threshold, the request is run again without that rule, so the
/// rules after it (a user's own `deny`) still decide as they would have. Other rule families and
/// any other interruption are CRS's own.
public struct CRSCheck: PolicyCheck {
    public let id: String
    public let type = "waf"
    public let settings: CRSSettings
    let engine: SecLangEngine
    public var needsBody: Bool { true }

    /// CRS's anomaly evaluation: the rules a lowered total can overrule.
    static let anomalyRules: Set<Int> = [949110, 949111]

    init(id: String, engine: SecLangEngine, settings: CRSSettings) {
        self.id = id
        self.engine = engine
        self.settings = settings
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        let report = inspect(request)
        guard let stop = report.interruptedBy else {
            var note = "CRS score \(report.score) < \(settings.anomalyThreshold) (PL\(settings.paranoia))"
            if report.crsBlocked {
                note += "; second opinion: CRS alone scored \(report.crsScore) and would have blocked (\(report.crsInterruptedBy ?? 0))"
            }
            if !report.findings.isEmpty {
                note +=
                    "; below threshold: "
                    + report.findings.map { f in
                        "\(f.ruleID) in \(f.variable)" + (f.secondOpinion.map { " (\($0))" } ?? "")
                    }.joined(separator: ", ")
            }
            return .allow(note: note)
        }
        return .deny(Self.denial(report: report, stopRule: stop, settings: settings, request: request))
    }

    /// Runs the rules over `request` and says which fired (`gatehouse waf test` shows this).
    public func inspect(_ request: PolicyRequest) -> CRSReport {
        let secLang = Self.secLangRequest(request)
        var outcome = engine.evaluate(secLang)
        let crsScore = Self.anomalyScore(outcome)
        let crsStop = outcome.interruption?.ruleID
        guard settings.secondOpinion else {
            return CRSReport(
                findings: Self.findings(outcome), score: crsScore, interruptedBy: crsStop, crsScore: crsScore, crsInterruptedBy: crsStop)
        }
        var (findings, reduction) = Self.findings(outcome, settings: settings)
        var removed: [ClosedRange<Int>] = []
        // The anomaly evaluation blocked on a total the second opinion lowers below the threshold:
        // run again without it, so the rules after it (and a later anomaly evaluation) still run.
        while let stop = outcome.interruption?.ruleID, Self.anomalyRules.contains(stop), removed.count < Self.anomalyRules.count,
            Self.anomalyScore(outcome) - reduction < settings.anomalyThreshold
        {
            removed.append(stop...stop)
            outcome = engine.evaluate(secLang, removing: removed)
            (findings, reduction) = Self.findings(outcome, settings: settings)
        }
        return CRSReport(
            findings: findings, score: Self.anomalyScore(outcome) - reduction, interruptedBy: outcome.interruption?.ruleID,
            crsScore: crsScore, crsInterruptedBy: crsStop)
    }

    static func anomalyScore(_ outcome: SecLangOutcome) -> Int {
        outcome.txValue("anomaly_score").flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
    }

    /// The denial: rule ids, messages, variables and transformations for every caller; the matched
    /// excerpts in `operatorDetail` (the log, and the body only under `exposure: detailed`).
    static func denial(report: CRSReport, stopRule: Int, settings: CRSSettings, request: PolicyRequest) -> Denial {
        let findings = report.findings
        let score = report.score
        let ids = orderedUnique(findings.map { "\($0.ruleID)" } + ["\(stopRule)"])
        let crs = report.rescored ? ", CRS alone \(report.crsScore)" : ""
        let detail =
            "\(request.summary) scored \(score) (threshold \(settings.anomalyThreshold), PL\(settings.paranoia)\(crs)): "
            + (findings.isEmpty ? "rule \(stopRule) denied" : findings.map(\.summary).joined(separator: "; "))
        // `942100 "ARGS:id" matched "…"`: both strings JSON-quoted, so a variable's name (the
        // request's) cannot pose as another item; `gatehouse waf exclude` reads them back.
        let op = findings.map { f in
            var item = Array("\(f.ruleID) ".utf8)
            JSONString.appendQuoted(f.variable, to: &item)
            item += Array(" matched ".utf8)
            JSONString.appendQuoted(f.excerpt, to: &item)
            return String(decoding: item, as: UTF8.self)
        }
        return Denial(
            code: .wafBlocked, status: 403, detail: detail,
            required: ["inbound anomaly score below \(settings.anomalyThreshold)"],
            presented: ["inbound anomaly score \(score)" + (report.rescored ? " (CRS alone \(report.crsScore))" : "")],
            operatorDetail: op.isEmpty ? nil : op.joined(separator: " | "),
            extensions: [
                "rule_ids": ids,
                "rules": findings.map(\.summary),
                "variables": orderedUnique(findings.map(\.variable)),
            ]
        )
    }

    /// Rules that scored or denied: logged matches with a severity, the blocking evaluation's
    /// own rules (949xxx, 980xxx) left out.
    static func findings(_ outcome: SecLangOutcome) -> [CRSFinding] {
        outcome.matches.compactMap { m in
            guard counts(m, in: outcome) else { return nil }
            return finding(m, variable: m.variable, value: m.value)
        }
    }

    /// The findings with the second opinion: a 941/942 match whose variables the tokenizer does
    /// not all confirm becomes one finding per variable, each unconfirmed one lowered to `score`;
    /// `reduction` is what the lowering takes off CRS's total.
    static func findings(_ outcome: SecLangOutcome, settings: CRSSettings) -> (findings: [CRSFinding], reduction: Int) {
        var out: [CRSFinding] = []
        var reduction = 0
        let secondOpinionScore = settings.secondOpinionScore
        let argumentsOnly = settings.secondOpinionVariables == .arguments
        func lowered(_ family: String, _ hit: RuleHit) -> Bool {
            reads(hit.variable, argumentsOnly: argumentsOnly) && !confirms(family, hit.value)
        }
        for m in outcome.matches where counts(m, in: outcome) {
            guard let family = family(of: m.id, commands: settings.secondOpinionCommands),
                let crsScore = severityScore(m.severity, outcome: outcome), crsScore > secondOpinionScore,
                m.hits.contains(where: { lowered(family, $0) })
            else {
                out.append(finding(m, variable: m.variable, value: m.value))
                continue
            }
            for hit in m.hits {
                var f = finding(m, variable: hit.variable, value: hit.value)
                if lowered(family, hit) {
                    f.secondOpinion = CRSSecondOpinion(family: family, crsScore: crsScore, score: secondOpinionScore)
                    reduction += crsScore - secondOpinionScore
                }
                out.append(f)
            }
        }
        return (out, reduction)
    }

    static func counts(_ m: RuleMatch, in outcome: SecLangOutcome) -> Bool {
        guard m.logged, !(949000..<950000).contains(m.id), !(980000..<981000).contains(m.id) else { return false }
        return m.severity != nil || m.id == outcome.interruption?.ruleID
    }

    static func finding(_ m: RuleMatch, variable: String, value: [UInt8]) -> CRSFinding {
        var excerpt = String(decoding: value.prefix(120), as: UTF8.self)
        if value.count > 120 { excerpt += "…" }
        return CRSFinding(
            ruleID: m.id, message: m.message, variable: variable, transformations: m.transformations.filter { $0 != "none" },
            excerpt: excerpt, severity: m.severity)
    }

    /// The built-in detector that can confirm a rule: CRS's SQL injection, XSS and (with
    /// `commands`) command injection rule files.
    static func family(of ruleID: Int, commands: Bool) -> String? {
        switch ruleID {
        case 942000..<943000: "SQL"
        case 941000..<942000: "XSS"
        case 932000..<933000 where commands: "command"
        default: nil
        }
    }

    static func confirms(_ family: String, _ value: [UInt8]) -> Bool {
        switch family {
        case "SQL": SQLInjectionDetector.detects(value)
        case "XSS": XSSDetector.detects(value)
        default: CommandInjectionDetector.detects(value)
        }
    }

    /// Whether the second opinion reads `variable`: the values of arguments (query, form and JSON
    /// fields: `ARGS:name`), the free text the tokenizers were written for, or every variable.
    static func reads(_ variable: String, argumentsOnly: Bool) -> Bool {
        !argumentsOnly || variable.hasPrefix("ARGS:") || variable.hasPrefix("ARGS_GET:") || variable.hasPrefix("ARGS_POST:")
    }

    /// What a severity scores in CRS: `tx.critical_anomaly_score` and its siblings as
    /// REQUEST-901 (or `crs-setup.conf`) set them. Severities are names or syslog numbers.
    static func severityScore(_ severity: String?, outcome: SecLangOutcome) -> Int? {
        let name: String
        switch severity?.uppercased() {
        case "CRITICAL", "2": name = "critical"
        case "ERROR", "3": name = "error"
        case "WARNING", "4": name = "warning"
        case "NOTICE", "5": name = "notice"
        default: return nil
        }
        return outcome.txValue("\(name)_anomaly_score").flatMap { Int(String(decoding: $0, as: UTF8.self)) }
    }

    /// The request as the rule engine reads it: the target as sent, every header, the buffered body.
    static func secLangRequest(_ r: PolicyRequest) -> SecLangRequest {
        var target = r.path
        if let q = r.query { target += "?" + q }
        var headers = r.headers.map { (name: Array($0.name.utf8), value: Array($0.value.utf8)) }
        // The data plane keeps the authority and the framing it checked apart; the rules expect
        // them as headers (920280 Host, 920180 Content-Length).
        if !r.host.isEmpty, !r.headers.contains("Host") { headers.insert((name: Array("Host".utf8), value: Array(r.host.utf8)), at: 0) }
        if let length = r.contentLength, !r.headers.contains("Content-Length"), !r.headers.contains("Transfer-Encoding") {
            headers.append((name: Array("Content-Length".utf8), value: Array(String(length).utf8)))
        }
        return SecLangRequest(
            method: r.method, target: Array(target.utf8), headers: headers, body: r.body ?? [],
            remoteAddress: r.clientAddress?.description ?? "0.0.0.0")
    }

    static func orderedUnique(_ xs: [String]) -> [String] {
        var seen = Set<String>()
        return xs.filter { seen.insert($0).inserted }
    }
}

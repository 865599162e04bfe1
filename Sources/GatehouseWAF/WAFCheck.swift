import GatehouseCore

/// The WAF as a policy check: denies with 403 `waf_blocked` once the anomaly score reaches the
/// threshold. Detect mode is the chain's shadow mode, so this check always denies when over.
public struct WAFCheck: PolicyCheck {
    public let id: String
    public let type = "waf"
    public let engine: WAFEngine
    public var needsBody: Bool { true }

    public init(id: String, configuration: WAFConfiguration = WAFConfiguration()) {
        self.id = id
        self.engine = WAFEngine(configuration: configuration)
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        let report = engine.inspect(request)
        if report.blocked {
            return .deny(Self.denial(for: report, request: request))
        }
        return .allow(note: Self.allowNote(report))
    }

    /// The denial for a blocking report. The caller sees rule ids, fields and the score; the
    /// matched text stays in `operatorDetail`.
    public static func denial(for report: WAFReport, request: PolicyRequest) -> Denial {
        let ids = report.ruleIDs
        let where_ = orderedUnique(report.findings.map { "\($0.ruleID) \($0.detector.rawValue) in \($0.field)" })
        let detail = "\(request.summary) scored \(report.total) (threshold \(report.threshold)): " + where_.joined(separator: "; ")
        var op = report.findings.map { f in
            "\(f.ruleID) \(f.detector.rawValue) \(f.field) score \(f.score): \(f.message); matched \"\(f.excerpt)\""
                + (f.form == "decoded" ? "" : " (\(f.form))")
        }
        if !report.appliedExclusions.isEmpty {
            op.append("exclusions applied: " + report.appliedExclusions.joined(separator: "; "))
        }
        return Denial(
            code: .wafBlocked, status: 403, detail: detail,
            required: ["anomaly score below \(report.threshold)"],
            presented: ["anomaly score \(report.total)"],
            operatorDetail: op.joined(separator: " | "),
            extensions: ["rule_ids": ids]
        )
    }

    /// What the trace shows for an allowed request: score, sub-threshold findings, exclusions.
    public static func allowNote(_ report: WAFReport) -> String {
        var parts = ["score \(report.total) < \(report.threshold) (PL\(report.paranoia), \(report.fieldsInspected) fields)"]
        if !report.findings.isEmpty {
            parts.append(
                "below threshold: "
                    + report.findings.map { "\($0.ruleID) \($0.detector.rawValue) in \($0.field) (+\($0.score))" }.joined(separator: ", "))
        }
        if !report.excluded.isEmpty {
            parts.append(
                "exclusions applied: "
                    + report.excluded.map { "\($0.exclusion.summary) [\($0.finding.ruleID) in \($0.finding.field)]" }.joined(
                        separator: ", "))
        }
        return parts.joined(separator: "; ")
    }

    static func orderedUnique(_ xs: [String]) -> [String] {
        var seen = Set<String>()
        return xs.filter { seen.insert($0).inserted }
    }
}

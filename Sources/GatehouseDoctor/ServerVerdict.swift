import Foundation

/// The verdict of the nginx or Apache analyzer for one URL path.
public struct ServerVerdict: Sendable, Equatable {
    /// What the server will answer (403 when denied, 200 when nothing blocks, 404 when missing).
    public var status: Int
    public var cause: DenialCause?
    /// The directive that decides, as written (e.g. `deny all;`), when a directive decides.
    public var directive: String?
    /// Where that directive is (file:line), or the file-system path at fault.
    public var location: String?
    public var explanation: String
    public var fix: [String]
    /// The steps the analyzer took, for the report.
    public var trace: [String]

    /// The doctor's contract form.
    public func diagnosis(server: String) -> Diagnosis {
        var evidence: [String] = []
        if let d = directive {
            evidence.append("directive: \(d)\(location.map { " at \($0)" } ?? "")")
        } else if let l = location {
            evidence.append("path: \(l)")
        }
        evidence.append(explanation)
        return Diagnosis(
            deniedBy: status == 403 || status == 401 ? server : "none", layer: "web_server", cause: cause ?? .unknown,
            confidence: cause == nil ? 0.5 : 0.95, evidence: evidence, fix: fix, alternatives: [])
    }

    /// The person-readable report.
    public func render(server: String, path: String) -> String {
        var out: [String] = []
        if let c = cause {
            out.append("What happens: \(server) answers \(status) for \(path)")
            out.append("Why:          \(c.rawValue) — \(c.explanation)")
            out.append("Detail:       \(explanation)")
            if let d = directive {
                out.append("Directive:    \(d)\(location.map { "  (\($0))" } ?? "")")
            } else if let l = location {
                out.append("At:           \(l)")
            }
            out.append("What to do:")
            out += fix.enumerated().map { "  \($0.offset + 1). \($0.element)" }
        } else {
            out.append("What happens: \(server) answers \(status) for \(path): \(explanation)")
        }
        out.append("How it was worked out:")
        out += trace.map { "  - \($0)" }
        return out.joined(separator: "\n")
    }
}

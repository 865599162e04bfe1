// Macro expansion (%{tx.anomaly_score}, %{MATCHED_VAR}, %{rule.id}): parsed once at load into
// literal and variable parts, so expansion at run time only concatenates. Hand-written: the
// syntax is SecLang's own, and no listed library reads it.

/// A string with `%{...}` references, parsed once.
package struct Macro: Sendable {
    /// One part of a macro: literal bytes or a variable reference.
    package enum Part: Sendable {
        case literal([UInt8])
        /// A collection entry (`tx.x`, `request_headers.host`) or a scalar (`MATCHED_VAR`).
        case variable(Collection, String?)
        /// `%{rule.id}`, `%{rule.msg}` and the other rule properties.
        case rule(String)
    }

    package let parts: [Part]
    package let text: String

    /// The macro's value when it holds no references.
    package var constant: [UInt8]? {
        if parts.isEmpty { return [] }
        if parts.count == 1, case .literal(let b) = parts[0] { return b }
        return nil
    }

    /// Parses `text`; references to unknown collections are returned as problems, and expand
    /// to nothing.
    package init(_ text: String, problems: inout [String]) {
        self.text = text
        var parts: [Part] = []
        let b = Array(text.utf8)
        var literal: [UInt8] = []
        var i = 0
        while i < b.count {
            if b[i] == 0x25, i + 1 < b.count, b[i + 1] == 0x7B, let close = b[(i + 2)...].firstIndex(of: 0x7D) {
                let ref = String(decoding: b[(i + 2)..<close], as: UTF8.self)
                if !literal.isEmpty {
                    parts.append(.literal(literal))
                    literal = []
                }
                let (head, key) = Macro.split(ref)
                if head.lowercased() == "rule" {
                    parts.append(.rule((key ?? "").lowercased()))
                } else if let c = Collection(rawValue: head.uppercased()) {
                    parts.append(.variable(c, key?.lowercased()))
                } else {
                    problems.append("unknown variable in macro %{\(ref)}")
                }
                i = close + 1
                continue
            }
            literal.append(b[i])
            i += 1
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    static func split(_ ref: String) -> (String, String?) {
        if let dot = ref.firstIndex(where: { $0 == "." || $0 == ":" }) {
            return (String(ref[..<dot]), String(ref[ref.index(after: dot)...]))
        }
        return (ref, nil)
    }
}

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
    /// The text and the variable names, in one reference: a macro is the payload of several
    /// operators, and each more field would be one more retain wherever a rule's operator is
    /// read.
    let names: Names
    package var text: String { names.text }
    /// For each part that names a setvar collection's variable (`tx.foo`), its name with the
    /// hash computed once; nil for the other parts.
    var keys: [VariableStore.Name?] { names.keys }
    /// For a macro without references, its text lowercased as a variable name (what
    /// `setvar:tx.foo=1` writes), hashed once.
    var constantKey: VariableStore.Name? { names.constantKey }

    /// The macro as written and the variable names it reads or writes.
    final class Names: Sendable {
        let text: String
        let keys: [VariableStore.Name?]
        let constantKey: VariableStore.Name?

        init(text: String, keys: [VariableStore.Name?], constantKey: VariableStore.Name?) {
            self.text = text
            self.keys = keys
            self.constantKey = constantKey
        }
    }

    /// The macro's value when it holds no references.
    package var constant: [UInt8]? { Macro.constant(of: parts) }

    static func constant(of parts: [Part]) -> [UInt8]? {
        if parts.isEmpty { return [] }
        if parts.count == 1, case .literal(let b) = parts[0] { return b }
        return nil
    }

    /// Parses `text`; references to unknown collections are returned as problems, and expand
    /// to nothing.
    package init(_ text: String, problems: inout [String]) {
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
        names = Names(
            text: text,
            keys: parts.map { part in
                guard case .variable(let c, let key) = part, c.isPersistent else { return nil }
                return VariableStore.Name(key ?? "")
            },
            constantKey: Macro.constant(of: parts).map { VariableStore.Name(String(decoding: $0, as: UTF8.self).lowercased()) })
    }

    static func split(_ ref: String) -> (String, String?) {
        if let dot = ref.firstIndex(where: { $0 == "." || $0 == ":" }) {
            return (String(ref[..<dot]), String(ref[ref.index(after: dot)...]))
        }
        return (ref, nil)
    }
}

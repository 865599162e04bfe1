// Literal prefilters for @rx rules: from each pattern, the strings any match must contain (an
// AND/OR formula over literals, in the manner of RE2's FilteredRE2); per request, one
// Aho-Corasick pass over each transformed value finds which of those literals occur, and a rule
// whose formula no value of a collection satisfies skips that collection without running its
// transformations' tests or its regex. Hand-written: no listed package extracts literals from PCRE
// patterns (PCRE2 has no such API; Hyperscan and RE2 are not available here).
//
// The analysis is conservative. Every literal is compared case-insensitively (a superset of a
// case-sensitive match); any construct it does not model (back references, \x mode, unknown
// escapes) makes the whole pattern "no condition", so the rule always runs. A prefilter can make
// a rule run when its regex will not match; never the reverse.

/// A condition every match of a pattern meets: the literal strings (lowercase) it contains.
package indirect enum Requirement: Equatable, Sendable {
    /// No condition is known: the pattern may match anything.
    case all
    case atom([UInt8])
    case and([Requirement])
    case or([Requirement])

    static func and(of parts: [Requirement]) -> Requirement {
        var out: [Requirement] = []
        for p in parts {
            switch p {
            case .all: continue
            case .and(let inner): out += inner
            default: if !out.contains(p) { out.append(p) }
            }
        }
        if out.isEmpty { return .all }
        return out.count == 1 ? out[0] : .and(out)
    }

    static func or(of parts: [Requirement]) -> Requirement {
        var out: [Requirement] = []
        for p in parts {
            switch p {
            case .all: return .all
            case .or(let inner): out += inner
            default: if !out.contains(p) { out.append(p) }
            }
        }
        if out.isEmpty { return .all }
        return out.count == 1 ? out[0] : .or(out)
    }

    /// The literals the formula names.
    var atoms: [[UInt8]] {
        switch self {
        case .all: return []
        case .atom(let a): return [a]
        case .and(let parts), .or(let parts): return parts.flatMap(\.atoms)
        }
    }
}

/// Derives a `Requirement` from a PCRE pattern.
package enum PatternLiterals {
    /// Exact-string sets larger than this are turned into formulas.
    static let maxExact = 32
    /// Longer exact strings are not extended further (the part so far is kept as a literal).
    static let maxLength = 48

    struct Unsupported: Error {}

    /// What a part of a pattern can match: exactly one of a small set of strings, or (when not
    /// known) something meeting a formula.
    struct Info {
        var exact: Set<[UInt8]>?
        var requirement: Requirement

        static let any = Info(exact: nil, requirement: .all)
        static let empty = Info(exact: [[]], requirement: .all)
        static func literal(_ s: [UInt8]) -> Info { Info(exact: [s], requirement: .all) }

        /// The formula, whether exact or not.
        var formula: Requirement {
            guard let exact else { return requirement }
            if exact.contains([]) || exact.contains(where: PatternLiterals.isWeak) { return .all }
            return .or(of: exact.sorted { $0.lexicographicallyPrecedes($1) }.map { .atom($0) })
        }
    }

    /// A literal too common in ordinary text to be worth testing for (one or two letters,
    /// digits or spaces): it stands for no condition.
    static func isWeak(_ s: [UInt8]) -> Bool {
        s.count < 3 && s.allSatisfy { isAlphanumeric($0) || $0 == 0x20 }
    }

    static func isAlphanumeric(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) }

    @inline(__always) static func lower(_ c: UInt8) -> UInt8 { c &- 0x41 < 26 ? c | 0x20 : c }

    /// The requirement of `pattern`, `.all` when it cannot be derived.
    package static func requirement(of pattern: String) -> Requirement {
        var parser = Parser(bytes: Array(pattern.utf8))
        do {
            let info = try parser.alternation()
            guard parser.i == parser.bytes.count else { return .all }
            return info.formula
        } catch {
            return .all
        }
    }

    static func concatenate(_ items: [Info]) -> Info {
        var parts: [Requirement] = []
        var run: Set<[UInt8]>? = [[]]
        var allExact = true
        func flush() {
            if let r = run { parts.append(Info(exact: r, requirement: .all).formula) }
            run = [[]]
        }
        for item in items {
            guard let exact = item.exact else {
                allExact = false
                flush()
                parts.append(item.requirement)
                continue
            }
            let current = run ?? [[]]
            if current.count * exact.count > maxExact || current.contains(where: { $0.count >= maxLength }) {
                allExact = false
                flush()
                run = exact
                continue
            }
            var next: Set<[UInt8]> = []
            for a in current { for b in exact { next.insert(a + b) } }
            run = next
        }
        if allExact { return Info(exact: run, requirement: .all) }
        flush()
        return Info(exact: nil, requirement: .and(of: parts))
    }

    static func alternate(_ branches: [Info]) -> Info {
        if branches.allSatisfy({ $0.exact != nil }) {
            var union: Set<[UInt8]> = []
            for b in branches { union.formUnion(b.exact!) }
            if union.count <= maxExact { return Info(exact: union, requirement: .all) }
        }
        return Info(exact: nil, requirement: .or(of: branches.map(\.formula)))
    }

    static func repeated(_ x: Info, min: Int, max: Int?) -> Info {
        if min == 0 {
            if max == 1, let e = x.exact { return Info(exact: e.union([[]]), requirement: .all) }
            return .any
        }
        if min == 1, max == 1 { return x }
        return Info(exact: nil, requirement: x.formula)
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { i >= bytes.count }
        func peek(_ k: Int = 0) -> UInt8? { i + k < bytes.count ? bytes[i + k] : nil }

        mutating func alternation() throws(Unsupported) -> Info {
            var branches = [try sequence()]
            while peek() == UInt8(ascii: "|") {
                i += 1
                branches.append(try sequence())
            }
            return branches.count == 1 ? branches[0] : PatternLiterals.alternate(branches)
        }

        mutating func sequence() throws(Unsupported) -> Info {
            var items: [Info] = []
            while let c = peek(), c != UInt8(ascii: "|"), c != UInt8(ascii: ")") {
                let atom = try self.atom()
                items.append(try quantified(atom))
            }
            return PatternLiterals.concatenate(items)
        }

        mutating func quantified(_ atom: Info) throws(Unsupported) -> Info {
            var result = atom
            // After an item that consumes nothing (`\E`, `\Q\E`, a comment, an option group, an
            // assertion) PCRE applies a quantifier to what came before it, or refuses it: not modelled.
            if atom.exact == [[]], let c = peek(), Self.startsQuantifier(c) { throw Unsupported() }
            while let c = peek() {
                var range: (Int, Int?)?
                switch c {
                case UInt8(ascii: "*"): range = (0, nil); i += 1
                case UInt8(ascii: "+"): range = (1, nil); i += 1
                case UInt8(ascii: "?"): range = (0, 1); i += 1
                case UInt8(ascii: "{"):
                    guard let r = try braces() else { return result }
                    range = r
                default: return result
                }
                // Lazy and possessive forms match the same strings.
                if let s = peek(), s == UInt8(ascii: "?") || s == UInt8(ascii: "+") { i += 1 }
                if let (lo, hi) = range { result = PatternLiterals.repeated(result, min: lo, max: hi) }
            }
            return result
        }

        static func startsQuantifier(_ c: UInt8) -> Bool {
            c == UInt8(ascii: "*") || c == UInt8(ascii: "+") || c == UInt8(ascii: "?") || c == UInt8(ascii: "{")
        }

        /// `{n}`, `{n,}`, `{n,m}`; nil (and nothing read) when the brace is a literal. Forms that
        /// PCRE2 releases read differently (`{,n}`, spaces inside) are not modelled.
        mutating func braces() throws(Unsupported) -> (Int, Int?)? {
            var k = i + 1
            while k < bytes.count, bytes[k] == 0x20 || bytes[k] == UInt8(ascii: ",") || (bytes[k] >= 0x30 && bytes[k] <= 0x39) { k += 1 }
            let inner = bytes[(i + 1)..<k]
            if k < bytes.count, bytes[k] == UInt8(ascii: "}"), inner.contains(where: { $0 >= 0x30 && $0 <= 0x39 }),
                inner.first == UInt8(ascii: ",") || inner.contains(0x20)
            {
                throw Unsupported()
            }
            var j = i + 1
            func number() -> Int? {
                var n: Int?
                while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39 {
                    n = (n ?? 0) * 10 + Int(bytes[j] - 0x30)
                    if n! > 100_000 { return nil }
                    j += 1
                }
                return n
            }
            guard let lo = number() else { return nil }
            var hi: Int? = lo
            if j < bytes.count, bytes[j] == UInt8(ascii: ",") {
                j += 1
                hi = number()
            }
            guard j < bytes.count, bytes[j] == UInt8(ascii: "}") else { return nil }
            i = j + 1
            return (lo, hi)
        }

        mutating func atom() throws(Unsupported) -> Info {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "("): return try group()
            case UInt8(ascii: "["): return try characterClass()
            case UInt8(ascii: "."):
                i += 1
                return .any
            case UInt8(ascii: "^"), UInt8(ascii: "$"):
                i += 1
                return .empty
            case UInt8(ascii: "\\"): return try escape()
            case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"):
                throw Unsupported()  // a quantifier with nothing before it
            default:
                i += 1
                return .literal([PatternLiterals.lower(c)])
            }
        }

        mutating func group() throws(Unsupported) -> Info {
            i += 1  // (
            var inner: Info
            if peek() == UInt8(ascii: "?") {
                i += 1
                guard let k = peek() else { throw Unsupported() }
                switch k {
                case UInt8(ascii: ":"), UInt8(ascii: ">"), UInt8(ascii: "|"):
                    i += 1
                    inner = try alternation()
                case UInt8(ascii: "="), UInt8(ascii: "!"):
                    i += 1
                    _ = try alternation()
                    inner = .empty
                case UInt8(ascii: "<") where peek(1) == UInt8(ascii: "=") || peek(1) == UInt8(ascii: "!"):
                    i += 2
                    _ = try alternation()
                    inner = .empty
                case UInt8(ascii: "<"), UInt8(ascii: "P"), UInt8(ascii: "'"):
                    // A named group: skip the name.
                    if k == UInt8(ascii: "P") {
                        guard peek(1) == UInt8(ascii: "<") else { throw Unsupported() }
                        i += 1
                    }
                    let close = k == UInt8(ascii: "'") ? UInt8(ascii: "'") : UInt8(ascii: ">")
                    i += 1
                    while let n = peek(), n != close { i += 1 }
                    guard !atEnd else { throw Unsupported() }
                    i += 1
                    inner = try alternation()
                case UInt8(ascii: "#"):
                    while let n = peek(), n != UInt8(ascii: ")") { i += 1 }
                    inner = .empty
                default:
                    // Option letters: `(?i)` for the rest of the group, `(?i:...)` for a group.
                    var flags: [UInt8] = []
                    while let n = peek(), n != UInt8(ascii: ")"), n != UInt8(ascii: ":") {
                        guard (n | 0x20 >= 0x61 && n | 0x20 <= 0x7A) || n == UInt8(ascii: "-") || n == UInt8(ascii: "^") else {
                            throw Unsupported()
                        }
                        flags.append(n)
                        i += 1
                    }
                    // Extended mode changes what whitespace and # mean: not modelled.
                    if flags.contains(UInt8(ascii: "x")) { throw Unsupported() }
                    if peek() == UInt8(ascii: ":") {
                        i += 1
                        inner = try alternation()
                    } else {
                        inner = .empty
                    }
                }
            } else {
                inner = try alternation()
            }
            guard peek() == UInt8(ascii: ")") else { throw Unsupported() }
            i += 1
            return inner
        }

        mutating func escape() throws(Unsupported) -> Info {
            i += 1  // backslash
            guard let c = peek() else { throw Unsupported() }
            i += 1
            switch c {
            case UInt8(ascii: "b"), UInt8(ascii: "B"), UInt8(ascii: "A"), UInt8(ascii: "z"), UInt8(ascii: "Z"), UInt8(ascii: "G"),
                UInt8(ascii: "K"), UInt8(ascii: "E"):
                return .empty
            case UInt8(ascii: "d"), UInt8(ascii: "D"), UInt8(ascii: "w"), UInt8(ascii: "W"), UInt8(ascii: "s"), UInt8(ascii: "S"),
                UInt8(ascii: "h"), UInt8(ascii: "H"), UInt8(ascii: "v"), UInt8(ascii: "V"), UInt8(ascii: "R"), UInt8(ascii: "N"),
                UInt8(ascii: "X"), UInt8(ascii: "C"):
                return .any
            case UInt8(ascii: "p"), UInt8(ascii: "P"):
                if peek() == UInt8(ascii: "{") {
                    while let n = peek(), n != UInt8(ascii: "}") { i += 1 }
                    guard !atEnd else { throw Unsupported() }
                }
                i += 1
                return .any
            case UInt8(ascii: "Q"):
                var s: [UInt8] = []
                while !atEnd, !(bytes[i] == UInt8(ascii: "\\") && peek(1) == UInt8(ascii: "E")) {
                    s.append(PatternLiterals.lower(bytes[i]))
                    i += 1
                }
                if !atEnd { i += 2 }
                if s.count != 1, let c = peek(), Self.startsQuantifier(c) { throw Unsupported() }
                return .literal(s)
            case UInt8(ascii: "x"):
                guard let v = hexValue() else { throw Unsupported() }
                return .literal([PatternLiterals.lower(v)])
            case UInt8(ascii: "n"): return .literal([0x0A])
            case UInt8(ascii: "r"): return .literal([0x0D])
            case UInt8(ascii: "t"): return .literal([0x09])
            case UInt8(ascii: "f"): return .literal([0x0C])
            case UInt8(ascii: "e"): return .literal([0x1B])
            case UInt8(ascii: "a"): return .literal([0x07])
            default:
                // Escaped punctuation stands for itself; any other escaped letter or digit (back
                // references, octal, \g, \k, \c, \o) is not modelled.
                guard !PatternLiterals.isAlphanumeric(c), c < 0x80 else { throw Unsupported() }
                return .literal([c])
            }
        }

        /// `\xhh` or `\x{hh}` (after the x); nil for values beyond a byte.
        mutating func hexValue() -> UInt8? {
            func digit(_ c: UInt8) -> Int? {
                switch c {
                case 0x30...0x39: return Int(c - 0x30)
                case 0x41...0x46: return Int(c - 0x41 + 10)
                case 0x61...0x66: return Int(c - 0x61 + 10)
                default: return nil
                }
            }
            var value = 0
            if peek() == UInt8(ascii: "{") {
                i += 1
                while let c = peek(), let d = digit(c) {
                    value = value * 16 + d
                    if value > 0xFF { return nil }
                    i += 1
                }
                guard peek() == UInt8(ascii: "}") else { return nil }
                i += 1
                return UInt8(value)
            }
            var n = 0
            while n < 2, let c = peek(), let d = digit(c) {
                value = value * 16 + d
                i += 1
                n += 1
            }
            return UInt8(value)
        }

        /// `[...]`: a small positive set of bytes is an exact set of one-byte strings; anything
        /// else (negated, ranges, \w, POSIX names) matches "any".
        mutating func characterClass() throws(Unsupported) -> Info {
            i += 1  // [
            var negated = false
            if peek() == UInt8(ascii: "^") {
                negated = true
                i += 1
            }
            var members: Set<UInt8> = []
            var broad = false
            var first = true
            while let c = peek() {
                if c == UInt8(ascii: "]"), !first { break }
                first = false
                var member: UInt8
                if c == UInt8(ascii: "["), peek(1) == UInt8(ascii: ":") {
                    // [:alpha:] and the like
                    // `[:` starts a POSIX name only when `:]` comes before any `]`.
                    broad = true
                    i += 2
                    while let n = peek(), !(n == UInt8(ascii: ":") && peek(1) == UInt8(ascii: "]")) {
                        if n == UInt8(ascii: "]") { throw Unsupported() }
                        i += 1
                    }
                    guard !atEnd else { throw Unsupported() }
                    i += 2
                    continue
                } else if c == UInt8(ascii: "\\") {
                    guard let e = peek(1) else { throw Unsupported() }
                    i += 2
                    switch e {
                    case UInt8(ascii: "x"):
                        guard let v = hexValue() else { throw Unsupported() }
                        member = v
                    case UInt8(ascii: "n"): member = 0x0A
                    case UInt8(ascii: "r"): member = 0x0D
                    case UInt8(ascii: "t"): member = 0x09
                    case UInt8(ascii: "f"): member = 0x0C
                    case UInt8(ascii: "c"), UInt8(ascii: "Q"), UInt8(ascii: "E"): throw Unsupported()
                    case UInt8(ascii: "e"): member = 0x1B
                    case UInt8(ascii: "a"): member = 0x07
                    case UInt8(ascii: "b"): member = 0x08
                    default:
                        if PatternLiterals.isAlphanumeric(e) || e >= 0x80 {
                            // \d \w \s \p{..} and the like: broad.
                            broad = true
                            if (e == UInt8(ascii: "p") || e == UInt8(ascii: "P")), peek() == UInt8(ascii: "{") {
                                while let n = peek(), n != UInt8(ascii: "}") { i += 1 }
                                i += 1
                            }
                            continue
                        }
                        member = e
                    }
                } else {
                    member = c
                    i += 1
                }
                // A range a-z (a `-` before `]` is literal).
                if peek() == UInt8(ascii: "-"), let h = peek(1), h != UInt8(ascii: "]") {
                    i += 1
                    var high: UInt8
                    if h == UInt8(ascii: "\\") {
                        guard peek(1) == UInt8(ascii: "x") else {
                            broad = true
                            i += 2
                            continue
                        }
                        i += 2
                        guard let v = hexValue() else { throw Unsupported() }
                        high = v
                    } else {
                        high = h
                        i += 1
                    }
                    guard high >= member else { throw Unsupported() }
                    if Int(high) - Int(member) > 8 {
                        broad = true
                    } else {
                        for b in member...high { members.insert(PatternLiterals.lower(b)) }
                    }
                    continue
                }
                members.insert(PatternLiterals.lower(member))
            }
            guard peek() == UInt8(ascii: "]") else { throw Unsupported() }
            i += 1
            if negated || broad || members.isEmpty || members.count > 6 { return .any }
            return Info(exact: Set(members.map { [$0] }), requirement: .all)
        }
    }
}

/// The literals of every prefiltered rule of a rule set, found in a value in one pass
/// (case-insensitive Aho-Corasick reporting every literal that occurs), and each rule's
/// condition over them.
package final class PrefilterIndex: Sendable {
    /// A rule's condition, as clauses that must all hold; a clause holds when any of its
    /// literals occurs (its `(word, mask)` pairs over the literal bit set). The formula is put in
    /// that shape (conjunctive normal form) by distributing OR over AND (`clauses(of:)`).
    /// A class: a rule's walk passes it to every target and entry, and a struct of three arrays
    /// would be retained three times at each copy.
    package final class Condition: Sendable {
        let clauseEnds: [Int]
        let words: [Int32]
        let masks: [UInt64]

        init(clauseEnds: [Int], words: [Int32], masks: [UInt64]) {
            self.clauseEnds = clauseEnds
            self.words = words
            self.masks = masks
        }

        package func holds(_ present: [UInt64]) -> Bool { present.withUnsafeBufferPointer { holds($0) } }

        /// `holds` over a literal set kept elsewhere (a transaction's arena).
        package func holds(_ present: UnsafeBufferPointer<UInt64>) -> Bool {
            var start = 0
            for end in clauseEnds {
                var any = false
                var j = start
                while j < end {
                    if present[Int(words[j])] & masks[j] != 0 {
                        any = true
                        break
                    }
                    j += 1
                }
                if !any { return false }
                start = end
            }
            return true
        }
    }

    package let atomCount: Int
    package let words: Int
    private let column: [UInt8]
    private let width: Int
    private let next: [Int32]
    /// The literals that end at each state (its own and its failure chain's):
    /// `outputs[outputStart[s]..<outputStart[s + 1]]`.
    private let outputStart: [Int32]
    private let outputs: [Int32]
    private let conditions: [ObjectIdentifier: Condition]
    /// Keeps the rules whose identities key `conditions` alive.
    private let rules: [Rule]

    package static let empty = PrefilterIndex(rules: [])

    /// Indexes the prefilterable rules among `rules` (chained links included).
    package init(rules all: [Rule]) {
        var atomIDs: [[UInt8]: Int] = [:]
        var atoms: [[UInt8]] = []
        func id(_ a: [UInt8]) -> Int {
            if let n = atomIDs[a] { return n }
            atomIDs[a] = atoms.count
            atoms.append(a)
            return atoms.count - 1
        }
        var clausesByRule: [(Rule, [[Int]])] = []
        var seen: Set<ObjectIdentifier> = []
        for first in all {
            var link: Rule? = first
            while let rule = link {
                link = rule.chained
                guard seen.insert(ObjectIdentifier(rule)).inserted, let requirement = rule.requirement else { continue }
                let clauses = PrefilterIndex.clauses(of: requirement)
                guard !clauses.isEmpty else { continue }
                clausesByRule.append((rule, clauses.map { $0.map(id) }))
            }
        }
        var conditions: [ObjectIdentifier: Condition] = [:]
        for (rule, clauses) in clausesByRule {
            var ends: [Int] = []
            var words: [Int32] = []
            var masks: [UInt64] = []
            for c in clauses {
                var byWord: [Int: UInt64] = [:]
                for n in c { byWord[n >> 6, default: 0] |= 1 << UInt64(n & 63) }
                for (w, m) in byWord.sorted(by: { $0.key < $1.key }) {
                    words.append(Int32(w))
                    masks.append(m)
                }
                ends.append(words.count)
            }
            conditions[ObjectIdentifier(rule)] = Condition(clauseEnds: ends, words: words, masks: masks)
        }
        self.conditions = conditions
        self.rules = clausesByRule.map(\.0)
        atomCount = atoms.count
        words = max(1, (atoms.count + 63) / 64)

        let table = AhoCorasickTable(atoms)
        column = table.column
        width = table.width
        next = table.next
        var starts: [Int32] = [0]
        for o in table.outputs { starts.append(starts.last! + Int32(o.count)) }
        outputStart = starts
        outputs = table.outputs.flatMap { $0 }
    }

    /// At most this many clauses per condition: distributing an OR of ANDs multiplies clauses.
    package static let maxClauses = 24

    /// The formula as clauses that must all hold, each an OR of literals (conjunctive normal
    /// form); no clauses when nothing is known. `A ∨ (B ∧ C)` gives `(A ∨ B) ∧ (A ∨ C)`: every
    /// match still meets every clause. When distributing would give more than `maxClauses`
    /// clauses, the most specific ones (longest shortest literal, then fewest literals) are
    /// kept; leaving a clause out only weakens the condition, so a rule never skips a value it
    /// would match.
    package static func clauses(of r: Requirement) -> [[[UInt8]]] {
        switch r {
        case .all: return []
        case .atom(let a): return a.isEmpty ? [] : [[a]]
        case .and(let parts):
            var out: [[[UInt8]]] = []
            for p in parts { out += clauses(of: p) }
            return mostSpecific(out)
        case .or(let parts):
            // An OR of nothing states nothing (the parser never builds one; no condition is the
            // safe reading).
            guard !parts.isEmpty else { return [] }
            var product: [[[UInt8]]] = [[]]
            for p in parts {
                let c = clauses(of: p)
                // One side with no condition: the OR has none.
                if c.isEmpty { return [] }
                // An OR of single clauses (a flat list of literals) only widens one clause: no
                // product to take, and its repeats are dropped once, at the end.
                if c.count == 1 && product.count == 1 {
                    product[0] += c[0]
                    continue
                }
                let limit = max(1, maxClauses / max(1, product.count))
                var next: [[[UInt8]]] = []
                for x in product {
                    for y in mostSpecific(c, keeping: limit) { next.append(x + y) }
                }
                product = mostSpecific(next)
            }
            return mostSpecific(product)
        }
    }

    /// `clauses` without repeats, each clause's literals without repeats, most specific first,
    /// at most `keeping`. A clause with an empty literal always holds and one with no literal
    /// never does: neither is a condition, and both are left out (leaving a clause out only
    /// weakens the condition).
    static func mostSpecific(_ clauses: [[[UInt8]]], keeping: Int = maxClauses) -> [[[UInt8]]] {
        var seen: Set<[[UInt8]]> = []
        var out: [[[UInt8]]] = []
        for c in clauses where !c.isEmpty && !c.contains(where: \.isEmpty) {
            var unique: Set<[UInt8]> = []
            var atoms: [[UInt8]] = []
            for a in c where unique.insert(a).inserted { atoms.append(a) }
            atoms.sort { $0.lexicographicallyPrecedes($1) }
            if seen.insert(atoms).inserted { out.append(atoms) }
        }
        func rank(_ c: [[UInt8]]) -> (Int, Int) { (c.map(\.count).min() ?? 0, -c.count) }
        // Stable: equal ranks keep the formula's order.
        let ordered = out.enumerated().sorted { a, b in
            let (x, y) = (rank(a.element), rank(b.element))
            return x != y ? x > y : a.offset < b.offset
        }.map(\.element)
        return Array(ordered.prefix(keeping))
    }

    /// The condition of `rule`, nil when it always runs.
    package func condition(for rule: Rule) -> Condition? { conditions.isEmpty ? nil : conditions[ObjectIdentifier(rule)] }

    /// Marks in `present` (`words` words) every literal that occurs in `value`.
    package func scan(_ value: [UInt8], into present: inout [UInt64]) {
        present.withUnsafeMutableBufferPointer { scan(value, into: $0) }
    }

    /// `scan` into a literal set kept elsewhere (a transaction's arena), `words` words long.
    package func scan(_ value: [UInt8], into present: UnsafeMutableBufferPointer<UInt64>) {
        guard atomCount > 0 else { return }
        next.withUnsafeBufferPointer { next in
            column.withUnsafeBufferPointer { column in
                outputStart.withUnsafeBufferPointer { starts in
                    outputs.withUnsafeBufferPointer { outputs in
                        var s = 0
                        for c in value {
                            s = Int(next[s &* width &+ Int(column[Int(c)])])
                            var j = Int(starts[s])
                            let end = Int(starts[s &+ 1])
                            while j < end {
                                let n = Int(outputs[j])
                                present[n >> 6] |= 1 << UInt64(n & 63)
                                j &+= 1
                            }
                        }
                    }
                }
            }
        }
    }
}

extension Requirement {
    /// Whether `text` meets the formula, literals compared ASCII case-insensitively (as the
    /// automaton does). For tests and tools; the gateway evaluates `PrefilterIndex.Condition`.
    package func isMet(by text: [UInt8]) -> Bool {
        switch self {
        case .all: return true
        case .atom(let a):
            let t = text.map(PatternLiterals.lower)
            let needle = a.map(PatternLiterals.lower)
            guard needle.count <= t.count else { return needle.isEmpty }
            return (0...(t.count - needle.count)).contains { start in t[start..<(start + needle.count)].elementsEqual(needle) }
        case .and(let parts): return parts.allSatisfy { $0.isMet(by: text) }
        case .or(let parts): return parts.contains { $0.isMet(by: text) }
        }
    }
}

import Foundation  // NFKC (precomposedStringWithCompatibilityMapping), for non-ASCII member names only

// Hand-written: a strict JSON reader for the bodies that checks read (`owner`'s `body_field`).
// Foundation's JSONDecoder and JSONSerialization drop one of two duplicate member names without a
// word (they keep the first; Python, Node and Go keep the last) and turn every number into a
// Double (9007199254740993 becomes 9007199254740992), so a check reading with them can see another
// value than the upstream does. The WAF's `JSONLeaves` is lenient on purpose (what does not parse
// is inspected as text). No listed library reports duplicate names or keeps a number's text, so
// this reader is written out: RFC 8259 exactly (UTF-8, no byte-order mark, no comments, NaN or
// trailing commas, no lone surrogates), every duplicate member name refused at any depth (names
// compared after unescaping, code point by code point), numbers kept as their decimal text, a
// nesting limit, and every refusal explained with a JSON pointer (RFC 6901) and a byte offset.
//
// It materialises only the values asked for (`values(at:in:)`), so a large body that is mostly
// arrays of numbers costs its keys' sets and the stack, not a tree.
//
// Beside a path a check reads (in each object on the way to the read member), a member name that
// is not ASCII is refused when it folds onto the read name: when any of its foldings, ASCII-
// lowercased, equals the read name ASCII-lowercased. The foldings are Swift's `lowercased()` and
// `uppercased()` (full case mapping), Go's per-scalar simple fold `ToUpper(ToLower(r))` (what
// encoding/json has compared names by since Go 1.21), and NFKC, each also applied after NFKC. Full
// case mapping alone misses `user_İd` (U+0130 lowercases to `i` + U+0307 in full, to `i` simply,
// so Go matches it to `user_id`); the simple folds of `ı` (U+0131), `K` (Kelvin sign, U+212A) and
// `ſ` (U+017F) are `I`, `k` and `S` too, and NFKC turns `Ｏｗｎｅｒ` into `Owner`. Such a name is
// refused whether or not the read name is present: no real client spells a field that way.

/// A JSON value read by ``StrictJSON``.
public enum StrictJSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's text exactly as sent (RFC 8259 grammar), never converted.
    case number(String)
    case string(String)
    case array([StrictJSONValue])
    /// Members in document order; names are unique (a duplicate is refused while reading).
    case object([StrictJSONMember])

    /// The member named `name` (compared code point by code point), for objects.
    public subscript(name: String) -> StrictJSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.name.utf8.elementsEqual(name.utf8) }?.value
    }

    /// What kind of value this is, for explanations: "a string", "the number 1.5", "an object".
    public var kindText: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "the boolean \(b)"
        case .number(let t): return "the number \(t.count > 40 ? String(t.prefix(40)) + "…" : t)"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

public struct StrictJSONMember: Sendable, Equatable {
    public var name: String
    public var value: StrictJSONValue
    public init(name: String, value: StrictJSONValue) {
        self.name = name
        self.value = value
    }
}

/// Why a body was refused.
public struct StrictJSONError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// An object names a member twice (or, on a path a check reads, in two letter cases).
        case duplicateKey
        /// Containers nest deeper than the limit.
        case tooDeep
        /// Not strict RFC 8259 JSON.
        case invalid
    }
    public var kind: Kind
    /// RFC 6901 pointer to where the problem is: the duplicated member, or the value being read.
    public var pointer: String
    /// Byte offset into the body.
    public var offset: Int
    /// What is wrong, in words (no pointer or offset).
    public var message: String

    public init(kind: Kind, pointer: String, offset: Int, message: String) {
        self.kind = kind
        self.pointer = pointer
        self.offset = offset
        self.message = message
    }

    public var description: String { "\(message) at \(pointer.isEmpty ? "the top level" : pointer) (byte \(offset))" }
}

public enum StrictJSON {
    /// Containers may nest this deep by default (the top-level object or array is level 1).
    public static let defaultMaxDepth = 64

    /// Reads a whole document and returns it.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws -> StrictJSONValue {
        try values(at: [[]], in: bytes, maxDepth: maxDepth)[[]]!
    }

    /// Reads (and checks) the whole document, and returns the values found at `paths`: member
    /// names from the top-level object down (an empty path is the whole document). Paths go
    /// through objects only. A path that is absent has no entry.
    ///
    /// Besides duplicate names anywhere, on the way to a path a sibling whose name differs from the
    /// path's only in letter case (`owner` / `Owner`, or `ſ` for `s`) is refused too: Go's
    /// encoding/json matches member names to struct fields case-insensitively, the last one winning.
    public static func values(
        at paths: Set<[String]>, in bytes: [UInt8], maxDepth: Int = defaultMaxDepth
    ) throws -> [[String]: StrictJSONValue] {
        var prefixes = Set<[String]>()
        for p in paths where !p.isEmpty {
            for n in 0..<p.count { prefixes.insert(Array(p[0..<n])) }
        }
        return try bytes.withUnsafeBufferPointer { p in
            var r = Reader(p: p, maxDepth: maxDepth, targets: paths, prefixes: prefixes)
            try r.document()
            return r.captured
        }
    }

    /// Folds a member name the way a case-insensitive matcher would (`Owner`, `OWNER`, `ownſr`…).
    static func fold(_ s: String) -> String { s.uppercased().lowercased() }

    /// `s` with A-Z lowercased and nothing else changed.
    static func asciiLowercased(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) else { return s }
        return String(decoding: s.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// Go's `unicode.ToUpper(unicode.ToLower(r))` for each scalar, as encoding/json folds names.
    /// Go uses the simple (one-scalar) mappings; where Swift's full mapping has several scalars,
    /// the simple lowercase is its first (`İ` → `i`) and the simple uppercase is the scalar itself
    /// (`ß` stays `ß`).
    static func goFold(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            let lower = u.properties.lowercaseMapping.unicodeScalars.first ?? u
            let upper = lower.properties.uppercaseMapping.unicodeScalars
            out.append(upper.count == 1 ? upper.first! : lower)
        }
        return String(out)
    }

    /// The ASCII-lowercased spellings some reader could take a member name for: full lower and
    /// upper case, Go's simple fold, NFKC, and each of those after NFKC.
    static func foldings(_ s: String) -> [String] {
        let nfkc = s.precomposedStringWithCompatibilityMapping
        var out: [String] = []
        for base in [s, nfkc] {
            for f in [base, base.lowercased(), base.uppercased(), goFold(base)] {
                let k = asciiLowercased(f)
                if !out.contains(k) { out.append(k) }
            }
        }
        return out
    }

    /// A member name for an explanation: quoted, at most 64 characters, control characters as
    /// `\u{XX}` (the name is the sender's text).
    public static func shown(_ name: [UInt8]) -> String {
        var out = "\""
        var n = 0
        for u in String(decoding: name, as: UTF8.self).unicodeScalars {
            n += 1
            if n > 64 { out += "…"; break }
            if u.value < 0x20 || (u.value >= 0x7F && u.value <= 0x9F) || u == "\"" || u == "\\" {
                out += "\\u{" + String(u.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// Escapes a reference token for a JSON pointer (RFC 6901: `~` → `~0`, `/` → `~1`).
    public static func pointerToken(_ s: String) -> String {
        guard s.contains("~") || s.contains("/") else { return s }
        return s.replacingAll("~", "~0").replacingAll("/", "~1")
    }
}

extension String {
    fileprivate func replacingAll(_ a: Character, _ b: String) -> String {
        var out = ""
        for c in self { if c == a { out += b } else { out.append(c) } }
        return out
    }
}

/// The reader's state: a cursor over the bytes, where it is (for errors), what to keep.
private struct Reader {
    let p: UnsafeBufferPointer<UInt8>
    var i = 0
    let maxDepth: Int
    let targets: Set<[String]>
    let prefixes: Set<[String]>
    var captured: [[String]: StrictJSONValue] = [:]
    /// Where the cursor is: member names and array indices from the top (for the pointer).
    var location: [Location] = []
    /// Scratch for unescaped string bytes.
    var scratch: [UInt8] = []

    enum Location {
        case member([UInt8])
        case index(Int)
    }

    init(p: UnsafeBufferPointer<UInt8>, maxDepth: Int, targets: Set<[String]>, prefixes: Set<[String]>) {
        self.p = p
        self.maxDepth = maxDepth
        self.targets = targets
        self.prefixes = prefixes
    }

    var pointer: String {
        var out = ""
        for l in location {
            out += "/"
            switch l {
            case .member(let name): out += StrictJSON.pointerToken(String(StrictJSON.shown(name).dropFirst().dropLast()))
            case .index(let n): out += String(n)
            }
        }
        return out
    }

    func fail(_ kind: StrictJSONError.Kind, _ message: String, at offset: Int? = nil) -> StrictJSONError {
        StrictJSONError(kind: kind, pointer: pointer, offset: offset ?? i, message: message)
    }

    func invalid(_ message: String, at offset: Int? = nil) -> StrictJSONError { fail(.invalid, message, at: offset) }

    /// The byte at the cursor, described for an error.
    func found() -> String {
        guard i < p.count else { return "the end of the body" }
        let c = p[i]
        if c >= 0x21, c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        return "byte 0x" + String(c, radix: 16, uppercase: true)
    }

    mutating func document() throws {
        if p.count >= 3, p[0] == 0xEF, p[1] == 0xBB, p[2] == 0xBF {
            throw invalid("the body starts with a UTF-8 byte-order mark, which JSON text must not (RFC 8259 §8.1)", at: 0)
        }
        if p.count >= 2, (p[0] == 0xFE && p[1] == 0xFF) || (p[0] == 0xFF && p[1] == 0xFE) || p[0] == 0 || p[1] == 0 {
            throw invalid("the body is not UTF-8 (UTF-16 or UTF-32?); JSON exchanged between systems must be UTF-8 (RFC 8259 §8.1)", at: 0)
        }
        skipSpace()
        if i == p.count { throw invalid("the body is empty; a JSON value was expected") }
        let root: [String]? = targets.contains([]) || prefixes.contains([]) ? [] : nil
        _ = try value(depth: 0, path: root, keep: false)
        skipSpace()
        if i != p.count { throw invalid("unexpected \(found()) after the JSON value") }
    }

    mutating func skipSpace() {
        while i < p.count, p[i] == 0x20 || p[i] == 0x0A || p[i] == 0x0D || p[i] == 0x09 { i += 1 }
    }

    /// Reads one value. `path` is its member-name path while it lies on the way to a target (nil
    /// otherwise); `keep` asks for the value to be returned (inside a kept value).
    mutating func value(depth: Int, path: [String]?, keep: Bool) throws -> StrictJSONValue? {
        var keep = keep
        if let path, targets.contains(path) { keep = true }
        guard i < p.count else { throw invalid("the body ends where a value was expected") }
        let result: StrictJSONValue?
        switch p[i] {
        case 0x7B:  // {
            guard depth < maxDepth else { throw fail(.tooDeep, "objects and arrays nest deeper than \(maxDepth) levels") }
            result = try object(depth: depth + 1, path: path.flatMap { prefixes.contains($0) ? $0 : nil }, keep: keep)
        case 0x5B:  // [
            guard depth < maxDepth else { throw fail(.tooDeep, "objects and arrays nest deeper than \(maxDepth) levels") }
            result = try array(depth: depth + 1, keep: keep)
        case 0x22:  // "
            try string()
            result = keep ? .string(String(decoding: scratch, as: UTF8.self)) : nil
        case 0x74: try literal("true"); result = .bool(true)
        case 0x66: try literal("false"); result = .bool(false)
        case 0x6E: try literal("null"); result = .null
        case 0x2D, 0x30...0x39:
            let start = i
            try number()
            result = keep ? .number(String(decoding: UnsafeBufferPointer(rebasing: p[start..<i]), as: UTF8.self)) : nil
        default:
            if p[i] == 0x4E || p[i] == 0x49 || p[i] == 0x2B {
                throw invalid("\(found()) starts no JSON value (NaN, Infinity and a leading + are not JSON)")
            }
            throw invalid("\(found()) starts no JSON value")
        }
        if let path, targets.contains(path), let result { captured[path] = result }
        return keep ? result : nil
    }

    mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        let w = UnsafeBufferPointer(start: word.utf8Start, count: n)
        guard i + n <= p.count, p[i..<(i + n)].elementsEqual(w) else {
            throw invalid("\(found()) starts no JSON value (expected \(word))")
        }
        i += n
    }

    mutating func number() throws {
        let start = i
        if p[i] == 0x2D { i += 1 }
        func digit() -> Bool { i < p.count && p[i] >= 0x30 && p[i] <= 0x39 }
        guard digit() else { throw invalid("a number has no digits after its minus sign", at: start) }
        if p[i] == 0x30 {
            i += 1
            if digit() { throw invalid("a number has a leading zero", at: start) }
        } else {
            while digit() { i += 1 }
        }
        if i < p.count, p[i] == 0x2E {
            i += 1
            guard digit() else { throw invalid("a number has no digits after its decimal point", at: start) }
            while digit() { i += 1 }
        }
        if i < p.count, p[i] == 0x65 || p[i] == 0x45 {
            i += 1
            if i < p.count, p[i] == 0x2B || p[i] == 0x2D { i += 1 }
            guard digit() else { throw invalid("a number has no digits in its exponent", at: start) }
            while digit() { i += 1 }
        }
    }

    /// Reads a string at the cursor into `scratch` (unescaped), checking escapes, control
    /// characters, surrogates and UTF-8.
    mutating func string() throws {
        let start = i
        i += 1
        scratch.removeAll(keepingCapacity: true)
        var plain = true
        while true {
            guard i < p.count else { throw invalid("a string is not terminated", at: start) }
            let c = p[i]
            if c == 0x22 { i += 1; break }
            if c < 0x20 {
                throw invalid("a string contains an unescaped control character (byte 0x\(String(c, radix: 16, uppercase: true)))")
            }
            if c >= 0x80 { plain = false }
            if c != 0x5C { scratch.append(c); i += 1; continue }
            guard i + 1 < p.count else { throw invalid("a string is not terminated", at: start) }
            let e = p[i + 1]
            i += 2
            switch e {
            case 0x22, 0x5C, 0x2F: scratch.append(e)
            case 0x62: scratch.append(0x08)
            case 0x66: scratch.append(0x0C)
            case 0x6E: scratch.append(0x0A)
            case 0x72: scratch.append(0x0D)
            case 0x74: scratch.append(0x09)
            case 0x75:
                var v = try hex4()
                if v >= 0xDC00, v < 0xE000 { throw invalid("a string has a \\u escape of a lone low surrogate", at: i - 6) }
                if v >= 0xD800, v < 0xDC00 {
                    guard i + 1 < p.count, p[i] == 0x5C, p[i + 1] == 0x75 else {
                        throw invalid("a string has a \\u escape of a lone high surrogate", at: i - 6)
                    }
                    i += 2
                    let lo = try hex4()
                    guard lo >= 0xDC00, lo < 0xE000 else {
                        throw invalid("a string has a high surrogate not followed by a low one", at: i - 12)
                    }
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                }
                appendUTF8(v)
            default:
                i -= 1
                throw invalid("a string has an invalid escape \\\(found())", at: i - 1)
            }
        }
        if !plain, String(validating: scratch, as: UTF8.self) == nil { throw invalid("a string is not valid UTF-8", at: start) }
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= p.count else { throw invalid("a \\u escape is cut short") }
        var v: UInt32 = 0
        for k in 0..<4 {
            let c = p[i + k]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw invalid("a \\u escape has a character that is not hexadecimal", at: i + k)
            }
            v = v << 4 | d
        }
        i += 4
        return v
    }

    mutating func appendUTF8(_ v: UInt32) {
        switch v {
        case 0..<0x80: scratch.append(UInt8(v))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | v >> 6)); scratch.append(UInt8(0x80 | v & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | v >> 12)); scratch.append(UInt8(0x80 | v >> 6 & 0x3F)); scratch.append(UInt8(0x80 | v & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | v >> 18)); scratch.append(UInt8(0x80 | v >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | v >> 6 & 0x3F)); scratch.append(UInt8(0x80 | v & 0x3F))
        }
    }

    /// Reads an object. `path` is non-nil when the object lies on the way to a target.
    mutating func object(depth: Int, path: [String]?, keep: Bool) throws -> StrictJSONValue? {
        i += 1
        skipSpace()
        var members: [StrictJSONMember] = []
        if i < p.count, p[i] == 0x7D { i += 1; return keep ? .object(members) : nil }
        var names = Set<[UInt8]>()
        /// Names on the way to a target, by their folded form, for the letter-case rule.
        var folded: [String: [UInt8]] = [:]
        while true {
            skipSpace()
            guard i < p.count, p[i] == 0x22 else {
                throw invalid(
                    i < p.count && p[i] == 0x7D ? "an object has a trailing comma" : "\(found()) where a member name was expected")
            }
            let nameStart = i
            try string()
            let name = scratch
            location.append(.member(name))
            if !names.insert(name).inserted {
                throw fail(.duplicateKey, "the member name \(StrictJSON.shown(name)) appears twice in one object", at: nameStart)
            }
            var childPath: [String]?
            var nameText: String?
            if keep || path != nil { nameText = String(decoding: name, as: UTF8.self) }
            if let path, let s = nameText {
                let candidate = path + [s]
                if targets.contains(candidate) || prefixes.contains(candidate) { childPath = candidate }
                // A non-ASCII name that some reader folds onto the member a check reads.
                if name.contains(where: { $0 >= 0x80 }), let read = foldsOntoRead(path, s) {
                    throw fail(
                        .duplicateKey,
                        "the member name \(StrictJSON.shown(name)) is not ASCII and folds onto \(StrictJSON.shown(Array(read.utf8))), the member the check reads; some readers take them for one (Go's encoding/json folds U+0130 İ and U+0131 ı to I, the Kelvin sign to k, U+017F ſ to s; NFKC turns fullwidth letters into ASCII)",
                        at: nameStart)
                }
                // Siblings that a case-insensitive reader would take for the member a check reads.
                let f = StrictJSON.fold(s)
                if pathHasFold(path, f) {
                    if let other = folded[f], other != name {
                        throw fail(
                            .duplicateKey,
                            "the member names \(StrictJSON.shown(other)) and \(StrictJSON.shown(name)) differ only in letter case (or Unicode normalisation), and some readers take them for one (Go's encoding/json matches names case-insensitively)",
                            at: nameStart)
                    }
                    folded[f] = name
                }
            }
            skipSpace()
            guard i < p.count, p[i] == 0x3A else { throw invalid("\(found()) where ':' was expected after a member name") }
            i += 1
            skipSpace()
            let v = try value(depth: depth, path: childPath, keep: keep)
            if keep, let v, let nameText { members.append(StrictJSONMember(name: nameText, value: v)) }
            location.removeLast()
            skipSpace()
            guard i < p.count else { throw invalid("the body ends inside an object") }
            if p[i] == 0x2C { i += 1; continue }
            if p[i] == 0x7D { i += 1; break }
            throw invalid("\(found()) where ',' or '}' was expected in an object")
        }
        return keep ? .object(members) : nil
    }

    /// The name a target continues from `path` with, when the non-ASCII `name` is not that name
    /// but folds onto it (see `StrictJSON.foldings`).
    func foldsOntoRead(_ path: [String], _ name: String) -> String? {
        var keys: [String]?
        for t in targets where t.count > path.count && Array(t[0..<path.count]) == path {
            let read = t[path.count]
            if read.utf8.elementsEqual(name.utf8) { continue }
            if keys == nil { keys = StrictJSON.foldings(name) }
            let key = StrictJSON.asciiLowercased(read)
            if keys!.contains(where: { $0 == key }) { return read }
        }
        return nil
    }

    /// Whether some target continues from `path` with a member whose folded name is `f`.
    func pathHasFold(_ path: [String], _ f: String) -> Bool {
        for t in targets where t.count > path.count && Array(t[0..<path.count]) == path {
            if StrictJSON.fold(t[path.count]) == f { return true }
        }
        return false
    }

    mutating func array(depth: Int, keep: Bool) throws -> StrictJSONValue? {
        i += 1
        skipSpace()
        var items: [StrictJSONValue] = []
        if i < p.count, p[i] == 0x5D { i += 1; return keep ? .array(items) : nil }
        var n = 0
        while true {
            skipSpace()
            if i < p.count, p[i] == 0x5D { throw invalid("an array has a trailing comma") }
            location.append(.index(n))
            let v = try value(depth: depth, path: nil, keep: keep)
            if keep, let v { items.append(v) }
            location.removeLast()
            n += 1
            skipSpace()
            guard i < p.count else { throw invalid("the body ends inside an array") }
            if p[i] == 0x2C { i += 1; continue }
            if p[i] == 0x5D { i += 1; break }
            throw invalid("\(found()) where ',' or ']' was expected in an array")
        }
        return keep ? .array(items) : nil
    }
}

/// The one form of a request target the gateway routes on, checks and forwards.
///
/// A back end that normalises a path differently from the gateway would serve a resource the
/// gateway's checks never looked at (`/public/../admin/users`). So the target is normalised once,
/// here, and the result is what the router matches, what the checks and the call log see, and what
/// the upstream receives. What two common back ends could still read differently is refused.
///
/// Rules, on the path (the part before the first `?`):
/// - Percent-escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded; every other
///   escape is kept, with its hex digits in uppercase (`%3b` → `%3B`).
/// - Empty segments collapse (`//a///b` → `/a/b`), then dot-segments are removed as RFC 3986
///   §5.2.4 does, after decoding, so `%2e%2e`, `.%2E` and `..` are all `..`. A trailing dot-segment
///   leaves a trailing slash (`/a/b/..` → `/a/`), as nginx and the RFC do.
/// - Refused: `#`; `\` and `%5C`; `%2F`; NUL, control bytes and their escapes; raw bytes of 0x80 and
///   above (clients send them percent-encoded); a malformed escape (`%`, `%4`, `%zz`, `%u002e`); a
///   dot-segment that climbs above the root (`/../x`); an escaped `%` that introduces another
///   escape (`%252e`: a back end that decodes twice sees `.`); escapes that are not UTF-8 (overlong
///   `%C0%AE` is `.` to some decoders); escaped characters that Unicode normalisation or Windows
///   "best fit" turns into `.`, `/`, `\`, `%`, `;`, `?` or `#` (`%EF%BC%8F`, fullwidth `/`).
/// - A segment of dots and spaces only, other than `.` and `..` (`...`, `..%20`), is refused: Windows
///   drops trailing dots and spaces from names, and old path APIs read `...` as `..`.
/// - `;` is an ordinary character (nginx, Node and Go treat it so), except where Tomcat, Jetty and
///   Spring, which cut a segment's `;parameters` off before resolving dot-segments, would read the
///   path differently: a segment whose part before its first `;` is empty, `.` or `..` (`..;`,
///   `.;x`, `;x`, also with `%2e`) is refused. Routing matches a literal segment with or without
///   `;parameters` (see `segment(_:matchesLiteral:)`).
/// - The query (after `?`) is kept as received; it may not contain `#`, `\`, control or 8-bit bytes.
public struct CanonicalTarget: Sendable, Equatable {
    /// The canonical path: starts with `/`, no empty, `.` or `..` segments.
    public let path: String
    /// The query as received, without `?`; nil when the target has no `?`.
    public let query: String?

    public init(path: String, query: String?) {
        self.path = path
        self.query = query
    }

    /// Path and query, as sent upstream.
    public var target: String { query.map { path + "?" + $0 } ?? path }

    /// Normalises an origin-form request target, or says what in it is refused and why.
    public static func parse<S: StringProtocol>(_ target: S) -> Result<CanonicalTarget, TargetRefusal> {
        parse(String(target))
    }

    /// The form the data plane calls: a target that is already canonical and has no query is
    /// returned as its own path (no copy).
    public static func parse(_ target: String) -> Result<CanonicalTarget, TargetRefusal> {
        var text = target
        let result = text.withUTF8 { parse($0) }
        if case .success(let t) = result, t.query == nil, t.path == target { return .success(CanonicalTarget(path: target, query: nil)) }
        return result
    }

    /// Normalises raw target bytes (as they arrived on the wire).
    public static func parse(_ u: UnsafeBufferPointer<UInt8>) -> Result<CanonicalTarget, TargetRefusal> {
        let n = u.count
        var queryStart = n
        for i in 0..<n {
            let c = u[i]
            switch c {
            case 0x3F where queryStart == n:  // ?
                queryStart = i
            case 0x23:
                return .failure(
                    TargetRefusal(
                        .fragment, at: u, i, "a fragment (#) is never part of a request; a back end could cut the target there or keep it"))
            case 0x5C:
                return .failure(
                    TargetRefusal(
                        .backslash, at: u, i,
                        "a backslash is a path separator to some back ends (IIS, Node's URL parser) and a plain character to others"))
            case 0x00..<0x20, 0x7F:
                return .failure(TargetRefusal(.controlByte, at: u, i, "control bytes are not allowed in a request target"))
            case 0x80...:
                return .failure(
                    TargetRefusal(
                        .eightBit, at: u, i, "raw bytes of 0x80 and above are not allowed in a request target (send them percent-encoded)"))
            default:
                break
            }
        }
        guard n > 0, u[0] == 0x2F else {
            return .failure(TargetRefusal(.notOriginForm, at: u, 0, "the target is not a path starting with \"/\""))
        }
        let query: String? = queryStart < n ? String(decoding: UnsafeBufferPointer(rebasing: u[(queryStart + 1)..<n]), as: UTF8.self) : nil
        let pathBytes = UnsafeBufferPointer(rebasing: u[0..<queryStart])
        if isAlreadyCanonical(pathBytes) {
            return .success(CanonicalTarget(path: String(decoding: pathBytes, as: UTF8.self), query: query))
        }
        switch canonicalPath(pathBytes) {
        case .success(let p): return .success(CanonicalTarget(path: p, query: query))
        case .failure(let r): return .failure(r)
        }
    }

    /// The common case, with nothing to do: no `%`, no `;`, no `//`, no segment starting with `.`.
    @inline(__always)
    static func isAlreadyCanonical(_ p: UnsafeBufferPointer<UInt8>) -> Bool {
        var prev: UInt8 = 0
        for c in p {
            if c == 0x25 || c == 0x3B { return false }
            if prev == 0x2F, c == 0x2F || c == 0x2E { return false }
            prev = c
        }
        return true
    }

    static func canonicalPath(_ p: UnsafeBufferPointer<UInt8>) -> Result<String, TargetRefusal> {
        // `out` holds "/seg/seg…"; `starts` the offset of each kept segment's "/".
        var out: [UInt8] = []
        out.reserveCapacity(p.count)
        var starts: [Int] = []
        var trailingSlash = false
        var segment: [UInt8] = []
        var s = 1
        while s <= p.count {
            var e = s
            while e < p.count, p[e] != 0x2F { e += 1 }
            let isLast = e >= p.count
            defer { s = e + 1 }
            if e == s {
                if isLast { trailingSlash = true }
                continue
            }
            segment.removeAll(keepingCapacity: true)
            if let refusal = decodeSegment(p, s, e, into: &segment) { return .failure(refusal) }
            if segment == [0x2E] {
                if isLast { trailingSlash = true }
                continue
            }
            if segment == [0x2E, 0x2E] {
                guard let last = starts.popLast() else {
                    return .failure(
                        TargetRefusal(
                            .climbsAboveRoot, excerpt: excerpt(p, s, e),
                            "the dot-segment \"\(text(p, s, e))\" climbs above the root of the path"))
                }
                out.removeSubrange(last...)
                if isLast { trailingSlash = true }
                continue
            }
            if isDotsAndSpaces(segment[..<(segment.firstIndex(of: 0x3B) ?? segment.endIndex)]) {
                return .failure(
                    TargetRefusal(
                        .dotSegmentLookalike, excerpt: excerpt(p, s, e),
                        "the segment \"\(text(p, s, e))\" is only dots and spaces; Windows drops trailing dots and spaces, and old path APIs read \"...\" as \"..\""
                    ))
            }
            if let semi = segment.firstIndex(of: 0x3B) {
                let name = segment[..<semi]
                if name.isEmpty || name.elementsEqual([0x2E]) || name.elementsEqual([0x2E, 0x2E]) {
                    return .failure(
                        TargetRefusal(
                            .dotSegmentWithParameters, excerpt: excerpt(p, s, e),
                            "the segment \"\(text(p, s, e))\" is \(name.isEmpty ? "empty" : "a dot-segment") once Tomcat, Jetty or Spring cut its ;parameters off"
                        ))
                }
            }
            starts.append(out.count)
            out.append(0x2F)
            out.append(contentsOf: segment)
            trailingSlash = false
        }
        if out.isEmpty { return .success("/") }
        if trailingSlash { out.append(0x2F) }
        return .success(String(decoding: out, as: UTF8.self))
    }

    /// Decodes the unreserved escapes of p[s..<e] into `out` (other escapes uppercased); returns a
    /// refusal when the segment holds something refused.
    static func decodeSegment(_ p: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int, into out: inout [UInt8]) -> TargetRefusal? {
        var i = s
        var highEscapes = false
        var escapedPercent = false
        while i < e {
            let c = p[i]
            guard c == 0x25 else {
                out.append(c)
                i += 1
                continue
            }
            guard i + 2 < e, let h = hexValue(p[i + 1]), let l = hexValue(p[i + 2]) else {
                return TargetRefusal(
                    .malformedEscape, excerpt: excerpt(p, i, min(i + 3, e)),
                    "\"\(text(p, i, min(i + 3, e)))\" is not a percent-escape (% and two hex digits)")
            }
            let v = h << 4 | l
            switch v {
            case 0x2F:
                return TargetRefusal(
                    .encodedSlash, excerpt: excerpt(p, i, i + 3),
                    "an encoded slash (%2F) is a separator to back ends that decode before routing and a character to others")
            case 0x5C:
                return TargetRefusal(
                    .encodedBackslash, excerpt: excerpt(p, i, i + 3),
                    "an encoded backslash (%5C) is a separator to some back ends once decoded")
            case 0x00..<0x20, 0x7F:
                return TargetRefusal(
                    .encodedControl, excerpt: excerpt(p, i, i + 3),
                    "an encoded control character (\(text(p, i, i + 3))) could end the path, or a line, in a back end that decodes it")
            case _ where isUnreserved(v):
                out.append(v)
            default:
                out.append(0x25)
                out.append(hexDigit(v >> 4))
                out.append(hexDigit(v & 0xF))
                if v >= 0x80 { highEscapes = true }
                if v == 0x25 { escapedPercent = true }
            }
            i += 3
        }
        if escapedPercent, let k = doubleEscape(out) {
            return TargetRefusal(
                .doubleEncoding, excerpt: String(decoding: out[k..<min(k + 5, out.count)], as: UTF8.self),
                "an escaped % followed by two hex digits is an escape encoded twice; a back end that decodes twice would read another character"
            )
        }
        if highEscapes, let refusal = checkUnicode(out, p, s, e) { return refusal }
        return nil
    }

    /// Whether a segment (or its name before `;`) is made of dots and (encoded) spaces only, other
    /// than `.` and `..` themselves: `...`, `.. `, `. .`.
    static func isDotsAndSpaces(_ name: ArraySlice<UInt8>) -> Bool {
        if name.isEmpty || name.elementsEqual([0x2E]) || name.elementsEqual([0x2E, 0x2E]) { return false }
        var k = name.startIndex
        while k < name.endIndex {
            if name[k] == 0x2E {
                k += 1
            } else if name[k] == 0x25, k + 2 < name.endIndex, name[k + 1] == 0x32, name[k + 2] == 0x30 {
                k += 3
            } else {
                return false
            }
        }
        return true
    }

    /// The offset of a "%25" followed by two hex digits in a canonical segment.
    static func doubleEscape(_ seg: [UInt8]) -> Int? {
        var k = 0
        while k + 4 < seg.count {
            if seg[k] == 0x25, seg[k + 1] == 0x32, seg[k + 2] == 0x35, hexValue(seg[k + 3]) != nil, hexValue(seg[k + 4]) != nil { return k }
            k += 1
        }
        return nil
    }

    /// Escaped bytes must be UTF-8, and no character that normalises to a separator or a dot.
    static func checkUnicode(_ seg: [UInt8], _ p: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int) -> TargetRefusal? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(seg.count)
        var k = 0
        while k < seg.count {
            if seg[k] == 0x25, k + 2 < seg.count, let h = hexValue(seg[k + 1]), let l = hexValue(seg[k + 2]) {
                bytes.append(h << 4 | l)
                k += 3
            } else {
                bytes.append(seg[k])
                k += 1
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            return TargetRefusal(
                .invalidUTF8, excerpt: excerpt(p, s, e),
                "the escapes in \"\(text(p, s, e))\" are not UTF-8 (overlong forms such as %C0%AE read as \".\" to some decoders)")
        }
        for scalar in decoded.unicodeScalars where lookalikes.contains(scalar.value) || (0x80...0x9F).contains(scalar.value) {
            let hex = String(scalar.value, radix: 16, uppercase: true)
            return TargetRefusal(
                .lookalikeCharacter, excerpt: excerpt(p, s, e),
                "\"\(text(p, s, e))\" holds U+\(String(repeating: "0", count: max(0, 4 - hex.count)))\(hex), which Unicode normalisation or Windows best-fit mapping turns into a separator, a dot or a control character"
            )
        }
        return nil
    }

    /// Characters whose NFKC form contains `/ \ % ; ? #` or is only dots, those Windows "best fit"
    /// and IDNA map to `/`, `\` or `.`, and line separators.
    static let lookalikes: Set<UInt32> = [
        0x037E, 0x2024, 0x2025, 0x2026, 0x2047, 0x2048, 0x2049, 0x2100, 0x2101, 0x2105, 0x2106,
        0xFE14, 0xFE16, 0xFE19, 0xFE30, 0xFE52, 0xFE54, 0xFE56, 0xFE5F, 0xFE68, 0xFE6A,
        0xFF03, 0xFF05, 0xFF0E, 0xFF0F, 0xFF1B, 0xFF1F, 0xFF3C,
        0x2215, 0x2044, 0x29F8, 0x29F5, 0x29F9, 0x2216, 0x3002, 0xFF61, 0x2028, 0x2029,
    ]

    /// Removes `prefix` from the start of a canonical path on whole segments: `/api` strips
    /// `/api/x` to `/x` and `/api` to `/`, but not `/apix`. Segments compare as the router compares
    /// literals. Returns nil when the path does not start with the prefix.
    public static func stripPrefix(_ prefix: String, from path: String) -> String? {
        let canonicalPrefix = (try? parse(prefix).get())?.path ?? prefix
        let want = canonicalPrefix.split(separator: "/", omittingEmptySubsequences: true)
        if want.isEmpty { return path }
        var rest = Substring(path)
        for literal in want {
            guard rest.first == "/" else { return nil }
            rest = rest.dropFirst()
            let end = rest.firstIndex(of: "/") ?? rest.endIndex
            guard segment(rest[..<end], matchesLiteral: PercentDecoding.decode(literal)) else { return nil }
            rest = rest[end...]
        }
        return rest.isEmpty ? "/" : String(rest)
    }

    /// Whether a canonical path segment matches a route's literal segment (given decoded): equal
    /// once percent-decoded, or equal up to the segment's first `;` (`/admin;jsessionid=x` is
    /// `/admin` to Tomcat and Spring, so it meets the checks of `/admin`).
    public static func segment<S: StringProtocol>(_ seg: S, matchesLiteral literal: String) -> Bool {
        if seg.utf8.elementsEqual(literal.utf8) { return true }
        let hasPercent = seg.utf8.contains(0x25)
        let semi = seg.utf8.firstIndex(of: 0x3B)
        if !hasPercent && semi == nil { return false }
        if hasPercent, PercentDecoding.decode(seg).utf8.elementsEqual(literal.utf8) { return true }
        guard let semi else { return false }
        let name = Substring(seg)[..<semi]
        return (name.utf8.contains(0x25) ? PercentDecoding.decode(name) : String(name)).utf8.elementsEqual(literal.utf8)
    }

    // MARK: Bytes

    @inline(__always) static func isUnreserved(_ c: UInt8) -> Bool {
        switch c {
        case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x2D, 0x2E, 0x5F, 0x7E: return true
        default: return false
        }
    }

    @inline(__always) static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    @inline(__always) static func hexDigit(_ v: UInt8) -> UInt8 { v < 10 ? 0x30 + v : 0x41 + v - 10 }

    static func text(_ p: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: p[s..<min(e, s + 64)]), as: UTF8.self) + (e - s > 64 ? "…" : "")
    }

    static func excerpt(_ p: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int) -> String { text(p, s, e) }
}

/// Why a request target is refused: what in it, and why a back end could read it differently.
public struct TargetRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case notOriginForm = "not_origin_form"
        case fragment
        case backslash
        case controlByte = "control_byte"
        case eightBit = "8bit_byte"
        case malformedEscape = "malformed_escape"
        case encodedSlash = "encoded_slash"
        case encodedBackslash = "encoded_backslash"
        case encodedControl = "encoded_control"
        case climbsAboveRoot = "climbs_above_root"
        case dotSegmentWithParameters = "dot_segment_with_parameters"
        case dotSegmentLookalike = "dot_segment_lookalike"
        case doubleEncoding = "double_encoding"
        case invalidUTF8 = "invalid_utf8"
        case lookalikeCharacter = "lookalike_character"
    }

    public let kind: Kind
    /// The refused piece of the target (printable: control and 8-bit bytes are shown as \xNN).
    public let excerpt: String
    /// Why it is refused.
    public let why: String

    public init(_ kind: Kind, excerpt: String, _ why: String) {
        self.kind = kind
        self.excerpt = TargetRefusal.printable(excerpt)
        self.why = why
    }

    init(_ kind: Kind, at p: UnsafeBufferPointer<UInt8>, _ i: Int, _ why: String) {
        let end = min(p.count, i + 1)
        var piece = ""
        for c in p[i..<end] {
            piece += c < 0x20 || c >= 0x7F ? "\\x" + String(c, radix: 16, uppercase: true).leftPadded(2) : String(UnicodeScalar(c))
        }
        self.kind = kind
        self.excerpt = piece
        self.why = why
    }

    public var description: String { "\(excerpt.isEmpty ? "the target" : "\"" + excerpt + "\""): \(why)" }

    static func printable(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            if c.value < 0x20 || c.value == 0x7F || (c.value >= 0x80 && c.value < 0xA0) {
                out += "\\x" + String(c.value, radix: 16, uppercase: true).leftPadded(2)
            } else {
                out.unicodeScalars.append(c)
            }
        }
        return out
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

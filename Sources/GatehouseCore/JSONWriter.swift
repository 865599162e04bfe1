// Hand-written: the gateway writes JSON on the request path (problem bodies, decision traces,
// call-log rows) where Foundation's JSONEncoder would cost an allocation per value and a Codable
// walk per record. This is the one JSON writer: `JSONWriter` for documents, `JSONOutput` and
// `JSONString.appendQuoted` for writers that own their buffer (the call-log row binder).

/// Where JSON bytes go: an array, or a buffer written through a pointer.
public protocol JSONOutput {
    mutating func appendByte(_ b: UInt8)
    mutating func appendBytes(_ u: UnsafeBufferPointer<UInt8>)
}

extension Array: JSONOutput where Element == UInt8 {
    @inlinable public mutating func appendByte(_ b: UInt8) { append(b) }
    @inlinable public mutating func appendBytes(_ u: UnsafeBufferPointer<UInt8>) { append(contentsOf: u) }
}

/// JSON strings (RFC 8259 §7): quoted, with `"`, `\` and control characters escaped.
public enum JSONString {
    /// Appends `s` quoted. Runs of bytes that need no escaping are copied whole, found eight bytes
    /// at a time. Writes at most 6 × `s.utf8.count` + 2 bytes.
    @inlinable public static func appendQuoted<Output: JSONOutput>(_ s: String, to out: inout Output) {
        out.appendByte(UInt8(ascii: "\""))
        // Borrows the string's UTF-8 (no copy); the fallback is for strings whose storage is not
        // contiguous UTF-8 (bridged ones, on Apple platforms).
        if s.utf8.withContiguousStorageIfAvailable({ appendEscaped($0, to: &out) }) == nil {
            var s = s
            s.withUTF8 { appendEscaped($0, to: &out) }
        }
        out.appendByte(UInt8(ascii: "\""))
    }

    @inlinable static func appendEscaped<Output: JSONOutput>(_ u: UnsafeBufferPointer<UInt8>, to out: inout Output) {
        guard let p = u.baseAddress else { return }
        let n = u.count
        var runStart = 0
        var i = 0
        while i < n {
            // Eight bytes at a time while none needs escaping: no byte < 0x20, none is `"` or `\`.
            if i + 8 <= n {
                let w = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
                let ones: UInt64 = 0x0101_0101_0101_0101
                let highs: UInt64 = 0x8080_8080_8080_8080
                let quote = w ^ 0x2222_2222_2222_2222
                let backslash = w ^ 0x5C5C_5C5C_5C5C_5C5C
                let flagged = ((w &- 0x2020_2020_2020_2020) & ~w) | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
                if flagged & highs == 0 {
                    i += 8
                    continue
                }
            }
            let b = p[i]
            if b >= 0x20 && b != 0x22 && b != 0x5C {
                i += 1
                continue
            }
            if runStart < i { out.appendBytes(UnsafeBufferPointer(start: p + runStart, count: i - runStart)) }
            out.appendByte(0x5C)
            switch b {
            case 0x22: out.appendByte(0x22)
            case 0x5C: out.appendByte(0x5C)
            case 0x0A: out.appendByte(UInt8(ascii: "n"))
            case 0x0D: out.appendByte(UInt8(ascii: "r"))
            case 0x09: out.appendByte(UInt8(ascii: "t"))
            default:
                out.appendByte(UInt8(ascii: "u"))
                out.appendByte(UInt8(ascii: "0"))
                out.appendByte(UInt8(ascii: "0"))
                out.appendByte(ASCIIDigits.hex(Int(b >> 4)))
                out.appendByte(ASCIIDigits.hex(Int(b)))
            }
            i += 1
            runStart = i
        }
        if runStart < n { out.appendBytes(UnsafeBufferPointer(start: p + runStart, count: n - runStart)) }
    }
}

/// A minimal streaming JSON writer (no Foundation on the hot path).
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    private var needsComma = false

    public init() { bytes.reserveCapacity(512) }

    public mutating func beginObject() { separator(); bytes.append(UInt8(ascii: "{")); needsComma = false }
    public mutating func endObject() { bytes.append(UInt8(ascii: "}")); needsComma = true }
    public mutating func beginArray() { separator(); bytes.append(UInt8(ascii: "[")); needsComma = false }
    public mutating func endArray() { bytes.append(UInt8(ascii: "]")); needsComma = true }

    public mutating func key(_ k: String) {
        separator()
        appendString(k)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }
    public mutating func value(_ s: String) { separator(); appendString(s); needsComma = true }
    public mutating func value(_ i: Int) { separator(); Self.appendInt(i, to: &bytes); needsComma = true }
    /// A number rounded to three decimals (a duration in seconds, say); null when not finite.
    public mutating func value(_ d: Double) {
        separator()
        bytes.append(contentsOf: (d.isFinite ? String((d * 1000).rounded() / 1000) : "null").utf8)
        needsComma = true
    }
    public mutating func value(_ b: Bool) { separator(); bytes.append(contentsOf: (b ? "true" : "false").utf8); needsComma = true }
    public mutating func null() { separator(); bytes.append(contentsOf: "null".utf8); needsComma = true }

    public mutating func field(_ k: String, _ v: String) { key(k); value(v) }
    public mutating func field(_ k: String, _ v: Int) { key(k); value(v) }
    public mutating func field(_ k: String, _ v: Bool) { key(k); value(v) }
    public mutating func field(_ k: String, _ v: Double) { key(k); value(v) }
    public mutating func field(_ k: String, _ v: String?) { key(k); if let v { value(v) } else { null() } }
    public mutating func field(_ k: String, _ v: [String]) {
        key(k)
        beginArray()
        for s in v { value(s) }
        endArray()
    }

    private mutating func separator() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    private mutating func appendString(_ s: String) { Self.appendQuoted(s, to: &bytes) }

    /// Appends `s` as a quoted JSON string to `bytes` (`JSONString`).
    public static func appendQuoted(_ s: String, to bytes: inout [UInt8]) { JSONString.appendQuoted(s, to: &bytes) }

    /// Appends the decimal digits of `i` to `bytes`.
    public static func appendInt(_ i: Int, to bytes: inout [UInt8]) {
        if i >= 0 && i < 10 { bytes.append(UInt8(ascii: "0") + UInt8(i)); return }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch
        withUnsafeMutableBytes(of: &digits) { d in
            let n = ASCIIDigits.decimal(i, endingAt: d)
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: d[(d.count - n)...]))
        }
    }
}

/// How much a denial tells the caller.
public enum Exposure: String, Sendable, Codable, CaseIterable {
    /// Title, detail, required, presented and hint.
    case detailed
    /// Reason code and request id only; the rest stays in the call log.
    case minimal
}

/// A rendered problem response: the one place denials become HTTP.
public struct RenderedProblem: Sendable {
    public var status: Int
    public var headers: [HeaderField]
    public var body: [UInt8]
}

/// Renders denials as RFC 9457 `application/problem+json`.
public struct ProblemRenderer: Sendable {
    /// Prefix for the problem `type` URI; the reason code is appended as a fragment.
    public var typeBase: String

    public init(typeBase: String = "docs/reasons.md#") { self.typeBase = typeBase }

    /// - Parameter revealOperatorDetail: also show the operator-only detail (a WAF excerpt); only
    ///   when the route explicitly asks for `detailed` exposure.
    public func render(
        _ denial: Denial, requestID: String, instance: String, exposure: Exposure, checkID: String?,
        revealOperatorDetail: Bool = false
    ) -> RenderedProblem {
        var w = JSONWriter()
        w.beginObject()
        w.field("type", typeBase + denial.code.rawValue)
        w.field("title", denial.title)
        w.field("status", denial.status)
        if exposure == .detailed {
            if revealOperatorDetail, let extra = denial.operatorDetail {
                w.field("detail", denial.detail + " (" + extra + ")")
            } else {
                w.field("detail", denial.detail)
            }
        }
        w.field("instance", instance)
        w.field("reason", denial.code.rawValue)
        if exposure == .detailed {
            if let checkID { w.field("check", checkID) }
            w.field("required", denial.required)
            w.field("presented", denial.presented)
            w.field("hint", denial.hint)
        }
        for key in denial.extensions.keys.sorted() { w.field(key, denial.extensions[key]!) }
        w.field("request_id", requestID)
        w.endObject()
        var headers = denial.headers
        headers.append(HeaderField("Content-Type", "application/problem+json"))
        return RenderedProblem(status: denial.status, headers: headers, body: w.bytes)
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
    public mutating func value(_ b: Bool) { separator(); bytes.append(contentsOf: (b ? "true" : "false").utf8); needsComma = true }
    public mutating func null() { separator(); bytes.append(contentsOf: "null".utf8); needsComma = true }

    public mutating func field(_ k: String, _ v: String) { key(k); value(v) }
    public mutating func field(_ k: String, _ v: Int) { key(k); value(v) }
    public mutating func field(_ k: String, _ v: Bool) { key(k); value(v) }
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

    /// Appends `s` as a quoted JSON string to `bytes`. Runs of bytes that need no escaping (all but
    /// `"`, `\\` and control characters) are copied in bulk.
    public static func appendQuoted(_ s: String, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { utf8 in
            var runStart = 0
            var i = 0
            while i < utf8.count {
                let b = utf8[i]
                if b >= 0x20 && b != 0x22 && b != 0x5C {
                    i += 1
                    continue
                }
                if runStart < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
                appendEscape(b, to: &bytes)
                i += 1
                runStart = i
            }
            if runStart < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static func appendEscape(_ b: UInt8, to bytes: inout [UInt8]) {
        switch b {
        case UInt8(ascii: "\""): bytes.append(0x5C); bytes.append(0x22)
        case UInt8(ascii: "\\"): bytes.append(0x5C); bytes.append(0x5C)
        case 0x0A: bytes.append(0x5C); bytes.append(UInt8(ascii: "n"))
        case 0x0D: bytes.append(0x5C); bytes.append(UInt8(ascii: "r"))
        case 0x09: bytes.append(0x5C); bytes.append(UInt8(ascii: "t"))
        default:
            bytes.append(contentsOf: [
                0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), ASCIIDigits.hex(Int(b >> 4)), ASCIIDigits.hex(Int(b)),
            ])
        }
    }

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

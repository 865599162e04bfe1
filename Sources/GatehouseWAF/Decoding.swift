// Hand-written: the decoders a WAF needs to see what the application will see (repeated percent
// decoding, %u escapes, overlong UTF-8, HTML entities, path normalisation). They work on bytes,
// tolerate every malformed input, and report what was odd about it. No listed library does this.

/// What decoding noticed about a value: evasion signs that are findings in their own right.
struct DecodeFlags: OptionSet, Sendable {
    let rawValue: UInt8
    static let overlongUTF8 = DecodeFlags(rawValue: 1)
    static let invalidUTF8 = DecodeFlags(rawValue: 2)
    static let nullByte = DecodeFlags(rawValue: 4)
    static let multipleEncoding = DecodeFlags(rawValue: 8)
}

enum Decoding {
    @inline(__always) static func hex(_ c: UInt8) -> UInt8? {
        let v = hexTable[Int(c)]
        return v == 0xFF ? nil : v
    }

    /// Hex digit values by byte (0xFF: not a hex digit).
    static let hexTable: [UInt8] = (0..<256).map { c -> UInt8 in
        switch c {
        case 0x30...0x39: return UInt8(c - 0x30)
        case 0x61...0x66: return UInt8(c - 0x61 + 10)
        case 0x41...0x46: return UInt8(c - 0x41 + 10)
        default: return 0xFF
        }
    }

    /// Whether `bytes` holds a `%XX` or `%uXXXX` escape.
    static func hasPercentEscape(_ bytes: [UInt8]) -> Bool {
        let n = bytes.count
        var i = 0
        while i < n {
            if bytes[i] == 0x25 {
                if i + 2 < n, hex(bytes[i + 1]) != nil, hex(bytes[i + 2]) != nil { return true }
                if i + 5 < n, bytes[i + 1] | 0x20 == 0x75, hex(bytes[i + 2]) != nil, hex(bytes[i + 3]) != nil,
                    hex(bytes[i + 4]) != nil, hex(bytes[i + 5]) != nil
                {
                    return true
                }
            }
            i += 1
        }
        return false
    }

    /// One pass of percent decoding; `%uXXXX` (IIS-style) becomes UTF-8; invalid escapes stay.
    static func percentDecodeOnce(_ input: [UInt8], plusAsSpace: Bool) -> [UInt8] {
        // Output is never longer than the input except for %uXXXX (6 bytes → at most 3).
        input.withUnsafeBufferPointer { bytes in
            [UInt8](unsafeUninitializedCapacity: bytes.count) { out, count in
                var i = 0, o = 0
                let n = bytes.count
                while i < n {
                    let c = bytes[i]
                    if c == 0x25 {
                        if i + 2 < n, let h = hex(bytes[i + 1]), let l = hex(bytes[i + 2]) {
                            out[o] = h << 4 | l; o += 1
                            i += 3
                            continue
                        }
                        if i + 5 < n, bytes[i + 1] | 0x20 == 0x75, let a = hex(bytes[i + 2]), let b = hex(bytes[i + 3]),
                            let c2 = hex(bytes[i + 4]), let d = hex(bytes[i + 5])
                        {
                            var tmp: [UInt8] = []
                            appendUTF8(UInt32(a) << 12 | UInt32(b) << 8 | UInt32(c2) << 4 | UInt32(d), to: &tmp)
                            for t in tmp { out[o] = t; o += 1 }
                            i += 6
                            continue
                        }
                    } else if plusAsSpace, c == 0x2B {
                        out[o] = 0x20; o += 1
                        i += 1
                        continue
                    }
                    out[o] = c; o += 1
                    i += 1
                }
                count = o
            }
        }
    }

    static func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80: out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | scalar >> 6)); out.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | scalar >> 12)); out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        case 0x10000..<0x110000:
            out.append(UInt8(0xF0 | scalar >> 18)); out.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            out.append(UInt8(0x80 | scalar >> 6 & 0x3F)); out.append(UInt8(0x80 | scalar & 0x3F))
        default: out.append(0x3F)
        }
    }

    /// Percent-decodes until nothing changes (at most 3 passes), so `%252e` is seen as `.`.
    /// `first` is the single-pass form (what most applications see), `full` the fixed point.
    static func percentDecode(_ bytes: [UInt8], plusAsSpace: Bool, flags: inout DecodeFlags) -> [UInt8] {
        guard bytes.contains(0x25) || (plusAsSpace && bytes.contains(0x2B)) else { return bytes }
        var cur = percentDecodeOnce(bytes, plusAsSpace: plusAsSpace)
        var passes = 1
        while passes < 3, cur.contains(0x25), hasPercentEscape(cur) {
            let next = percentDecodeOnce(cur, plusAsSpace: false)
            if next == cur { break }
            cur = next
            passes += 1
            flags.insert(.multipleEncoding)
        }
        return cur
    }

    /// Validates UTF-8 and folds overlong encodings of ASCII (`C0 AE` → `.`, `E0 80 AF` → `/`) to the
    /// character they spell, which is what lenient decoders behind the gateway do. Removes NUL bytes
    /// (they truncate strings in C-based back ends) and flags them.
    static func normaliseUTF8(_ bytes: [UInt8], flags: inout DecodeFlags) -> [UInt8] {
        // Fast path: plain ASCII without NUL.
        let plain = bytes.withUnsafeBufferPointer { p -> Bool in
            for b in p where b &- 1 >= 0x7F { return false }  // 0 wraps to 0xFF; 0x80… stay ≥ 0x7F
            return true
        }
        if plain { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if b == 0 { flags.insert(.nullByte); i += 1; continue }
            if b < 0x80 { out.append(b); i += 1; continue }
            // Two-byte overlong: C0/C1 xx encodes ASCII.
            if (b == 0xC0 || b == 0xC1), i + 1 < n, bytes[i + 1] & 0xC0 == 0x80 {
                let ch = (b & 0x1F) << 6 | (bytes[i + 1] & 0x3F)
                flags.insert(.overlongUTF8)
                if ch != 0 { out.append(ch) } else { flags.insert(.nullByte) }
                i += 2
                continue
            }
            // Three-byte overlong of ASCII: E0 80..81 xx.
            if b == 0xE0, i + 2 < n, bytes[i + 1] & 0xE0 == 0x80, bytes[i + 2] & 0xC0 == 0x80 {
                let v = UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F)
                flags.insert(.overlongUTF8)
                if v < 0x80 { if v != 0 { out.append(UInt8(v)) } } else { appendUTF8(v, to: &out) }
                i += 3
                continue
            }
            // Four-byte overlong: F0 80..8F xx xx.
            if b == 0xF0, i + 3 < n, bytes[i + 1] & 0xF0 == 0x80, bytes[i + 2] & 0xC0 == 0x80, bytes[i + 3] & 0xC0 == 0x80 {
                let v = UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6 | UInt32(bytes[i + 3] & 0x3F)
                flags.insert(.overlongUTF8)
                if v < 0x80 { if v != 0 { out.append(UInt8(v)) } } else { appendUTF8(v, to: &out) }
                i += 4
                continue
            }
            let len: Int
            switch b {
            case 0xC2...0xDF: len = 2
            case 0xE0...0xEF: len = 3
            case 0xF0...0xF4: len = 4
            default: len = 0
            }
            if len == 0 || i + len > n {
                flags.insert(.invalidUTF8)
                out.append(b)
                i += 1
                continue
            }
            var ok = true
            for k in 1..<len where bytes[i + k] & 0xC0 != 0x80 { ok = false; break }
            if !ok { flags.insert(.invalidUTF8); out.append(b); i += 1; continue }
            out.append(contentsOf: bytes[i..<(i + len)])
            i += len
        }
        return out
    }

    /// Decodes HTML character references: named (the ones that matter for markup and URLs), decimal
    /// and hex, with or without the closing semicolon, as browsers do in attribute values.
    static func htmlEntityDecode(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.contains(0x26) else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        let n = bytes.count
        while i < n {
            let c = bytes[i]
            guard c == 0x26, i + 1 < n else { out.append(c); i += 1; continue }
            var j = i + 1
            if bytes[j] == 0x23 {  // &#
                j += 1
                var value: UInt32 = 0
                var digits = 0
                if j < n, bytes[j] | 0x20 == 0x78 {  // &#x
                    j += 1
                    while j < n, let h = hex(bytes[j]), digits < 8 { value = value &* 16 &+ UInt32(h); j += 1; digits += 1 }
                } else {
                    while j < n, bytes[j] >= 0x30, bytes[j] <= 0x39, digits < 10 {
                        value = value &* 10 &+ UInt32(bytes[j] - 0x30); j += 1; digits += 1
                    }
                }
                if digits > 0 {
                    // Skip zero padding beyond the limit: browsers read &#0000060 as '<'.
                    while j < n, bytes[j] >= 0x30, bytes[j] <= 0x39 { j += 1 }
                    if j < n, bytes[j] == 0x3B { j += 1 }
                    appendUTF8(value == 0 || value > 0x10FFFF ? 0xFFFD : value, to: &out)
                    i = j
                    continue
                }
                out.append(c); i += 1
                continue
            }
            // Named reference.
            var k = j
            while k < n, k - j < 10, (bytes[k] | 0x20) >= 0x61, (bytes[k] | 0x20) <= 0x7A { k += 1 }
            if k > j, let rep = namedEntity(bytes[j..<k]) {
                out.append(contentsOf: rep)
                i = k < n && bytes[k] == 0x3B ? k + 1 : k
                continue
            }
            out.append(c)
            i += 1
        }
        return out
    }

    private static func namedEntity(_ name: ArraySlice<UInt8>) -> [UInt8]? {
        switch String(decoding: name, as: UTF8.self) {
        case "lt", "LT": return [0x3C]
        case "gt", "GT": return [0x3E]
        case "quot", "QUOT": return [0x22]
        case "apos": return [0x27]
        case "amp", "AMP": return [0x26]
        case "colon": return [0x3A]
        case "sol": return [0x2F]
        case "bsol": return [0x5C]
        case "lpar": return [0x28]
        case "rpar": return [0x29]
        case "Tab": return [0x09]
        case "NewLine": return [0x0A]
        case "nbsp": return [0x20]
        case "period": return [0x2E]
        case "semi": return [0x3B]
        case "equals": return [0x3D]
        case "grave": return [0x60]
        case "lsqb", "lbrack": return [0x5B]
        case "rsqb", "rbrack": return [0x5D]
        case "lcub", "lbrace": return [0x7B]
        case "rcub", "rbrace": return [0x7D]
        case "excl": return [0x21]
        case "num": return [0x23]
        case "dollar": return [0x24]
        case "percnt": return [0x25]
        case "plus": return [0x2B]
        case "comma": return [0x2C]
        case "quest": return [0x3F]
        case "commat": return [0x40]
        case "ast": return [0x2A]
        default: return nil
        }
    }

    /// Resolves `.` and `..` segments of a slash path (backslashes count as slashes) and says how
    /// many `..` segments tried to climb above the start.
    static func normalisePath(_ bytes: [UInt8]) -> (path: [UInt8], escapes: Int) {
        var segments: [ArraySlice<UInt8>] = []
        var escapes = 0
        let unified = bytes.map { $0 == 0x5C ? 0x2F : $0 }
        let absolute = unified.first == 0x2F
        for seg in unified.split(separator: 0x2F, omittingEmptySubsequences: true) {
            if seg.count == 1, seg.first == 0x2E { continue }
            if seg.count >= 2,
                seg.allSatisfy({ $0 == 0x2E }) || (seg.count == 3 && seg.first == 0x2E && seg.dropFirst().first == 0x2E && seg.last == 0x3B)
            {
                if segments.isEmpty { escapes += 1 } else { segments.removeLast() }
                continue
            }
            segments.append(seg)
        }
        var out: [UInt8] = absolute ? [0x2F] : []
        for (i, s) in segments.enumerated() {
            if i > 0 { out.append(0x2F) }
            out.append(contentsOf: s)
        }
        return (out, escapes)
    }

    @inline(__always) static func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }

    /// ASCII-lowercased copy.
    static func lowercased(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        for i in out.indices where out[i] >= 0x41 && out[i] <= 0x5A { out[i] |= 0x20 }
        return out
    }

    /// Whether `needle` (lowercase ASCII) occurs in `hay` (already lowercased), returning its start.
    static func find(_ needle: [UInt8], in hay: [UInt8], from: Int = 0) -> Int? {
        needle.withUnsafeBufferPointer { find($0, in: hay, from: from) }
    }

    /// The first index of `nb` in `hay` at or after `from`: a first-byte scan, then a compare.
    static func find(_ nb: UnsafeBufferPointer<UInt8>, in hay: [UInt8], from: Int) -> Int? {
        let m = nb.count, n = hay.count
        guard m > 0, n >= m, from <= n - m else { return nil }
        return hay.withUnsafeBufferPointer { hb -> Int? in
            let first = nb[0]
            var i = from
            while i <= n - m {
                if hb[i] == first {
                    var k = 1
                    while k < m, hb[i + k] == nb[k] { k += 1 }
                    if k == m { return i }
                }
                i += 1
            }
            return nil
        }
    }
}

extension Decoding {
    /// `find` for a literal needle, without allocating.
    static func find(_ needle: StaticString, in hay: [UInt8], from: Int = 0) -> Int? {
        needle.withUTF8Buffer { find($0, in: hay, from: from) }
    }
}

/// Which byte values occur in a value: computed once per field form, so each detector's
/// "could this be me at all?" question costs a bit test instead of a pass over the bytes.
struct ByteSet: Sendable {
    private var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    init() {}

    init(words: (UInt64, UInt64, UInt64, UInt64)) { w = words }

    init(_ bytes: [UInt8]) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        bytes.withUnsafeBufferPointer { p in
            withUnsafeMutableBytes(of: &words) { raw in
                let ws = raw.bindMemory(to: UInt64.self)
                for c in p { ws[Int(c >> 6)] |= UInt64(1) << UInt64(c & 63) }
            }
        }
        w = words
    }

    @inline(__always) mutating func insert(_ c: UInt8) {
        let bit = UInt64(1) << UInt64(c & 63)
        withUnsafeMutableBytes(of: &w) {
            $0.storeBytes(
                of: $0.load(fromByteOffset: Int(c >> 6) * 8, as: UInt64.self) | bit, toByteOffset: Int(c >> 6) * 8, as: UInt64.self)
        }
    }

    @inline(__always) func has(_ c: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(c & 63)
        switch c >> 6 {
        case 0: return w.0 & bit != 0
        case 1: return w.1 & bit != 0
        case 2: return w.2 & bit != 0
        default: return w.3 & bit != 0
        }
    }

    /// Whether some byte in this set is not in `other`.
    func hasAnyOutside(_ other: ByteSet) -> Bool {
        w.0 & ~other.w.0 != 0 || w.1 & ~other.w.1 != 0 || w.2 & ~other.w.2 != 0 || w.3 & ~other.w.3 != 0
    }

    /// Any byte of 0x80 and above (non-ASCII).
    var hasHigh: Bool { w.2 != 0 || w.3 != 0 }
    /// Any of 0xE2…0xFF (lead bytes of the Unicode lookalikes the detectors fold).
    var hasWideLead: Bool { w.3 & ~((UInt64(1) << 34) - 1) != 0 }
    var hasDigit: Bool { w.0 & (UInt64(0x3FF) << 48) != 0 }
}

/// Lowercases ASCII into a copy and records the bytes present, in one pass.
func lowercasedWithSet(_ v: [UInt8]) -> ([UInt8], ByteSet) {
    var w: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    var low = v
    low.withUnsafeMutableBufferPointer { p in
        withUnsafeMutableBytes(of: &w) { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in p.indices {
                var c = p[i]
                if c &- 0x41 < 26 { c |= 0x20; p[i] = c }
                words[Int(c >> 6)] |= UInt64(1) << UInt64(c & 63)
            }
        }
    }
    return (low, ByteSet(words: w))
}

/// An open-addressing table from 64-bit word hashes (FNV-1a of the lowercased word) to a small
/// value. The standard Dictionary would hash the key again with SipHash on every lookup; word
/// lookups are on the hot path of every detector.
struct WordTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt8]
    private let mask: Int

    init(_ entries: [(UInt64, UInt8)]) {
        var size = 64
        while size < entries.count * 4 { size *= 2 }
        keys = [UInt64](repeating: 0, count: size)
        values = [UInt8](repeating: 0, count: size)
        mask = size - 1
        for (k, v) in entries {
            var i = Int(truncatingIfNeeded: k ^ (k >> 29)) & mask
            while keys[i] != 0, keys[i] != k { i = (i + 1) & mask }
            keys[i] = k
            values[i] = v
        }
    }

    @inline(__always) func lookup(_ k: UInt64) -> UInt8? {
        var i = Int(truncatingIfNeeded: k ^ (k >> 29)) & mask
        while true {
            let stored = keys[i]
            if stored == k { return values[i] }
            if stored == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    @inline(__always) func contains(_ k: UInt64) -> Bool { lookup(k) != nil }
}

extension Array where Element == UInt8 {
    init(ascii s: StaticString) {
        self = s.withUTF8Buffer { Array($0) }
    }
}

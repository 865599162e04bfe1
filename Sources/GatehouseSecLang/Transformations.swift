// SecLang transformation functions, with ModSecurity's byte-level semantics: entities and
// escapes decode to one byte (the low eight bits), invalid escapes stay as written, %uXXXX maps
// full-width ASCII down. The Core Rule Set's patterns are written against exactly these outputs,
// and the project's own decoders (GatehouseWAF.Decoding) normalise to UTF-8 instead, so they
// cannot stand in. SHA-1 and MD5 come from swift-crypto; the rest is byte shuffling no listed
// library does.

import Crypto

/// Which kinds of bytes a value holds, one bit per kind a transformation acts on: computed in
/// one pass, so a chain of transformations can tell which of them would change nothing without
/// each reading the value again.
package struct ByteSummary: OptionSet, Sendable {
    package let rawValue: UInt16
    package init(rawValue: UInt16) { self.rawValue = rawValue }

    static let upper = ByteSummary(rawValue: 1 << 0)
    static let lower = ByteSummary(rawValue: 1 << 1)
    static let percentOrPlus = ByteSummary(rawValue: 1 << 2)
    static let ampersand = ByteSummary(rawValue: 1 << 3)
    static let backslash = ByteSummary(rawValue: 1 << 4)
    static let nul = ByteSummary(rawValue: 1 << 5)
    static let high = ByteSummary(rawValue: 1 << 6)
    static let star = ByteSummary(rawValue: 1 << 7)
    static let slash = ByteSummary(rawValue: 1 << 8)
    static let space = ByteSummary(rawValue: 1 << 9)
    /// The punctuation cmdLine deletes or turns into a space: `"`, `'`, `^`, `,` and `;`.
    static let shellPunctuation = ByteSummary(rawValue: 1 << 10)

    static let table: [UInt16] = (0..<256).map { b in
        let c = UInt8(b)
        var s: ByteSummary = []
        if c &- 0x41 < 26 { s.insert(.upper) }
        if c &- 0x61 < 26 { s.insert(.lower) }
        if c == 0x25 || c == 0x2B { s.insert(.percentOrPlus) }
        if c == 0x26 { s.insert(.ampersand) }
        if c == 0x5C { s.insert(.backslash) }
        if c == 0 { s.insert(.nul) }
        if c >= 0x80 { s.insert(.high) }
        if c == 0x2A { s.insert(.star) }
        if c == 0x2F { s.insert(.slash) }
        if T.isSpace(c) || c == 0xA0 { s.insert(.space) }
        if c == 0x22 || c == 0x27 || c == 0x5E || c == 0x2C || c == 0x3B { s.insert(.shellPunctuation) }
        return s.rawValue
    }

    /// The kinds of bytes in `v`.
    package init(of v: [UInt8]) {
        var bits: UInt16 = 0
        ByteSummary.table.withUnsafeBufferPointer { table in
            v.withUnsafeBufferPointer { bytes in
                for c in bytes { bits |= table[Int(c)] }
            }
        }
        rawValue = bits
    }
}

extension Transformation {
    /// The bytes without which the transformation changes nothing (nil: it may change any value).
    package var acts: ByteSummary? {
        switch self {
        case .lowercase: return .upper
        case .uppercase: return .lower
        case .urlDecode, .urlDecodeUni: return .percentOrPlus
        case .htmlEntityDecode: return .ampersand
        case .jsDecode, .cssDecode, .escapeSeqDecode: return .backslash
        case .removeNulls, .replaceNulls: return .nul
        case .utf8toUnicode: return .high
        case .replaceComments: return .star
        // A value without a separator is one path segment, which normalisation leaves as it is,
        // except the value "." alone (`apply(_:summary:)` checks that one).
        case .normalisePath: return .slash
        case .normalisePathWin: return [.slash, .backslash]
        case .removeWhitespace, .compressWhitespace, .trim, .trimLeft, .trimRight: return .space
        // Lower-cases, deletes quotes, backslashes and carets, and turns separators into a
        // space (a slash or parenthesis moves only after one).
        case .cmdLine: return [.upper, .space, .backslash, .shellPunctuation]
        default: return nil
        }
    }

    /// Applies the transformation to a value whose bytes `summary` describes; a value without the
    /// bytes it acts on is handed back as it is.
    package func apply(_ v: [UInt8], summary: ByteSummary) -> [UInt8] {
        if let acts, summary.isDisjoint(with: acts) {
            let lonePeriod = (self == .normalisePath || self == .normalisePathWin) && v.count == 1 && v[0] == 0x2E
            if !lonePeriod { return v }
        }
        return transform(v)
    }

    /// Applies the transformation. Most values hold nothing a decoder acts on: those are handed
    /// back without a copy.
    package func apply(_ v: [UInt8]) -> [UInt8] { apply(v, summary: ByteSummary(of: v)) }

    /// The transformation itself.
    package func transform(_ v: [UInt8]) -> [UInt8] {
        switch self {
        case .lowercase: return T.mapBytes(v) { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 }
        case .uppercase: return T.mapBytes(v) { $0 &- 0x61 < 26 ? $0 & ~0x20 : $0 }
        case .urlDecode: return T.urlDecode(v, unicode: false)
        case .urlDecodeUni: return T.urlDecode(v, unicode: true)
        case .htmlEntityDecode: return T.htmlEntityDecode(v)
        case .jsDecode: return T.jsDecode(v)
        case .cssDecode: return T.cssDecode(v)
        case .cmdLine: return T.cmdLine(v)
        case .compressWhitespace: return T.compressWhitespace(v)
        case .removeWhitespace: return T.filterBytes(v) { !T.isSpace($0) && $0 != 0xA0 }
        case .removeNulls: return T.filterBytes(v) { $0 != 0 }
        case .replaceNulls: return T.mapBytes(v) { $0 == 0 ? 0x20 : $0 }
        case .replaceComments: return T.replaceComments(v)
        case .removeComments: return T.removeComments(v)
        case .removeCommentsChar: return T.removeCommentsChar(v)
        case .normalisePath: return T.normalisePath(v, windows: false)
        case .normalisePathWin: return T.normalisePath(v, windows: true)
        case .utf8toUnicode: return T.utf8toUnicode(v)
        case .base64Decode: return T.base64Decode(v, lenient: false)
        case .base64DecodeExt: return T.base64Decode(v, lenient: true)
        case .base64Encode: return T.base64Encode(v)
        case .hexDecode: return T.hexDecode(v)
        case .hexEncode: return T.hexEncode(v)
        case .sha1: return Array(Insecure.SHA1.hash(data: v))
        case .md5: return Array(Insecure.MD5.hash(data: v))
        case .length: return Array(String(v.count).utf8)
        case .trim: return T.trimRight(T.trimLeft(v))
        case .trimLeft: return T.trimLeft(v)
        case .trimRight: return T.trimRight(v)
        case .escapeSeqDecode: return T.escapeSeqDecode(v)
        case .urlEncode: return T.urlEncode(v)
        case .sqlHexDecode: return T.sqlHexDecode(v)
        }
    }
}

/// The byte-level helpers behind the transformations.
package enum T {
    /// `v` with each byte replaced by `f` of it, written into storage of its size: the
    /// standard `map` appends one byte at a time through the generic path.
    @inline(__always) static func mapBytes(_ v: [UInt8], _ f: (UInt8) -> UInt8) -> [UInt8] {
        v.withUnsafeBufferPointer { input in
            [UInt8](unsafeUninitializedCapacity: input.count) { out, count in
                for i in 0..<input.count { out[i] = f(input[i]) }
                count = input.count
            }
        }
    }

    /// The bytes of `v` that `keep` accepts, written into storage of its size.
    @inline(__always) static func filterBytes(_ v: [UInt8], _ keep: (UInt8) -> Bool) -> [UInt8] {
        v.withUnsafeBufferPointer { input in
            [UInt8](unsafeUninitializedCapacity: input.count) { out, count in
                var o = 0
                for c in input where keep(c) {
                    out[o] = c
                    o += 1
                }
                count = o
            }
        }
    }

    @inline(__always) static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) }
    @inline(__always) static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x37
        case 0x61...0x66: return c - 0x57
        default: return nil
        }
    }
    @inline(__always) static func isHex(_ c: UInt8) -> Bool { hexValue(c) != nil }
    @inline(__always) static func x2c(_ a: UInt8, _ b: UInt8) -> UInt8 { hexValue(a)! << 4 | hexValue(b)! }

    static func urlDecode(_ v: [UInt8], unicode: Bool) -> [UInt8] { v.withUnsafeBufferPointer { urlDecode($0, unicode: unicode) } }
    static func urlDecode(_ v: ArraySlice<UInt8>, unicode: Bool) -> [UInt8] {
        v.withUnsafeBufferPointer { urlDecode($0, unicode: unicode) }
    }

    /// Decoding never lengthens a value, so the result is written into storage of the input's
    /// size, without a capacity check per byte.
    static func urlDecode(_ v: UnsafeBufferPointer<UInt8>, unicode: Bool) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: v.count) { out, count in
            var o = 0
            var i = 0
            let n = v.count
            while i < n {
                let c = v[i]
                if c == 0x25 {
                    if unicode, i + 1 < n, v[i + 1] | 0x20 == 0x75 {
                        if i + 5 < n, isHex(v[i + 2]), isHex(v[i + 3]), isHex(v[i + 4]), isHex(v[i + 5]) {
                            let hi = x2c(v[i + 2], v[i + 3]), lo = x2c(v[i + 4], v[i + 5])
                            out[o] = fullWidth(hi, lo)
                            i += 6
                        } else {
                            out[o] = c
                            i += 1
                        }
                        o += 1
                        continue
                    }
                    if i + 2 < n, isHex(v[i + 1]), isHex(v[i + 2]) {
                        out[o] = x2c(v[i + 1], v[i + 2])
                        i += 3
                    } else {
                        out[o] = c
                        i += 1
                    }
                } else if c == 0x2B {
                    out[o] = 0x20
                    i += 1
                } else {
                    out[o] = c
                    i += 1
                }
                o += 1
            }
            count = o
        }
    }

    /// %uXXXX and \uXXXX without a Unicode map: the low byte, except full-width ASCII
    /// (U+FF01-U+FF5E), which maps to its ASCII form.
    static func fullWidth(_ hi: UInt8, _ lo: UInt8) -> UInt8 {
        if hi == 0xFF, lo >= 0x01, lo <= 0x5E { return lo &+ 0x20 }
        return lo
    }

    /// Every entity decodes to one byte and an unknown one stays as written, so the result is
    /// written into storage of the input's size. Entity names are compared as packed bytes: a
    /// String per `&` (a form body has one per field) cost more than the decoding.
    static func htmlEntityDecode(_ v: [UInt8]) -> [UInt8] {
        v.withUnsafeBufferPointer { v in
            [UInt8](unsafeUninitializedCapacity: v.count) { out, count in
                var o = 0
                var i = 0
                let n = v.count
                while i < n {
                    guard v[i] == 0x26, i + 1 < n else {
                        out[o] = v[i]
                        o += 1
                        i += 1
                        continue
                    }
                    if v[i + 1] == 0x23 {
                        // &#xHH; or &#DDD;
                        var j = i + 2
                        var value = 0
                        var digits = 0
                        if j < n, v[j] | 0x20 == 0x78 {
                            j += 1
                            while j < n, let h = hexValue(v[j]) {
                                value = (value &* 16 &+ Int(h)) & 0xFFFFFF
                                j += 1
                                digits += 1
                            }
                        } else {
                            while j < n, v[j] >= 0x30, v[j] <= 0x39 {
                                value = (value &* 10 &+ Int(v[j] - 0x30)) & 0xFFFFFF
                                j += 1
                                digits += 1
                            }
                        }
                        if digits > 0 {
                            out[o] = UInt8(truncatingIfNeeded: value)
                            o += 1
                            if j < n, v[j] == 0x3B { j += 1 }
                            i = j
                            continue
                        }
                        out[o] = v[i]
                        o += 1
                        i += 1
                        continue
                    }
                    var j = i + 1
                    while j < n, (v[j] | 0x20) &- 0x61 < 26 || (v[j] &- 0x30 < 10) { j += 1 }
                    // The name's bytes, lowercased (setting 0x20 leaves digits as they are),
                    // packed into one integer: names of up to four letters are all there are.
                    var packed: UInt32 = 0
                    if j - i - 1 <= 4 {
                        for k in (i + 1)..<j { packed = packed << 8 | UInt32(v[k] | 0x20) }
                    }
                    let value: UInt8? =
                        switch packed {
                        case 0x7175_6F74: 0x22  // quot
                        case 0x61_6D70: 0x26  // amp
                        case 0x6C74: 0x3C  // lt
                        case 0x6774: 0x3E  // gt
                        case 0x6E62_7370: 0xA0  // nbsp
                        default: nil
                        }
                    if let value {
                        out[o] = value
                        if j < n, v[j] == 0x3B { j += 1 }
                        i = j
                    } else {
                        out[o] = v[i]
                        i += 1
                    }
                    o += 1
                }
                count = o
            }
        }
    }

    static func jsDecode(_ v: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(v.count)
        var i = 0
        let n = v.count
        while i < n {
            guard v[i] == 0x5C, i + 1 < n else {
                out.append(v[i])
                i += 1
                continue
            }
            let c = v[i + 1]
            if c | 0x20 == 0x75, i + 5 < n, isHex(v[i + 2]), isHex(v[i + 3]), isHex(v[i + 4]), isHex(v[i + 5]) {
                out.append(fullWidth(x2c(v[i + 2], v[i + 3]), x2c(v[i + 4], v[i + 5])))
                i += 6
            } else if c | 0x20 == 0x78, i + 3 < n, isHex(v[i + 2]), isHex(v[i + 3]) {
                out.append(x2c(v[i + 2], v[i + 3]))
                i += 4
            } else if c >= 0x30, c <= 0x37 {
                // Up to three octal digits, value at most 0377.
                var j = i + 1
                var value = 0
                while j < n, j < i + 4, v[j] >= 0x30, v[j] <= 0x37 {
                    let next = value * 8 + Int(v[j] - 0x30)
                    if next > 0xFF { break }
                    value = next
                    j += 1
                }
                out.append(UInt8(value))
                i = j
            } else {
                let mapped: UInt8 =
                    switch c {
                    case 0x61: 0x07
                    case 0x62: 0x08
                    case 0x66: 0x0C
                    case 0x6E: 0x0A
                    case 0x72: 0x0D
                    case 0x74: 0x09
                    case 0x76: 0x0B
                    default: c
                    }
                out.append(mapped)
                i += 2
            }
        }
        return out
    }

    static func cssDecode(_ v: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(v.count)
        var i = 0
        let n = v.count
        while i < n {
            guard v[i] == 0x5C else {
                out.append(v[i])
                i += 1
                continue
            }
            guard i + 1 < n else {
                // A trailing backslash is dropped.
                i += 1
                continue
            }
            var j = i + 1
            while j < n, j < i + 7, isHex(v[j]) { j += 1 }
            let digits = j - i - 1
            if digits > 0 {
                // The last two hex digits make the byte; full-width forms map down.
                var value = 0
                for k in (i + 1)..<j { value = (value << 4) | Int(hexValue(v[k])!) }
                var byte = UInt8(truncatingIfNeeded: value)
                if digits >= 4, value >= 0xFF01, value <= 0xFF5E { byte = UInt8(value - 0xFEE0) }
                out.append(byte)
                if j < n, isSpace(v[j]) { j += 1 }
                i = j
            } else if v[i + 1] == 0x0A {
                i += 2
            } else {
                out.append(v[i + 1])
                i += 2
            }
        }
        return out
    }

    /// Neither cmdLine nor compressWhitespace lengthens a value: both write into storage of
    /// the input's size.
    static func cmdLine(_ v: [UInt8]) -> [UInt8] {
        v.withUnsafeBufferPointer { input in
            [UInt8](unsafeUninitializedCapacity: input.count) { out, count in
                var o = 0
                var space = false
                for c0 in input {
                    var c = c0
                    switch c {
                    case 0x22, 0x27, 0x5C, 0x5E: continue
                    case 0x2C, 0x3B, 0x20, 0x09, 0x0A, 0x0D:
                        if !space {
                            out[o] = 0x20
                            o += 1
                            space = true
                        }
                        continue
                    case 0x2F, 0x28:
                        // Spaces before a slash or an opening parenthesis are dropped.
                        if space, o > 0, out[o - 1] == 0x20 { o -= 1 }
                    default: break
                    }
                    if c &- 0x41 < 26 { c |= 0x20 }
                    out[o] = c
                    o += 1
                    space = false
                }
                count = o
            }
        }
    }

    static func compressWhitespace(_ v: [UInt8]) -> [UInt8] {
        v.withUnsafeBufferPointer { input in
            [UInt8](unsafeUninitializedCapacity: input.count) { out, count in
                var o = 0
                var inSpace = false
                for c in input {
                    if isSpace(c) || c == 0xA0 {
                        if !inSpace {
                            out[o] = 0x20
                            o += 1
                        }
                        inSpace = true
                    } else {
                        out[o] = c
                        o += 1
                        inSpace = false
                    }
                }
                count = o
            }
        }
    }

    static func replaceComments(_ v: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        let n = v.count
        while i < n {
            if v[i] == 0x2F, i + 1 < n, v[i + 1] == 0x2A {
                var j = i + 2
                while j + 1 < n, !(v[j] == 0x2A && v[j + 1] == 0x2F) { j += 1 }
                out.append(0x20)
                i = j + 1 < n ? j + 2 : n
            } else {
                out.append(v[i])
                i += 1
            }
        }
        return out
    }

    static func removeComments(_ v: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        let n = v.count
        while i < n {
            if v[i] == 0x2F, i + 1 < n, v[i + 1] == 0x2A {
                var j = i + 2
                while j + 1 < n, !(v[j] == 0x2A && v[j + 1] == 0x2F) { j += 1 }
                i = j + 1 < n ? j + 2 : n
            } else if v[i] == 0x3C, i + 3 < n, v[i + 1] == 0x21, v[i + 2] == 0x2D, v[i + 3] == 0x2D {
                var j = i + 4
                while j + 2 < n, !(v[j] == 0x2D && v[j + 1] == 0x2D && v[j + 2] == 0x3E) { j += 1 }
                i = j + 2 < n ? j + 3 : n
            } else if (v[i] == 0x2D && i + 1 < n && v[i + 1] == 0x2D) || v[i] == 0x23 {
                // `--` and `#` comment out the rest of the input.
                break
            } else {
                out.append(v[i])
                i += 1
            }
        }
        return out
    }

    static func removeCommentsChar(_ v: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        let n = v.count
        while i < n {
            if i + 1 < n, (v[i] == 0x2F && v[i + 1] == 0x2A) || (v[i] == 0x2A && v[i + 1] == 0x2F) || (v[i] == 0x2D && v[i + 1] == 0x2D) {
                i += 2
            } else if v[i] == 0x3C, i + 3 < n, v[i + 1] == 0x21, v[i + 2] == 0x2D, v[i + 3] == 0x2D {
                i += 4
            } else if v[i] == 0x2D, i + 2 < n, v[i + 1] == 0x2D, v[i + 2] == 0x3E {
                i += 3
            } else if v[i] == 0x23 {
                i += 1
            } else {
                out.append(v[i])
                i += 1
            }
        }
        return out
    }

    /// Removes `.` segments, resolves `..` and collapses repeated slashes, keeping a trailing
    /// slash; with `windows`, backslashes count as slashes first. A path that is already normal
    /// (most header values with a slash, such as a User-Agent) is handed back without a copy.
    package static func normalisePath(_ v0: [UInt8], windows: Bool) -> [UInt8] {
        let v = windows && v0.contains(0x5C) ? v0.map { $0 == 0x5C ? 0x2F : $0 } : v0
        return isNormalPath(v) ? v : rebuiltPath(v)
    }

    /// Whether `normalisePath` leaves `v` (slashes only) as it is: no empty segment other than
    /// before a leading or after a trailing slash, and no `.` or `..` segment.
    static func isNormalPath(_ v: [UInt8]) -> Bool {
        var start = 0
        for i in 0...v.count where i == v.count || v[i] == 0x2F {
            let n = i - start
            if n == 0 {
                if i != 0 && i != v.count { return false }
            } else if v[start] == 0x2E && (n == 1 || (n == 2 && v[start + 1] == 0x2E)) {
                return false
            }
            start = i + 1
        }
        return true
    }

    /// `normalisePath` by splitting `v` (slashes only) into segments and joining them again.
    package static func rebuiltPath(_ v: [UInt8]) -> [UInt8] {
        if v.isEmpty { return v }
        let absolute = v[0] == 0x2F
        let trailing = v.last == 0x2F || v.last == 0x2E && (v.count == 1 || v[v.count - 2] == 0x2F)
        var segments: [ArraySlice<UInt8>] = []
        for seg in v.split(separator: 0x2F, omittingEmptySubsequences: true) {
            if seg.count == 1, seg.first == 0x2E { continue }
            if seg.count == 2, seg.first == 0x2E, seg.last == 0x2E {
                if let last = segments.last, !(last.count == 2 && last.first == 0x2E && last.last == 0x2E) {
                    segments.removeLast()
                } else if !absolute {
                    segments.append(seg)
                }
                continue
            }
            segments.append(seg)
        }
        var out: [UInt8] = absolute ? [0x2F] : []
        for (k, seg) in segments.enumerated() {
            if k > 0 { out.append(0x2F) }
            out.append(contentsOf: seg)
        }
        if trailing, out.last != 0x2F { out.append(0x2F) }
        return out
    }

    static func utf8toUnicode(_ v: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(v.count)
        var i = 0
        let n = v.count
        func emit(_ scalar: UInt32) {
            let hex = String(scalar, radix: 16)
            out.append(contentsOf: Array("%u".utf8))
            out.append(contentsOf: [UInt8](repeating: 0x30, count: max(0, 4 - hex.count)))
            out.append(contentsOf: Array(hex.utf8))
        }
        while i < n {
            let c = v[i]
            if c < 0x80 {
                out.append(c)
                i += 1
            } else if c & 0xE0 == 0xC0, i + 1 < n, v[i + 1] & 0xC0 == 0x80 {
                emit(UInt32(c & 0x1F) << 6 | UInt32(v[i + 1] & 0x3F))
                i += 2
            } else if c & 0xF0 == 0xE0, i + 2 < n, v[i + 1] & 0xC0 == 0x80, v[i + 2] & 0xC0 == 0x80 {
                emit(UInt32(c & 0x0F) << 12 | UInt32(v[i + 1] & 0x3F) << 6 | UInt32(v[i + 2] & 0x3F))
                i += 3
            } else if c & 0xF8 == 0xF0, i + 3 < n, v[i + 1] & 0xC0 == 0x80, v[i + 2] & 0xC0 == 0x80, v[i + 3] & 0xC0 == 0x80 {
                emit(UInt32(c & 0x07) << 18 | UInt32(v[i + 1] & 0x3F) << 12 | UInt32(v[i + 2] & 0x3F) << 6 | UInt32(v[i + 3] & 0x3F))
                i += 4
            } else {
                out.append(c)
                i += 1
            }
        }
        return out
    }

    static let base64Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let base64Values: [Int8] = {
        var t = [Int8](repeating: -1, count: 256)
        for (i, c) in base64Alphabet.enumerated() { t[Int(c)] = Int8(i) }
        t[Int(UInt8(ascii: "-"))] = 62
        t[Int(UInt8(ascii: "_"))] = 63
        return t
    }()

    /// Decodes up to the first byte outside the alphabet (strict) or skipping such bytes (Ext).
    static func base64Decode(_ v: [UInt8], lenient: Bool) -> [UInt8] {
        var out: [UInt8] = []
        var acc: UInt32 = 0
        var bits = 0
        for c in v {
            if c == 0x3D { break }
            let d = base64Values[Int(c)]
            if d < 0 {
                if lenient { continue }
                break
            }
            acc = acc << 6 | UInt32(d)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        return out
    }

    static func base64Encode(_ v: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < v.count {
            let b0 = UInt32(v[i]), b1 = i + 1 < v.count ? UInt32(v[i + 1]) : 0, b2 = i + 2 < v.count ? UInt32(v[i + 2]) : 0
            let w = b0 << 16 | b1 << 8 | b2
            out.append(base64Alphabet[Int(w >> 18 & 63)])
            out.append(base64Alphabet[Int(w >> 12 & 63)])
            out.append(i + 1 < v.count ? base64Alphabet[Int(w >> 6 & 63)] : 0x3D)
            out.append(i + 2 < v.count ? base64Alphabet[Int(w & 63)] : 0x3D)
            i += 3
        }
        return out
    }

    static func hexDecode(_ v: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i + 1 < v.count {
            guard let a = hexValue(v[i]), let b = hexValue(v[i + 1]) else { break }
            out.append(a << 4 | b)
            i += 2
        }
        return out
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    static func hexEncode(_ v: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(v.count * 2)
        for c in v {
            out.append(hexDigits[Int(c >> 4)])
            out.append(hexDigits[Int(c & 15)])
        }
        return out
    }

    static func trimLeft(_ v: [UInt8]) -> [UInt8] {
        guard let start = v.firstIndex(where: { !isSpace($0) }) else { return [] }
        return start == 0 ? v : Array(v[start...])
    }

    static func trimRight(_ v: [UInt8]) -> [UInt8] {
        guard let end = v.lastIndex(where: { !isSpace($0) }) else { return [] }
        return end == v.count - 1 ? v : Array(v[...end])
    }

    static func escapeSeqDecode(_ v: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        let n = v.count
        while i < n {
            guard v[i] == 0x5C, i + 1 < n else {
                out.append(v[i])
                i += 1
                continue
            }
            let c = v[i + 1]
            switch c {
            case 0x61: out.append(0x07)
            case 0x62: out.append(0x08)
            case 0x66: out.append(0x0C)
            case 0x6E: out.append(0x0A)
            case 0x72: out.append(0x0D)
            case 0x74: out.append(0x09)
            case 0x76: out.append(0x0B)
            case 0x5C, 0x3F, 0x27, 0x22: out.append(c)
            case 0x78 where i + 3 < n && isHex(v[i + 2]) && isHex(v[i + 3]):
                out.append(x2c(v[i + 2], v[i + 3]))
                i += 4
                continue
            case 0x30...0x37:
                var j = i + 1
                var value = 0
                while j < n, j < i + 4, v[j] >= 0x30, v[j] <= 0x37 {
                    value = value * 8 + Int(v[j] - 0x30)
                    j += 1
                }
                out.append(UInt8(truncatingIfNeeded: value))
                i = j
                continue
            default:
                out.append(0x5C)
                out.append(c)
            }
            i += 2
        }
        return out
    }

    static func urlEncode(_ v: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        for c in v {
            if c == 0x20 {
                out.append(0x2B)
            } else if (c | 0x20) &- 0x61 < 26 || c &- 0x30 < 10 || c == 0x2A || c == 0x2D || c == 0x2E || c == 0x5F {
                out.append(c)
            } else {
                out.append(0x25)
                out.append(hexDigits[Int(c >> 4)])
                out.append(hexDigits[Int(c & 15)])
            }
        }
        return out
    }

    /// 0xHHHH... sequences decode to bytes.
    static func sqlHexDecode(_ v: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        let n = v.count
        while i < n {
            if v[i] == 0x30, i + 3 < n, v[i + 1] | 0x20 == 0x78, isHex(v[i + 2]), isHex(v[i + 3]) {
                var j = i + 2
                while j + 1 < n, isHex(v[j]), isHex(v[j + 1]) {
                    out.append(x2c(v[j], v[j + 1]))
                    j += 2
                }
                i = j
            } else {
                out.append(v[i])
                i += 1
            }
        }
        return out
    }
}

extension T {
    /// The first index of `needle` in `hay` at or after `from`.
    static func find(_ needle: [UInt8], in hay: [UInt8], from: Int = 0) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
        let first = needle[0]
        var i = from
        let last = hay.count - needle.count
        while i <= last {
            if hay[i] == first {
                var k = 1
                while k < needle.count, hay[i + k] == needle[k] { k += 1 }
                if k == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}

extension T {
    /// %XX escapes decoded; `+` and invalid escapes stay as written.
    static func percentDecode(_ v: [UInt8]) -> [UInt8] {
        guard v.contains(0x25) else { return v }
        var out: [UInt8] = []
        out.reserveCapacity(v.count)
        var i = 0
        while i < v.count {
            if v[i] == 0x25, i + 2 < v.count, isHex(v[i + 1]), isHex(v[i + 2]) {
                out.append(x2c(v[i + 1], v[i + 2]))
                i += 3
            } else {
                out.append(v[i])
                i += 1
            }
        }
        return out
    }
}

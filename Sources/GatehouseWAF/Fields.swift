// Hand-written: turns a request into named fields (path, query, headers, cookies, JSON / form /
// multipart body fields) with their raw and decoded forms. The parsers are small, byte-based and
// lenient on purpose: a WAF must inspect what a sloppy back end would accept, and report what
// does not parse instead of failing. Core has no JSON or multipart parser, and GatehouseWAF
// depends only on Core.

import GatehouseCore

/// Where a field came from; detectors adjust to it (a path is a path, a header is not prose).
enum FieldSource: Sendable {
    case path, pathParam, queryValue, argName, header, userAgent, cookie, bodyValue, filename, rawBody
}

/// One named value of the request, in the forms the detectors look at.
struct InspectedField {
    /// The field's name is built only when a finding needs it: most fields never fire.
    var prefix: String
    var key: [UInt8]
    var suffix: String
    var name: String { prefix + String(decoding: key, as: UTF8.self) + suffix }
    var kind: FieldSource
    /// As received (percent-encoding intact for query and form values).
    var raw: [UInt8]
    /// Percent-decoded until stable, overlong UTF-8 folded, NUL removed.
    var decoded: [UInt8]
    var flags: DecodeFlags
    /// Values whose raw form carries URL encoding worth inspecting separately.
    var rawDiffers: Bool
    /// The bytes present in `raw`.
    var rawSet: ByteSet

    init(name: String, kind: FieldSource, raw: [UInt8], urlEncoded: Bool, plusAsSpace: Bool = false) {
        self.init(prefix: name, key: [], suffix: "", kind: kind, raw: raw, urlEncoded: urlEncoded, plusAsSpace: plusAsSpace)
    }

    init(prefix: String, key: [UInt8], suffix: String, kind: FieldSource, raw: [UInt8], urlEncoded: Bool, plusAsSpace: Bool = false) {
        self.prefix = prefix
        self.key = key
        self.suffix = suffix
        self.kind = kind
        self.raw = raw
        var flags = DecodeFlags()
        var pct = raw
        var changed = false
        let set = ByteSet(raw)
        rawSet = set
        if set.has(0x25) || (plusAsSpace && urlEncoded && set.has(0x2B)) {
            pct = Decoding.percentDecode(raw, plusAsSpace: plusAsSpace && urlEncoded, flags: &flags)
            changed = true
        }
        decoded = !changed && !set.hasHigh && !set.has(0) ? raw : Decoding.normaliseUTF8(pct, flags: &flags)
        self.flags = flags
        rawDiffers = (changed || !flags.isEmpty) && decoded != raw
    }
}

/// The parsed request: fields plus structural problems found while parsing.
struct ParsedRequest {
    var fields: [InspectedField] = []
    var argCount = 0
    /// (rule id, message, excerpt) for framing problems found while parsing.
    var problems: [(String, String, String)] = []
}

enum RequestParser {
    static let skippedHeaders: Set<String> = [
        "authorization", "proxy-authorization", "accept", "accept-encoding", "accept-language", "accept-charset",
        "content-type", "content-length", "transfer-encoding", "connection", "host", "cache-control", "pragma",
        "if-none-match", "if-match", "if-modified-since", "if-unmodified-since", "upgrade-insecure-requests",
        "te", "keep-alive", "dnt", "priority", "cookie", "x-request-id", "traceparent", "tracestate",
        "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest", "sec-fetch-user", "sec-ch-ua", "sec-ch-ua-mobile",
        "sec-ch-ua-platform", "content-encoding", "origin",
    ]

    static func parse(_ request: PolicyRequest, limits: WAFLimits) -> ParsedRequest {
        var out = ParsedRequest()
        out.fields.reserveCapacity(24)
        out.fields.append(InspectedField(name: "path", kind: .path, raw: Array(request.path.utf8), urlEncoded: true))
        for (k, v) in request.pathParams.sorted(by: { $0.key < $1.key }) {
            out.fields.append(InspectedField(name: "path." + k, kind: .pathParam, raw: Array(v.utf8), urlEncoded: true))
        }
        if let q = request.query, !q.isEmpty {
            parseURLEncoded(Array(q.utf8)[...], prefix: "query.", into: &out)
        }
        for h in request.headers {
            let lname = h.name.lowercased()
            if skippedHeaders.contains(lname) || lname.hasPrefix("sec-") { continue }
            let kind: FieldSource = lname == "user-agent" ? .userAgent : .header
            out.fields.append(InspectedField(name: "header." + lname, kind: kind, raw: Array(h.value.utf8), urlEncoded: lname == "referer"))
        }
        for c in request.cookies {
            out.argCount += 1
            out.fields.append(InspectedField(name: "cookie." + c.name, kind: .cookie, raw: Array(c.value.utf8), urlEncoded: true))
        }
        if let body = request.body, !body.isEmpty {
            parseBody(body, contentType: request.headers["content-type"], limits: limits, into: &out)
        }
        return out
    }

    static func parseURLEncoded(_ bytes: ArraySlice<UInt8>, prefix: String, into out: inout ParsedRequest) {
        var start = bytes.startIndex
        while start < bytes.endIndex {
            var end = start
            while end < bytes.endIndex, bytes[end] != 0x26 { end += 1 }
            let pair = bytes[start..<end]
            start = end + 1
            if pair.isEmpty { continue }
            out.argCount += 1
            let eq = pair.firstIndex(of: 0x3D)
            let rawName = eq.map { pair[pair.startIndex..<$0] } ?? pair
            let rawValue = eq.map { pair[($0 + 1)...] } ?? []
            var f = DecodeFlags()
            let plainName = !rawName.contains(0x25) && !rawName.contains(0x2B)
            let nameBytes = plainName ? Array(rawName) : Decoding.percentDecode(Array(rawName), plusAsSpace: true, flags: &f)
            if needsNameInspection(nameBytes) {
                out.fields.append(
                    InspectedField(
                        prefix: prefix, key: nameBytes, suffix: ":name", kind: .argName, raw: Array(rawName), urlEncoded: true,
                        plusAsSpace: true))
            }
            if !rawValue.isEmpty {
                out.fields.append(
                    InspectedField(
                        prefix: prefix, key: nameBytes, suffix: "", kind: prefix == "body." ? .bodyValue : .queryValue,
                        raw: Array(rawValue), urlEncoded: true, plusAsSpace: true))
            }
        }
    }

    /// Plain identifiers (`user_id`, `items[0].sku`) cannot carry an attack; skip them to save time.
    static func needsNameInspection(_ name: [UInt8]) -> Bool {
        for c in name {
            switch c {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F, 0x2D, 0x2E, 0x5B, 0x5D: continue
            default: return true
            }
        }
        return false
    }

    static func parseBody(_ full: [UInt8], contentType: String?, limits: WAFLimits, into out: inout ParsedRequest) {
        var body = full
        if body.count > limits.maxBodyInspect {
            out.problems.append(("920210", "body is \(body.count) bytes; only the first \(limits.maxBodyInspect) were inspected", ""))
            body = Array(body.prefix(limits.maxBodyInspect))
        }
        let ct = (contentType ?? "").lowercased()
        let mime = ct.split(separator: ";").first.map { $0.trimmingSpaces }.map(String.init) ?? ""
        if mime == "application/x-www-form-urlencoded" {
            parseURLEncoded(body[...], prefix: "body.", into: &out)
        } else if mime == "application/json" || mime.hasSuffix("+json") {
            var parser = JSONLeaves(bytes: body)
            if parser.parse() {
                for leaf in parser.leaves {
                    out.argCount += 1
                    if leaf.isKey {
                        if needsNameInspection(leaf.value) {
                            out.fields.append(
                                InspectedField(name: "body." + leaf.path + ":name", kind: .argName, raw: leaf.value, urlEncoded: false))
                        }
                    } else {
                        out.fields.append(InspectedField(name: "body." + leaf.path, kind: .bodyValue, raw: leaf.value, urlEncoded: false))
                    }
                }
            } else {
                out.problems.append(("920200", "body is declared JSON but does not parse (\(parser.error)); inspected as text", ""))
                out.fields.append(InspectedField(name: "body", kind: .rawBody, raw: body, urlEncoded: false))
            }
        } else if mime == "multipart/form-data" {
            parseMultipart(body, contentType: contentType ?? "", into: &out)
        } else {
            out.fields.append(InspectedField(name: "body", kind: .rawBody, raw: body, urlEncoded: false))
        }
    }

    static func boundary(_ contentType: String) -> String? {
        for param in contentType.split(separator: ";").dropFirst() {
            let kv = param.trimmingSpaces
            guard kv.lowercased().hasPrefix("boundary=") else { continue }
            var v = kv.dropFirst("boundary=".count)
            if v.hasPrefix("\""), v.hasSuffix("\""), v.count >= 2 { v = v.dropFirst().dropLast() }
            return v.isEmpty ? nil : String(v)
        }
        return nil
    }

    static func parseMultipart(_ body: [UInt8], contentType: String, into out: inout ParsedRequest) {
        guard let b = boundary(contentType) else {
            out.problems.append(("920190", "multipart body without a boundary parameter in Content-Type", ""))
            out.fields.append(InspectedField(name: "body", kind: .rawBody, raw: body, urlEncoded: false))
            return
        }
        let delim = Array("--\(b)".utf8)
        guard var pos = Decoding.find(delim, in: body) else {
            out.problems.append(("920190", "multipart boundary \"\(b)\" does not occur in the body", ""))
            out.fields.append(InspectedField(name: "body", kind: .rawBody, raw: body, urlEncoded: false))
            return
        }
        var closed = false
        var index = 0
        while true {
            var start = pos + delim.count
            if start + 1 < body.count, body[start] == 0x2D, body[start + 1] == 0x2D { closed = true; break }
            // Skip transport padding and the CRLF after the delimiter.
            while start < body.count, body[start] == 0x20 || body[start] == 0x09 { start += 1 }
            if start < body.count, body[start] == 0x0D { start += 1 }
            if start < body.count, body[start] == 0x0A { start += 1 }
            guard let next = Decoding.find(delim, in: body, from: start) else { break }
            var end = next
            if end > start, body[end - 1] == 0x0A { end -= 1 }
            if end > start, body[end - 1] == 0x0D { end -= 1 }
            parsePart(body[start..<end], index: index, into: &out)
            index += 1
            pos = next
        }
        if !closed {
            out.problems.append(("920190", "multipart body has no closing boundary \"--\(b)--\"", ""))
        }
    }

    static func parsePart(_ part: ArraySlice<UInt8>, index: Int, into out: inout ParsedRequest) {
        let sep: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A]
        let arr = Array(part)
        var headerEnd = Decoding.find(sep, in: arr)
        var bodyStart = (headerEnd ?? 0) + 4
        if headerEnd == nil, let lf = Decoding.find([0x0A, 0x0A], in: arr) { headerEnd = lf; bodyStart = lf + 2 }
        guard let he = headerEnd else {
            out.problems.append(("920190", "multipart part \(index) has no header block", ""))
            return
        }
        let headers = String(decoding: arr[..<he], as: UTF8.self)
        var name = "part\(index)"
        var filename: String?
        var partType = ""
        for line in headers.split(whereSeparator: { $0 == "\r" || $0 == "\n" }) {
            let lower = line.lowercased()
            if lower.hasPrefix("content-disposition:") {
                if let n = dispositionParam(String(line), "name") { name = n }
                filename = dispositionParam(String(line), "filename")
            } else if lower.hasPrefix("content-type:") {
                partType = String(lower.dropFirst("content-type:".count).trimmingSpaces)
            }
        }
        out.argCount += 1
        let value = Array(arr[min(bodyStart, arr.count)...])
        if let filename {
            out.fields.append(
                InspectedField(name: "body." + name + ":filename", kind: .filename, raw: Array(filename.utf8), urlEncoded: false))
            // File contents are data, not parameters; only text parts the application will read as text are inspected.
            if !(partType.hasPrefix("text/") || partType.isEmpty) || value.contains(0) { return }
        }
        out.fields.append(InspectedField(name: "body." + name, kind: .bodyValue, raw: value, urlEncoded: false))
    }

    static func dispositionParam(_ line: String, _ key: String) -> String? {
        for piece in line.split(separator: ";").dropFirst() {
            let kv = piece.trimmingSpaces
            guard let eq = kv.firstIndex(of: "="), kv[..<eq].lowercased() == key else { continue }
            var v = kv[kv.index(after: eq)...]
            if v.hasPrefix("\""), v.hasSuffix("\""), v.count >= 2 { v = v.dropFirst().dropLast() }
            return String(v)
        }
        return nil
    }
}

/// A minimal JSON reader that lists every string, number and key with its dotted path.
struct JSONLeaves {
    struct Leaf { var path: String; var value: [UInt8]; var isKey: Bool }
    let bytes: [UInt8]
    var i = 0
    var leaves: [Leaf] = []
    var error = ""

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func parse() -> Bool {
        skipWS()
        guard parseValue(path: "", depth: 0) else { return false }
        skipWS()
        if i != bytes.count { error = "unexpected data at byte \(i)"; return false }
        return true
    }

    mutating func skipWS() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    mutating func parseValue(path: String, depth: Int) -> Bool {
        guard depth < 64 else { error = "nesting deeper than 64"; return false }
        guard i < bytes.count else { error = "unexpected end"; return false }
        switch bytes[i] {
        case 0x7B:  // {
            i += 1; skipWS()
            if i < bytes.count, bytes[i] == 0x7D { i += 1; return true }
            while true {
                skipWS()
                guard i < bytes.count, bytes[i] == 0x22, let key = parseString() else {
                    error = "expected a key at byte \(i)"; return false
                }
                let keyName = String(decoding: key, as: UTF8.self)
                let p = path.isEmpty ? keyName : path + "." + keyName
                leaves.append(Leaf(path: p, value: key, isKey: true))
                skipWS()
                guard i < bytes.count, bytes[i] == 0x3A else { error = "expected ':' at byte \(i)"; return false }
                i += 1; skipWS()
                guard parseValue(path: p, depth: depth + 1) else { return false }
                skipWS()
                guard i < bytes.count else { error = "unexpected end"; return false }
                if bytes[i] == 0x2C { i += 1; continue }
                if bytes[i] == 0x7D { i += 1; return true }
                error = "expected ',' or '}' at byte \(i)"; return false
            }
        case 0x5B:  // [
            i += 1; skipWS()
            if i < bytes.count, bytes[i] == 0x5D { i += 1; return true }
            var n = 0
            while true {
                skipWS()
                guard parseValue(path: path.isEmpty ? String(n) : path + "." + String(n), depth: depth + 1) else { return false }
                n += 1
                skipWS()
                guard i < bytes.count else { error = "unexpected end"; return false }
                if bytes[i] == 0x2C { i += 1; continue }
                if bytes[i] == 0x5D { i += 1; return true }
                error = "expected ',' or ']' at byte \(i)"; return false
            }
        case 0x22:
            guard let s = parseString() else { return false }
            leaves.append(Leaf(path: path.isEmpty ? "value" : path, value: s, isKey: false))
            return true
        default:
            let start = i
            while i < bytes.count,
                !(bytes[i] == 0x2C || bytes[i] == 0x7D || bytes[i] == 0x5D || bytes[i] == 0x20
                    || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09)
            { i += 1 }
            let lit = bytes[start..<i]
            if lit.isEmpty { error = "unexpected '\(Character(Unicode.Scalar(bytes[i])))' at byte \(i)"; return false }
            let s = String(decoding: lit, as: UTF8.self)
            if s == "true" || s == "false" || s == "null" { return true }
            if Double(s) != nil { return true }
            error = "invalid literal at byte \(start)"
            return false
        }
    }

    mutating func parseString() -> [UInt8]? {
        i += 1
        var out: [UInt8] = []
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x22 { i += 1; return out }
            if c == 0x5C {
                guard i + 1 < bytes.count else { break }
                let e = bytes[i + 1]
                i += 2
                switch e {
                case 0x6E: out.append(0x0A)
                case 0x74: out.append(0x09)
                case 0x72: out.append(0x0D)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0C)
                case 0x75:
                    guard i + 4 <= bytes.count, let a = Decoding.hex(bytes[i]), let b = Decoding.hex(bytes[i + 1]),
                        let c2 = Decoding.hex(bytes[i + 2]), let d = Decoding.hex(bytes[i + 3])
                    else {
                        error = "bad \\u escape at byte \(i)"; return nil
                    }
                    var v = UInt32(a) << 12 | UInt32(b) << 8 | UInt32(c2) << 4 | UInt32(d)
                    i += 4
                    // Surrogate pair.
                    if v >= 0xD800, v < 0xDC00, i + 6 <= bytes.count, bytes[i] == 0x5C, bytes[i + 1] == 0x75,
                        let a2 = Decoding.hex(bytes[i + 2]), let b2 = Decoding.hex(bytes[i + 3]),
                        let c3 = Decoding.hex(bytes[i + 4]), let d2 = Decoding.hex(bytes[i + 5])
                    {
                        let lo = UInt32(a2) << 12 | UInt32(b2) << 8 | UInt32(c3) << 4 | UInt32(d2)
                        if lo >= 0xDC00, lo < 0xE000 { v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00); i += 6 }
                    }
                    if v == 0 { out.append(0) } else { Decoding.appendUTF8(v, to: &out) }
                default: out.append(e)
                }
                continue
            }
            out.append(c)
            i += 1
        }
        error = "unterminated string"
        return nil
    }
}

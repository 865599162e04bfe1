import GatehouseCore

/// The request inspection engine: decodes every field, runs the detectors on its raw and decoded
/// forms, applies exclusions and sums the anomaly score. Immutable and safe to share.
public final class WAFEngine: Sendable {
    public let configuration: WAFConfiguration

    public init(configuration: WAFConfiguration = WAFConfiguration()) {
        self.configuration = configuration
    }

    /// Inspects one request and reports every finding, every exclusion that applied and the total.
    public func inspect(_ request: PolicyRequest) -> WAFReport {
        var c = Collector(config: configuration, route: request.routeName)
        inspectProtocol(request, &c)
        let parsed = RequestParser.parse(request, limits: configuration.limits)
        for (rule, message, excerpt) in parsed.problems {
            c.emit(rule, field: "body", form: "raw", excerpt: excerpt, message: message)
        }
        if parsed.argCount > configuration.limits.maxArgs {
            c.emit(
                "920170", field: "request", form: "raw", excerpt: "",
                message: "\(parsed.argCount) arguments; the limit is \(configuration.limits.maxArgs)")
        }
        var sqlTokens: [SQLToken] = []
        sqlTokens.reserveCapacity(64)
        var matches: [PatternMatch] = []
        var sqlMatches: [SQLMatch] = []
        for field in parsed.fields {
            inspectField(field, &c, &sqlTokens, &matches, &sqlMatches)
        }
        return WAFReport(
            findings: c.findings, excluded: c.excluded, total: c.total, threshold: configuration.threshold,
            paranoia: configuration.paranoia, fieldsInspected: parsed.fields.count)
    }

    private func inspectProtocol(_ request: PolicyRequest, _ c: inout Collector) {
        let te = request.headers.values("transfer-encoding")
        let cl = request.headers.values("content-length")
        if !te.isEmpty, !cl.isEmpty {
            c.emit(
                "920100", field: "header.transfer-encoding", form: "raw", excerpt: "Content-Length: \(cl[0]) + Transfer-Encoding: \(te[0])",
                message: "both framing headers: a request-smuggling shape")
        }
        if !te.isEmpty {
            let joined = te.joined(separator: ",")
            if te.count > 1 || joined.lowercased() != "chunked" {
                c.emit(
                    "920110", field: "header.transfer-encoding", form: "raw", excerpt: joined,
                    message: "Transfer-Encoding must be exactly \"chunked\"")
            } else if let body = request.body, let problem = ChunkedFraming.problem(body) {
                c.emit("920120", field: "body", form: "raw", excerpt: problem.excerpt, message: problem.message)
            }
        }
        if !cl.isEmpty {
            let distinct = Set(cl.flatMap { $0.split(separator: ",").map { String($0.trimmingSpaces) } })
            if distinct.count > 1
                || distinct.contains(where: { $0.isEmpty || !$0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } || $0.count > 15 })
            {
                c.emit(
                    "920130", field: "header.content-length", form: "raw", excerpt: cl.joined(separator: ", "),
                    message: "Content-Length must be one non-negative decimal number")
            }
        }
        for h in request.headers {
            let lname = h.name.lowercased()
            if ScannerDetector.headers.contains(lname) {
                c.emit("913110", field: "header." + lname, form: "raw", excerpt: h.name, message: "scanner header \(h.name)")
            }
            if lname == "user-agent" {
                let ua = Decoding.lowercased(Array(h.value.utf8))
                if let (k, at) = ScannerDetector.match(ua) {
                    c.emit(
                        "913100", field: "header.user-agent", form: "raw", excerpt: Collector.excerpt(Array(h.value.utf8), at, at + 40),
                        message: "scanner user-agent \(ScannerDetector.agents[k])")
                }
            }
        }
    }

    private func inspectField(
        _ f: InspectedField, _ c: inout Collector, _ tokens: inout [SQLToken], _ matches: inout [PatternMatch],
        _ sqlMatches: inout [SQLMatch]
    ) {
        if f.flags.contains(.nullByte), f.kind != .rawBody || f.raw.count < 4096 {
            c.emit(
                "920140", field: f.name, form: "raw", excerpt: Collector.excerpt(f.raw, 0, 80),
                message: "NUL byte (truncates strings in C-based back ends)")
        }
        if f.flags.contains(.overlongUTF8) {
            c.emit(
                "920150", field: f.name, form: "raw", excerpt: Collector.excerpt(f.raw, 0, 80),
                message: "overlong UTF-8 (an encoding evasion)")
        } else if f.flags.contains(.invalidUTF8), f.kind != .rawBody {
            c.emit("920160", field: f.name, form: "raw", excerpt: Collector.excerpt(f.raw, 0, 80), message: "bytes that are not UTF-8")
        }
        if f.flags.contains(.multipleEncoding) {
            c.emit(
                "920220", field: f.name, form: "raw", excerpt: Collector.excerpt(f.raw, 0, 80), message: "percent-encoded more than once")
        }
        if f.decoded.count > configuration.limits.maxArgLength, f.kind != .rawBody, f.kind != .header, f.kind != .userAgent {
            c.emit(
                "920180", field: f.name, form: "raw", excerpt: "",
                message: "\(f.decoded.count) bytes; the limit is \(configuration.limits.maxArgLength)")
        }
        guard f.decoded.count >= 2 else { return }
        run(f.decoded, form: "decoded", f, &c, &tokens, &matches, &sqlMatches)
        if f.rawDiffers, f.rawSet.has(0x25), f.rawSet.hasAnyOutside(WAFEngine.inertSet) {
            run(f.raw, form: "raw", f, &c, &tokens, &matches, &sqlMatches)
        }
    }

    /// A raw form made only of letters, digits, `%XX` escapes and `+ . - _ ~ *` spells nothing by
    /// itself (its meaning is in the decoded form, which is always inspected); one holding any
    /// other byte is inspected too.
    static let inertSet = ByteSet(inertRaw.indices.filter { inertRaw[$0] == 1 }.map(UInt8.init))

    /// Bytes that carry no syntax in a raw URL-encoded value.
    static let inertRaw: [UInt8] = (0..<256).map { c -> UInt8 in
        switch c {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x25, 0x2B, 0x2E, 0x2D, 0x5F, 0x7E, 0x2A: return 1
        default: return 0
        }
    }

    private func run(
        _ value: [UInt8], form: String, _ f: InspectedField, _ c: inout Collector, _ tokens: inout [SQLToken],
        _ matches: inout [PatternMatch], _ sqlMatches: inout [SQLMatch]
    ) {
        matches.removeAll(keepingCapacity: true)
        sqlMatches.removeAll(keepingCapacity: true)
        // One lowercased copy and one byte summary serve every detector below (they match ASCII
        // case-insensitively); offsets are the same as in `value`, so excerpts come from the original.
        let (low, set) = lowercasedWithSet(value)
        // SQL: headers other than the user-agent, referer and custom ones rarely reach a query, but
        // X-Forwarded-For and friends do; every field is read.
        if f.kind == .path {
            // A path is read segment by segment (`/users/1 OR 1=1`): each segment is a value.
            var start = 0
            for i in 0...value.count where i == value.count || value[i] == 0x2F {
                if i - start >= 3 {
                    let seg = Array(value[start..<i])
                    let segSet = ByteSet(seg)
                    if segSet.has(0x20) || segSet.has(0x27) || segSet.has(0x22) || segSet.has(0x3B) || segSet.has(0x28) {
                        SQLInjectionDetector.scan(seg, bytes: segSet, tokens: &tokens, into: &sqlMatches)
                        for k in sqlMatches.indices { sqlMatches[k].start += start; sqlMatches[k].end += start }
                        for m in sqlMatches {
                            c.emit(m.rule, field: f.name, form: form, excerpt: Collector.excerpt(value, m.start, m.end), message: m.message)
                        }
                        sqlMatches.removeAll(keepingCapacity: true)
                    }
                }
                start = i + 1
            }
        }
        SQLInjectionDetector.scan(value, bytes: set, tokens: &tokens, into: &sqlMatches)
        for m in sqlMatches {
            c.emit(m.rule, field: f.name, form: form, excerpt: Collector.excerpt(value, m.start, m.end), message: m.message)
        }
        XSSDetector.scan(value, lowercased: low, bytes: set, into: &matches)
        if set.has(0x26) {
            let entity = Decoding.htmlEntityDecode(value)
            if entity != value {
                let (elow, eset) = lowercasedWithSet(entity)
                XSSDetector.scan(entity, lowercased: elow, bytes: eset, into: &matches)
                flush(&matches, entity, form: form + "+entities", f, &c)
            }
        }
        flush(&matches, value, form: form, f, &c)
        PathTraversalDetector.scan(low, kind: f.kind, bytes: set, into: &matches)
        CommandInjectionDetector.scan(low, kind: f.kind, bytes: set, into: &matches)
        if !(f.kind == .header && f.name == "header.referer") {
            SSRFDetector.scan(low, kind: f.kind, bytes: set, into: &matches)
        }
        flush(&matches, value, form: form, f, &c)
    }

    private func flush(_ matches: inout [PatternMatch], _ value: [UInt8], form: String, _ f: InspectedField, _ c: inout Collector) {
        for m in matches {
            c.emit(m.rule, field: f.name, form: form, excerpt: Collector.excerpt(value, m.start, m.end), message: m.message)
        }
        matches.removeAll(keepingCapacity: true)
    }
}

/// Gathers findings: drops rules above the paranoia level, applies exclusions, keeps one finding
/// per rule and field.
struct Collector {
    let config: WAFConfiguration
    let route: String
    var findings: [WAFFinding] = []
    var excluded: [WAFExcludedFinding] = []
    var seen = Set<String>()
    var total = 0

    init(config: WAFConfiguration, route: String) {
        self.config = config
        self.route = route
    }

    mutating func emit(_ ruleID: String, field: String, form: String, excerpt: @autoclosure () -> String, message: String) {
        guard let rule = WAFRuleCatalogue.rule(ruleID), rule.paranoia <= config.paranoia else { return }
        let key = ruleID + "\u{0}" + field
        guard seen.insert(key).inserted else { return }
        let finding = WAFFinding(
            ruleID: ruleID, detector: rule.detector, field: field, excerpt: excerpt(), score: rule.score,
            message: message, form: form)
        if let ex = config.exclusions.first(where: { $0.matches(ruleID: ruleID, detector: rule.detector, field: field, route: route) }) {
            excluded.append(WAFExcludedFinding(finding: finding, exclusion: ex))
            return
        }
        findings.append(finding)
        total += rule.score
    }

    /// At most 80 characters of `bytes[a..<b]`, control characters shown as escapes.
    static func excerpt(_ bytes: [UInt8], _ a: Int, _ b: Int) -> String {
        let lo = max(0, min(a, bytes.count)), hi = max(lo, min(b, bytes.count))
        var slice = Array(bytes[lo..<hi])
        var truncated = false
        if slice.count > 80 {
            slice = Array(slice.prefix(80))
            while let last = slice.last, last & 0xC0 == 0x80 { slice.removeLast() }
            if let last = slice.last, last >= 0xC0 { slice.removeLast() }
            truncated = true
        }
        var out = ""
        for scalar in String(decoding: slice, as: UTF8.self).unicodeScalars {
            switch scalar.value {
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0..<0x20, 0x7F: out += "\\x" + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return truncated ? out + "…" : out
    }
}

/// Chunked transfer-coding framing, checked when a body still carries it (offline tests, or a
/// data plane that hands the raw body over).
enum ChunkedFraming {
    /// A framing problem in `body`, or nil when it is valid chunked framing or not framing at all.
    static func problem(_ body: [UInt8]) -> (message: String, excerpt: String)? {
        // Only bodies that start like a chunk-size line are framing; a decoded body is left alone.
        guard let lineEnd = firstCRLF(body, from: 0), lineEnd > 0, lineEnd <= 64 else { return nil }
        var sizeLine = body[0..<lineEnd]
        if let semi = sizeLine.firstIndex(of: 0x3B) { sizeLine = body[0..<semi] }
        let lastChunk: [UInt8] = [0x0D, 0x0A, 0x30, 0x0D, 0x0A, 0x0D, 0x0A]
        let endsLikeFraming = body.count >= 7 && Array(body.suffix(7)) == lastChunk
        guard
            endsLikeFraming
                || sizeLine.count <= 24 && sizeLine.contains(where: { $0 >= 0x30 && $0 <= 0x39 })
                    && sizeLine.allSatisfy({ Decoding.hex($0) != nil || $0 == 0x78 || $0 == 0x58 || $0 == 0x2D || $0 == 0x2B || $0 == 0x20 }
                    )
        else { return nil }
        var pos = 0
        var chunks = 0
        while pos < body.count {
            guard let le = firstCRLF(body, from: pos) else {
                return ("chunk-size line \(chunks + 1) is not terminated by CRLF", Collector.excerpt(body, pos, pos + 20))
            }
            var line = body[pos..<le]
            if let semi = line.firstIndex(of: 0x3B) { line = body[pos..<semi] }
            while let l = line.last, l == 0x20 || l == 0x09 { line = line.dropLast() }
            guard !line.isEmpty, line.count <= 16, line.allSatisfy({ Decoding.hex($0) != nil }) else {
                return (
                    "chunk size \"\(String(decoding: line, as: UTF8.self))\" is not a hexadecimal number (RFC 9112 §7.1)",
                    Collector.excerpt(body, pos, le)
                )
            }
            var size = 0
            for d in line { size = size * 16 + Int(Decoding.hex(d)!) }
            chunks += 1
            if size == 0 { return nil }
            let dataStart = le + 2
            guard dataStart + size + 2 <= body.count, body[dataStart + size] == 0x0D, body[dataStart + size + 1] == 0x0A else {
                return ("chunk \(chunks) declares \(size) bytes but the data that follows does not match", Collector.excerpt(body, pos, le))
            }
            pos = dataStart + size + 2
        }
        return ("chunked body has no last chunk (0)", "")
    }

    static func firstCRLF(_ b: [UInt8], from: Int) -> Int? {
        var i = from
        while i + 1 < b.count {
            if b[i] == 0x0D, b[i + 1] == 0x0A { return i }
            i += 1
        }
        return nil
    }
}

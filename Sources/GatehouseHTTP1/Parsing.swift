import GatehouseCore
import NIOCore

// MARK: Parsing

package enum HTTP1Parse {
    /// Largest request or response head accepted.
    package static let maxHeadBytes = 64 * 1024

    /// The length of the head at the start of `p` (through its empty line), or nil if incomplete.
    /// Accepts CRLF and bare LF line ends.
    @inline(__always)
    package static func headLength(_ p: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        let n = p.count
        while i < n {
            if p[i] == 0x0A {
                if i + 1 < n, p[i + 1] == 0x0A { return i + 2 }
                if i + 2 < n, p[i + 1] == 0x0D, p[i + 2] == 0x0A { return i + 3 }
                if i + 1 >= n || (p[i + 1] == 0x0D && i + 2 >= n) { return nil }
            }
            i += 1
        }
        return nil
    }

    /// tchar (RFC 9110 §5.6.2).
    package static let tchar: [Bool] = {
        var t = [Bool](repeating: false, count: 256)
        for c in UInt8(ascii: "a")...UInt8(ascii: "z") { t[Int(c)] = true }
        for c in UInt8(ascii: "A")...UInt8(ascii: "Z") { t[Int(c)] = true }
        for c in UInt8(ascii: "0")...UInt8(ascii: "9") { t[Int(c)] = true }
        for c in "!#$%&'*+-.^_`|~".utf8 { t[Int(c)] = true }
        return t
    }()

    /// Splits the head in `p[0..<len]` into lines; calls `body` with each line's [start, end)
    /// (without its CR LF). A CR elsewhere stays in the line; callers refuse control characters.
    /// With `strictLineEnds` (request heads), a line ended by a bare LF is refused: a front proxy
    /// that does not take bare LF as a line end would read a different set of fields.
    @inline(__always)
    package static func forEachLine(
        _ p: UnsafeRawBufferPointer, _ len: Int, strictLineEnds: Bool = false, _ body: (Int, Int) throws -> Void
    ) throws {
        var start = 0
        var i = 0
        while i < len {
            if p[i] == 0x0A {
                var end = i
                if end > start, p[end - 1] == 0x0D {
                    end -= 1
                } else if strictLineEnds {
                    throw HTTP1Error.malformed("a line of the request head ends with a bare LF (lines end with CRLF)")
                }
                try body(start, end)
                start = i + 1
            }
            i += 1
        }
    }

    /// Parses one header field line at [s, e): returns (nameStart, nameEnd, valueStart, valueEnd).
    @inline(__always)
    package static func field(
        _ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int, tchar t: UnsafeBufferPointer<Bool>
    ) throws -> (Int, Int, Int, Int) {
        if p[s] == 0x20 || p[s] == 0x09 { throw HTTP1Error.malformed("obsolete line folding is not accepted") }
        var i = s
        while i < e, p[i] != 0x3A {
            if !t[Int(p[i])] {
                if p[i] == 0x20 || p[i] == 0x09 { throw HTTP1Error.malformed("whitespace before a header field's colon") }
                throw HTTP1Error.malformed("a header field name contains a character that is not allowed")
            }
            i += 1
        }
        if i == e { throw HTTP1Error.malformed("a header line has no colon") }
        if i == s { throw HTTP1Error.malformed("a header field has an empty name") }
        let nameEnd = i
        var vs = i + 1
        while vs < e, p[vs] == 0x20 || p[vs] == 0x09 { vs += 1 }
        var ve = e
        while ve > vs, p[ve - 1] == 0x20 || p[ve - 1] == 0x09 { ve -= 1 }
        var j = vs
        while j < ve {
            let c = p[j]
            if (c < 0x20 && c != 0x09) || c == 0x7F { throw HTTP1Error.malformed("a header field value contains a control character") }
            j += 1
        }
        return (s, nameEnd, vs, ve)
    }

    /// Parses "HTTP/1.x" at p[s..<s+8]; returns x.
    @inline(__always)
    package static func version(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) throws -> Int {
        guard e - s == 8, p[s] == 0x48, p[s + 1] == 0x54, p[s + 2] == 0x54, p[s + 3] == 0x50, p[s + 4] == 0x2F else {
            throw HTTP1Error.malformed("the protocol version is not HTTP/1.x")
        }
        guard p[s + 5] == 0x31, p[s + 6] == 0x2E, p[s + 7] == 0x30 || p[s + 7] == 0x31 else {
            throw HTTP1Error.malformed(
                "HTTP version \(String(decoding: UnsafeRawBufferPointer(rebasing: p[(s + 5)..<e]), as: UTF8.self)) is not supported (HTTP/1.0 and HTTP/1.1 are)"
            )
        }
        return Int(p[s + 7] - 0x30)
    }

    /// Parses a Content-Length value: digits, or a comma-separated list of one repeated value.
    package static func contentLength(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) throws -> Int {
        var result: Int?
        var i = s
        while i <= e {
            var v = 0
            var digits = 0
            while i < e, p[i] == 0x20 || p[i] == 0x09 { i += 1 }
            while i < e, p[i] >= 0x30, p[i] <= 0x39 {
                let (m, o1) = v.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int(p[i] - 0x30))
                if o1 || o2 || digits > 18 { throw HTTP1Error.malformed("Content-Length is too large") }
                v = a
                digits += 1
                i += 1
            }
            while i < e, p[i] == 0x20 || p[i] == 0x09 { i += 1 }
            if digits == 0 || (i < e && p[i] != 0x2C) { throw HTTP1Error.malformed("Content-Length is not a number") }
            if let r = result, r != v { throw HTTP1Error.malformed("Content-Length has differing values") }
            result = v
            i += 1
        }
        return result ?? 0
    }

    /// Whether a Transfer-Encoding value is exactly the `chunked` coding (the only one accepted, in
    /// requests and responses alike, as nginx does: another coding would reach the peer relabelled).
    package static func isOnlyChunked(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Bool {
        var first = s, last = e
        while first < last, p[first] == 0x20 || p[first] == 0x09 || p[first] == 0x2C { first += 1 }
        while last > first, p[last - 1] == 0x20 || p[last - 1] == 0x09 || p[last - 1] == 0x2C { last -= 1 }
        let word = "chunked".utf8
        guard last - first == word.count else { return false }
        for (k, c) in word.enumerated() where p[first + k] | 0x20 != c { return false }
        return true
    }

    /// The framing and connection fields of a head, shared by the request and response parsers.
    package struct FramingFields {
        package var contentLength: Int?
        package var transferEncoding = false
        package var close = false
        package var keepAliveAsked = false
        /// Field names listed in `Connection` (other than close and keep-alive), lowercased.
        package var connectionNames: [String] = []
        /// Refuse a Content-Length that is a list (requests).
        package var singleContentLength = false

        /// Takes in a field of `kind` whose value is at p[vs..<ve]; other kinds are ignored.
        package mutating func add(_ kind: FieldKind, _ p: UnsafeRawBufferPointer, _ vs: Int, _ ve: Int) throws {
            switch kind {
            case .contentLength:
                if singleContentLength, UnsafeRawBufferPointer(rebasing: p[vs..<ve]).contains(0x2C) {
                    throw HTTP1Error.malformed("Content-Length is a list; a request's must be one number")
                }
                let v = try HTTP1Parse.contentLength(p, vs, ve)
                if let c = contentLength, c != v { throw HTTP1Error.malformed("Content-Length has differing values") }
                contentLength = v
            case .transferEncoding:
                if transferEncoding { throw HTTP1Error.malformed("Transfer-Encoding appears more than once") }
                guard HTTP1Parse.isOnlyChunked(p, vs, ve) else {
                    throw HTTP1Error.malformed("Transfer-Encoding other than \"chunked\" is not accepted")
                }
                transferEncoding = true
            case .connection:
                let c = HTTP1Parse.connectionTokens(HTTP1Parse.string(p, vs, ve))
                close = close || c.close
                keepAliveAsked = keepAliveAsked || c.keepAlive
                connectionNames.append(contentsOf: c.others)
            default:
                break
            }
        }

        /// Whether the connection stays open after this message (RFC 9112 §9.3). Transfer-Encoding
        /// in an HTTP/1.0 message is suspect framing (§6.1): the connection closes after it.
        package func keepAlive(minor: Int) -> Bool {
            if minor == 0 && transferEncoding { return false }
            return minor == 1 ? !close : (keepAliveAsked && !close)
        }
    }

    /// Reads Connection's tokens: (close, keep-alive, other names lowercased).
    package static func connectionTokens(_ value: String) -> (close: Bool, keepAlive: Bool, others: [String]) {
        // The usual values, without splitting or allocating.
        if value.utf8.count == 10, HeaderList.sameName(value, "keep-alive") { return (false, true, []) }
        if value.utf8.count == 5, HeaderList.sameName(value, "close") { return (true, false, []) }
        var close = false, keep = false
        var others: [String] = []
        for token in value.split(separator: ",") {
            let t = token.trimmingSpaces.lowercased()
            if t == "close" { close = true } else if t == "keep-alive" { keep = true } else if !t.isEmpty { others.append(t) }
        }
        return (close, keep, others)
    }

    package static func string(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: p[s..<e]), as: UTF8.self)
    }

    /// Parses a request head of `len` bytes at the start of `p`.
    package static func request(_ p: UnsafeRawBufferPointer, length len: Int) throws -> RequestHead {
        try tchar.withUnsafeBufferPointer { t in
            var head = RequestHead.unparsed
            var first = true
            // A request's Content-Length is one number: a list, even of one repeated value, is
            // refused (llhttp and nginx refuse it too; a response's list is repaired).
            var framing = FramingFields(singleContentLength: true)
            var hosts = 0
            var shape = RequestFieldRules()
            head.headers.reserveCapacity(8)
            try forEachLine(p, len, strictLineEnds: true) { s, e in
                if first {
                    first = false
                    // method SP request-target SP HTTP-version
                    var i = s
                    while i < e, t[Int(p[i])] { i += 1 }
                    guard i > s, i < e, p[i] == 0x20 else { throw HTTP1Error.malformed("the request line does not start with a method") }
                    let methodEnd = i
                    // Methods are case-sensitive: `get` is not GET. Only A-Z, "-" and "_", as nginx
                    // accepts, so a check comparing methods and an upstream agree on what was asked.
                    for k in s..<methodEnd where !(p[k] >= 0x41 && p[k] <= 0x5A) && p[k] != 0x2D && p[k] != 0x5F {
                        throw HTTP1Error.malformed(
                            "the method \"\(string(p, s, methodEnd))\" is not an uppercase method name (methods are case-sensitive)")
                    }
                    i += 1
                    let targetStart = i
                    while i < e, p[i] > 0x20, p[i] != 0x7F {
                        // What a back end could cut or decode differently: a fragment, a backslash,
                        // raw 8-bit bytes (clients percent-encode them).
                        switch p[i] {
                        case 0x23: throw HTTP1Error.malformed("the request target contains \"#\" (a fragment is never sent in a request)")
                        case 0x5C: throw HTTP1Error.malformed("the request target contains a backslash")
                        case 0x80...: throw HTTP1Error.malformed("the request target contains a raw 8-bit byte (send it percent-encoded)")
                        default: i += 1
                        }
                    }
                    if i < e, i > targetStart, p[i] < 0x20 || p[i] == 0x7F {
                        throw HTTP1Error.malformed("the request target contains a control character")
                    }
                    guard i > targetStart, i < e, p[i] == 0x20 else {
                        throw HTTP1Error.malformed("the request line has no valid request target")
                    }
                    let targetEnd = i
                    head.minor = try version(p, i + 1, e)
                    head.method = string(p, s, methodEnd)
                    // Origin form only ("/path?query"; "*" for OPTIONS): an absolute-form target
                    // ("http://host/path") names a host the router would not see.
                    let isOptionsStar = targetEnd - targetStart == 1 && p[targetStart] == 0x2A && head.method == "OPTIONS"
                    guard p[targetStart] == 0x2F || isOptionsStar else {
                        throw HTTP1Error.malformed(
                            "the request target is not a path starting with \"/\" (absolute-form and authority-form targets are not accepted)"
                        )
                    }
                    head.uri = string(p, targetStart, targetEnd)
                    return
                }
                if s == e { return }  // the empty line ending the head
                let (ns, ne, vs, ve) = try field(p, s, e, tchar: t)
                let kind = FieldKind.of(UnsafeRawBufferPointer(rebasing: p[ns..<ne]))
                try framing.add(kind, p, vs, ve)
                if kind == .other { try shape.add(p, ns, ne, vs, ve) }
                switch kind {
                case .expect:
                    if ve - vs == 12, string(p, vs, ve).lowercased() == "100-continue" { head.expectContinue = true }
                case .host:
                    hosts += 1
                    if hosts > 1 { throw HTTP1Error.malformed("the request has more than one Host field") }
                default:
                    break
                }
                head.headers.append(HeaderField(string(p, ns, ne), string(p, vs, ve)))
            }
            if first { throw HTTP1Error.malformed("the request is empty") }
            if head.minor == 1 && hosts == 0 { throw HTTP1Error.malformed("an HTTP/1.1 request must have a Host field") }
            if framing.transferEncoding {
                if framing.contentLength != nil { throw HTTP1Error.malformed("the request has both Content-Length and Transfer-Encoding") }
                head.framing = .chunked
            } else if let contentLength = framing.contentLength {
                head.framing = .length(contentLength)
            } else {
                head.framing = .none
            }
            head.keepAlive = framing.keepAlive(minor: head.minor)
            try RequestFieldRules.applyConnection(framing.connectionNames, to: &head.headers)
            head.connectionNames = framing.connectionNames
            return head
        }
    }

    /// Parses a response head of `len` bytes at the start of `bytes`; `headRequest` tells whether
    /// it answers a HEAD request (no body whatever the fields say).
    ///
    /// Content-Length leaves towards the client once and as a bare number: a list of one repeated
    /// value (`5, 5`) or leading zeros are rewritten in place, and a second field with the same value
    /// is dropped (differing values are refused). A 204 carries none (RFC 9110 §8.6). A 101 is
    /// refused: the gateway never asks for a protocol change (it drops Upgrade).
    package static func response(_ bytes: ByteBuffer, length len: Int, headRequest: Bool) throws -> ResponseHead {
        // A Content-Length value that is not a bare number: (its index in `lines`, the value).
        var rewrite: (line: Int, value: Int)?
        var head = try bytes.withUnsafeReadableBytes { p in
            try tchar.withUnsafeBufferPointer { t in
                var status = 0, minor = 1, statusStart = 0, statusEnd = 0
                var lines: [HeaderLine] = []
                lines.reserveCapacity(12)
                var first = true
                var framingFields = FramingFields()
                var contentLengthKept = false
                // Whether a field was dropped or rewritten, or a line ended by a bare LF.
                var repaired = false
                try forEachLine(p, len) { s, e in
                    // The line ends at its CR, or at a bare LF.
                    if p[e] == 0x0A { repaired = true }
                    if first {
                        first = false
                        guard e - s >= 12, p[s + 8] == 0x20 else {
                            throw HTTP1Error.malformed("the status line is not \"HTTP/1.x NNN reason\"")
                        }
                        minor = try version(p, s, s + 8)
                        var code = 0
                        for k in 9..<12 {
                            let c = p[s + k]
                            guard c >= 0x30, c <= 0x39 else { throw HTTP1Error.malformed("the status code is not three digits") }
                            code = code * 10 + Int(c - 0x30)
                        }
                        guard e - s == 12 || p[s + 12] == 0x20 else { throw HTTP1Error.malformed("the status code is not three digits") }
                        // The reason phrase is copied to the client: no control characters in it.
                        for k in (s + 12)..<e where (p[k] < 0x20 && p[k] != 0x09) || p[k] == 0x7F {
                            throw HTTP1Error.malformed("the reason phrase contains a control character")
                        }
                        if code == 101 {
                            throw HTTP1Error.malformed("101 Switching Protocols, but the gateway asked for no protocol change")
                        }
                        status = code
                        statusStart = s + 9
                        statusEnd = e
                        return
                    }
                    if s == e { return }
                    let (ns, ne, vs, ve) = try field(p, s, e, tchar: t)
                    let kind = FieldKind.of(UnsafeRawBufferPointer(rebasing: p[ns..<ne]))
                    try framingFields.add(kind, p, vs, ve)
                    if kind == .contentLength {
                        // One field, a bare number; none on a 204 (the status line came first).
                        if status == 204 { return }
                        if contentLengthKept { repaired = true; return }
                        contentLengthKept = true
                        if !isBareNumber(p, vs, ve) {
                            rewrite = (lines.count, framingFields.contentLength ?? 0)
                            repaired = true
                        }
                    }
                    lines.append(HeaderLine(nameStart: ns, nameEnd: ne, valueStart: vs, valueEnd: ve, kind: kind))
                }
                let framing: BodyFraming
                if headRequest || status < 200 || status == 204 || status == 304 {
                    framing = .none
                } else if framingFields.transferEncoding {
                    // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3), which is then dropped.
                    //
                    // With both, the response is relayed (read as chunked, without the length, as
                    // §6.3 asks of an intermediary that forwards it) and its connection is closed
                    // after it (`framingInDoubt` below), as nginx does; it is not refused with 502,
                    // as HAProxy does. The harm of such a message is to what follows it on the
                    // connection, where the two readings disagree about where it ends: once the
                    // connection is closed nothing follows, and no reading of the rest can reach
                    // another client. What this client gets is the reading the RFC prescribes, of
                    // its own response; a 502 would protect nobody more and would break upstreams
                    // (a framework adding a length to a chunked answer) that work behind nginx.
                    // Requests are held to a stricter rule (400), where a second reading is
                    // the upstream's, not the gateway's.
                    framing = .chunked
                } else if let contentLength = framingFields.contentLength {
                    framing = .length(contentLength)
                } else {
                    framing = .untilClose
                }
                // A response without a body whose fields announce one: an upstream that computes the
                // length from a body may still write that body (late, in another segment), where the
                // next request on the connection would read it as its response. To a HEAD, only an
                // explicit `Content-Length: 0` settles it (with no field at all, the same answer to a
                // GET would run until the close); a 204 or 304 is settled unless it announces a
                // non-empty length or a transfer coding.
                var inDoubt = repaired || (framingFields.transferEncoding && framingFields.contentLength != nil)
                if headRequest {
                    inDoubt = inDoubt || framingFields.transferEncoding || framingFields.contentLength != 0
                } else if status == 204 || status == 304 {
                    inDoubt = inDoubt || framingFields.transferEncoding || (framingFields.contentLength ?? 0) > 0
                }
                let keepAlive = framing != .untilClose && framingFields.keepAlive(minor: minor)
                var headBytes = bytes
                headBytes.moveWriterIndex(to: bytes.readerIndex + len)
                return ResponseHead(
                    status: status, minor: minor, bytes: headBytes, statusStart: statusStart, statusEnd: statusEnd,
                    lines: lines, framing: framing, keepAlive: keepAlive, connectionNames: framingFields.connectionNames,
                    hadTransferEncoding: framingFields.transferEncoding, framingInDoubt: inDoubt)
            }
        }
        if let rewrite {
            // The bare number is never longer than the value it replaces: written over its start.
            let line = head.lines[rewrite.line]
            let digits = String(rewrite.value)
            head.bytes.setString(digits, at: head.bytes.readerIndex + line.valueStart)
            head.lines[rewrite.line].valueEnd = line.valueStart + digits.utf8.count
        }
        return head
    }

    /// Whether p[s..<e] is digits without a leading zero (or "0").
    package static func isBareNumber(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Bool {
        guard e > s, e - s == 1 || p[s] != 0x30 else { return false }
        for i in s..<e where p[i] < 0x30 || p[i] > 0x39 { return false }
        return true
    }
}

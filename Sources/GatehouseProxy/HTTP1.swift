import GatehouseCore
import NIOCore

// The gateway's own HTTP/1.x codec: one incremental parser for request and response heads and
// bodies, working on the connection's ByteBuffer, and writers that serialise heads straight into
// one buffer. It replaces NIO's HTTP decoder, encoder and their pipeline handlers on both sides of
// the proxy: per request that saves the boxing of every message part into `NIOAny`, the
// `HTTPHeaders` copies, and three handler hops each way (see docs/performance.md).
//
// What it accepts follows RFC 9112 strictly where a lenient reading could let a request be
// understood differently by the gateway and the upstream (request smuggling): a request with both
// Content-Length and Transfer-Encoding, a transfer coding other than `chunked`, differing
// Content-Length values, obsolete line folding, whitespace before a header's colon, or control
// characters in a field are all rejected with 400. Heads are re-serialised, never forwarded as
// received, so what the upstream sees is what the checks saw.

/// A message that cannot be parsed.
struct HTTP1Error: Error, CustomStringConvertible {
    enum Kind { case malformed, headTooLarge }
    let kind: Kind
    let description: String

    static func malformed(_ what: String) -> HTTP1Error { HTTP1Error(kind: .malformed, description: what) }
}

/// How a message's body is delimited (RFC 9112 §6.3).
enum BodyFraming: Equatable {
    case none
    case length(Int)
    case chunked
    /// Responses only: the body runs until the connection closes.
    case untilClose
}

/// A parsed request head.
struct RequestHead {
    var method: String
    /// The request target as sent (origin form: path and query).
    var uri: String
    /// HTTP/1.minor: 0 or 1.
    var minor: Int
    var headers: [HeaderField]
    var framing: BodyFraming
    var keepAlive: Bool
    var expectContinue: Bool
    /// Field names the client listed in `Connection` (other than close and keep-alive): hop-by-hop.
    var connectionNames: [String]

    var contentLength: Int? { if case .length(let n) = framing { return n } else { return nil } }
    var hasBody: Bool {
        switch framing {
        case .none: return false
        case .length(let n): return n > 0
        case .chunked, .untilClose: return true
        }
    }

    /// The first value of a field, by case-insensitive name.
    func first(_ name: String) -> String? {
        for f in headers where HeaderList.sameName(f.name, name) { return f.value }
        return nil
    }

    func values(_ name: String) -> [String] {
        var out: [String] = []
        for f in headers where HeaderList.sameName(f.name, name) { out.append(f.value) }
        return out
    }

    /// A placeholder for a request whose head could not be read.
    static let unparsed = RequestHead(method: "-", uri: "-", minor: 1, headers: [], framing: .none, keepAlive: false,
                                      expectContinue: false, connectionNames: [])
}

/// One header line of a response head, as byte offsets into `ResponseHead.bytes`.
struct HeaderLine {
    var nameStart: Int
    var nameEnd: Int
    var valueStart: Int
    var valueEnd: Int
    var kind: FieldKind
}

/// Fields the proxy treats specially.
enum FieldKind: UInt8 {
    case other, connection, keepAlive, proxyConnection, te, trailer, upgrade, transferEncoding, contentLength, expect
    case xRequestID, xForwardedFor, xForwardedProto, xForwardedHost, vary, host

    /// Hop-by-hop fields (RFC 9110 §7.6.1) and framing fields the proxy re-derives itself.
    var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .te, .trailer, .upgrade, .transferEncoding: return true
        default: return false
        }
    }

    /// Classifies a field name (ASCII case-insensitive) without allocating.
    static func of(_ p: UnsafeRawBufferPointer) -> FieldKind {
        @inline(__always) func eq(_ s: StaticString) -> Bool {
            guard s.utf8CodeUnitCount == p.count else { return false }
            let q = s.utf8Start
            for i in 0..<p.count where p[i] | 0x20 != q[i] { return false }  // q is lowercase
            return true
        }
        switch p.count {
        case 2: return eq("te") ? .te : .other
        case 4: return eq("vary") ? .vary : eq("host") ? .host : .other
        case 6: return eq("expect") ? .expect : .other
        case 7: return eq("trailer") ? .trailer : eq("upgrade") ? .upgrade : .other
        case 10: return eq("connection") ? .connection : eq("keep-alive") ? .keepAlive : .other
        case 12: return eq("x-request-id") ? .xRequestID : .other
        case 14: return eq("content-length") ? .contentLength : .other
        case 15: return eq("x-forwarded-for") ? .xForwardedFor : .other
        case 16: return eq("proxy-connection") ? .proxyConnection : eq("x-forwarded-host") ? .xForwardedHost : .other
        case 17: return eq("transfer-encoding") ? .transferEncoding : eq("x-forwarded-proto") ? .xForwardedProto : .other
        default: return .other
        }
    }

    static func of(_ name: String) -> FieldKind {
        var n = name
        return n.withUTF8 { FieldKind.of(UnsafeRawBufferPointer($0)) }
    }
}

/// A parsed response head; fields stay as bytes (the proxy copies most of them through unchanged).
struct ResponseHead {
    var status: Int
    var minor: Int
    /// The whole head as received, status line to the empty line.
    var bytes: ByteBuffer
    /// Offset in `bytes` just after "HTTP/1.x " (the status code and reason phrase follow).
    var statusStart: Int
    /// Offset in `bytes` of the status line's end (its CR or LF).
    var statusEnd: Int
    var lines: [HeaderLine]
    var framing: BodyFraming
    var keepAlive: Bool
    /// Field names the upstream listed in `Connection`, lowercased (other than close/keep-alive).
    var connectionNames: [String]
    /// Whether the upstream sent Transfer-Encoding (its Content-Length, if any, is not forwarded).
    var hadTransferEncoding: Bool
    /// Whether the head leaves doubt about where this response ends on the connection, so that the
    /// connection is not reused after it (see UpstreamConnection):
    /// - a response that has no body by the rules (to HEAD, 204, 304) but whose fields announce
    ///   one, which an upstream may still send later;
    /// - both Content-Length and Transfer-Encoding (RFC 9112 §6.3): read as chunked, but the
    ///   upstream may have meant the length, and then the rest of it arrives after "the end";
    /// - a head the parser had to repair: a Content-Length that was a list or had a leading zero,
    ///   a repeated Content-Length field, a line ended by a bare LF. An upstream that frames
    ///   sloppily is not trusted to end its responses where the gateway read the end.
    /// (A chunked body the decoder had to repair is caught as it is read: `BodyDecoder.repaired`.)
    var framingInDoubt = false

    func name(_ line: HeaderLine) -> String {
        bytes.getString(at: bytes.readerIndex + line.nameStart, length: line.nameEnd - line.nameStart) ?? ""
    }

    func value(_ line: HeaderLine) -> String {
        bytes.getString(at: bytes.readerIndex + line.valueStart, length: line.valueEnd - line.valueStart) ?? ""
    }

    func first(_ kind: FieldKind) -> String? {
        for l in lines where l.kind == kind { return value(l) }
        return nil
    }
}

// MARK: Parsing

enum HTTP1Parse {
    /// Largest request or response head accepted.
    static let maxHeadBytes = 64 * 1024

    /// The length of the head at the start of `p` (through its empty line), or nil if incomplete.
    /// Accepts CRLF and bare LF line ends.
    @inline(__always)
    static func headLength(_ p: UnsafeRawBufferPointer) -> Int? {
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
    static let tchar: [Bool] = {
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
    static func forEachLine(_ p: UnsafeRawBufferPointer, _ len: Int, strictLineEnds: Bool = false, _ body: (Int, Int) throws -> Void) throws {
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
    static func field(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int, tchar t: UnsafeBufferPointer<Bool>) throws -> (Int, Int, Int, Int) {
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
    static func version(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) throws -> Int {
        guard e - s == 8, p[s] == 0x48, p[s + 1] == 0x54, p[s + 2] == 0x54, p[s + 3] == 0x50, p[s + 4] == 0x2F else {
            throw HTTP1Error.malformed("the protocol version is not HTTP/1.x")
        }
        guard p[s + 5] == 0x31, p[s + 6] == 0x2E, p[s + 7] == 0x30 || p[s + 7] == 0x31 else {
            throw HTTP1Error.malformed("HTTP version \(String(decoding: UnsafeRawBufferPointer(rebasing: p[(s + 5)..<e]), as: UTF8.self)) is not supported (HTTP/1.0 and HTTP/1.1 are)")
        }
        return Int(p[s + 7] - 0x30)
    }

    /// Parses a Content-Length value: digits, or a comma-separated list of one repeated value.
    static func contentLength(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) throws -> Int {
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
    static func isOnlyChunked(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Bool {
        var first = s, last = e
        while first < last, p[first] == 0x20 || p[first] == 0x09 || p[first] == 0x2C { first += 1 }
        while last > first, p[last - 1] == 0x20 || p[last - 1] == 0x09 || p[last - 1] == 0x2C { last -= 1 }
        let word = "chunked".utf8
        guard last - first == word.count else { return false }
        for (k, c) in word.enumerated() where p[first + k] | 0x20 != c { return false }
        return true
    }

    /// The framing and connection fields of a head, shared by the request and response parsers.
    struct FramingFields {
        var contentLength: Int?
        var transferEncoding = false
        var close = false
        var keepAliveAsked = false
        /// Field names listed in `Connection` (other than close and keep-alive), lowercased.
        var connectionNames: [String] = []
        /// Refuse a Content-Length that is a list (requests).
        var singleContentLength = false

        /// Takes in a field of `kind` whose value is at p[vs..<ve]; other kinds are ignored.
        mutating func add(_ kind: FieldKind, _ p: UnsafeRawBufferPointer, _ vs: Int, _ ve: Int) throws {
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
                guard HTTP1Parse.isOnlyChunked(p, vs, ve) else { throw HTTP1Error.malformed("Transfer-Encoding other than \"chunked\" is not accepted") }
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
        func keepAlive(minor: Int) -> Bool {
            if minor == 0 && transferEncoding { return false }
            return minor == 1 ? !close : (keepAliveAsked && !close)
        }
    }

    /// Reads Connection's tokens: (close, keep-alive, other names lowercased).
    static func connectionTokens(_ value: String) -> (close: Bool, keepAlive: Bool, others: [String]) {
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

    static func string(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: p[s..<e]), as: UTF8.self)
    }

    /// Parses a request head of `len` bytes at the start of `p`.
    static func request(_ p: UnsafeRawBufferPointer, length len: Int) throws -> RequestHead {
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
                        throw HTTP1Error.malformed("the method \"\(string(p, s, methodEnd))\" is not an uppercase method name (methods are case-sensitive)")
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
                    guard i > targetStart, i < e, p[i] == 0x20 else { throw HTTP1Error.malformed("the request line has no valid request target") }
                    let targetEnd = i
                    head.minor = try version(p, i + 1, e)
                    head.method = string(p, s, methodEnd)
                    // Origin form only ("/path?query"; "*" for OPTIONS): an absolute-form target
                    // ("http://host/path") names a host the router would not see.
                    let isOptionsStar = targetEnd - targetStart == 1 && p[targetStart] == 0x2A && head.method == "OPTIONS"
                    guard p[targetStart] == 0x2F || isOptionsStar else {
                        throw HTTP1Error.malformed("the request target is not a path starting with \"/\" (absolute-form and authority-form targets are not accepted)")
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
    static func response(_ bytes: ByteBuffer, length len: Int, headRequest: Bool) throws -> ResponseHead {
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
                        guard e - s >= 12, p[s + 8] == 0x20 else { throw HTTP1Error.malformed("the status line is not \"HTTP/1.x NNN reason\"") }
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
                        if code == 101 { throw HTTP1Error.malformed("101 Switching Protocols, but the gateway asked for no protocol change") }
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
                return ResponseHead(status: status, minor: minor, bytes: headBytes, statusStart: statusStart, statusEnd: statusEnd,
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
    static func isBareNumber(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) -> Bool {
        guard e > s, e - s == 1 || p[s] != 0x30 else { return false }
        for i in s..<e where p[i] < 0x30 || p[i] > 0x39 { return false }
        return true
    }
}

/// Reads a message body of a given framing from a connection's buffer, piece by piece.
struct BodyDecoder {
    enum State: Equatable {
        case idle
        case length(Int)
        case chunkSize
        case chunkData(Int)
        case chunkDataEnd
        case trailers(Int)
        case untilClose
    }

    enum Event {
        case data(ByteBuffer)
        case end
    }

    var state = State.idle
    /// Request bodies: chunk lines and trailers end with CRLF (no bare LF), and a chunk-size line
    /// holds nothing but the size and `;extensions` (RFC 9112 §7.1.1). Responses, which the proxy
    /// re-frames, are read leniently.
    var strict = false
    /// Lenient (response) decoding only: whether the current body's chunk framing needed a repair
    /// (a line ended by a bare LF, something other than `;extensions` after a chunk size). The
    /// connection is then not reused: an upstream that frames sloppily is not trusted to end its
    /// response where the gateway read the end.
    private(set) var repaired = false

    init(strict: Bool = false) { self.strict = strict }

    mutating func start(_ framing: BodyFraming) {
        repaired = false
        switch framing {
        case .none: state = .length(0)
        case .length(let n): state = .length(n)
        case .chunked: state = .chunkSize
        case .untilClose: state = .untilClose
        }
    }

    var isIdle: Bool { state == .idle }

    /// The next piece of the body from `buf`, `.end` when the body is complete, or nil when more
    /// input is needed.
    mutating func next(_ buf: inout ByteBuffer) throws -> Event? {
        while true {
            switch state {
            case .idle:
                return nil
            case .length(let n):
                if n == 0 { state = .idle; return .end }
                let k = min(n, buf.readableBytes)
                if k == 0 { return nil }
                state = .length(n - k)
                return .data(buf.readSlice(length: k)!)
            case .untilClose:
                let k = buf.readableBytes
                if k == 0 { return nil }
                return .data(buf.readSlice(length: k)!)
            case .chunkSize:
                guard let (size, lineLen) = try Self.chunkSizeLine(buf, strict: strict) else { return nil }
                if !strict, !repaired, !Self.isPlainChunkSizeLine(buf, lineLen) {
                    // Not "HEX CRLF": would the strict reading take it (extensions, CRLF)?
                    if (try? Self.chunkSizeLine(buf, strict: true)) == nil { repaired = true }
                }
                buf.moveReaderIndex(forwardBy: lineLen)
                state = size == 0 ? .trailers(0) : .chunkData(size)
            case .chunkData(let n):
                let k = min(n, buf.readableBytes)
                if k == 0 { return nil }
                state = n - k == 0 ? .chunkDataEnd : .chunkData(n - k)
                return .data(buf.readSlice(length: k)!)
            case .chunkDataEnd:
                guard buf.readableBytes >= 1 else { return nil }
                let c = buf.getInteger(at: buf.readerIndex, as: UInt8.self)!
                if c == 0x0A {
                    if strict { throw HTTP1Error.malformed("a chunk is followed by a bare LF, not CRLF") }
                    repaired = true
                    buf.moveReaderIndex(forwardBy: 1); state = .chunkSize; continue
                }
                guard c == 0x0D else { throw HTTP1Error.malformed("a chunk is not followed by CRLF") }
                guard buf.readableBytes >= 2 else { return nil }
                guard buf.getInteger(at: buf.readerIndex + 1, as: UInt8.self) == 0x0A else { throw HTTP1Error.malformed("a chunk is not followed by CRLF") }
                buf.moveReaderIndex(forwardBy: 2)
                state = .chunkSize
            case .trailers(let seen):
                // Trailer fields are read and dropped (the proxy does not forward trailers).
                let r: (Int, Bool, Bool)? = buf.withUnsafeReadableBytes { p in
                    guard let nl = p.firstIndex(of: 0x0A) else { return nil }
                    let empty = nl == 0 || (nl == 1 && p[0] == 0x0D)
                    return (nl + 1, empty, nl > 0 && p[nl - 1] == 0x0D)
                }
                guard let (lineLen, empty, crlf) = r else {
                    if seen + buf.readableBytes > HTTP1Parse.maxHeadBytes { throw HTTP1Error(kind: .headTooLarge, description: "the chunked trailer section is too large") }
                    return nil
                }
                if !crlf {
                    if strict { throw HTTP1Error.malformed("a trailer line ends with a bare LF, not CRLF") }
                    repaired = true
                }
                if strict, !empty {
                    // Dropped, but read as fields: a line that is not `name: value` is refused, as
                    // a stricter parser in front or behind would refuse it.
                    let ok = buf.withUnsafeReadableBytes { p in Self.isTrailerField(UnsafeRawBufferPointer(rebasing: p[0..<(lineLen - 2)])) }
                    if !ok { throw HTTP1Error.malformed("a chunked trailer line is not a field (name: value)") }
                }
                buf.moveReaderIndex(forwardBy: lineLen)
                if empty { state = .idle; return .end }
                state = .trailers(seen + lineLen)
            }
        }
    }

    /// `token ":" value`, the value without control bytes other than HTAB.
    static func isTrailerField(_ p: UnsafeRawBufferPointer) -> Bool {
        HTTP1Parse.tchar.withUnsafeBufferPointer { t in
            var i = 0
            while i < p.count, t[Int(p[i])] { i += 1 }
            guard i > 0, i < p.count, p[i] == 0x3A else { return false }
            for c in p[(i + 1)...] where (c < 0x20 && c != 0x09) || c == 0x7F { return false }
            return true
        }
    }

    /// Whether the chunk-size line of `lineLen` bytes at the start of `buf` is hex digits and CRLF
    /// alone (the usual line; anything else is checked further).
    @inline(__always)
    static func isPlainChunkSizeLine(_ buf: ByteBuffer, _ lineLen: Int) -> Bool {
        buf.withUnsafeReadableBytes { p in
            guard lineLen >= 3, lineLen <= p.count, p[lineLen - 2] == 0x0D else { return false }
            for i in 0..<(lineLen - 2) {
                let c = p[i]
                guard (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x66) else { return false }
            }
            return true
        }
    }

    /// Parses "HEX[;ext] CRLF": (size, line length), or nil when the line is incomplete. `strict`:
    /// after the size only BWS and `;name[=value]` extensions (token or quoted-string), then CRLF.
    static func chunkSizeLine(_ buf: ByteBuffer, strict: Bool = false) throws -> (Int, Int)? {
        try buf.withUnsafeReadableBytes { p -> (Int, Int)? in
            var i = 0
            var size = 0
            var digits = 0
            while i < p.count {
                let c = p[i]
                let v: Int
                switch c {
                case 0x30...0x39: v = Int(c - 0x30)
                case 0x41...0x46: v = Int(c - 0x41 + 10)
                case 0x61...0x66: v = Int(c - 0x61 + 10)
                default: v = -1
                }
                if v < 0 { break }
                digits += 1
                if digits > 15 { throw HTTP1Error.malformed("a chunk size is too large") }
                size = size << 4 | v
                i += 1
            }
            if i == p.count { if p.count > 4096 { throw HTTP1Error.malformed("a chunk size line is too long") }; return nil }
            guard digits > 0 else { throw HTTP1Error.malformed("a chunk size is not hexadecimal") }
            // Extensions (";name=value") are skipped up to the line end.
            guard let nl = UnsafeRawBufferPointer(rebasing: p[i...]).firstIndex(of: 0x0A) else {
                if p.count > 4096 { throw HTTP1Error.malformed("a chunk size line is too long") }
                return nil
            }
            let end = i + nl
            let c = p[i]
            guard c == 0x3B || c == 0x0D || c == 0x0A || c == 0x20 || c == 0x09 else { throw HTTP1Error.malformed("a chunk size is not hexadecimal") }
            for k in i..<end where p[k] == 0x0D && k != end - 1 { throw HTTP1Error.malformed("a chunk size line contains a bare CR") }
            if strict {
                guard p[end - 1] == 0x0D else {
                    throw HTTP1Error.malformed("a chunk size line ends with a bare LF, not CRLF")
                }
                try chunkExtensions(UnsafeRawBufferPointer(rebasing: p[i..<(end - 1)]))
            }
            return (size, end + 1)
        }
    }

    /// Checks what follows a chunk size: `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) BWS`.
    static func chunkExtensions(_ p: UnsafeRawBufferPointer) throws {
        let garbage = HTTP1Error.malformed("a chunk size is followed by something other than ;extensions")
        try HTTP1Parse.tchar.withUnsafeBufferPointer { t in
            var i = 0
            func bws() { while i < p.count, p[i] == 0x20 || p[i] == 0x09 { i += 1 } }
            func token() throws {
                let s = i
                while i < p.count, t[Int(p[i])] { i += 1 }
                if i == s { throw garbage }
            }
            // BWS is allowed only before an extension's ";" (RFC 9112 §7.1.1): "5 " CRLF is refused.
            bws()
            if i == p.count, i > 0 { throw garbage }
            while i < p.count {
                guard p[i] == 0x3B else { throw garbage }
                i += 1
                bws()
                try token()
                bws()
                if i < p.count, p[i] == 0x3D {
                    i += 1
                    bws()
                    if i < p.count, p[i] == 0x22 {
                        i += 1
                        var closed = false
                        while i < p.count {
                            let c = p[i]
                            if c == 0x22 { closed = true; i += 1; break }
                            if c == 0x5C {
                                guard i + 1 < p.count, p[i + 1] >= 0x20 || p[i + 1] == 0x09, p[i + 1] != 0x7F else { throw garbage }
                                i += 2
                                continue
                            }
                            if (c < 0x20 && c != 0x09) || c == 0x7F { throw garbage }
                            i += 1
                        }
                        if !closed { throw garbage }
                    } else {
                        try token()
                    }
                    bws()
                }
            }
        }
    }
}

extension Optional where Wrapped == ByteBuffer {
    /// Adds newly read bytes to those still waiting to be parsed; with none waiting, the new buffer
    /// is taken as it is (no copy).
    mutating func accumulate(_ buf: ByteBuffer) {
        if var pending = self, pending.readableBytes > 0 {
            self = nil  // the only reference, so the append does not copy the storage
            var b = buf
            pending.writeBuffer(&b)
            self = pending
        } else {
            self = buf
        }
    }
}

// MARK: Writing

extension ByteBuffer {
    @inline(__always)
    mutating func writeField(_ name: String, _ value: String) {
        writeString(name)
        writeStaticString(": ")
        writeString(value)
        writeStaticString("\r\n")
    }

    @inline(__always)
    mutating func writeField(_ name: StaticString, _ value: String) {
        writeStaticString(name)
        writeStaticString(": ")
        writeString(value)
        writeStaticString("\r\n")
    }

    /// Writes a field whose name or value comes from configuration or a check: every control
    /// character is dropped (C0 except HTAB, DEL, and C1 as UTF-8), so a value can neither end
    /// the field nor carry a terminal escape sequence to whoever prints the response.
    mutating func writeCheckedField(_ name: String, _ value: String) {
        writeCheckedValue(name)
        writeStaticString(": ")
        writeCheckedValue(value)
        writeStaticString("\r\n")
    }

    mutating func writeCheckedValue(_ value: String) {
        var value = value
        value.withUTF8 { u in
            // C1 controls (U+0080-U+009F) are the UTF-8 pairs C2 80 ... C2 9F.
            @inline(__always) func isControl(_ i: Int) -> Bool {
                let b = u[i]
                if b < 0x20 { return b != 0x09 }
                if b == 0x7F { return true }
                return b == 0xC2 && i + 1 < u.count && u[i + 1] >= 0x80 && u[i + 1] <= 0x9F
            }
            var clean = true
            for i in 0..<u.count where isControl(i) { clean = false; break }
            if clean {
                writeBytes(UnsafeRawBufferPointer(u))
            } else {
                var i = 0
                while i < u.count {
                    if isControl(i) {
                        i += u[i] == 0xC2 ? 2 : 1
                    } else {
                        writeInteger(u[i])
                        i += 1
                    }
                }
            }
        }
    }

    /// Writes a status line for `status` with its standard reason phrase.
    mutating func writeStatusLine(minor: Int, status: Int) {
        writeStaticString(minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        writeDecimal(status)
        writeStaticString(" ")
        writeString(HTTPResponseStatusText.reason(status))
        writeStaticString("\r\n")
    }

    @inline(__always)
    mutating func writeDecimal(_ value: Int) {
        if value >= 0 && value < 10 {
            writeInteger(UInt8(0x30 + value))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch
        withUnsafeMutableBytes(of: &digits) { d in
            let n = ASCIIDigits.decimal(value, endingAt: d)
            _ = writeBytes(UnsafeRawBufferPointer(rebasing: d[(d.count - n)...]))
        }
    }

    /// Writes a chunk header (hex size CRLF).
    mutating func writeChunkHeader(_ size: Int) {
        var shift = (Int.bitWidth - size.leadingZeroBitCount + 3) / 4 * 4 - 4
        if size == 0 { writeInteger(UInt8(0x30)) }
        while shift >= 0 && size != 0 {
            writeInteger(ASCIIDigits.hex(size >> shift))
            shift -= 4
        }
        writeStaticString("\r\n")
    }
}

/// Standard reason phrases.
enum HTTPResponseStatusText {
    static func reason(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 304: return "Not Modified"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 451: return "Unavailable For Legal Reasons"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status"
        }
    }
}

/// Request fields that the checks and the upstream must read alike, refused or settled at parse
/// time for every request:
/// - one `Content-Type` field holding one media type: with two (or a comma-joined list) a check
///   reads one and the upstream may act on the other; likewise one `Authorization` field;
/// - `Connection` may not nominate a field that frames or routes the request or that the
///   gateway's checks read (`Authorization`, `Content-Type`, …): the nominated fields are removed
///   before forwarding (RFC 9110 §7.6.1), so the upstream would not get what was checked. Any
///   other field it nominates is removed before the checks run, so they see what the upstream sees.
struct RequestFieldRules {
    var contentTypes = 0
    var authorizations = 0

    /// Fields a `Connection` header may not nominate (lowercased).
    static let protected: Set<String> = [
        "host", "content-type", "content-length", "transfer-encoding", "content-encoding", "authorization",
        "proxy-authorization", "cookie", "origin", "referer", "x-api-key", "x-csrf-token", "x-xsrf-token",
        "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded", "x-request-id",
        "access-control-request-method", "access-control-request-headers",
    ]

    /// Takes in a field the framing rules do not know (`FieldKind.other`).
    mutating func add(_ p: UnsafeRawBufferPointer, _ ns: Int, _ ne: Int, _ vs: Int, _ ve: Int) throws {
        if ne - ns == 13, HTTP1Parse.equalsLowercase(p, ns, ne, "authorization") {
            // One set of credentials: with two, a check would verify one and the upstream might act on the other.
            authorizations += 1
            if authorizations > 1 {
                throw HTTP1Error.malformed("the request has more than one Authorization field (a check would read the first, the upstream might use another)")
            }
            return
        }
        guard ne - ns == 12, HTTP1Parse.equalsLowercase(p, ns, ne, "content-type") else { return }
        contentTypes += 1
        if contentTypes > 1 {
            throw HTTP1Error.malformed("the request has more than one Content-Type field (a check would read the first, the upstream might use another)")
        }
        var quoted = false, escaped = false
        for i in vs..<ve {
            let c = p[i]
            if escaped { escaped = false; continue }
            if quoted, c == 0x5C { escaped = true; continue }
            if c == 0x22 { quoted.toggle(); continue }
            if c == 0x2C, !quoted {
                throw HTTP1Error.malformed("the Content-Type field holds a list of media types (\"\(HTTP1Parse.string(p, vs, min(ve, vs + 100)))\"); it takes exactly one")
            }
        }
    }

    /// Refuses a `Connection` header nominating a protected field; drops the other nominated
    /// fields (the upstream will not get them) from what the checks see.
    static func applyConnection(_ names: [String], to headers: inout [HeaderField]) throws {
        guard !names.isEmpty else { return }
        if let bad = names.first(where: { protected.contains($0) }) {
            throw HTTP1Error.malformed("the Connection header nominates \(bad) as hop-by-hop; a proxy would drop that field after the gateway's checks read it, so it may not be nominated")
        }
        headers.removeAll { f in FieldKind.of(f.name) == .other && names.contains(f.name.lowercased()) }
    }
}

extension HTTP1Parse {
    /// Whether p[s..<e] equals `word` (lowercase ASCII) ignoring ASCII case.
    static func equalsLowercase(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int, _ word: StaticString) -> Bool {
        guard e - s == word.utf8CodeUnitCount else { return false }
        let q = word.utf8Start
        for k in 0..<(e - s) where p[s + k] | 0x20 != q[k] { return false }
        return true
    }
}

import GatehouseChecks
import GatehouseConfig
import GatehouseCore
import GatehouseIdentity
import GatehouseStore
import GatehouseHTTP1

/// Removes credentials from the request target the call log stores.
///
/// The query is read the way upstreams read it, so that no spelling of a secret parameter gets
/// through: parameters are separated by `&` or `;` (and, to be safe, `?` and `#`), names are
/// percent-decoded with `+` as a space, compared without case, and with ` `, `.` and `-` taken as
/// `_` and a trailing `[]` ignored (PHP, Rails and CGI stacks fold names that way). A parameter's
/// value is replaced by `[redacted]` when its name is
///
/// - one that commonly carries a secret (`secretParameters`),
/// - one a check of the route reads credentials from (an `api_key` policy's `query`), or
/// - the header an `api_key` policy of the route reads (`X-API-Key=` in the query);
///
/// and whatever its name, when the value (percent-decoded) is shaped like a Gatehouse API key
/// (`gth_…`). A key anywhere else in the target (in a path segment, inside a value) keeps its key
/// id only: `gth_<key id>_[redacted]`; it is found however much of it is percent-encoded, once or
/// twice (`x%67th_…`, `gth_<key id>_ab%63…`, `%2567th_…`). Looking allocates nothing: only a
/// target that has something to redact is copied.
enum CallLogRedaction {
    /// Names (folded as above) of query parameters that commonly carry secrets.
    static let secretParameters: Set<String> = [
        "api_key", "apikey", "key", "access_token", "token", "password", "passwd", "secret", "client_secret",
        "x_api_key", "api_token", "auth_token", "authorization", "id_token", "refresh_token",
    ]
    static let marker = "[redacted]"

    /// The target to store for a request on `route` (nil: no route matched).
    static func redact(uri: String, route: CompiledRoute?) -> String {
        redact(uri: uri, configured: route?.chain.secretQueryParameters ?? [], links: route?.chain.links ?? [])
    }

    /// A denial's detail or presented value with what `redact(uri:route:)` removes removed (it may
    /// quote the target: a refused one, say); nil when there is nothing to remove.
    static func redacted(text: String, route: CompiledRoute?) -> String? {
        var text = text
        return text.withUTF8 { u in
            redact(u, configured: route?.chain.secretQueryParameters ?? [], links: route?.chain.links ?? [])
        }
    }

    /// `configured`: lowercased parameter names some check reads credentials from; `links`: the
    /// route's checks, for the header names of `api_key` policies.
    static func redact(uri: String, configured: Set<String>, links: [ChainLink] = []) -> String {
        var uri = uri
        return uri.withUTF8 { u -> String? in redact(u, configured: configured, links: links) } ?? uri
    }

    private static let q = UInt8(ascii: "?"), amp = UInt8(ascii: "&"), semi = UInt8(ascii: ";"), hash = UInt8(ascii: "#")
    private static let eq = UInt8(ascii: "=")

    /// The redacted target, or nil when there is nothing to redact (the common case: one scan, no allocation).
    private static func redact(_ u: UnsafeBufferPointer<UInt8>, configured: Set<String>, links: [ChainLink]) -> String? {
        let n = u.count
        guard let queryStart = u.firstIndex(of: q) else {
            return containsKeyPrefix(u[...]) ? scrubKeys(Array(u)) : nil
        }
        // The route's own secret names: its checks' query parameters and api_key header names.
        var routeNames: [String] = []
        if !configured.isEmpty || !links.isEmpty {
            routeNames.append(contentsOf: configured)
            for link in links {
                if let check = link.check as? APIKeyCheck, let h = check.header { routeNames.append(h) }
            }
        }
        // (start, end) of each value to replace, in order.
        var spans: [(Int, Int)] = []
        var i = queryStart + 1
        while i <= n {
            var end = i
            while end < n, !isSeparator(u[end]) { end += 1 }
            if end > i {
                let part = u[i..<end]
                if let e = part.firstIndex(of: eq) {
                    if isSecretName(u[i..<e], routeNames: routeNames) || looksLikeKey(u[(e + 1)..<end]) {
                        spans.append((e + 1, end))
                    }
                } else if looksLikeKey(part) {
                    spans.append((i, end))
                }
            }
            i = end + 1
        }
        if spans.isEmpty {
            return containsKeyPrefix(u[...]) ? scrubKeys(Array(u)) : nil
        }
        var out: [UInt8] = []
        out.reserveCapacity(n + spans.count * marker.utf8.count)
        var from = 0
        for (s, e) in spans {
            out.append(contentsOf: u[from..<s])
            out.append(contentsOf: marker.utf8)
            from = e
        }
        out.append(contentsOf: u[from..<n])
        return containsKeyPrefix(out[...]) ? scrubKeys(out) : String(decoding: out, as: UTF8.self)
    }

    @inline(__always) private static func isSeparator(_ b: UInt8) -> Bool { b == amp || b == semi || b == q || b == hash }

    /// Folded secret names, as bytes.
    private static let secretNameBytes: [[UInt8]] = secretParameters.map { Array($0.utf8) }
    /// No secret name is longer than this once folded; a longer name is not compared.
    private static let longestName = 128

    /// Whether a raw parameter name names a secret. Decodes and folds into a stack buffer: no
    /// allocation per parameter, however many a query has.
    private static func isSecretName(_ raw: Slice<UnsafeBufferPointer<UInt8>>, routeNames: [String]) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: longestName) { buf -> Bool in
            guard let n = fold(raw, into: buf) else { return false }
            let name = UnsafeBufferPointer(rebasing: buf[..<n])
            for candidate in secretNameBytes where candidate.count == n && name.elementsEqual(candidate) { return true }
            for candidate in routeNames where foldedEquals(candidate, name) { return true }
            return false
        }
    }

    /// Writes the name percent-decoded (`+` as a space), lowercased, trimmed of spaces and tabs,
    /// without a trailing `[]`, with ` ` `.` `-` as `_`; its length, or nil when it does not fit.
    private static func fold(_ raw: Slice<UnsafeBufferPointer<UInt8>>, into buf: UnsafeMutableBufferPointer<UInt8>) -> Int? {
        var n = 0
        var i = raw.startIndex
        while i < raw.endIndex {
            var b = raw[i]
            if b == UInt8(ascii: "+") {
                b = 0x20
            } else if b == UInt8(ascii: "%"), i + 2 < raw.endIndex, let hi = hexValue(raw[i + 1]), let lo = hexValue(raw[i + 2]) {
                b = hi << 4 | lo
                i += 2
            }
            i += 1
            if n == 0 && (b == 0x20 || b == 0x09) { continue }
            guard n < buf.count else { return nil }
            buf[n] = b >= 0x41 && b <= 0x5A ? b | 0x20 : b
            n += 1
        }
        while n > 0 && (buf[n - 1] == 0x20 || buf[n - 1] == 0x09) { n -= 1 }
        if n >= 2 && buf[n - 2] == UInt8(ascii: "[") && buf[n - 1] == UInt8(ascii: "]") { n -= 2 }
        for k in 0..<n where buf[k] == 0x20 || buf[k] == 0x2E || buf[k] == 0x2D { buf[k] = UInt8(ascii: "_") }
        return n
    }

    /// Whether a configured name (plain text) folds to `name`.
    private static func foldedEquals(_ candidate: String, _ name: UnsafeBufferPointer<UInt8>) -> Bool {
        guard candidate.utf8.count == name.count else { return false }
        var k = 0
        for b in candidate.utf8 {
            var c = b >= 0x41 && b <= 0x5A ? b | 0x20 : b
            if c == 0x20 || c == 0x2E || c == 0x2D { c = UInt8(ascii: "_") }
            if c != name[k] { return false }
            k += 1
        }
        return true
    }

    @inline(__always) private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x37
        case 0x61...0x66: return b - 0x57
        default: return nil
        }
    }

    /// Whether a raw value, percent-decoded (`+` as a space) and without leading spaces, starts
    /// like an API key. Decodes only the first bytes, in place.
    private static func looksLikeKey(_ raw: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        let prefix = APIKeyFormat.prefix.utf8
        var matched = prefix.startIndex
        var i = raw.startIndex
        var leading = true
        while i < raw.endIndex, matched != prefix.endIndex {
            var b = raw[i]
            if b == UInt8(ascii: "+") {
                b = 0x20
            } else if b == UInt8(ascii: "%"), i + 2 < raw.endIndex, let hi = hexValue(raw[i + 1]), let lo = hexValue(raw[i + 2]) {
                b = hi << 4 | lo
                i += 2
            }
            i += 1
            if leading && (b == 0x20 || b == 0x09) { continue }
            leading = false
            if b != prefix[matched] { return false }
            matched = prefix.index(after: matched)
        }
        return matched == prefix.endIndex
    }

    // MARK: Keys anywhere in the target

    // Keys are looked for in a decoded view of the bytes: `%XX` is read as its byte (`%67th_…` is
    // `gth_…`), and `%25` followed by an escape as that escape's byte, as an upstream that decodes
    // twice reads it (`%2567`, `%25%36%37`). A key is found however much of it is encoded. The
    // view is read in place: looking costs no allocation; only a target holding a key is copied.

    private static let keyPrefix: [UInt8] = Array(APIKeyFormat.prefix.utf8)
    private static let percent = UInt8(ascii: "%")
    /// How deep escapes are read inside escapes (`%%36%37`: the digits escaped too).
    private static let maxEscapeDepth = 2

    /// The byte at `i` of the decoded view and the raw index after it.
    @inline(__always)
    private static func decoded<C: RandomAccessCollection>(_ u: C, at i: Int, depth: Int = 0) -> (UInt8, Int)
    where C.Element == UInt8, C.Index == Int {
        let b = u[i]
        guard b == percent, depth < maxEscapeDepth, let (v, next) = escape(u, at: i + 1, depth: depth) else { return (b, i + 1) }
        // `%25` then another escape: the escape's byte, for an upstream that decodes twice.
        if v == percent, let (w, after) = escape(u, at: next, depth: depth) { return (w, after) }
        return (v, next)
    }

    /// The byte of the two hex digits (each possibly escaped itself) at `i`, and the raw index after them.
    private static func escape<C: RandomAccessCollection>(_ u: C, at i: Int, depth: Int) -> (UInt8, Int)?
    where C.Element == UInt8, C.Index == Int {
        guard i < u.endIndex else { return nil }
        let (h, j) = decoded(u, at: i, depth: depth + 1)
        guard let hi = hexValue(h), j < u.endIndex else { return nil }
        let (l, k) = decoded(u, at: j, depth: depth + 1)
        guard let lo = hexValue(l) else { return nil }
        return (hi << 4 | lo, k)
    }

    /// The raw index after `gth_` when the decoded view has it at raw index `i`.
    @inline(__always)
    private static func prefixEnd<C: RandomAccessCollection>(_ u: C, at i: Int) -> Int? where C.Element == UInt8, C.Index == Int {
        let first = u[i]
        guard first == keyPrefix[0] || first == percent else { return nil }
        var j = i
        for p in keyPrefix {
            guard j < u.endIndex else { return nil }
            let (b, next) = decoded(u, at: j)
            guard b == p else { return nil }
            j = next
        }
        return j
    }

    /// Whether the decoded view holds `gth_` anywhere. One pass over bytes without `%`.
    private static func containsKeyPrefix<C: RandomAccessCollection>(_ bytes: C) -> Bool where C.Element == UInt8, C.Index == Int {
        var i = bytes.startIndex
        while i < bytes.endIndex {
            if prefixEnd(bytes, at: i) != nil { return true }
            i += 1
        }
        return false
    }

    @inline(__always) private static func isKeyChar(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "_")
    }

    /// Replaces every key-shaped run of the decoded view (`gth_` and more than 12 key characters,
    /// however encoded) by `gth_<key id>_` and the marker. The key id is not secret: logs and
    /// responses name it; it is written decoded.
    private static func scrubKeys(_ bytes: [UInt8]) -> String {
        let idLength = 12
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var copied = 0
        var i = 0
        while i < bytes.count {
            if let start = prefixEnd(bytes, at: i) {
                var id: [UInt8] = []
                var count = 0
                var end = start
                while end < bytes.count {
                    let (b, next) = decoded(bytes, at: end)
                    guard isKeyChar(b) else { break }
                    if count < idLength { id.append(b) }
                    count += 1
                    end = next
                }
                if count > idLength {
                    out.append(contentsOf: bytes[copied..<i])
                    out.append(contentsOf: keyPrefix)
                    out.append(contentsOf: id)
                    out.append(UInt8(ascii: "_"))
                    out.append(contentsOf: marker.utf8)
                    i = end
                    copied = end
                    continue
                }
            }
            i += 1
        }
        out.append(contentsOf: bytes[copied...])
        return String(decoding: out, as: UTF8.self)
    }
}

extension CallRecord {
    /// The call-log record of an exchange: who, what, the decision and its trace, with credentials
    /// removed from the target and from the denial's text (`CallLogRedaction`).
    init(_ ex: Exchange, peer: IPAddress?, peerText: String, totalNanos: UInt64) {
        let req = ex.policyRequest
        let principal = req?.principal
        // Redacted whole, before the writer cuts it to its cap (`CallLogLimits.path`), so no cut
        // can split a secret parameter from its name.
        let path = CallLogRedaction.redact(uri: ex.head.uri, route: ex.route)
        var detail = ex.denial.map { d in d.operatorDetail.map { d.detail + " (" + $0 + ")" } ?? d.detail }
        var presented = ex.denial?.presented ?? []
        if let d = detail, let r = CallLogRedaction.redacted(text: d, route: ex.route) { detail = r }
        for i in presented.indices {
            if let r = CallLogRedaction.redacted(text: presented[i], route: ex.route) { presented[i] = r }
        }
        // The peer's address is formatted once per connection (`peerText`).
        let client = req?.clientAddress.map { $0 == peer ? peerText : $0.description } ?? (peer == nil ? nil : peerText)
        self.init(
            requestID: ex.requestID, time: ex.wallTime, route: ex.route?.name, consumer: principal?.consumerName ?? principal?.subject,
            keyID: principal?.keyID, client: client, method: ex.head.method, path: path,
            host: req?.host, status: ex.status, upstreamMillis: ex.upstreamNanos.map { Double($0) / 1e6 },
            totalMillis: Double(totalNanos) / 1e6, decidingCheck: ex.decidingCheck, reason: ex.denial?.code.rawValue,
            detail: detail, hint: ex.denial?.hint,
            required: ex.denial?.required ?? [], presented: presented, trace: ex.trace,
            upstreamTarget: ex.upstreamTargetText ?? ex.upstreamTarget?.description,
            facts: RequestFacts(tls: req?.isTLS ?? false, fields: ex.head.headers), auditEntry: ex.denial?.auditEntry,
            applicationID: principal.flatMap { $0.method == "jwt" ? nil : $0.consumerID })
    }
}

import GatehouseChecks
import GatehouseConfig
import GatehouseCore

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
/// (`gth_…`). A key anywhere else in the target (in a path segment) keeps its key id only:
/// `gth_<key id>_[redacted]`.
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
        // (start, end) of each value to replace, in order.
        var spans: [(Int, Int)] = []
        var i = queryStart + 1
        while i <= n {
            var end = i
            while end < n, !isSeparator(u[end]) { end += 1 }
            if end > i {
                let part = u[i..<end]
                if let e = part.firstIndex(of: eq) {
                    if isSecretName(u[i..<e], configured: configured, links: links) || looksLikeKey(u[(e + 1)..<end]) {
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

    /// Whether a raw parameter name names a secret.
    private static func isSecretName(_ raw: Slice<UnsafeBufferPointer<UInt8>>, configured: Set<String>, links: [ChainLink]) -> Bool {
        let decoded = PercentDecoding.decode(String(decoding: raw, as: UTF8.self), plusAsSpace: true)
        let lower = decoded.lowercased()
        if configured.contains(lower) { return true }
        let name = fold(lower)
        if secretParameters.contains(name) || configured.contains(name) { return true }
        for link in links {
            if let check = link.check as? APIKeyCheck {
                if let h = check.header, fold(h.lowercased()) == name { return true }
                if let p = check.queryParameter, fold(p.lowercased()) == name { return true }
            }
        }
        return false
    }

    /// A lowercased name folded as upstream frameworks fold it: trimmed, ` ` `.` `-` as `_`, a
    /// trailing `[]` dropped.
    static func fold(_ lower: String) -> String {
        var s = lower.trimmingSpaces
        if s.hasSuffix("[]") { s = s.dropLast(2) }
        guard s.utf8.contains(where: { $0 == 0x20 || $0 == 0x2E || $0 == 0x2D }) else { return String(s) }
        return String(decoding: s.utf8.map { $0 == 0x20 || $0 == 0x2E || $0 == 0x2D ? UInt8(ascii: "_") : $0 }, as: UTF8.self)
    }

    /// Whether a raw value, percent-decoded (`+` as a space) and trimmed, starts like an API key.
    private static func looksLikeKey(_ raw: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        guard raw.count >= 4 else { return false }
        if !raw.contains(UInt8(ascii: "%")) && !raw.contains(UInt8(ascii: "+")) {
            return raw.starts(with: APIKeyFormat.prefix.utf8)
        }
        let decoded = PercentDecoding.decode(String(decoding: raw, as: UTF8.self), plusAsSpace: true)
        return decoded.trimmingSpaces.hasPrefix(APIKeyFormat.prefix)
    }

    private static func containsKeyPrefix<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8, C.Index == Int {
        let p = Array(APIKeyFormat.prefix.utf8)
        var i = bytes.startIndex
        while i + p.count <= bytes.endIndex {
            if bytes[i] == p[0], bytes[i + 1] == p[1], bytes[i + 2] == p[2], bytes[i + 3] == p[3] { return true }
            i += 1
        }
        return false
    }

    /// Replaces what follows `gth_<key id>_` of every key-shaped run with the marker.
    private static func scrubKeys(_ bytes: [UInt8]) -> String {
        let p = Array(APIKeyFormat.prefix.utf8)
        func isKeyChar(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "_")
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if i + p.count <= bytes.count, bytes[i..<(i + p.count)].elementsEqual(p) {
                var end = i + p.count
                while end < bytes.count, isKeyChar(bytes[end]) { end += 1 }
                let run = bytes[(i + p.count)..<end]
                if run.count > 12 {
                    // Keep the prefix and the key id (not secret: logs and responses name it).
                    let idEnd = i + p.count + min(12, run.count)
                    out.append(contentsOf: bytes[i..<idEnd])
                    out.append(UInt8(ascii: "_"))
                    out.append(contentsOf: marker.utf8)
                    i = end
                    continue
                }
            }
            out.append(bytes[i])
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

import GatehouseCore
import NIOCore

/// Request fields that the checks and the upstream must read alike, refused or settled at parse
/// time for every request:
/// - one `Content-Type` field holding one media type: with two (or a comma-joined list) a check
///   reads one and the upstream may act on the other; likewise one `Authorization` field;
/// - `Connection` may not nominate a field that frames or routes the request or that the
///   gateway's checks read (`Authorization`, `Content-Type`, …): the nominated fields are removed
///   before forwarding (RFC 9110 §7.6.1), so the upstream would not get what was checked. Any
///   other field it nominates is removed before the checks run, so they see what the upstream sees.
package struct RequestFieldRules {
    package var contentTypes = 0
    package var authorizations = 0

    /// Fields a `Connection` header may not nominate (lowercased).
    package static let protected: Set<String> = [
        "host", "content-type", "content-length", "transfer-encoding", "content-encoding", "authorization",
        "proxy-authorization", "cookie", "origin", "referer", "x-api-key", "x-csrf-token", "x-xsrf-token",
        "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded", "x-request-id",
        "access-control-request-method", "access-control-request-headers",
    ]

    /// Takes in a field the framing rules do not know (`FieldKind.other`).
    package mutating func add(_ p: UnsafeRawBufferPointer, _ ns: Int, _ ne: Int, _ vs: Int, _ ve: Int) throws {
        if ne - ns == 13, HTTP1Parse.equalsLowercase(p, ns, ne, "authorization") {
            // One set of credentials: with two, a check would verify one and the upstream might act on the other.
            authorizations += 1
            if authorizations > 1 {
                throw HTTP1Error.malformed(
                    "the request has more than one Authorization field (a check would read the first, the upstream might use another)")
            }
            return
        }
        guard ne - ns == 12, HTTP1Parse.equalsLowercase(p, ns, ne, "content-type") else { return }
        contentTypes += 1
        if contentTypes > 1 {
            throw HTTP1Error.malformed(
                "the request has more than one Content-Type field (a check would read the first, the upstream might use another)")
        }
        var quoted = false, escaped = false
        for i in vs..<ve {
            let c = p[i]
            if escaped { escaped = false; continue }
            if quoted, c == 0x5C { escaped = true; continue }
            if c == 0x22 { quoted.toggle(); continue }
            if c == 0x2C, !quoted {
                throw HTTP1Error.malformed(
                    "the Content-Type field holds a list of media types (\"\(HTTP1Parse.string(p, vs, min(ve, vs + 100)))\"); it takes exactly one"
                )
            }
        }
    }

    /// Refuses a `Connection` header nominating a protected field; drops the other nominated
    /// fields (the upstream will not get them) from what the checks see.
    package static func applyConnection(_ names: [String], to headers: inout [HeaderField]) throws {
        guard !names.isEmpty else { return }
        if let bad = names.first(where: { protected.contains($0) }) {
            throw HTTP1Error.malformed(
                "the Connection header nominates \(bad) as hop-by-hop; a proxy would drop that field after the gateway's checks read it, so it may not be nominated"
            )
        }
        headers.removeAll { f in FieldKind.of(f.name) == .other && names.contains(f.name.lowercased()) }
    }
}

extension HTTP1Parse {
    /// Whether p[s..<e] equals `word` (lowercase ASCII) ignoring ASCII case.
    package static func equalsLowercase(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int, _ word: StaticString) -> Bool {
        guard e - s == word.utf8CodeUnitCount else { return false }
        let q = word.utf8Start
        for k in 0..<(e - s) where p[s + k] | 0x20 != q[k] { return false }
        return true
    }
}

/// Request headers as received: order kept, names compared case-insensitively.
public struct HeaderList: Sendable, Equatable, Sequence {
    public private(set) var fields: [HeaderField]
    public init(_ fields: [HeaderField] = []) { self.fields = fields }
    public init(_ pairs: [(String, String)]) { self.fields = pairs.map { HeaderField($0.0, $0.1) } }

    /// The first value of `name`, if present.
    public subscript(name: String) -> String? {
        for f in fields where HeaderList.sameName(f.name, name) { return f.value }
        return nil
    }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { HeaderList.sameName($0.name, name) }.map(\.value)
    }

    public func contains(_ name: String) -> Bool { self[name] != nil }
    public mutating func add(_ name: String, _ value: String) { fields.append(HeaderField(name, value)) }
    public mutating func remove(_ name: String) {
        fields.removeAll { HeaderList.sameName($0.name, name) }
    }

    /// ASCII case-insensitive comparison without allocating (header names are ASCII tokens).
    @inlinable
    public static func sameName(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                guard x.count == y.count else { return false }
                for i in 0..<x.count where x[i] != y[i] {
                    if x[i] | 0x20 != y[i] | 0x20 || !((x[i] | 0x20) >= 0x61 && (x[i] | 0x20) <= 0x7A) { return false }
                }
                return true
            }
        }
    }
    public mutating func replace(_ name: String, _ value: String) {
        remove(name)
        add(name, value)
    }
    public var count: Int { fields.count }
    public func makeIterator() -> IndexingIterator<[HeaderField]> { fields.makeIterator() }
    /// Total size of the header block as sent (name + ": " + value + CRLF per field).
    public var byteSize: Int { fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 } }
}

/// The identity a TLS client presented (filled by the listener after verification).
public struct PeerIdentity: Sendable, Equatable {
    /// Whether the certificate chain verified against the configured CA.
    public var verified: Bool
    /// Why verification failed (issuer not trusted, expired on DATE, …) when `verified` is false.
    public var failure: String?
    public var subject: String?
    public var commonName: String?
    public var subjectAltNames: [String]
    /// SHA-256 fingerprint of the leaf certificate, hex.
    public var fingerprint: String?
    public var notAfter: Double?

    public init(
        verified: Bool, failure: String? = nil, subject: String? = nil, commonName: String? = nil,
        subjectAltNames: [String] = [], fingerprint: String? = nil, notAfter: Double? = nil
    ) {
        self.verified = verified
        self.failure = failure
        self.subject = subject
        self.commonName = commonName
        self.subjectAltNames = subjectAltNames
        self.fingerprint = fingerprint
        self.notAfter = notAfter
    }
}

/// A response the gateway sends itself, without the upstream (e.g. 204 to an allowed CORS preflight).
public struct LocalAnswer: Sendable, Equatable {
    public var status: Int
    public var headers: [HeaderField]
    public var body: [UInt8]
    public init(status: Int, headers: [HeaderField] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Everything a check may look at. Built once per request by the data plane (or by `simulate`).
public struct PolicyRequest: Sendable {
    public var requestID: String
    /// Uppercased method, e.g. "POST".
    public var method: String
    /// The canonical path without the query string (see `CanonicalTarget`): dot-segments removed,
    /// unreserved characters decoded, other escapes kept. The path the routes matched, the checks
    /// read, the call log stores and the upstream receives.
    public var path: String
    /// The raw query string without "?", or nil.
    public var query: String?
    /// Values captured by the route's path template (`/orders/{id}` → ["id": "42"]).
    public var pathParams: [String: String]
    public var headers: HeaderList
    /// Host without port, lowercased.
    public var host: String
    /// The client address after trusted-proxy resolution.
    public var clientAddress: IPAddress?
    /// The direct peer (the TCP connection's remote address).
    public var peerAddress: IPAddress?
    public var isTLS: Bool
    public var peerIdentity: PeerIdentity?
    /// Declared body length (Content-Length), nil when chunked or absent.
    public var contentLength: Int?
    /// The buffered body, only when a check on the route needs it.
    public var body: [UInt8]?
    /// A limit on the body's size that the data plane must enforce as the body streams (a chunked
    /// body has no Content-Length to check up front): set by the check that imposes it.
    public var streamedBodyLimit: StreamedBodyLimit?
    /// Set by authenticating checks.
    public var principal: Principal?
    public var routeName: String
    /// Seconds since 1970: the one clock reading every check of this request uses.
    public var now: Double
    /// Headers the data plane adds to whatever response this request gets, allowed or denied
    /// (CORS `Access-Control-Allow-Origin`, `RateLimit` fields, …).
    public var responseHeaders: [HeaderField] = []
    /// Set by a check that answers the request itself (a CORS preflight): the chain stops and the
    /// gateway sends this instead of calling the upstream.
    public var localAnswer: LocalAnswer?

    public init(
        requestID: String = "", method: String, path: String, query: String? = nil,
        pathParams: [String: String] = [:], headers: HeaderList = HeaderList(), host: String = "",
        clientAddress: IPAddress? = nil, peerAddress: IPAddress? = nil, isTLS: Bool = false,
        peerIdentity: PeerIdentity? = nil, contentLength: Int? = nil, body: [UInt8]? = nil,
        principal: Principal? = nil, routeName: String = "", now: Double = 0
    ) {
        self.requestID = requestID
        self.method = method
        self.path = path
        self.query = query
        self.pathParams = pathParams
        self.headers = headers
        self.host = host
        self.clientAddress = clientAddress
        self.peerAddress = peerAddress ?? clientAddress
        self.isTLS = isTLS
        self.peerIdentity = peerIdentity
        self.contentLength = contentLength
        self.body = body
        self.principal = principal
        self.routeName = routeName
        self.now = now
    }

    /// Query parameters, percent-decoded, in order.
    public var queryItems: [(name: String, value: String)] {
        guard let query, !query.isEmpty else { return [] }
        return query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            if let eq = pair.firstIndex(of: "=") {
                return (
                    PercentDecoding.decode(pair[..<eq], plusAsSpace: true),
                    PercentDecoding.decode(pair[pair.index(after: eq)...], plusAsSpace: true)
                )
            }
            return (PercentDecoding.decode(pair, plusAsSpace: true), "")
        }
    }

    /// The first value of query parameter `name`.
    public func queryValue(_ name: String) -> String? {
        queryItems.first { $0.name == name }?.value
    }

    /// Cookies from every Cookie header.
    public var cookies: [(name: String, value: String)] {
        headers.values("cookie").flatMap { header in
            header.split(separator: ";").compactMap { part -> (String, String)? in
                let trimmed = part.trimmingSpaces
                guard let eq = trimmed.firstIndex(of: "=") else { return nil }
                return (String(trimmed[..<eq]), String(trimmed[trimmed.index(after: eq)...]))
            }
        }
    }

    public func cookie(_ name: String) -> String? { cookies.first { $0.name == name }?.value }

    /// "POST /orders" — how details name the request.
    public var summary: String { "\(method) \(path)" }
}

/// Percent-decoding (RFC 3986) without Foundation, tolerant of invalid escapes (kept literally).
public enum PercentDecoding {
    public static func decode<S: StringProtocol>(_ s: S, plusAsSpace: Bool = false) -> String {
        decode(Substring(s), plusAsSpace: plusAsSpace)
    }

    /// The concrete forms the hot path calls (a generic call across modules is not specialised).
    public static func decode(_ s: String, plusAsSpace: Bool = false) -> String {
        if !needsDecoding(s.utf8, plusAsSpace: plusAsSpace) { return s }
        return decodeBytes(s.utf8, plusAsSpace: plusAsSpace)
    }

    public static func decode(_ s: Substring, plusAsSpace: Bool = false) -> String {
        if !needsDecoding(s.utf8, plusAsSpace: plusAsSpace) { return String(s) }
        return decodeBytes(s.utf8, plusAsSpace: plusAsSpace)
    }

    @inline(__always) private static func needsDecoding<C: Collection<UInt8>>(_ u: C, plusAsSpace: Bool) -> Bool {
        u.contains(where: { $0 == UInt8(ascii: "%") || (plusAsSpace && $0 == UInt8(ascii: "+")) })
    }

    private static func decodeBytes<C: Collection<UInt8>>(_ u: C, plusAsSpace: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(u.count)
        var it = Array(u)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%"), it.count >= 2, let h = hex(it[it.startIndex]), let l = hex(it[it.startIndex + 1]) {
                out.append(h << 4 | l)
                it = it.dropFirst(2)
            } else if plusAsSpace, c == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else {
                out.append(c)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always) static func hex(_ c: UInt8) -> UInt8? { ASCIIDigits.hexValue(c) }
}

extension StringProtocol {
    /// The string without leading and trailing spaces and tabs.
    public var trimmingSpaces: Substring {
        let s = Substring(self)
        guard let start = s.firstIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        let end = s.lastIndex(where: { $0 != " " && $0 != "\t" })!
        return s[start...end]
    }
}

/// A body-size limit enforced on the bytes as they arrive (see `PolicyRequest.streamedBodyLimit`).
public struct StreamedBodyLimit: Sendable, Equatable {
    public var bytes: Int
    /// The check that set it, named in the denial.
    public var check: String
    public init(bytes: Int, check: String) {
        self.bytes = bytes
        self.check = check
    }
}

extension Collection where Element == String {
    /// Whether the collection (of lowercased ASCII names) holds `name` in any case, compared
    /// byte by byte: a header name is not lowercased into a new string for every field of every
    /// request. Linear: for the few names of a `Connection` field or a route's credentials.
    @inlinable
    public func containsIgnoringASCIICase(_ name: String) -> Bool {
        contains { HeaderList.sameName($0, name) }
    }
}

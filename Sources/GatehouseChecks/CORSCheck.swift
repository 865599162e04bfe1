// Hand-written: origin matching and the CORS protocol (Fetch standard). Hummingbird's CORS middleware
// belongs to its router and cannot run as a synchronous policy check with reason codes.
import GatehouseCore

/// An allowed origin: exact (`https://app.example.com`), any subdomain (`https://*.example.com`), or
/// any origin (`*`).
public enum OriginPattern: Sendable, Equatable, CustomStringConvertible {
    case any
    case exact(String)
    /// Scheme, the parent domain after `*.`, and the port part (":8443" or "").
    case subdomains(scheme: String, parent: String, port: String)

    /// Parses a configured origin; returns why it is not one.
    public static func parse(_ text: String) -> Result<OriginPattern, OriginPatternError> {
        if text == "*" { return .success(.any) }
        let lower = text.lowercased()
        guard let (schemePart, restPart) = splitScheme(lower) else {
            return .failure(
                OriginPatternError(
                    "\"\(text)\" is not an origin (expected scheme://host[:port], e.g. https://app.example.com, or https://*.example.com)"))
        }
        let scheme = String(schemePart)
        var rest = String(restPart)
        guard scheme == "http" || scheme == "https" else {
            return .failure(OriginPatternError("\"\(text)\" has scheme \(scheme); origins use http or https"))
        }
        if rest.hasSuffix("/") || rest.contains("/") {
            return .failure(
                OriginPatternError("\"\(text)\" has a path; an origin is only scheme://host[:port] (browsers send no path in Origin)"))
        }
        if rest.hasPrefix("*.") {
            rest.removeFirst(2)
            var port = ""
            if let colon = rest.lastIndex(of: ":") {
                port = String(rest[colon...])
                rest = String(rest[..<colon])
            }
            guard !rest.isEmpty, !rest.contains("*") else {
                return .failure(OriginPatternError("\"\(text)\": a wildcard must be written *.parent.domain"))
            }
            return .success(.subdomains(scheme: scheme, parent: rest, port: port))
        }
        guard !rest.isEmpty, !rest.contains("*") else {
            return .failure(OriginPatternError("\"\(text)\": a wildcard is allowed only as the first label (https://*.example.com)"))
        }
        return .success(.exact(Self.normalise(lower)))
    }

    /// Lowercased, default port dropped: "https://app.example.com:443" → "https://app.example.com".
    static func normalise(_ origin: String) -> String {
        let o = origin.lowercased()
        if o.hasPrefix("https://"), o.hasSuffix(":443") { return String(o.dropLast(4)) }
        if o.hasPrefix("http://"), o.hasSuffix(":80") { return String(o.dropLast(3)) }
        return o
    }

    public func matches(_ origin: String) -> Bool {
        switch self {
        case .any: return origin != "null"
        case .exact(let o): return Self.normalise(origin) == o
        case .subdomains(let scheme, let parent, let port):
            let o = Self.normalise(origin)
            guard o.hasPrefix(scheme + "://") else { return false }
            var host = Substring(o.dropFirst(scheme.count + 3))
            if port.isEmpty {
                if host.contains(":") { return false }
            } else {
                guard host.hasSuffix(port) else { return false }
                host = host.dropLast(port.count)
            }
            return host.hasSuffix("." + parent) && host.count > parent.count + 1
        }
    }

    public var description: String {
        switch self {
        case .any: return "*"
        case .exact(let o): return o
        case .subdomains(let s, let p, let port): return "\(s)://*.\(p)\(port)"
        }
    }
}

/// Why a configured origin is not one.
public struct OriginPatternError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// "https://a.example/x" → ("https", "a.example/x"); nil without "://".
func splitScheme(_ s: String) -> (Substring, Substring)? {
    let u = Array(s.utf8)
    guard u.count >= 3 else { return nil }
    for i in 0...(u.count - 3) where u[i] == UInt8(ascii: ":") && u[i + 1] == UInt8(ascii: "/") && u[i + 2] == UInt8(ascii: "/") {
        let a = s.utf8.index(s.utf8.startIndex, offsetBy: i)
        let b = s.utf8.index(a, offsetBy: 3)
        return (Substring(s[..<a]), Substring(s[b...]))
    }
    return nil
}

/// The origin a request was sent to, from its scheme and Host header ("http://127.0.0.1:8080").
func requestOrigin(_ request: PolicyRequest) -> String? {
    guard let host = request.headers["host"], !host.isEmpty else { return nil }
    return OriginPattern.normalise((request.isTLS ? "https://" : "http://") + host)
}

/// `cors`: answers preflights itself and adds `Access-Control-*` fields to cross-origin responses.
///
/// A preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`) gets a 204 from the gateway
/// when origin, method and headers are allowed, and a 403 with `cors_origin_not_allowed`,
/// `cors_method_not_allowed` or `cors_header_not_allowed` when not. An actual request from an origin
/// that is not allowed is refused with `cors_origin_not_allowed`, so the refusal is in the call log
/// even though the browser hides it from the page. Place it before authentication policies:
/// preflights carry no credentials.
public struct CORSCheck: PolicyCheck {
    public let id: String
    public var type: String { "cors" }
    public let origins: [OriginPattern]
    /// Uppercased.
    public let methods: [String]
    /// Lowercased; `*` allows any header (only without credentials, as browsers require).
    public let headers: [String]
    public let credentials: Bool
    public let maxAge: Int?
    public let exposeHeaders: [String]

    public init(
        id: String, origins: [OriginPattern], methods: [String] = ["GET", "HEAD", "POST"], headers: [String] = [],
        credentials: Bool = false, maxAge: Int? = nil, exposeHeaders: [String] = []
    ) {
        self.id = id
        self.origins = origins
        self.methods = methods.map { $0.uppercased() }
        self.headers = headers.map { $0.lowercased() }
        self.credentials = credentials
        self.maxAge = maxAge
        self.exposeHeaders = exposeHeaders
    }

    var allowsAnyOrigin: Bool { origins.contains(.any) }
    var originList: String { origins.map(\.description).joined(separator: ", ") }

    func allowed(_ origin: String) -> Bool { origins.contains { $0.matches(origin) } }

    /// `Access-Control-Allow-Origin` for an allowed origin: never `*` together with credentials.
    func allowOriginValue(_ origin: String) -> String {
        allowsAnyOrigin && !credentials ? "*" : origin
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        guard let origin = request.headers["origin"] else {
            return .skip(why: "no Origin header: not a cross-origin request")
        }
        let isPreflight = request.method == "OPTIONS" && request.headers["access-control-request-method"] != nil
        if !isPreflight, let own = requestOrigin(request), OriginPattern.normalise(origin) == own {
            return .skip(why: "Origin \(origin) is the gateway's own origin (same-origin request)")
        }
        guard allowed(origin) else {
            let what =
                isPreflight ? "preflight for \(request.headers["access-control-request-method"] ?? "") \(request.path)" : request.summary
            return .deny(
                Denial(
                    code: .corsOriginNotAllowed,
                    detail:
                        "\(what) from origin \(origin) is not allowed by \(id); allowed origins: \(originList.isEmpty ? "none" : originList)",
                    required: origins.map(\.description), presented: ["Origin: \(origin)"],
                    hint: "Call from an allowed origin, or ask the API operator to add \(origin) to the allowed origins."))
        }
        if isPreflight { return preflight(&request, origin: origin) }

        // Actual cross-origin request: the browser lets the page read the response only with these.
        request.responseHeaders.append(HeaderField("Access-Control-Allow-Origin", allowOriginValue(origin)))
        request.responseHeaders.append(HeaderField("Vary", "Origin"))
        if credentials { request.responseHeaders.append(HeaderField("Access-Control-Allow-Credentials", "true")) }
        if !exposeHeaders.isEmpty {
            request.responseHeaders.append(HeaderField("Access-Control-Expose-Headers", exposeHeaders.joined(separator: ", ")))
        }
        return .allow(note: "origin \(origin) allowed (\(originList))")
    }

    private func preflight(_ request: inout PolicyRequest, origin: String) -> Verdict {
        let method = (request.headers["access-control-request-method"] ?? "").trimmingSpaces.uppercased()
        guard methods.contains(method) else {
            return .deny(
                Denial(
                    code: .corsMethodNotAllowed,
                    detail:
                        "preflight from \(origin) asked for method \(method) on \(request.path); \(id) allows \(methods.joined(separator: ", "))",
                    required: methods, presented: ["Access-Control-Request-Method: \(method)"],
                    hint: "Use one of \(methods.joined(separator: ", ")), or ask the API operator to allow \(method) cross-origin."))
        }
        let asked = request.headers.values("access-control-request-headers")
            .flatMap { $0.split(separator: ",") }
            .map { String($0.trimmingSpaces).lowercased() }
            .filter { !$0.isEmpty }
        let anyHeader = headers.contains("*") && !credentials
        let refused = anyHeader ? [] : asked.filter { !headers.contains($0) }
        if !refused.isEmpty {
            return .deny(
                Denial(
                    code: .corsHeaderNotAllowed,
                    detail:
                        "preflight from \(origin) asked for header\(refused.count > 1 ? "s" : "") \(refused.joined(separator: ", ")) on \(method) \(request.path); \(id) allows \(headers.isEmpty ? "no extra headers" : headers.joined(separator: ", "))",
                    required: headers, presented: ["Access-Control-Request-Headers: \(asked.joined(separator: ", "))"],
                    hint:
                        "Drop \(refused.joined(separator: ", ")), or ask the API operator to allow \(refused.count > 1 ? "them" : "it") cross-origin."
                ))
        }
        var h: [HeaderField] = [
            HeaderField("Access-Control-Allow-Origin", allowOriginValue(origin)),
            HeaderField("Access-Control-Allow-Methods", methods.joined(separator: ", ")),
            HeaderField("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        ]
        if !asked.isEmpty { h.append(HeaderField("Access-Control-Allow-Headers", asked.joined(separator: ", "))) }
        if credentials { h.append(HeaderField("Access-Control-Allow-Credentials", "true")) }
        if let maxAge { h.append(HeaderField("Access-Control-Max-Age", String(maxAge))) }
        request.localAnswer = LocalAnswer(status: 204, headers: h)
        return .allow(
            note: "preflight from \(origin) for \(method)\(asked.isEmpty ? "" : " with " + asked.joined(separator: ", ")) answered 204")
    }
}

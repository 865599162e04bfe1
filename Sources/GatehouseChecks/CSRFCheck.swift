// Hand-written: origin-header checks and the signed double-submit token scheme; HMAC-SHA256 comes
// from swift-crypto.
import Crypto
import GatehouseCore
import GatehouseIdentity

/// Signed double-submit CSRF tokens: `NONCE.SIGNATURE`, where the signature is HMAC-SHA256 over the
/// session cookie's value and the nonce, hex-encoded. The application sets the token in a cookie and
/// its pages send it back in a header; a forged cross-site request can send neither.
public struct CSRFTokenSigner: Sendable {
    let key: SymmetricKey

    public init(secret: String) { key = SymmetricKey(data: Array(secret.utf8)) }

    /// A token for `session` (the session cookie's value, or "" when tokens are not bound to one).
    public func issue(session: String, nonce: String) -> String {
        nonce + "." + sign(session: session, nonce: nonce)
    }

    func sign(session: String, nonce: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array((session + "|" + nonce).utf8), using: key)
        return mac.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined()
    }

    /// Whether `token` is well-formed and signed for `session`.
    public func verify(_ token: String, session: String) -> Bool {
        guard let dot = token.lastIndex(of: "."), dot != token.startIndex else { return false }
        let nonce = String(token[..<dot])
        let sig = String(token[token.index(after: dot)...])
        return constantTimeEqual(Array(sig.utf8), Array(sign(session: session, nonce: nonce).utf8))
    }
}

/// `csrf`: for cookie-authenticated routes, an unsafe request (anything but GET, HEAD, OPTIONS,
/// TRACE) must prove it comes from the application's own origin (or a trusted one), by `Origin`,
/// `Sec-Fetch-Site` or `Referer`, in that order, and, when a token is configured, by a signed
/// double-submit token (cookie plus header). Denials name the header they checked.
public struct CSRFCheck: PolicyCheck {
    public let id: String
    public var type: String { "csrf" }
    /// Origins besides the request's own that may send unsafe requests.
    public let trustedOrigins: [OriginPattern]
    /// When set, requests without this cookie are not cookie-authenticated and are skipped.
    public let sessionCookie: String?
    public let tokenCookie: String?
    public let tokenHeader: String?
    public let signer: CSRFTokenSigner?

    public init(
        id: String, trustedOrigins: [OriginPattern] = [], sessionCookie: String? = nil,
        tokenCookie: String? = nil, tokenHeader: String? = nil, signer: CSRFTokenSigner? = nil
    ) {
        self.id = id
        self.trustedOrigins = trustedOrigins
        self.sessionCookie = sessionCookie
        self.tokenCookie = tokenCookie
        self.tokenHeader = tokenHeader
        self.signer = signer
    }

    static let safeMethods: Set<String> = ["GET", "HEAD", "OPTIONS", "TRACE"]

    func trusted(_ origin: String, own: String?) -> Bool {
        if let own, OriginPattern.normalise(origin) == own { return true }
        return trustedOrigins.contains { $0.matches(origin) }
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        if Self.safeMethods.contains(request.method) {
            return .skip(why: "\(request.method) is a safe method; CSRF protection applies to unsafe methods")
        }
        var session = ""
        if let sessionCookie {
            guard let value = request.cookie(sessionCookie) else {
                return .skip(why: "no \(sessionCookie) cookie: the request is not cookie-authenticated")
            }
            session = value
        }
        let own = requestOrigin(request)
        let expected = ([own].compactMap { $0 } + trustedOrigins.map(\.description))
        let expectedText = expected.joined(separator: ", ")
        var proof: String

        if let origin = request.headers["origin"], origin != "null" {
            guard trusted(origin, own: own) else {
                return .deny(
                    mismatch(
                        request, header: "Origin", value: origin, expected: expected,
                        detail: "Origin \(origin) is not this application's origin (\(expectedText))"))
            }
            proof = "Origin \(origin)"
        } else if let site = request.headers["sec-fetch-site"]?.lowercased() {
            guard site == "same-origin" || site == "none" else {
                return .deny(
                    mismatch(
                        request, header: "Sec-Fetch-Site", value: site, expected: ["same-origin"],
                        detail:
                            "Sec-Fetch-Site is \(site)\(request.headers["origin"] == "null" ? " and Origin is null" : ""); only same-origin requests may \(request.method) here"
                    ))
            }
            proof = "Sec-Fetch-Site \(site)"
        } else if let referer = request.headers["referer"] {
            guard let ro = Self.origin(ofURL: referer), trusted(ro, own: own) else {
                return .deny(
                    mismatch(
                        request, header: "Referer", value: Self.origin(ofURL: referer) ?? referer, expected: expected,
                        detail:
                            "Referer is from \(Self.origin(ofURL: referer) ?? "an unparseable URL"), not this application's origin (\(expectedText))"
                    ))
            }
            proof = "Referer from \(ro)"
        } else if signer != nil {
            proof = "no origin headers (non-browser client)"
        } else {
            return .deny(
                mismatch(
                    request, header: "Origin", value: "absent", expected: expected,
                    detail: "the request carried none of Origin, Sec-Fetch-Site or Referer, so its origin cannot be verified"))
        }

        if let signer, let tokenCookie, let tokenHeader {
            let cookie = request.cookie(tokenCookie)
            let header = request.headers[tokenHeader].map { String($0.trimmingSpaces) }
            guard let cookie, !cookie.isEmpty, let header, !header.isEmpty else {
                let missing = [
                    cookie?.isEmpty == false ? nil : "cookie \(tokenCookie)", header?.isEmpty == false ? nil : "header \(tokenHeader)",
                ].compactMap { $0 }
                return .deny(
                    Denial(
                        code: .csrfTokenMissing,
                        detail:
                            "\(request.summary) needs the CSRF token in cookie \(tokenCookie) and header \(tokenHeader); missing: \(missing.joined(separator: " and "))",
                        required: ["cookie \(tokenCookie)", "header \(tokenHeader) with the same value"],
                        presented: missing.map { "no " + $0 },
                        hint: "Read the \(tokenCookie) cookie and send its value in the \(tokenHeader) header.",
                        extensions: ["checked_header": [tokenHeader]]))
            }
            guard constantTimeEqual(Array(cookie.utf8), Array(header.utf8)) else {
                return .deny(
                    Denial(
                        code: .csrfTokenInvalid,
                        detail: "header \(tokenHeader) does not match cookie \(tokenCookie)",
                        required: ["header \(tokenHeader) equal to cookie \(tokenCookie)"],
                        presented: ["header \(tokenHeader) differs from the cookie"],
                        extensions: ["checked_header": [tokenHeader]]))
            }
            guard signer.verify(header, session: session) else {
                return .deny(
                    Denial(
                        code: .csrfTokenInvalid,
                        detail:
                            "the CSRF token in header \(tokenHeader) is not signed for this session (forged, or from an earlier session)",
                        required: ["a token issued for this session"], presented: ["header \(tokenHeader) with an invalid signature"],
                        extensions: ["checked_header": [tokenHeader]]))
            }
            proof += "; token in \(tokenHeader) matches cookie \(tokenCookie) and its signature"
        }
        return .allow(note: proof)
    }

    private func mismatch(_ request: PolicyRequest, header: String, value: String, expected: [String], detail: String) -> Denial {
        Denial(
            code: .csrfOriginMismatch, detail: "\(request.summary) refused: \(detail) (header checked: \(header))",
            required: expected.map { "\(header == "Sec-Fetch-Site" ? "Sec-Fetch-Site" : "origin") \($0)" },
            presented: ["\(header): \(value)"],
            hint: "Send the request from the application's own pages; cross-site forms and scripts cannot \(request.method) here.",
            extensions: ["checked_header": [header]])
    }

    /// "https://a.example/x?y" → "https://a.example".
    static func origin(ofURL url: String) -> String? {
        guard let (schemePart, rest) = splitScheme(url) else { return nil }
        let scheme = schemePart.lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty else { return nil }
        let hostPort = authority.split(separator: "@").last.map(String.init) ?? String(authority)
        return OriginPattern.normalise(scheme + "://" + hostPort)
    }
}

import Foundation
import GatehouseChecks
import GatehouseCore
import Hummingbird
import NIOCore

/// State-changing requests of the browser interfaces: the origin checks of the project's `csrf`
/// check (`CSRFCheck`: Origin, then Sec-Fetch-Site, then Referer; a cross-site post is refused
/// with `csrf_origin_mismatch`), then the form's body, then the form's CSRF token, signed for the
/// session (`console_csrf_failed`).
public struct WebForms: Sendable {
    /// The origin checks, with origins besides the request's own that may post (a console reached
    /// through a TLS-terminating proxy is `https://…` to the browser, `http://…` here).
    let origin: CSRFCheck

    public init(trustedOrigins: [OriginPattern] = []) {
        origin = CSRFCheck(id: "csrf", trustedOrigins: trustedOrigins)
    }

    /// Largest form body read.
    public static let maxBody = 16 * 1024

    /// The origin check of an unsafe request; throws the refusal.
    public func checkOrigin(_ request: Request) throws {
        var headers: [HeaderField] = []
        for field in request.headers {
            switch field.name.canonicalName {
            case "origin", "sec-fetch-site", "referer": headers.append(HeaderField(field.name.canonicalName, field.value))
            default: break
            }
        }
        // HTTP/1's Host is the request head's authority here.
        if let authority = request.head.authority { headers.append(HeaderField("host", authority)) }
        var policyRequest = PolicyRequest(
            method: request.method.rawValue, path: request.uri.path, headers: HeaderList(headers), isTLS: request.head.scheme == "https")
        if case .deny(let denial) = origin.evaluate(&policyRequest) { throw WebRefusal(denial, check: origin.id) }
    }

    /// The form fields of an `application/x-www-form-urlencoded` body (read once).
    public func fields<T: Decodable>(_ request: Request, as type: T.Type) async throws -> T {
        try Self.decode(try await Self.body(request), as: T.self)
    }

    static func body(_ request: Request) async throws -> String {
        do {
            return String(buffer: try await request.body.collect(upTo: Self.maxBody))
        } catch {
            throw WebRefusal(
                Denial(code: .adminInvalidRequest, detail: "the form is larger than \(Self.maxBody) bytes"), check: "form")
        }
    }

    static func decode<T: Decodable>(_ body: String, as type: T.Type) throws -> T {
        do {
            return try URLEncodedFormDecoder().decode(T.self, from: body)
        } catch {
            throw WebRefusal(Denial(code: .adminInvalidRequest, detail: "the form's fields are not what this page sends"), check: "form")
        }
    }

    /// A signed-in form post: the origin, then its `csrf` field against `session`, then the
    /// fields as `T`.
    public func post<T: Decodable>(_ request: Request, session: WebSession, as type: T.Type) async throws -> T {
        try checkOrigin(request)
        let body = try await Self.body(request)
        let token = try Self.decode(body, as: CSRFField.self)
        guard let csrf = token.csrf, !csrf.isEmpty else {
            throw WebRefusal(
                Denial(
                    code: .consoleCsrfFailed, detail: "\(request.method.rawValue) \(request.uri.path) carried no form token",
                    required: ["the form's csrf field, from the page that showed the form"], presented: ["no csrf field"]),
                check: "csrf")
        }
        guard session.verifyCSRF(csrf) else {
            throw WebRefusal(
                Denial(
                    code: .consoleCsrfFailed,
                    detail: "the form token is not signed for this session (from an earlier sign-in, or not from this console)",
                    required: ["a form token issued for this session"], presented: ["a form token with another signature"]),
                check: "csrf")
        }
        return try Self.decode(body, as: T.self)
    }

    struct CSRFField: Decodable { var csrf: String? }
}

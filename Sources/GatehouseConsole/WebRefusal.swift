import Foundation
import GatehouseControl
import GatehouseCore
import HTTPTypes
import Hummingbird
import Logging

/// A refusal of a console or portal request, thrown by a handler and rendered by
/// `WebRefusalMiddleware` as an HTML page with the API's problem+json contract: status, reason
/// code, the check that refused, required against presented, a fix hint and the request id.
public struct WebRefusal: Error, Sendable {
    public var denial: Denial
    /// The check that refused (`console_session`, `csrf`, `sign_in_limit`, `admin`).
    public var check: String
    /// Where the page's "sign in" link returns to, for refusals a sign-in resolves.
    public var signIn: String?

    public init(_ denial: Denial, check: String, signIn: String? = nil) {
        self.denial = denial
        self.check = check
        self.signIn = signIn
    }
}

/// Renders refusals: `WebRefusal`s, the control plane's `ControlError`s (role and tenant
/// refusals, invalid requests, conflicts), and store failures (503 `check_unavailable`, nothing
/// said of the error but its request id, which the log carries). Every response gets an
/// `X-Request-Id`.
public struct WebRefusalMiddleware<Context: RequestContext>: RouterMiddleware {
    let pages: WebPages
    let logger: Logger

    public init(pages: WebPages, logger: Logger = Logger(label: "gatehouse.console")) {
        self.pages = pages
        self.logger = logger
    }

    public static var requestIDField: HTTPField.Name { HTTPField.Name("X-Request-Id")! }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requestID = "web-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
        var response: Response
        do {
            response = try await next(request, context)
        } catch let refusal as WebRefusal {
            response = pages.refusal(refusal, requestID: requestID)
        } catch let e as ControlError {
            response = pages.refusal(WebRefusal(e.denial, check: "admin"), requestID: requestID)
        } catch let e as HTTPError {
            // Hummingbird's own refusals (a missing parameter, a body too large) get the page and
            // the headers of every other refusal.
            response = pages.refusal(
                WebRefusal(
                    Denial(
                        code: e.status == .notFound ? .adminNotFound : .adminInvalidRequest, status: e.status.code,
                        detail: "the request could not be served (\(e.status.code) \(e.status.reasonPhrase))"),
                    check: "request"), requestID: requestID)
        } catch {
            logger.error(
                "console operation failed", metadata: ["error": "\(error)", "request_id": "\(requestID)", "path": "\(request.uri.path)"])
            response = pages.refusal(
                WebRefusal(
                    Denial(code: .checkUnavailable, status: 503, detail: "the store could not complete the operation; nothing was changed"),
                    check: "store"), requestID: requestID)
        }
        response.headers[Self.requestIDField] = String(requestID)
        return response
    }
}

import HTTPTypes
import Hummingbird

/// The response headers of every console and portal answer, pages and refusals alike.
///
/// The Content-Security-Policy allows nothing inline: no inline script, style or event handler
/// runs, so markup that got into a page by mistake cannot execute. Styles and the one script come
/// from `/console/static/` (`'self'`); images from there or `data:` URIs (the SVG charts).
public enum WebSecurity {
    public static let contentSecurityPolicy: ContentSecurityPolicy = [
        .defaultSrc(.none), .styleSrc(.self), .scriptSrc(.self), .imgSrc(.self, "data:"), .formAction(.self),
        .frameAncestors(.none), .baseURI(.none),
    ]

    /// CSP, `nosniff` and `Referrer-Policy: same-origin`.
    public static let headers: HTTPFields = [
        .contentSecurityPolicy: contentSecurityPolicy.description,
        .xContentTypeOptions: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "same-origin",
    ]
}

/// Adds `WebSecurity.headers` to every response of the routes it is attached to, and
/// `Cache-Control: no-store` to those that set no caching of their own (pages; static assets set
/// theirs).
public struct WebSecurityMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        for field in WebSecurity.headers { response.headers[field.name] = field.value }
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}

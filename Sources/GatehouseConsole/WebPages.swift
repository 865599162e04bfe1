import Foundation
import GatehouseCore
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore

/// Renders the browser interfaces' pages from the templates compiled into the binary (one
/// `MustacheLibrary`; nothing is read from disk at run time).
///
/// Every page is a template that fills the `layout` template's `body` block
/// (`{{<layout}}{{$body}}…{{/body}}{{/layout}}`). Values are HTML-escaped by mustache's `{{x}}`;
/// templates never use `{{{x}}}` for data. Charts are SVG documents shown as `data:` images, so
/// even their markup is an escaped attribute value.
public struct WebPages: Sendable {
    public let library: MustacheLibrary
    /// Where a refusal's "Sign in" link leads (with `?next=` the page refused).
    public let signInPath: String
    /// Where the pages link the stylesheet and script (`/console/static/`): each interface serves
    /// them under its own path, so the portal's listener needs nothing of the console's.
    public let assetBase: String

    /// The console's templates plus `extra` (name → template text), e.g. the portal's, whose
    /// refusals link to `signInPath` and whose assets are under `assetBase`.
    public init(extra: [String: String] = [:], signInPath: String = "/console/sign-in", assetBase: String = "/console/static/") throws {
        self.signInPath = signInPath
        self.assetBase = assetBase
        var library = MustacheLibrary()
        for (name, text) in ConsoleTemplates.all.merging(extra, uniquingKeysWith: { _, new in new }) {
            try library.register(text, named: name)
        }
        self.library = library
    }

    /// The frame every page's layout reads: the title, navigation and the signed-in user.
    public struct Frame: Sendable {
        public var title: String
        /// (label, href, current) of each navigation link; empty when signed out.
        public var navigation: [(label: String, href: String, current: Bool)]
        /// "alice (operator of tenant acme)", when signed in.
        public var user: String?
        /// The sign-out form's CSRF token, when signed in.
        public var csrf: String?
        /// Where the sign-out form posts.
        public var signOut: String
        /// Where the sign-out form's "everywhere" button posts (ends every session of the user).
        public var signOutEverywhere: String?

        public init(
            title: String, navigation: [(label: String, href: String, current: Bool)] = [], user: String? = nil, csrf: String? = nil,
            signOut: String = "/console/sign-out", signOutEverywhere: String? = nil
        ) {
            self.signOutEverywhere = signOutEverywhere
            self.title = title
            self.navigation = navigation
            self.user = user
            self.csrf = csrf
            self.signOut = signOut
        }
    }

    /// `template` rendered with `values` inside the layout, as an HTML response.
    public func page(_ template: String, _ values: [String: Any], frame: Frame, status: HTTPResponse.Status = .ok) -> Response {
        var context = values
        context["frame_title"] = frame.title
        context["frame_nav"] = frame.navigation.map { ["label": $0.label, "href": $0.href, "current": $0.current] as [String: Any] }
        if let user = frame.user { context["frame_user"] = user }
        if let csrf = frame.csrf { context["frame_csrf"] = csrf }
        context["frame_sign_out"] = frame.signOut
        if let everywhere = frame.signOutEverywhere { context["frame_sign_out_everywhere"] = everywhere }
        context["asset_css"] = assetBase + StaticAssets.css.file
        context["asset_js"] = assetBase + StaticAssets.js.file
        let html = library.render(context, withTemplate: template) ?? "template \(template) is missing"
        return Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// The refusal page: the denial's status, reason code (linked to its documentation), the
    /// check, detail, required against presented, the fix and the request id; and the denial's
    /// headers (`Retry-After`, …).
    public func refusal(_ refusal: WebRefusal, requestID: String) -> Response {
        let d = refusal.denial
        var values: [String: Any] = [
            "status": d.status, "title": d.title, "reason": d.code.rawValue, "check": refusal.check, "detail": d.detail,
            "required": d.required, "presented": d.presented, "hint": d.hint, "request_id": requestID,
            "has_required": !d.required.isEmpty, "has_presented": !d.presented.isEmpty,
        ]
        if let meaning = ReasonCatalogue.entry(d.code)?.meaning { values["meaning"] = meaning }
        if let next = refusal.signIn { values["sign_in"] = signInPath + "?next=" + Self.queryEscaped(next) }
        var response = page("refusal", values, frame: Frame(title: d.title), status: .init(code: d.status))
        for h in d.headers {
            if let name = HTTPField.Name(h.name) { response.headers[name] = h.value }
        }
        return response
    }

    /// `text` escaped for a query parameter's value.
    public static func queryEscaped(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}

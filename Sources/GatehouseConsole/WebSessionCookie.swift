import Hummingbird

/// The session cookie: `__Host-NAME=TOKEN; Path=/; Secure; HttpOnly; SameSite=Strict`, with no
/// `Max-Age` (the browser drops it when it closes; the server ends the session after its idle
/// time or lifetime whatever the browser keeps).
///
/// It is always `Secure`, so it always has the `__Host-` prefix (no `Domain`, path `/`: no other
/// host or path can set or shadow it). Browsers keep a `Secure` cookie received over plain
/// `http://` only from a loopback host (`localhost`, `127.0.0.1`, `[::1]`; Chromium and Firefox
/// both): the console over plain HTTP works on loopback only, and elsewhere needs HTTPS in front
/// of the admin listener (see docs/console.md).
public struct WebSessionCookie: Sendable {
    public let name: String

    /// `base` with the `__Host-` prefix.
    public init(base: String) { name = "__Host-" + base }

    public func token(_ request: Request) -> String? { request.cookies[name]?.value }

    public func set(_ token: String, on response: inout Response) {
        response.setCookie(Cookie(name: name, value: token, path: "/", secure: true, httpOnly: true, sameSite: .strict))
    }

    public func clear(on response: inout Response) {
        response.setCookie(Cookie(name: name, value: "", maxAge: 0, path: "/", secure: true, httpOnly: true, sameSite: .strict))
    }
}

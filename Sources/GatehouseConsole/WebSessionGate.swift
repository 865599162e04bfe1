import GatehouseCore
import Hummingbird

/// The live session a browser interface's request carries, or the refusal the console and the
/// portal both give: `console_session_required` (no cookie, or one matching no session) or
/// `console_session_expired` (idle too long, or past its lifetime). Who the session's subject is
/// (an admin user, a developer) each interface checks itself.
struct WebSessionGate: Sendable {
    let sessions: WebSessionStore
    let cookie: WebSessionCookie
    let kind: WebSessionKind
    /// How refusals name the interface's pages and sessions ("console", "portal").
    let interface: String
    /// How a refusal names a session the cookie does not match ("session", "portal session").
    let unknownNoun: String
    /// The refusals' check id.
    let check: String
    /// Advice when no cookie was sent, and when the session is gone (nil: the sign-in page says it).
    let hintSignIn: String?
    let hintAgain: String?
    /// Where sign-in returns when the request was not a page (a form post).
    let defaultReturn: String?

    /// Where sign-in returns to: the page asked for, or `defaultReturn`.
    func returnPath(_ request: Request) -> String? {
        request.method == .get ? request.uri.path + (request.uri.query.map { "?" + $0 } ?? "") : defaultReturn
    }

    func live(_ request: Request) throws -> (token: String, session: WebSession) {
        let signIn = returnPath(request)
        guard let token = cookie.token(request), !token.isEmpty else {
            throw WebRefusal(
                Denial(
                    code: .consoleSessionRequired, detail: "\(request.uri.path) is a \(interface) page; this browser is not signed in",
                    required: ["a \(interface) session (cookie \(cookie.name))"], presented: ["no session cookie"], hint: hintSignIn),
                check: check, signIn: signIn)
        }
        switch try sessions.lookup(token, kind: kind) {
        case .unknown:
            throw WebRefusal(
                Denial(
                    code: .consoleSessionRequired,
                    detail: "the session cookie matches no \(unknownNoun) (signed out, or replaced by a later sign-in)",
                    required: ["a live \(interface) session"], presented: ["an unknown session cookie"], hint: hintAgain),
                check: check, signIn: signIn)
        case .expired(let why, let at):
            throw WebRefusal(
                Denial(
                    code: .consoleSessionExpired,
                    detail: why == "idle"
                        ? "the session ended at \(TimeText.iso(at)) after \(TimeText.duration(sessions.lifetime.idle)) without use"
                        : "the session reached its lifetime of \(TimeText.duration(sessions.lifetime.absolute)) at \(TimeText.iso(at))",
                    required: ["a live \(interface) session"], presented: ["a session that ended (\(why == "idle" ? "idle" : "lifetime"))"],
                    hint: hintAgain),
                check: check, signIn: signIn)
        case .valid(let session):
            return (token, session)
        }
    }
}

import Crypto
import Foundation
import GatehouseChecks
import GatehouseStore

/// What a session signs in as: `admin` (the console); the developer portal adds its own.
public struct WebSessionKind: RawRepresentable, Hashable, Sendable {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// An admin user of the control plane; the subject is the admin user's id.
    public static let admin = WebSessionKind(rawValue: "admin")
}

/// How long sessions last.
public struct WebSessionLifetime: Sendable, Equatable {
    /// A session not used for this long ends (30 minutes by default).
    public var idle: Double
    /// A session ends this long after sign-in, however often it is used (12 hours by default).
    public var absolute: Double

    public init(idle: Double = 30 * 60, absolute: Double = 12 * 3600) {
        self.idle = idle
        self.absolute = absolute
    }
}

/// One signed-in session, as the store holds it.
public struct WebSession: Sendable, Equatable {
    /// The session's public handle (`ws_…`): what CSRF tokens are bound to. Not a credential.
    public var id: String
    public var kind: WebSessionKind
    /// Who is signed in: for `admin`, the admin user's id.
    public var subject: String
    public var createdAt: Double
    public var lastSeenAt: Double
    /// The end of the absolute lifetime.
    public var expiresAt: Double
    /// The secret the session's CSRF form tokens are signed with.
    var csrfSecret: String
    var csrf: CSRFTokenSigner { CSRFTokenSigner(secret: csrfSecret) }

    /// A CSRF token for a form of this session's pages.
    public func csrfToken() -> String {
        csrf.issue(session: id, nonce: WebSessionStore.randomToken(bytes: 12))
    }

    /// Whether `token` (a form's hidden field) was issued for this session.
    public func verifyCSRF(_ token: String) -> Bool { csrf.verify(token, session: id) }
}

/// Why a presented session token is not a session.
public enum WebSessionLookup: Sendable, Equatable {
    case valid(WebSession)
    /// No session has this token (never made, signed out, or removed).
    case unknown
    /// The session ended: `idle` or `absolute`, with when.
    case expired(reason: String, at: Double)
}

/// Server-side sessions in the control store (`web_sessions`, see `WebSessionSchema`), through
/// `SQLDatabase`: SQLite for a standalone gateway, PostgreSQL for a cluster, where a session made
/// on one node is accepted by every other.
///
/// The token (`ghs_` and 43 base64url characters, 256 random bits) is given to the browser in a
/// cookie and never stored: the row is found by its SHA-256, as admin tokens are. Sign-in always
/// makes a new token (the old session, if the browser presented one, is deleted), and sign-out
/// deletes the row. Each session has a CSRF secret of its own.
public struct WebSessionStore: Sendable {
    public let db: any SQLDatabase
    public let lifetime: WebSessionLifetime
    let now: @Sendable () -> Double

    public static let tokenPrefix = "ghs_"

    public init(
        database: any SQLDatabase, lifetime: WebSessionLifetime = WebSessionLifetime(),
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.db = database
        self.lifetime = lifetime
        self.now = now
    }

    static func hash(_ token: String) -> Data { Data(SHA256.hash(data: Data(token.utf8))) }

    /// `bytes` random bytes in base64url without padding.
    static func randomToken(bytes: Int) -> String {
        var rng = SystemRandomNumberGenerator()
        let raw = (0..<bytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return Data(raw).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Starts a session for `subject`; returns the token for the cookie and the session. A token
    /// the browser already held (`replacing`) is deleted in the same transaction: sign-in rotates.
    public func create(kind: WebSessionKind, subject: String, replacing old: String? = nil) throws -> (token: String, session: WebSession) {
        let token = Self.tokenPrefix + Self.randomToken(bytes: 32)
        let secret = Self.randomToken(bytes: 32)
        let t = now()
        let session = WebSession(
            id: "ws_" + Self.randomToken(bytes: 12), kind: kind, subject: subject, createdAt: t, lastSeenAt: t,
            expiresAt: t + lifetime.absolute, csrfSecret: secret)
        try db.write { db in
            if let old { try db.execute("DELETE FROM web_sessions WHERE token_hash = ?", [Self.hash(old)]) }
            // Ended sessions go when new ones start: the table holds live sessions and a few more.
            try db.execute(
                "DELETE FROM web_sessions WHERE expires_at <= ? OR last_seen_at <= ?", [t, t - lifetime.idle])
            try db.execute(
                "INSERT INTO web_sessions (id, token_hash, kind, subject, created_at, last_seen_at, expires_at, csrf_secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [session.id, Self.hash(token), kind.rawValue, subject, t, t, session.expiresAt, secret])
        }
        return (token, session)
    }

    /// The session of `token`, if it is of `kind` and has not ended; a live session's last-seen
    /// time moves to now (at most once a minute, so that reading pages seldom writes).
    public func lookup(_ token: String, kind: WebSessionKind) throws -> WebSessionLookup {
        guard token.hasPrefix(Self.tokenPrefix), token.utf8.count <= 128 else { return .unknown }
        let t = now()
        let hash = Self.hash(token)
        let row = try db.read { db in try db.row("SELECT * FROM web_sessions WHERE token_hash = ? AND kind = ?", [hash, kind.rawValue]) }
        guard let row else { return .unknown }
        let session = WebSession(
            id: row["id"], kind: kind, subject: row["subject"], createdAt: row["created_at"], lastSeenAt: row["last_seen_at"],
            expiresAt: row["expires_at"], csrfSecret: row["csrf_secret"])
        if t >= session.expiresAt {
            try delete(token)
            return .expired(reason: "absolute", at: session.expiresAt)
        }
        if t >= session.lastSeenAt + lifetime.idle {
            try delete(token)
            return .expired(reason: "idle", at: session.lastSeenAt + lifetime.idle)
        }
        var seen = session
        if t - session.lastSeenAt >= 60 {
            try db.write { db in try db.execute("UPDATE web_sessions SET last_seen_at = ? WHERE id = ?", [t, session.id]) }
            seen.lastSeenAt = t
        }
        return .valid(seen)
    }

    /// Ends the session of `token` (sign-out). Nothing happens for an unknown token.
    public func delete(_ token: String) throws {
        try db.write { db in try db.execute("DELETE FROM web_sessions WHERE token_hash = ?", [Self.hash(token)]) }
    }

    /// Ends every session of `subject` (e.g. when an admin user's password changes).
    public func deleteAll(kind: WebSessionKind, subject: String) throws {
        try db.write { db in try db.execute("DELETE FROM web_sessions WHERE kind = ? AND subject = ?", [kind.rawValue, subject]) }
    }
}

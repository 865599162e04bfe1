/// The `web_sessions` table: server-side sessions of the browser interfaces (the operator console
/// on the admin listener; the developer portal, on its own listener, adds its own kind). Migration `v7-web-sessions` on
/// SQLite, `pg-5-web-sessions` on a cluster's PostgreSQL, so that a session made on one node is
/// accepted by every other.
///
/// A row holds only the SHA-256 of the session token (like `admin_tokens`), never the token; the
/// session's `kind` (`admin`, …) and `subject` (the admin user's id, …); when it was created, last
/// seen and when it ends at the latest (`expires_at`, the absolute lifetime; the idle timeout is
/// `last_seen_at` + the configured idle time); and the secret its CSRF form tokens are signed with.
/// Changes to it do not bump `meta.revision`: the data plane reads nothing of it.
public enum WebSessionSchema {
    static func statements(real: String, blob: String) -> [String] {
        [
            """
            CREATE TABLE web_sessions (
                id TEXT PRIMARY KEY, token_hash \(blob) NOT NULL UNIQUE, kind TEXT NOT NULL, subject TEXT NOT NULL,
                created_at \(real) NOT NULL, last_seen_at \(real) NOT NULL, expires_at \(real) NOT NULL, csrf_secret TEXT NOT NULL)
            """,
            "CREATE INDEX web_sessions_subject ON web_sessions(kind, subject)",
            "CREATE INDEX web_sessions_expiry ON web_sessions(expires_at)",
        ]
    }

    /// The SQLite store's migration.
    static var sqliteSchema: [String] { statements(real: "REAL", blob: "BLOB") }

    /// The cluster store's migration: the same in PostgreSQL's types.
    package static var postgresSchema: [String] { statements(real: "DOUBLE PRECISION", blob: "BYTEA") }
}

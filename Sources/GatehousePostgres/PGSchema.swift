import Foundation
import GatehouseStore

/// The cluster store's schema, in versioned migrations applied at start under an advisory lock
/// (nodes starting together apply each migration once; a node finding a migration it does not
/// know, from a newer version, refuses to start rather than run on a schema it cannot read).
///
/// The control plane's tables are the SQLite store's (`SQLiteStore` migrations v1–v4) in
/// PostgreSQL's types, so the service layer's SQL runs unchanged on both. Differences:
/// - `meta.revision` is bumped by a statement-level trigger that also sends `NOTIFY
///   gatehouse_changes`, which every node listens for;
/// - the call log is partitioned by day on `time` (retention drops whole partitions), keyed by
///   (`node`, `request_id`, `time`) so that a node re-sending a record after a failure stores it
///   once; `id` orders it for paging;
/// - `nodes` holds each node's heartbeat, `rate_counters` the cluster rate limits' counters;
/// - the rollup tables (`CallRollups`) are filled when nodes deliver calls, not by a local writer;
/// - `web_sessions` (`WebSessionSchema`) holds the console's sessions, so any node accepts them.
enum PGSchema {
    /// The advisory lock key migrations hold ("gatehous" in ASCII).
    static let lockKey: Int64 = 0x6761_7465_686F_7573

    static let migrations: [(name: String, statements: [String])] = [
        (
            "pg-1-control",
            [
                "CREATE FUNCTION instr(text, text) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT strpos($1, $2)'",
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
                "INSERT INTO meta VALUES ('revision', 0)",
                // A store restored from a backup, or a failed-over standby, can reach a revision a
                // node has seen with other contents; a fresh epoch per store tells them apart.
                "INSERT INTO meta VALUES ('epoch', (random() * 9.0e18)::bigint)",
                """
                CREATE TABLE consumers (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, status TEXT NOT NULL DEFAULT 'active',
                    tenant TEXT, roles TEXT NOT NULL DEFAULT '', scopes TEXT NOT NULL DEFAULT '',
                    password_hash TEXT, created_at DOUBLE PRECISION NOT NULL)
                """,
                "CREATE INDEX consumers_tenant_name ON consumers(tenant, name)",
                """
                CREATE TABLE api_keys (
                    id TEXT PRIMARY KEY, consumer_id TEXT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,
                    hash BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION, revoked_at DOUBLE PRECISION)
                """,
                "CREATE INDEX api_keys_consumer ON api_keys(consumer_id)",
                "CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at DOUBLE PRECISION NOT NULL)",
                """
                CREATE TABLE services (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, tenant TEXT, approval TEXT NOT NULL,
                    routes TEXT NOT NULL DEFAULT '', created_at DOUBLE PRECISION NOT NULL)
                """,
                """
                CREATE TABLE subscriptions (
                    id TEXT PRIMARY KEY,
                    application_id TEXT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,
                    service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
                    state TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL, changed_at DOUBLE PRECISION NOT NULL, actor TEXT,
                    reason TEXT, opinion TEXT, expires_at DOUBLE PRECISION, audit_id BIGINT,
                    UNIQUE (application_id, service_id))
                """,
                "CREATE INDEX subscriptions_service ON subscriptions(service_id)",
                """
                CREATE TABLE subscription_events (
                    id BIGSERIAL PRIMARY KEY, subscription_id TEXT NOT NULL, from_state TEXT, to_state TEXT NOT NULL,
                    actor TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, reason TEXT, opinion TEXT, audit_id BIGINT)
                """,
                "CREATE INDEX subscription_events_sub ON subscription_events(subscription_id)",
                """
                CREATE TABLE audit_log (
                    id BIGSERIAL PRIMARY KEY, time DOUBLE PRECISION NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
                    tenants TEXT NOT NULL DEFAULT '', action TEXT NOT NULL, object_type TEXT NOT NULL, object_id TEXT NOT NULL,
                    before TEXT, after TEXT, source TEXT)
                """,
                """
                CREATE TABLE admin_users (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, password_hash TEXT, role TEXT NOT NULL,
                    tenant TEXT, created_at DOUBLE PRECISION NOT NULL)
                """,
                """
                CREATE TABLE admin_tokens (
                    id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE,
                    hash BYTEA NOT NULL UNIQUE, created_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION)
                """,
                """
                CREATE TABLE jwt_subjects (
                    issuer TEXT NOT NULL, subject TEXT NOT NULL,
                    application_id TEXT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,
                    created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (issuer, subject))
                """,
                // Append-only history: no UPDATE, DELETE or TRUNCATE, whoever runs it.
                """
                CREATE FUNCTION gatehouse_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'the % table is append-only', TG_TABLE_NAME; END $$
                """,
                "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION gatehouse_append_only()",
                "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_append_only()",
                """
                CREATE TRIGGER subscription_events_append_only BEFORE UPDATE OR DELETE ON subscription_events
                    FOR EACH ROW EXECUTE FUNCTION gatehouse_append_only()
                """,
                """
                CREATE TRIGGER subscription_events_no_truncate BEFORE TRUNCATE ON subscription_events
                    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_append_only()
                """,
                // What the data plane reads changed: bump the revision and tell every node (the
                // notification is delivered when the transaction commits, and not at all if it rolls back).
                """
                CREATE FUNCTION gatehouse_changed() RETURNS trigger LANGUAGE plpgsql AS $$
                DECLARE r BIGINT;
                BEGIN
                    UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value INTO r;
                    PERFORM pg_notify('gatehouse_changes', r::text || ' ' || extract(epoch from clock_timestamp())::text);
                    RETURN NULL;
                END $$
                """,
            ]
                + ["consumers", "api_keys", "services", "subscriptions", "jwt_subjects"].map {
                    "CREATE TRIGGER \($0)_changed AFTER INSERT OR UPDATE OR DELETE ON \($0) FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_changed()"
                }
        ),
        (
            "pg-2-calls",
            [
                "CREATE SEQUENCE calls_id_seq",
                """
                CREATE TABLE calls (
                    id BIGINT NOT NULL DEFAULT nextval('calls_id_seq'), node TEXT NOT NULL,
                    request_id TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, route TEXT, consumer TEXT, key_id TEXT, client TEXT,
                    method TEXT NOT NULL, path TEXT NOT NULL, host TEXT, status INTEGER NOT NULL, upstream_ms DOUBLE PRECISION,
                    total_ms DOUBLE PRECISION NOT NULL, check_id TEXT, reason TEXT, detail TEXT, hint TEXT, required TEXT, presented TEXT,
                    trace TEXT NOT NULL, upstream_target TEXT, facts TEXT, audit_entry BIGINT, application_id TEXT,
                    UNIQUE (node, request_id, time)
                ) PARTITION BY RANGE (time)
                """,
                // Byte order: `explain` looks up an id and its repeats (ID~N) as one range.
                "CREATE INDEX calls_request_id ON calls(request_id COLLATE \"C\")",
                "CREATE INDEX calls_id ON calls(id)",
                """
                CREATE TABLE nodes (
                    id TEXT PRIMARY KEY, address TEXT, version TEXT, revision BIGINT, snapshot_age DOUBLE PRECISION,
                    spooled BIGINT, store_reachable BOOLEAN, started_at DOUBLE PRECISION, heartbeat_at DOUBLE PRECISION NOT NULL)
                """,
                """
                CREATE TABLE rate_counters (
                    policy TEXT NOT NULL, key TEXT NOT NULL, window_start DOUBLE PRECISION NOT NULL, used BIGINT NOT NULL,
                    expires_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (policy, key, window_start))
                """,
                "CREATE INDEX rate_counters_expiry ON rate_counters(expires_at)",
            ]
        ),
        // Per-minute totals of the call log for analytics (`CallRollups`), filled from the calls
        // delivered so far; `deliverCalls` adds to them.
        (
            "pg-3-call-rollups",
            CallRollups.postgresSchema
        ),
        // Per-hour totals for long periods and tenant-scoped reads, summed from the minute rows;
        // `deliverCalls` adds to them too.
        (
            "pg-4-hourly-rollups",
            CallRollups.postgresHourlySchema
        ),
        // The browser interfaces' server-side sessions (`WebSessionSchema`).
        (
            "pg-5-web-sessions",
            WebSessionSchema.postgresSchema
        ),
        // The developer portal's accounts (SQLite `v8-developers`); pg-4 and pg-5 are other
        // changes' names. Not replicated to nodes: the data plane does not read them.
        (
            "pg-6-developers",
            [
                """
                CREATE TABLE developers (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                    application_id TEXT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,
                    password_hash TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'active', created_at DOUBLE PRECISION NOT NULL)
                """,
                "CREATE INDEX developers_application ON developers(application_id)",
            ]
        ),
    ]

    /// Applies the migrations not yet applied, each in the transaction that records it, under the
    /// advisory lock. Returns the names applied.
    @discardableResult
    static func migrate(_ db: PGDatabase) throws -> [String] {
        try db.withConnection { c in
            try db.transaction(c, begin: "BEGIN") { tx in
                _ = try tx.scalar("SELECT pg_advisory_xact_lock(?)::text", [lockKey]) as String?
                try tx.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
                let applied = Set(try tx.rows("SELECT name FROM schema_migrations", []).map { $0["name"] as String })
                let known = Set(migrations.map(\.name))
                if let unknown = applied.subtracting(known).sorted().first {
                    throw SQLError.other(
                        "the PostgreSQL store at \(db.location) has migration \(unknown), which this version of gatehouse does not know: upgrade this node"
                    )
                }
                var done: [String] = []
                for m in migrations where !applied.contains(m.name) {
                    for s in m.statements { try tx.execute(s) }
                    try tx.execute(
                        "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", [m.name, Date().timeIntervalSince1970])
                    done.append(m.name)
                }
                return done
            }
        }
    }
}

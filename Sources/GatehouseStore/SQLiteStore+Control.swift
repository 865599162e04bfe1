import GRDB
import GatehouseIdentity

/// The control plane's tables (migration `v3-control`) and what the data plane reads of them.
///
/// - `consumers` are the applications; `consumers.tenant` names their tenant (a row of `tenants`
///   when created through the control plane; older stores may hold names without a row).
/// - `services`: a name, its routes, owner tenant and approval mode.
/// - `subscriptions`: one row per application × service with its current state and the
///   transition that led there; `subscription_events` keeps every transition.
/// - `audit_log`: append-only; triggers refuse UPDATE and DELETE, so no code path can rewrite it.
/// - `admin_users`, `admin_tokens`: admin identities (bcrypt password hashes, SHA-256 of tokens).
/// - `jwt_subjects`: a token's issuer and subject that act as an application, so that callers
///   authenticated by `jwt` can hold subscriptions.
///
/// Writes to services and subscriptions bump `meta.revision`, like consumers and keys, so the data
/// plane's snapshot follows them within a poll interval.
extension SQLiteStore {
    static func registerControlMigrations(_ m: inout DatabaseMigrator) {
        m.registerMigration("v3-control") { db in
            try db.execute(
                sql: """
                    CREATE TABLE tenants (
                        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at REAL NOT NULL);
                    CREATE TABLE services (
                        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, tenant TEXT, approval TEXT NOT NULL,
                        routes TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL);
                    CREATE TABLE subscriptions (
                        id TEXT PRIMARY KEY,
                        application_id TEXT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,
                        service_id TEXT NOT NULL REFERENCES services(id) ON DELETE CASCADE,
                        state TEXT NOT NULL, applied_at REAL NOT NULL, changed_at REAL NOT NULL, actor TEXT,
                        reason TEXT, opinion TEXT, expires_at REAL, audit_id INTEGER,
                        UNIQUE (application_id, service_id));
                    CREATE TABLE subscription_events (
                        id INTEGER PRIMARY KEY, subscription_id TEXT NOT NULL, from_state TEXT, to_state TEXT NOT NULL,
                        actor TEXT NOT NULL, time REAL NOT NULL, reason TEXT, opinion TEXT, audit_id INTEGER);
                    CREATE INDEX subscription_events_sub ON subscription_events(subscription_id);
                    CREATE TABLE audit_log (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,
                        tenants TEXT NOT NULL DEFAULT '', action TEXT NOT NULL, object_type TEXT NOT NULL, object_id TEXT NOT NULL,
                        before TEXT, after TEXT, source TEXT);
                    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
                        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
                        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                    CREATE TABLE admin_users (
                        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, password_hash TEXT, role TEXT NOT NULL,
                        tenant TEXT, created_at REAL NOT NULL);
                    CREATE TABLE admin_tokens (
                        id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE,
                        hash BLOB NOT NULL UNIQUE, created_at REAL NOT NULL, revoked_at REAL);
                    CREATE TRIGGER services_ai AFTER INSERT ON services BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    CREATE TRIGGER services_au AFTER UPDATE ON services BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    CREATE TRIGGER services_ad AFTER DELETE ON services BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    CREATE TRIGGER subscriptions_ai AFTER INSERT ON subscriptions BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    CREATE TRIGGER subscriptions_au AFTER UPDATE ON subscriptions BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    CREATE TRIGGER subscriptions_ad AFTER DELETE ON subscriptions BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    ALTER TABLE calls ADD COLUMN audit_entry INTEGER;
                    -- Lists of a tenant's applications (by name), an application's keys, a
                    -- service's subscriptions.
                    CREATE INDEX consumers_tenant_name ON consumers(tenant, name);
                    CREATE INDEX api_keys_consumer ON api_keys(consumer_id);
                    CREATE INDEX subscriptions_service ON subscriptions(service_id);
                    -- JWT subjects that act as an application (for subscriptions).
                    CREATE TABLE jwt_subjects (
                        issuer TEXT NOT NULL, subject TEXT NOT NULL,
                        application_id TEXT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,
                        created_at REAL NOT NULL, PRIMARY KEY (issuer, subject));
                    CREATE TRIGGER jwt_subjects_ai AFTER INSERT ON jwt_subjects BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    CREATE TRIGGER jwt_subjects_au AFTER UPDATE ON jwt_subjects BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    CREATE TRIGGER jwt_subjects_ad AFTER DELETE ON jwt_subjects BEGIN UPDATE meta SET value = value + 1 WHERE key = 'revision'; END;
                    """)
        }
        // The application id of each call (a tenant-scoped admin's view of the call log keys on
        // it, never on a name a tenant could choose), and the subscription history append-only.
        m.registerMigration("v4-call-application") { db in
            try db.execute(
                sql: """
                    ALTER TABLE calls ADD COLUMN application_id TEXT;
                    CREATE TRIGGER subscription_events_no_update BEFORE UPDATE ON subscription_events
                        BEGIN SELECT RAISE(ABORT, 'the subscription history is append-only'); END;
                    CREATE TRIGGER subscription_events_no_delete BEFORE DELETE ON subscription_events
                        BEGIN SELECT RAISE(ABORT, 'the subscription history is append-only'); END;
                    """)
        }
    }

    /// The developer portal's accounts (`v8-developers`): a developer belongs to one application
    /// (deleted with it), signs in with its name and a bcrypt password, and is `active` or
    /// `disabled`. Not read by the data plane, so no revision trigger.
    static func registerDeveloperMigrations(_ m: inout DatabaseMigrator) {
        m.registerMigration("v8-developers") { db in
            try db.execute(
                sql: """
                    CREATE TABLE developers (
                        id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                        application_id TEXT NOT NULL REFERENCES consumers(id) ON DELETE CASCADE,
                        password_hash TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'active', created_at REAL NOT NULL);
                    CREATE INDEX developers_application ON developers(application_id);
                    """)
        }
    }

    /// The store's database, for the control plane's service layer (GatehouseControl), which
    /// writes its changes and their audit entries in one transaction.
    package var database: DatabasePool { pool }

    /// The store's database for the control plane's service layer, through the interface it
    /// shares with a cluster's PostgreSQL.
    public var sqlDatabase: any SQLDatabase { GRDBDatabase(pool) }

    /// Services, subscriptions and JWT subjects for the data plane's snapshot (read in the caller's
    /// transaction).
    static func subscriptionSnapshot(
        _ db: Database
    ) throws -> (
        services: [ServiceRecord], subscriptions: [SubscriptionRecord],
        jwtSubjects: [(issuer: String, subject: String, applicationID: String)]
    ) {
        try subscriptionSnapshot(GRDBDatabase.Transaction(db: db))
    }

    /// Services, subscriptions and JWT subjects for the data plane's snapshot (read in the caller's
    /// transaction, of either dialect).
    package static func subscriptionSnapshot(
        _ db: any SQLTransaction
    ) throws -> (
        services: [ServiceRecord], subscriptions: [SubscriptionRecord],
        jwtSubjects: [(issuer: String, subject: String, applicationID: String)]
    ) {
        let services = try db.rows("SELECT * FROM services", []).map(service)
        let subs = try db.rows("SELECT s.*, v.name AS service_name FROM subscriptions s JOIN services v ON v.id = s.service_id", [])
            .map(subscription)
        let subjects = try db.rows("SELECT issuer, subject, application_id FROM jwt_subjects", []).map {
            (issuer: $0["issuer"] as String, subject: $0["subject"] as String, applicationID: $0["application_id"] as String)
        }
        return (services, subs, subjects)
    }

    public static func service(_ row: SQLRow) -> ServiceRecord {
        ServiceRecord(id: row["id"], name: row["name"], tenant: row["tenant"], approval: row["approval"])
    }

    /// A subscription row joined with its service's name (`service_name`).
    public static func subscription(_ row: SQLRow) -> SubscriptionRecord {
        SubscriptionRecord(
            id: row["id"], applicationID: row["application_id"], service: row["service_name"], state: row["state"],
            appliedAt: row["applied_at"], changedAt: row["changed_at"], actor: row["actor"], reason: row["reason"],
            opinion: row["opinion"], expiresAt: row["expires_at"], auditEntry: row["audit_id"])
    }

    /// One audit-log entry by id, for `explain` (which cites the entry behind a denial).
    public func auditEntry(id: Int64) throws -> AuditEntry? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM audit_log WHERE id = ?", arguments: [id]).map { AuditEntry(row: SQLRow(grdb: $0)) }
        }
    }
}

/// One entry of the append-only audit log: who changed what, from where, and the object before
/// and after (JSON, never a secret).
public struct AuditEntry: Sendable, Equatable, Codable {
    public var id: Int64
    /// Seconds since 1970.
    public var time: Double
    public var actor: String
    public var role: String
    /// The tenants the changed object belongs to (an application's; for a subscription, the
    /// application's and the service's). A tenant-scoped admin sees only entries naming its tenant.
    public var tenants: [String]
    /// e.g. `subscription.revoke`, `application.create`, `key.create`.
    public var action: String
    public var objectType: String
    public var objectID: String
    public var before: String?
    public var after: String?
    /// The admin request's client address, or `local` for the CLI.
    public var source: String?

    public init(
        id: Int64, time: Double, actor: String, role: String, tenants: [String], action: String, objectType: String, objectID: String,
        before: String?, after: String?, source: String?
    ) {
        self.id = id
        self.time = time
        self.actor = actor
        self.role = role
        self.tenants = tenants
        self.action = action
        self.objectType = objectType
        self.objectID = objectID
        self.before = before
        self.after = after
        self.source = source
    }

    public init(row: SQLRow) {
        self.init(
            id: row["id"], time: row["time"], actor: row["actor"], role: row["role"],
            tenants: (row["tenants"] as String? ?? "").split(separator: " ").map(String.init), action: row["action"],
            objectType: row["object_type"], objectID: row["object_id"], before: row["before"], after: row["after"],
            source: row["source"])
    }
}

import Foundation
import GatehouseCore
import GatehouseIdentity
import GatehouseStore
import HummingbirdBcrypt
import Synchronization

/// A developer account of the portal (`/portal/`): a person who works on one application and
/// signs in with its own name and bcrypt password. Developers are not admin users: they act only
/// on their application, through the portal's operations below.
public struct Developer: Sendable, Equatable, Codable {
    public var id: String
    /// A name or an e-mail address (letters, digits, `- _ . @`), unique among developers.
    public var name: String
    public var applicationID: String
    public var application: String
    /// The application's tenant (the admins who manage the account are of it).
    public var tenant: String?
    /// `active` or `disabled`.
    public var status: String
    public var createdAt: Double
}

/// A developer signed in to the portal: who performs a portal operation. Every operation reads
/// the account again in its own transaction, so a developer disabled or deleted after signing in
/// can do nothing more.
public struct DeveloperActor: Sendable, Equatable, AuditedActor {
    public var id: String
    public var name: String
    public var applicationID: String
    public var application: String
    public var tenant: String?
    /// Where the request came from, for the audit log.
    public var source: String

    /// `developer:dana`: developer names and admin user names are separate, and no admin user name
    /// contains a colon, so the audit log cannot confuse the two.
    public var auditName: String { "developer:\(name)" }
    public var auditRole: String { "developer" }
}

/// A service of the catalogue as a developer sees it: its name and approval mode, with its
/// application's subscription to it, if any. Every service is listed (a developer applies for
/// what it does not hold yet), but neither its owner tenant nor its route names (the gateway
/// configuration's, of every tenant): what a developer needs to apply, nothing more.
public struct PortalService: Sendable, Equatable, Codable {
    public var name: String
    /// `auto` or `manual`.
    public var approval: String
    public var subscriptionID: String?
    /// The subscription's state now (nil: none).
    public var state: String?
}

/// One of the application's subscriptions as its developers see it: who decided is named by role
/// ("an administrator"), never by admin user name.
public struct PortalSubscription: Sendable, Equatable, Codable {
    public var id: String
    public var service: String
    public var state: String
    public var appliedAt: Double
    public var changedAt: Double
    /// Who made the last transition: "an administrator", "automatic approval", "expiry", "you" or
    /// "developer NAME" (another developer of the application).
    public var decidedBy: String?
    public var reason: String?
    public var opinion: String?
    public var expiresAt: Double?
}

/// How a route shows its denials to callers (`exposure`, and whether it asked for `detailed`
/// explicitly, which also reveals operator detail such as WAF excerpts). The portal explains a
/// denial no further than its problem body did.
public struct PortalExposure: Sendable, Equatable {
    public var exposure: Exposure
    public var revealsOperatorDetail: Bool
    public init(exposure: Exposure, revealsOperatorDetail: Bool) {
        self.exposure = exposure
        self.revealsOperatorDetail = revealsOperatorDetail
    }
    /// For a route no longer configured: the least.
    public static let minimal = PortalExposure(exposure: .minimal, revealsOperatorDetail: false)
}

/// The explanation of one of the application's requests, as its developer may read it: the
/// operator's decision trace (`gatehouse explain`) without other parties' data. See
/// docs/console.md, "What the developer's explanation leaves out".
public struct PortalExplanation: Sendable, Equatable, Codable {
    /// One enforced check of the route's chain, in order: its id, type and outcome (its note, an
    /// operator's diagnostic, is left out; shadow-mode checks are not listed).
    public struct Step: Sendable, Equatable, Codable {
        public var check: String
        public var type: String
        /// `allow`, `deny`, `skip`, `not_reached`.
        public var outcome: String
    }

    /// The audit entry a denial cites (a revocation, a rejection), its actor named by role.
    public struct Citation: Sendable, Equatable, Codable {
        public var id: Int64
        /// "subscription revoked", …
        public var what: String
        public var by: String
        public var time: Double
        public var opinion: String?
    }

    public var requestID: String
    public var time: Double
    public var method: String
    /// As the call log stored it (credentials redacted).
    public var path: String
    public var host: String?
    public var status: Int
    /// `ALLOWED`, `DENIED` or `FAILED`, as `explain` says.
    public var verdict: String
    public var reason: String?
    public var reasonTitle: String?
    public var reasonMeaning: String?
    public var reasonFix: String?
    public var route: String?
    public var application: String
    public var keyID: String?
    public var totalMillis: Double
    public var decidingCheck: String?
    public var steps: [Step]
    /// The denial's own words, when the route's exposure showed them to the caller.
    public var detail: String?
    public var required: [String]
    public var presented: [String]
    public var hint: String?
    public var citation: Citation?
    /// What was withheld, in words (for the page).
    public var withheld: [String]
    /// The same explanation as `gatehouse explain` prints it (`ExplainText`), from the record as
    /// stripped here, with the cited audit entry named as above.
    public var text: String
}

// MARK: - Accounts, managed by admins

extension ControlPlane {
    static let developerSelect = """
        SELECT d.*, d.name AS sort_key, c.name AS application_name, c.tenant AS application_tenant
        FROM developers d JOIN consumers c ON c.id = d.application_id
        """

    static func developer(_ row: SQLRow) -> Developer {
        Developer(
            id: row["id"], name: row["name"], applicationID: row["application_id"], application: row["application_name"],
            tenant: row["application_tenant"], status: row["status"], createdAt: row["created_at"])
    }

    func developerRow(_ db: any SQLTransaction, _ ref: String) throws -> SQLRow? {
        try db.row(Self.developerSelect + " WHERE d.id = ? OR d.name = ?", [ref, ref])
    }

    /// bcrypt reads 72 bytes: a longer password would accept any text after them.
    static func validPassword(_ password: String) throws {
        guard password.count >= 8 else { throw ControlError.invalid("the password is shorter than 8 characters", field: "password") }
        guard password.utf8.count <= 72 else {
            throw ControlError.invalid("the password is longer than 72 bytes, all bcrypt reads", field: "password")
        }
    }

    /// bcrypt cost of developer passwords unless the store's accounts already use another: every
    /// account has the same cost, and an unknown name is checked against a decoy of that cost, so
    /// the answer's timing tells no names apart.
    public static let developerCost: UInt8 = 12

    /// Creates a developer account for an application; the password is stored as a bcrypt hash of
    /// `cost` (8 characters to 72 bytes, as for admin users). Everything is checked before the
    /// slow hash, which runs here (the command line); the admin API uses
    /// ``createDeveloper(_:name:application:password:cost:hashing:)``.
    public func createDeveloper(
        _ actor: ControlActor, name: String, application ref: String, password: String, cost: UInt8 = developerCost
    ) throws -> Developer {
        try checkNewDeveloper(actor, name: name, application: ref, password: password, cost: cost)
        return try insertDeveloper(actor, name: name, application: ref, hash: Bcrypt.hash(password, cost: cost))
    }

    /// The same, with the hash computed by `hashing` (the admin API: on the password-check queue,
    /// never on an event loop or the store's threads).
    public func createDeveloper(
        _ actor: ControlActor, name: String, application ref: String, password: String, cost: UInt8 = developerCost,
        hashing: (@escaping @Sendable () throws -> String) async throws -> String
    ) async throws -> Developer {
        try checkNewDeveloper(actor, name: name, application: ref, password: password, cost: cost)
        let hash = try await hashing { Bcrypt.hash(password, cost: cost) }
        return try insertDeveloper(actor, name: name, application: ref, hash: hash)
    }

    /// Authorised, valid, the name free and the cost the accounts' own: a refused caller never
    /// makes the store hash.
    func checkNewDeveloper(_ actor: ControlActor, name: String, application ref: String, password: String, cost: UInt8) throws {
        try require(actor, .operator, "creating a developer account")
        try Self.validName(name, "developer")
        try Self.validPassword(password)
        _ = try application(actor, ref)
        let (taken, existing) = try db.read { db in
            (
                try db.row("SELECT id FROM developers WHERE name = ?", [name]) != nil,
                try db.row("SELECT password_hash FROM developers LIMIT 1", []).flatMap { Self.bcryptCost($0["password_hash"]) }
            )
        }
        if taken { throw ControlError.conflict("developer \"\(name)\" already exists") }
        if let existing, existing != cost {
            throw ControlError.invalid(
                "bcrypt cost \(cost) differs from the developer accounts' \(existing): all share one cost, so that sign-in timing tells no names apart",
                field: "cost")
        }
    }

    func insertDeveloper(_ actor: ControlActor, name: String, application ref: String, hash: String) throws -> Developer {
        try Self.unique("developer \"\(name)\"") {
            try db.write { db in
                guard let row = try applicationRow(db, ref) else { throw missing(actor, "application \(ref)") }
                let app = Self.application(row)
                try requireTenant(actor, [app.tenant], "application \(ref)")
                let dev = Developer(
                    id: Self.newID("d_"), name: name, applicationID: app.id, application: app.name, tenant: app.tenant, status: "active",
                    createdAt: now())
                try db.execute(
                    "INSERT INTO developers (id, name, application_id, password_hash, status, created_at) VALUES (?, ?, ?, ?, 'active', ?)",
                    [dev.id, name, app.id, hash, dev.createdAt])
                try audit(db, actor, "developer.create", "developer", dev.id, tenants: [app.tenant], after: dev)
                return dev
            }
        }
    }

    /// The cost of a bcrypt hash (`$2b$12$…` → 12).
    static func bcryptCost(_ hash: String) -> UInt8? {
        let parts = hash.split(separator: "$")
        return parts.count >= 2 ? UInt8(parts[1]) : nil
    }

    /// Developer accounts visible to `actor` (its tenant's applications'), by name.
    public func developers(_ actor: ControlActor, application: String? = nil, page: PageRequest = PageRequest()) throws -> Page<Developer> {
        try require(actor, .viewer, "listing developer accounts")
        var conds: [String] = []
        var args: [any SQLBindable] = []
        if let scope = actor.tenant { conds.append("c.tenant = ?"); args.append(scope) }
        if let application { conds.append("(c.name = ? OR c.id = ?)"); args += [application, application] }
        return try self.page(Self.developerSelect, conditions: conds, arguments: args, key: "d.name", page: page, map: Self.developer)
    }

    public func developer(_ actor: ControlActor, _ ref: String) throws -> Developer {
        try require(actor, .viewer, "reading a developer account")
        guard let row = try db.read({ try developerRow($0, ref) }) else { throw missing(actor, "developer \(ref)") }
        let dev = Self.developer(row)
        try requireTenant(actor, [dev.tenant], "developer \(ref)")
        return dev
    }

    /// Disables (`disabled`) or re-enables (`active`) a developer account. A disabled developer
    /// cannot sign in, and its sessions are deleted in the same transaction: re-enabling the
    /// account brings none back.
    public func setDeveloperStatus(_ actor: ControlActor, _ ref: String, status: String) throws -> Developer {
        try require(actor, .operator, "changing a developer account")
        guard ["active", "disabled"].contains(status) else {
            throw ControlError.invalid("status \"\(DisplayText.escaped(status))\" is invalid: expected active or disabled", field: "status")
        }
        return try db.write { db in
            guard let row = try developerRow(db, ref) else { throw missing(actor, "developer \(ref)") }
            let before = Self.developer(row)
            try requireTenant(actor, [before.tenant], "developer \(ref)")
            var after = before
            after.status = status
            try db.execute("UPDATE developers SET status = ? WHERE id = ?", [status, before.id])
            if status == "disabled" { try Self.endDeveloperSessions(db, before.id) }
            try audit(
                db, actor, status == "active" ? "developer.enable" : "developer.disable", "developer", before.id, tenants: [before.tenant],
                before: before, after: after)
            return after
        }
    }

    /// Deletes a developer account and its sessions (its application, keys and subscriptions stay).
    public func deleteDeveloper(_ actor: ControlActor, _ ref: String) throws -> Developer {
        try require(actor, .operator, "deleting a developer account")
        return try db.write { db in
            guard let row = try developerRow(db, ref) else { throw missing(actor, "developer \(ref)") }
            let dev = Self.developer(row)
            try requireTenant(actor, [dev.tenant], "developer \(ref)")
            try db.execute("DELETE FROM developers WHERE id = ?", [dev.id])
            try Self.endDeveloperSessions(db, dev.id)
            try audit(db, actor, "developer.delete", "developer", dev.id, tenants: [dev.tenant], before: dev)
            return dev
        }
    }
}

extension ControlPlane {
    /// Deletes the portal sessions of developer `id` (`web_sessions` rows of kind `developer`).
    static func endDeveloperSessions(_ db: any SQLTransaction, _ id: String) throws {
        try db.execute("DELETE FROM web_sessions WHERE kind = 'developer' AND subject = ?", [id])
    }
}

// MARK: - Signing in

extension ControlPlane {
    static func portalUnauthenticated(_ why: String) -> ControlError {
        ControlError(
            Denial(
                code: .portalUnauthenticated, detail: why, required: ["a signed-in developer of an active account"],
                hint: "Sign in to the portal again; if your account was disabled, ask an administrator of your application's tenant."))
    }

    static func actor(_ dev: Developer, source: String) -> DeveloperActor {
        DeveloperActor(
            id: dev.id, name: dev.name, applicationID: dev.applicationID, application: dev.application, tenant: dev.tenant, source: source)
    }

    /// The developer behind a name and password. An unknown name costs a bcrypt verification too,
    /// so the answer's timing does not tell which names exist; a disabled account is named as such
    /// only to whoever knows its password.
    public func authenticateDeveloper(name: String, password: String, source: String) throws -> DeveloperActor {
        let (row, accountsCost) = try db.read { db in
            (
                try db.row(Self.developerSelect + " WHERE d.name = ?", [name]),
                try db.row("SELECT password_hash FROM developers LIMIT 1", []).flatMap { Self.bcryptCost($0["password_hash"]) }
            )
        }
        let hash = (row?["password_hash"] as String?) ?? Self.developerDecoy(cost: accountsCost ?? Self.developerCost)
        let ok = password.utf8.count <= 72 && Bcrypt.verify(password, hash: hash)
        guard ok, let row else { throw Self.portalUnauthenticated("the developer name or password is wrong") }
        let dev = Self.developer(row)
        guard dev.status == "active" else { throw Self.portalUnauthenticated("developer account \(dev.name) is disabled") }
        return Self.actor(dev, source: source)
    }

    /// A decoy hash of `cost` (made once per cost): an unknown name costs what a known one does.
    static func developerDecoy(cost: UInt8) -> String {
        if cost == 12 { return decoyHash }
        return decoys.withLock { d in
            if let h = d[cost] { return h }
            let h = Bcrypt.hash(UUID().uuidString, cost: cost)
            d[cost] = h
            return h
        }
    }
    static let decoys = Mutex<[UInt8: String]>([:])

    /// The developer of a portal session, read again: refused when the account was disabled or
    /// deleted since.
    public func developerActor(id: String, source: String) throws -> DeveloperActor {
        try db.read { db in Self.actor(try liveDeveloper(db, id: id), source: source) }
    }

    func liveDeveloper(_ db: any SQLTransaction, id: String) throws -> Developer {
        guard let row = try db.row(Self.developerSelect + " WHERE d.id = ?", [id]) else {
            throw Self.portalUnauthenticated("the developer account no longer exists")
        }
        let dev = Self.developer(row)
        guard dev.status == "active" else { throw Self.portalUnauthenticated("developer account \(dev.name) is disabled") }
        return dev
    }

    /// The account as stored now, which must still be active and of the same application; with
    /// `changing`, the application must be active too (a suspended application's developers read,
    /// but create no keys and apply for nothing).
    func liveDeveloper(_ db: any SQLTransaction, _ actor: DeveloperActor, changing: String? = nil) throws -> Developer {
        let dev = try liveDeveloper(db, id: actor.id)
        guard dev.applicationID == actor.applicationID else {
            throw Self.portalUnauthenticated("developer account \(dev.name) now belongs to another application")
        }
        if let changing, try db.row("SELECT status FROM consumers WHERE id = ?", [dev.applicationID])?["status"] as String? != "active" {
            throw ControlError(
                Denial(
                    code: .adminConflict, detail: "application \(dev.application) is suspended: \(changing) is not possible",
                    required: ["an active application"], presented: ["application \(dev.application) (suspended)"],
                    hint: "Ask an administrator of your application's tenant why the application is suspended."))
        }
        return dev
    }
}

// MARK: - What a developer may do

extension ControlPlane {
    static func notYours(_ what: String) -> ControlError {
        ControlError(
            Denial(
                code: .portalObjectNotYours, detail: "\(what) is not one of your application's",
                required: ["an object of your application"],
                hint: "Choose one from your application's lists in the portal."))
    }

    /// The name the portal gives to whoever made a transition: admins by role only.
    static func portalName(_ actor: String?, for dev: DeveloperActor) -> String? {
        guard let actor else { return nil }
        switch actor {
        case "auto-approval": return "automatic approval"
        case "system": return "expiry"
        case dev.auditName: return "you"
        default:
            if actor.hasPrefix("developer:") { return "developer " + actor.dropFirst("developer:".count) }
            return "an administrator"
        }
    }

    func portalSubscription(_ s: Subscription, for dev: DeveloperActor) -> PortalSubscription {
        PortalSubscription(
            id: s.id, service: s.service, state: s.state, appliedAt: s.appliedAt, changedAt: s.changedAt,
            decidedBy: Self.portalName(s.actor, for: dev), reason: s.reason, opinion: s.opinion, expiresAt: s.expiresAt)
    }

    /// The service catalogue, with the application's subscription to each (the owner tenant and
    /// the route names are left out: `PortalService`).
    public func portalServices(_ dev: DeveloperActor) throws -> [PortalService] {
        try applyExpiries()
        let t = now()
        return try db.read { db in
            _ = try liveDeveloper(db, dev)
            let subs = try db.rows(Self.subscriptionSelect + " WHERE s.application_id = ?", [dev.applicationID]).map {
                subscriptionValue($0, at: t)
            }
            let byService = Dictionary(subs.map { ($0.service, $0) }, uniquingKeysWith: { a, _ in a })
            return try db.rows("SELECT * FROM services ORDER BY name LIMIT 1000", []).map(Self.service).map { s in
                PortalService(
                    name: s.name, approval: s.approval, subscriptionID: byService[s.name]?.id,
                    state: byService[s.name]?.state)
            }
        }
    }

    /// The application's subscriptions and their states, by service.
    public func portalSubscriptions(_ dev: DeveloperActor) throws -> [PortalSubscription] {
        try applyExpiries()
        let t = now()
        return try db.read { db in
            _ = try liveDeveloper(db, dev)
            return try db.rows(Self.subscriptionSelect + " WHERE s.application_id = ? ORDER BY v.name", [dev.applicationID]).map {
                portalSubscription(subscriptionValue($0, at: t), for: dev)
            }
        }
    }

    /// Applies for the application's subscription to `service` with a reason (audited with the
    /// developer as the actor); a service with `auto` approval approves at once.
    public func portalApply(_ dev: DeveloperActor, service ref: String, reason: String?) throws -> PortalSubscription {
        let reason = try Self.text(reason, "reason")
        try applyExpiries()
        return try db.write { db in
            _ = try liveDeveloper(db, dev, changing: "applying for a subscription")
            guard let appRow = try applicationRow(db, dev.applicationID) else {
                throw Self.portalUnauthenticated("the developer's application no longer exists")
            }
            guard let svcRow = try serviceRow(db, ref) else { throw Self.notYours("service \(ref)") }
            let s = try apply(db, dev, app: Self.application(appRow), service: Self.service(svcRow), reason: reason)
            return portalSubscription(s, for: dev)
        }
    }

    /// Withdraws one of the application's pending applications. Another application's
    /// subscription, and one that does not exist, get the same answer.
    public func portalCancel(_ dev: DeveloperActor, subscription id: String, reason: String?) throws -> PortalSubscription {
        let reason = try Self.text(reason, "reason")
        return try db.write { db in
            _ = try liveDeveloper(db, dev)
            guard let row = try db.row(Self.subscriptionSelect + " WHERE s.id = ? AND s.application_id = ?", [id, dev.applicationID]) else {
                throw Self.notYours("subscription \(id)")
            }
            let before = subscriptionValue(row, at: now())
            try Self.checkTransition(before, from: ["pending"], to: "cancelled")
            let after = try transition(
                db, row, to: "cancelled", actor: dev, reason: reason, opinion: nil, expiresAt: before.expiresAt,
                action: "subscription.cancel",
                before: before)
            return portalSubscription(after, for: dev)
        }
    }

    /// The application's API keys (ids and dates; never a key).
    public func portalKeys(_ dev: DeveloperActor) throws -> [APIKeyInfo] {
        try db.read { db in
            _ = try liveDeveloper(db, dev)
            return try db.rows(
                "SELECT k.*, c.name AS consumer_name FROM api_keys k JOIN consumers c ON c.id = k.consumer_id WHERE k.consumer_id = ? ORDER BY k.created_at, k.id LIMIT 1000",
                [dev.applicationID]
            ).map(Self.keyInfo)
        }
    }

    /// Creates a key for the application; the result holds the key, shown this once.
    /// The most keys a developer may keep active for its application, and create in a day: every
    /// key, revoked ones too, is in the data plane's snapshot, so an outside developer must not
    /// grow it without bound. An administrator creates more through the admin API or the CLI.
    public static let portalMaxActiveKeys = 10
    public static let portalMaxKeysPerDay = 20

    public func portalCreateKey(_ dev: DeveloperActor, expiresAt: Double? = nil) throws -> CreatedKey {
        if let e = expiresAt, !(e > now()) { throw ControlError.invalid("expires_at is not in the future", field: "expires_at") }
        return try db.write { db in
            let d = try liveDeveloper(db, dev, changing: "creating a key")
            let t = now()
            let active: Int64 =
                try db.scalar(
                    "SELECT count(*) FROM api_keys WHERE consumer_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
                    [d.applicationID, t]) ?? 0
            guard active < Self.portalMaxActiveKeys else {
                throw ControlError.conflict(
                    "application \(d.application) has \(active) active keys, the most a developer may hold (\(Self.portalMaxActiveKeys)): revoke one first"
                )
            }
            let recent: Int64 =
                try db.scalar("SELECT count(*) FROM api_keys WHERE consumer_id = ? AND created_at > ?", [d.applicationID, t - 86400]) ?? 0
            guard recent < Self.portalMaxKeysPerDay else {
                throw ControlError.conflict(
                    "\(recent) keys of application \(d.application) were created in the last 24 hours, the most a developer may create in a day (\(Self.portalMaxKeysPerDay)): ask an administrator"
                )
            }
            let (key, id) = APIKeyFormat.generate()
            let info = APIKeyInfo(
                id: id, application: d.application, applicationID: d.applicationID, createdAt: now(), expiresAt: expiresAt, revokedAt: nil)
            try db.execute(
                "INSERT INTO api_keys (id, consumer_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                [id, d.applicationID, Data(APIKeyFormat.hash(key)), info.createdAt, expiresAt])
            try audit(db, dev, "key.create", "key", id, tenants: [d.tenant], after: info)
            return CreatedKey(key: key, info: info)
        }
    }

    /// Revokes one of the application's keys. Another application's key, and a key that does not
    /// exist, get the same answer.
    public func portalRevokeKey(_ dev: DeveloperActor, id: String) throws -> APIKeyInfo {
        try db.write { db in
            let d = try liveDeveloper(db, dev)
            guard
                let row = try db.row(
                    "SELECT k.*, c.name AS consumer_name FROM api_keys k JOIN consumers c ON c.id = k.consumer_id WHERE k.id = ? AND k.consumer_id = ?",
                    [id, d.applicationID])
            else { throw Self.notYours("key \(id)") }
            let before = Self.keyInfo(row)
            guard before.revokedAt == nil else { throw ControlError.conflict("key \(id) is already revoked") }
            var after = before
            after.revokedAt = now()
            try db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", [after.revokedAt, id])
            try audit(db, dev, "key.revoke", "key", id, tenants: [d.tenant], before: before, after: after)
            return after
        }
    }

    /// The application's usage over `since..<until` from the call log's rollups: requests,
    /// allowed, denied by reason, over time. Only rows of its own application are read; the
    /// overview's application list is left empty.
    public func portalUsage(_ dev: DeveloperActor, since: Double, until: Double, bucket: Double = 3600) throws -> Overview {
        _ = try db.read { db in try liveDeveloper(db, dev) }
        var o = try overview(
            since: since, until: until, bucket: bucket, top: 10, filter: (condition: "application_id = ?", argument: dev.applicationID))
        o.topDeniedApplications = []
        return o
    }
}

// MARK: - Explaining a request

extension ControlPlane {
    static func requestNotYours(_ requestID: String) -> ControlError {
        ControlError(
            Denial(
                code: .portalRequestNotYours,
                detail:
                    "request \(DisplayText.escaped(String(requestID.prefix(256)))) is not one the gateway identified as a call of your application",
                required: ["the request id of a call made with your application's credentials"],
                hint:
                    "Paste the X-Request-Id of a request made with one of your application's keys; requests refused before the application was identified (no key, an unknown key) cannot be attributed to it."
            ))
    }

    /// The explanation of one of the application's requests, without other parties' data.
    /// `exposure` tells how the request's route shows denials (from the running configuration).
    ///
    /// A request id that is not the application's, whether it belongs to another application or
    /// to none, gets the same `portal_request_not_yours`.
    public func portalExplain(
        _ dev: DeveloperActor, requestID: String, exposure: (_ route: String?) -> PortalExposure
    ) throws -> PortalExplanation {
        let (record, entry, dev2) = try db.read { db -> (CallRecord, AuditEntry?, Developer) in
            let d = try liveDeveloper(db, dev)
            // The application id the gateway recorded, never the consumer name (a token's subject
            // is logged there, and could be chosen to equal an application's name).
            guard
                requestID.utf8.count <= CallLogLimits.requestID,
                let record = try db.row(
                    "SELECT * FROM calls WHERE request_id = ? AND application_id = ? ORDER BY \(db.dialect.callKey) LIMIT 1",
                    [requestID, d.applicationID]
                ).map(CallRecord.init(row:))
            else { throw Self.requestNotYours(requestID) }
            let entry = try record.auditEntry.flatMap { id in
                try db.row("SELECT * FROM audit_log WHERE id = ?", [id]).map(AuditEntry.init(row:))
            }
            return (record, entry, d)
        }
        return Self.explanation(record, entry: entry, developer: dev, application: dev2.application, exposure: exposure(record.route))
    }

    /// The developer's view of a call record, built from its fields, never by searching its text
    /// for names in the store (which would tell which names exist):
    ///
    /// - `minimal` exposure: what the problem body showed, the reason (with the catalogue's
    ///   meaning); no check ids, no steps.
    /// - `detailed`: the enforced steps (shadow-mode steps never: they decided nothing, and are
    ///   the operator's trial), the deciding check, and the denial's words, except a WAF's detail
    ///   unless the route asks for `detailed` itself: the call log keeps the detail and the
    ///   inspection's operator-only excerpts in one text, which is withheld whole rather than cut
    ///   by pattern. A subscription denial's decider is named by role and another tenant as such
    ///   (`developerText`).
    static func explanation(
        _ r: CallRecord, entry: AuditEntry?, developer dev: DeveloperActor, application: String, exposure: PortalExposure
    ) -> PortalExplanation {
        var withheld: [String] = ["the client address, the upstream and its timing, and each check's operator notes"]
        let verdict = r.reason == nil ? "ALLOWED" : (r.status >= 500 ? "FAILED" : "DENIED")
        let info = r.reason.flatMap { ReasonCatalogue.entry(ReasonCode($0)) }
        let detailed = exposure.exposure == .detailed
        let enforced = detailed ? r.trace.entries.filter { $0.mode != .shadow } : []
        let steps = enforced.map { PortalExplanation.Step(check: $0.check, type: $0.type, outcome: $0.outcome.rawValue) }
        let decidingType = r.trace.entries.first { $0.check == r.decidingCheck }?.type
        var detail: String?, required: [String] = [], presented: [String] = [], hint: String?
        if !detailed {
            withheld.append(
                "the checks, the deciding check and the denial's detail, required and presented values and hint (the route answers with minimal exposure; the reason's meaning stands in)"
            )
        } else if r.reason != nil {
            let words = { (text: String) in decidingType == "subscription" ? developerText(text, for: dev) : text }
            detail = r.detail.map(words)
            required = r.required.map(words)
            presented = r.presented.map(words)
            hint = r.hint.map(words)
            // A WAF's detail carries its operator-only excerpts. A deciding check whose type the
            // stored trace does not name (cut at its entry or name limits) counts as one: the
            // detail is withheld unless the check is known not to be a WAF.
            if decidingType == "waf" || decidingType == nil, !exposure.revealsOperatorDetail, detail != nil {
                detail = nil
                withheld.append("the inspection's detail, with its excerpts of what matched (the route does not ask for detailed exposure)")
            }
        }
        var citation: PortalExplanation.Citation?
        if let entry {
            var opinion: String?
            if let data = entry.after?.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                entry.action != "subscription.apply"
            {
                opinion = (entry.action == "subscription.cancel" ? object["reason"] : object["opinion"]) as? String
            }
            citation = PortalExplanation.Citation(
                id: entry.id, what: citationVerbs[entry.action] ?? entry.action,
                by: portalName(entry.actor, for: dev) ?? "an administrator",
                time: entry.time, opinion: opinion)
        }
        // The operator's renderer over the record as the developer may see it.
        var stripped = r
        stripped.client = "(not shown)"
        stripped.consumer = application
        stripped.upstreamTarget = nil
        stripped.upstreamMillis = nil
        stripped.facts = nil
        stripped.auditEntry = nil
        stripped.decidingCheck = detailed ? r.decidingCheck : nil
        stripped.trace = DecisionTrace(
            entries: enforced.map {
                var e = $0; e.note = ""; return e
            })
        stripped.detail = detail
        stripped.required = required
        stripped.presented = presented
        stripped.hint = hint
        var text = ExplainText.render(stripped)
        if let c = citation {
            text +=
                "\n"
                + DisplayText.escaped(
                    "Audit entry \(c.id): \(c.what) by \(c.by) at \(TimeText.iso(c.time))\(c.opinion.map { ": '\($0)'" } ?? "")")
        }
        return PortalExplanation(
            requestID: r.requestID, time: r.time, method: r.method, path: r.path, host: r.host, status: r.status, verdict: verdict,
            reason: r.reason, reasonTitle: info?.title, reasonMeaning: info?.meaning, reasonFix: info?.fix, route: r.route,
            application: application, keyID: r.keyID, totalMillis: r.totalMillis, decidingCheck: detailed ? r.decidingCheck : nil,
            steps: steps, detail: detail, required: required, presented: presented, hint: hint, citation: citation, withheld: withheld,
            text: text)
    }

    /// A subscription check's words as the developer reads them, by the check's own phrasing and
    /// whatever names it holds (no store lookup): `by NAME at` → the decider by role
    /// (`portalName`), `tenant NAME` → `another tenant` unless it is the developer's own. Only the
    /// subscription check's texts are rewritten: they are the gateway's, never the caller's.
    static func developerText(_ text: String, for dev: DeveloperActor) -> String {
        var out = text.replacing(#/ by (?<who>[^\s]+) at /#) { m in
            " by \(portalName(String(m.output.who), for: dev) ?? "an administrator") at "
        }
        out = out.replacing(#/tenant (?<name>[A-Za-z0-9._@-]*[A-Za-z0-9_@-])/#) { m in
            String(m.output.name) == dev.tenant ? String(m.output.0) : "another tenant"
        }
        return out
    }

    static let citationVerbs = [
        "subscription.revoke": "subscription revoked", "subscription.reject": "subscription rejected",
        "subscription.cancel": "application cancelled", "subscription.expire": "subscription expired",
        "subscription.approve": "subscription approved", "subscription.apply": "subscription applied for",
    ]
}

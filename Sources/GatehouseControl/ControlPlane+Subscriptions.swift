import Foundation
import GatehouseCore
import GatehouseIdentity
import GatehouseStore

/// Subscriptions: `pending → approved | rejected | cancelled`, `approved → revoked | expired`.
/// A closed subscription (rejected, cancelled, revoked, expired) can be applied for again, which
/// reopens it as `pending` (or `approved` for a service with `auto` approval). Every transition is
/// a row of `subscription_events` and an audit entry.
extension ControlPlane {
    static let subscriptionSelect = """
        SELECT s.*, s.id AS sort_key, v.name AS service_name, v.tenant AS service_tenant, c.name AS application_name,
            c.tenant AS application_tenant
        FROM subscriptions s JOIN services v ON v.id = s.service_id JOIN consumers c ON c.id = s.application_id
        """

    func subscriptionValue(_ row: SQLRow, at time: Double) -> Subscription {
        let r = SQLiteStore.subscription(row)
        return Subscription(
            id: r.id, applicationID: r.applicationID, application: row["application_name"], service: r.service,
            state: r.effectiveState(at: time), appliedAt: r.appliedAt, changedAt: r.changedAt, actor: r.actor, reason: r.reason,
            opinion: r.opinion, expiresAt: r.expiresAt, auditEntry: r.auditEntry, history: nil)
    }

    /// Rewrites approved subscriptions past their expiry as `expired` (actor `system`), each with its
    /// event and audit entry. The data plane treats them as expired from the moment of expiry
    /// whether or not this has run; the admin API runs it before every subscription read.
    @discardableResult
    public func applyExpiries() throws -> Int {
        let t = now()
        return try db.write { db in
            let due = try db.rows(Self.subscriptionSelect + " WHERE s.state = 'approved' AND s.expires_at <= ?", [t])
            for row in due {
                // As stored (approved), not as read now (expired).
                let before = subscriptionValue(row, at: -.infinity)
                try transition(
                    db, row, to: "expired", actor: ControlActor(name: "system", role: .owner, source: "expiry"), reason: nil, opinion: nil,
                    expiresAt: before.expiresAt, action: "subscription.expire", before: before)
            }
            return due.count
        }
    }

    /// Writes a transition: the row, its event and its audit entry. Returns the new value.
    @discardableResult
    func transition(
        _ db: any SQLTransaction, _ row: SQLRow, to state: String, actor: some AuditedActor, reason: String?, opinion: String?,
        expiresAt: Double?,
        action: String, before: Subscription?
    ) throws -> Subscription {
        let t = now()
        let id: String = row["id"]
        var after = subscriptionValue(row, at: t)
        after.state = state
        after.changedAt = t
        after.actor = actor.auditName
        switch state {
        case "pending":
            after.appliedAt = t
            after.reason = reason
            after.opinion = nil
        case "cancelled": if let reason { after.reason = reason }
        case "expired": break
        default: after.opinion = opinion
        }
        after.expiresAt = expiresAt
        let auditID = try audit(
            db, actor, action, "subscription", id, tenants: [row["application_tenant"], row["service_tenant"]], before: before, after: after
        )
        after.auditEntry = auditID
        try db.execute(
            """
            UPDATE subscriptions SET state = ?, applied_at = ?, changed_at = ?, actor = ?, reason = ?, opinion = ?, expires_at = ?,
                audit_id = ? WHERE id = ?
            """,
            [state, after.appliedAt, t, actor.auditName, after.reason, after.opinion, expiresAt, auditID, id])
        try db.execute(
            """
            INSERT INTO subscription_events (subscription_id, from_state, to_state, actor, time, reason, opinion, audit_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [id, before?.state, state, actor.auditName, t, state == "pending" ? reason : nil, opinion, auditID])
        return after
    }

    /// Applies for `application`'s subscription to `service` with the applicant's reason. With the
    /// service's `auto` approval it is approved at once (by `auto-approval`).
    public func apply(_ actor: ControlActor, application appRef: String, service serviceRef: String, reason: String?) throws -> Subscription
    {
        try require(actor, .operator, "applying for a subscription")
        let reason = try Self.text(reason, "reason")
        return try db.write { db in
            guard let appRow = try applicationRow(db, appRef) else { throw missing(actor, "application \(appRef)") }
            let app = Self.application(appRow)
            try requireTenant(actor, [app.tenant], "application \(appRef)")
            guard let svcRow = try serviceRow(db, serviceRef) else { throw ControlError.notFound("no service \(serviceRef)") }
            return try apply(db, actor, app: app, service: Self.service(svcRow), reason: reason)
        }
    }

    /// An application for `app`'s subscription to `svc`, in the caller's transaction, by an
    /// operator or by one of the application's developers (the caller has authorised it).
    func apply(
        _ db: any SQLTransaction, _ actor: some AuditedActor, app: Application, service svc: APIService, reason: String?
    ) throws
        -> Subscription
    {
        let t = now()
        var row = try db.row(Self.subscriptionSelect + " WHERE s.application_id = ? AND s.service_id = ?", [app.id, svc.id])
        var before: Subscription?
        if let existing = row {
            let current = subscriptionValue(existing, at: t)
            if current.state == "pending" || current.state == "approved" {
                throw ControlError(
                    Denial(
                        code: .subscriptionTransitionInvalid,
                        detail:
                            "application \(app.name) already has a \(current.state) subscription to service \(svc.name) (\(current.id))",
                        required: ["a closed subscription (rejected, cancelled, revoked or expired) to apply again"],
                        presented: ["state \(current.state)"]))
            }
            before = current
        } else {
            let id = Self.newID("sub_")
            try db.execute(
                """
                INSERT INTO subscriptions (id, application_id, service_id, state, applied_at, changed_at, actor, reason)
                VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)
                """,
                [id, app.id, svc.id, t, t, actor.auditName, reason])
            row = try db.row(Self.subscriptionSelect + " WHERE s.id = ?", [id])
        }
        guard let row else { throw ControlError.conflict("the subscription could not be read back") }
        var after = try transition(
            db, row, to: "pending", actor: actor, reason: reason, opinion: nil, expiresAt: nil, action: "subscription.apply",
            before: before)
        // A subscription the service's side revoked or rejected is reopened for a decision,
        // never approved again by `auto`: the owners' decision stands until they change it.
        let decidedAgainst = before.map { $0.state == "revoked" || $0.state == "rejected" } ?? false
        if svc.approval == "auto", !decidedAgainst,
            let fresh = try db.row(Self.subscriptionSelect + " WHERE s.id = ?", [after.id])
        {
            after = try transition(
                db, fresh, to: "approved", actor: ControlActor(name: "auto-approval", role: .owner, source: actor.source), reason: nil,
                opinion: "service \(svc.name) approves automatically", expiresAt: nil, action: "subscription.approve", before: after)
        }
        return after
    }

    /// The approver's side: approve (optionally until `expiresAt`), reject or revoke, each with an
    /// opinion; the service's owner tenant decides.
    public func approve(_ actor: ControlActor, _ id: String, opinion: String?, expiresAt: Double? = nil) throws -> Subscription {
        if let e = expiresAt, e <= now() { throw ControlError.invalid("expires_at is in the past", field: "expires_at") }
        return try decide(
            actor, id, from: ["pending"], to: "approved", opinion: opinion, expiresAt: expiresAt, action: "subscription.approve")
    }

    public func reject(_ actor: ControlActor, _ id: String, opinion: String?) throws -> Subscription {
        try decide(actor, id, from: ["pending"], to: "rejected", opinion: opinion, expiresAt: nil, action: "subscription.reject")
    }

    public func revoke(_ actor: ControlActor, _ id: String, opinion: String?) throws -> Subscription {
        try decide(actor, id, from: ["approved"], to: "revoked", opinion: opinion, expiresAt: nil, action: "subscription.revoke")
    }

    /// The applicant's side: withdraw a pending application.
    public func cancel(_ actor: ControlActor, _ id: String, reason: String?) throws -> Subscription {
        try require(actor, .operator, "cancelling a subscription")
        let reason = try Self.text(reason, "reason")
        return try db.write { db in
            guard let row = try db.row(Self.subscriptionSelect + " WHERE s.id = ?", [id]) else {
                throw missing(actor, "subscription \(id)")
            }
            try requireTenant(actor, [row["application_tenant"]], "subscription \(id)")
            let before = subscriptionValue(row, at: now())
            try Self.checkTransition(before, from: ["pending"], to: "cancelled")
            return try transition(
                db, row, to: "cancelled", actor: actor, reason: reason, opinion: nil, expiresAt: before.expiresAt,
                action: "subscription.cancel",
                before: before)
        }
    }

    func decide(
        _ actor: ControlActor, _ id: String, from: [String], to: String, opinion: String?, expiresAt: Double?, action: String
    ) throws
        -> Subscription
    {
        try require(actor, .operator, "deciding on a subscription")
        let opinion = try Self.text(opinion, "opinion")
        return try db.write { db in
            guard let row = try db.row(Self.subscriptionSelect + " WHERE s.id = ?", [id]) else {
                throw missing(actor, "subscription \(id)")
            }
            // The service's owners decide; an application's own tenant cannot approve itself.
            if actor.tenant != nil {
                let visible = [row["application_tenant"], row["service_tenant"]].contains { ($0 as String?) == actor.tenant }
                guard visible else { throw ControlError.tenantMismatch(actor, "subscription \(id)") }
                guard (row["service_tenant"] as String?) == actor.tenant else {
                    let owner: String? = row["service_tenant"]
                    throw ControlError(
                        Denial(
                            code: .adminTenantMismatch,
                            detail:
                                "only the service's owner tenant (\(owner ?? "none: unscoped admins")) decides on its subscriptions; \(actor.name) is scoped to tenant \(actor.tenant ?? "?")",
                            required: ["admin of tenant \(owner ?? "(unscoped)")"], presented: ["admin of tenant \(actor.tenant ?? "?")"]))
                }
            }
            let before = subscriptionValue(row, at: now())
            try Self.checkTransition(before, from: from, to: to)
            return try transition(
                db, row, to: to, actor: actor, reason: nil, opinion: opinion, expiresAt: to == "approved" ? expiresAt : before.expiresAt,
                action: action, before: before)
        }
    }

    static func checkTransition(_ s: Subscription, from: [String], to: String) throws {
        guard from.contains(s.state) else {
            throw ControlError(
                Denial(
                    code: .subscriptionTransitionInvalid,
                    detail:
                        "subscription \(s.id) is \(s.state); it can become \(to) only from \(from.joined(separator: " or ")) (pending → approved | rejected | cancelled, approved → revoked | expired)",
                    required: from.map { "state \($0)" }, presented: ["state \(s.state)"]))
        }
    }

    public func subscription(_ actor: ControlActor, _ id: String) throws -> Subscription {
        try require(actor, .viewer, "reading a subscription")
        try applyExpiries()
        return try db.read { db in
            guard let row = try db.row(Self.subscriptionSelect + " WHERE s.id = ?", [id]) else {
                throw missing(actor, "subscription \(id)")
            }
            try requireTenant(actor, [row["application_tenant"], row["service_tenant"]], "subscription \(id)")
            var s = subscriptionValue(row, at: now())
            s.history = try db.rows(
                "SELECT * FROM subscription_events WHERE subscription_id = ? ORDER BY id", [id]
            ).map {
                SubscriptionEvent(
                    from: $0["from_state"], to: $0["to_state"], actor: $0["actor"], time: $0["time"], reason: $0["reason"],
                    opinion: $0["opinion"], auditEntry: $0["audit_id"])
            }
            return s
        }
    }

    /// Subscriptions visible to `actor` (its tenant's applications', and those to its tenant's
    /// services), filtered by state, application and service.
    public func subscriptions(
        _ actor: ControlActor, state: String? = nil, application: String? = nil, service: String? = nil, page: PageRequest = PageRequest()
    ) throws -> Page<Subscription> {
        try require(actor, .viewer, "listing subscriptions")
        try applyExpiries()
        var conds: [String] = []
        var args: [any SQLBindable] = []
        if let scope = actor.tenant { conds.append("(c.tenant = ? OR v.tenant = ?)"); args += [scope, scope] }
        if let state { conds.append("s.state = ?"); args.append(state) }
        if let application { conds.append("(c.name = ? OR c.id = ?)"); args += [application, application] }
        if let service { conds.append("(v.name = ? OR v.id = ?)"); args += [service, service] }
        let t = now()
        return try self.page(Self.subscriptionSelect, conditions: conds, arguments: args, key: "s.id", page: page) {
            self.subscriptionValue($0, at: t)
        }
    }
}

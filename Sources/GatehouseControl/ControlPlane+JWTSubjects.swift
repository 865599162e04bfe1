import GatehouseCore
import GatehouseStore

/// JWT subjects mapped to applications: the `subscription` policy treats a caller whose token has
/// this issuer and subject as the application.
extension ControlPlane {
    func applicationForChange(_ db: any SQLTransaction, _ actor: ControlActor, _ ref: String) throws -> Application {
        guard let row = try applicationRow(db, ref) else { throw missing(actor, "application \(ref)") }
        let app = Self.application(row)
        try requireTenant(actor, [app.tenant], "application \(ref)")
        return app
    }

    public func addJWTSubject(_ actor: ControlActor, application ref: String, issuer: String, subject: String) throws -> JWTSubject {
        // A token's issuer and subject belong to no one tenant: a tenant that could map them would
        // take over another tenant's token callers (and their subscriptions). Unscoped admins only.
        try require(actor, .admin, "mapping a JWT subject to an application")
        if actor.tenant != nil { throw ControlError.tenantMismatch(actor, "mapping token issuers and subjects (unscoped admins only)") }
        for (field, value) in [("issuer", issuer), ("subject", subject)] where value.isEmpty || value.count > 512 {
            throw ControlError.invalid("\(field) must be 1 to 512 characters", field: field)
        }
        return try Self.unique("a mapping of issuer \(DisplayText.escaped(issuer)) and subject \(DisplayText.escaped(subject))") {
            try db.write { db in
                let app = try applicationForChange(db, actor, ref)
                let mapping = JWTSubject(issuer: issuer, subject: subject, applicationID: app.id, application: app.name, createdAt: now())
                try db.execute(
                    "INSERT INTO jwt_subjects (issuer, subject, application_id, created_at) VALUES (?, ?, ?, ?)",
                    [issuer, subject, app.id, mapping.createdAt])
                try audit(db, actor, "application.jwt_subject_add", "application", app.id, tenants: [app.tenant], after: mapping)
                return mapping
            }
        }
    }

    public func removeJWTSubject(_ actor: ControlActor, application ref: String, issuer: String, subject: String) throws {
        try require(actor, .operator, "unmapping a JWT subject")
        try db.write { db in
            let app = try applicationForChange(db, actor, ref)
            let removed = try db.execute(
                "DELETE FROM jwt_subjects WHERE issuer = ? AND subject = ? AND application_id = ?", [issuer, subject, app.id])
            guard removed > 0 else {
                throw ControlError.notFound(
                    "application \(ref) has no JWT subject \(DisplayText.escaped(issuer))|\(DisplayText.escaped(subject))")
            }
            try audit(
                db, actor, "application.jwt_subject_remove", "application", app.id, tenants: [app.tenant],
                before: JWTSubject(issuer: issuer, subject: subject, applicationID: app.id, application: app.name, createdAt: 0))
        }
    }

    public func jwtSubjects(_ actor: ControlActor, application ref: String) throws -> [JWTSubject] {
        let app = try application(actor, ref)
        return try db.read { db in
            try db.rows("SELECT * FROM jwt_subjects WHERE application_id = ? ORDER BY issuer, subject", [app.id])
                .map {
                    JWTSubject(
                        issuer: $0["issuer"], subject: $0["subject"], applicationID: app.id, application: app.name,
                        createdAt: $0["created_at"])
                }
        }
    }
}

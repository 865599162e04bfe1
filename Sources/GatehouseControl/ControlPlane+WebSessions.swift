import Foundation
import GatehouseCore
import GatehouseStore

/// The control plane's side of the browser sessions (the console's and the portal's
/// `web_sessions` rows): sign-ins and sign-outs in the audit log, and ending an admin user's
/// sessions.
extension ControlPlane {
    /// Records a browser sign-in or sign-out in the audit log (`console.sign_in`,
    /// `console.sign_out`, `portal.sign_in`, `portal.sign_out`) as done by `actor` on its own
    /// account (`objectType` `admin_user` or `developer`, `objectID` its id).
    public func auditWebSession(
        _ actor: some AuditedActor, _ action: String, objectType: String, objectID: String, tenant: String?
    ) throws {
        try db.write { db in try audit(db, actor, action, objectType, objectID, tenants: [tenant]) }
    }

    /// Ends every console session of admin user `ref` (id or name), in one transaction with its
    /// audit entry (`admin_user.end_sessions`): anyone for itself ("sign out everywhere"), an
    /// admin for the users it manages (its tenant, a role no higher than its own).
    @discardableResult
    public func endAdminSessions(_ actor: ControlActor, user ref: String) throws -> AdminUser {
        try db.write { db in
            // The role is checked before the lookup, so that a non-admin learns nothing of which
            // users exist.
            let row = try adminUserRow(db, ref)
            let isSelf = actor != .cli && row.map { Self.adminUser($0).name == actor.name } == true
            if !isSelf { try require(actor, .admin, "ending an admin user's sessions") }
            guard let row else { throw missing(actor, "admin user \(ref)") }
            let user = Self.adminUser(row)
            if !isSelf { try requireManage(actor, role: user.role, tenant: user.tenant, "ending an admin user's sessions") }
            try db.execute("DELETE FROM web_sessions WHERE kind = 'admin' AND subject = ?", [user.id])
            try audit(db, actor, "admin_user.end_sessions", "admin_user", user.id, tenants: [user.tenant])
            return user
        }
    }
}

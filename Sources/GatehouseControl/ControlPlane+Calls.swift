import Foundation
import GatehouseCore
import GatehouseStore

/// One call-log record with the audit entry its denial cites, if any (the admin API's answer to
/// "why was this request denied?").
public struct CallExplanation: Sendable, Codable {
    public var record: CallRecord
    public var audit: AuditEntry?
}

/// The call log as admins read it: newest first, filtered like `gatehouse logs` (and by a
/// period); a tenant-scoped actor sees only the calls of its tenant's applications.
extension ControlPlane {
    public func calls(
        _ actor: ControlActor, status: Int? = nil, reason: String? = nil, route: String? = nil, application: String? = nil,
        since: Double? = nil, until: Double? = nil, page: PageRequest = PageRequest()
    ) throws -> Page<CallRecord> {
        try require(actor, .viewer, "reading the call log")
        var conds: [String] = []
        var args: [any SQLBindable] = []
        // Scoped by the application's id the gateway recorded, never by the free-text consumer
        // name (a token's subject is logged there, and a tenant may name an application anything).
        if let scope = actor.tenant {
            conds.append("application_id IN (SELECT id FROM consumers WHERE tenant = ?)")
            args.append(scope)
        }
        if let status { conds.append("status = ?"); args.append(status) }
        if let reason { conds.append("reason = ?"); args.append(reason) }
        if let route { conds.append("route = ?"); args.append(route) }
        if let application { conds.append("consumer = ?"); args.append(application) }
        // `since` inclusive, `until` exclusive, as the overview's periods.
        if let since { conds.append("time >= ?"); args.append(since) }
        if let until { conds.append("time < ?"); args.append(until) }
        return try self.page(
            "SELECT \(db.dialect.callKey) AS sort_key, * FROM calls", conditions: conds, arguments: args, key: db.dialect.callKey,
            integerKey: true, descending: true,
            page: page, map: CallRecord.init(row:))
    }

    /// The record of one request id, with the audit entry its denial cites.
    public func call(_ actor: ControlActor, requestID: String) throws -> CallExplanation {
        try require(actor, .viewer, "reading the call log")
        guard
            let record = try db.read({
                try $0.row("SELECT * FROM calls WHERE request_id = ? ORDER BY \(db.dialect.callKey) LIMIT 1", [requestID])
            }).map(CallRecord.init(row:))
        else { throw missing(actor, "call \(requestID)") }
        if let scope = actor.tenant {
            let tenant: String? = try db.read { db in
                try db.scalar("SELECT tenant FROM consumers WHERE id = ?", [record.applicationID ?? ""])
            }
            guard tenant == scope else { throw ControlError.tenantMismatch(actor, "call \(requestID)") }
        }
        let audit = try record.auditEntry.flatMap { try auditEntry(id: $0) }
        return CallExplanation(record: record, audit: audit)
    }
}

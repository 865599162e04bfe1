import Foundation
import GatehouseControl
import GatehouseCore
import GatehouseStore
import Hummingbird

/// The list pages (call log, applications, keys, services, subscriptions, tenants, admin users,
/// audit log), the request page and the subscription decisions. Filters and pagination are the
/// admin API's (`limit`, `cursor`; the next page's link carries the filters).
extension ConsoleRoutes {
    func addListPages<Context: WebRequestContext>(to console: RouterGroup<Context>) {
        let routes = self
        get(console, "calls") { request, _, user in try routes.calls(request, user) }
        get(console, "calls/:id") { _, context, user in
            try routes.call(try context.parameters.require("id"), user)
        }
        get(console, "applications") { request, _, user in try routes.applications(request, user) }
        get(console, "keys") { request, _, user in try routes.keys(request, user) }
        get(console, "services") { request, _, user in try routes.services(request, user) }
        get(console, "subscriptions") { request, _, user in try routes.subscriptions(request, user) }
        post(console, "subscriptions/:id/approve", Decision.self) { _, context, user, form in
            _ = try routes.control.approve(user.actor, try context.parameters.require("id"), opinion: form.opinion?.nonEmpty)
            return "/console/subscriptions"
        }
        post(console, "subscriptions/:id/reject", Decision.self) { _, context, user, form in
            _ = try routes.control.reject(user.actor, try context.parameters.require("id"), opinion: form.opinion?.nonEmpty)
            return "/console/subscriptions"
        }
        get(console, "tenants") { request, _, user in try routes.tenants(request, user) }
        get(console, "admin-users") { request, _, user in try routes.adminUsers(request, user) }
        get(console, "audit") { request, _, user in try routes.audit(request, user) }
    }

    struct Decision: Decodable { var opinion: String? }

    // MARK: Values the list template reads

    static func cell(_ text: String?, href: String? = nil, code: Bool = false, num: Bool = false) -> [String: Any] {
        var c: [String: Any] = ["text": text ?? "–"]
        if let href { c["href"] = href }
        if code { c["code"] = true }
        if num { c["num"] = true }
        return c
    }

    static func timeCell(_ t: Double?) -> [String: Any] {
        guard let t else { return cell(nil) }
        return ["text": TimeText.iso(t), "time": TimeText.iso(t)]
    }

    static func input(_ name: String, _ label: String, _ request: Request, placeholder: String? = nil) -> [String: Any] {
        var f: [String: Any] = ["name": name, "label": label, "value": request.uri.queryParameters.get(name) ?? ""]
        if let placeholder { f["placeholder"] = placeholder }
        return f
    }

    static func select(_ name: String, _ label: String, _ request: Request, _ options: [(value: String, label: String)]) -> [String: Any] {
        let current = request.uri.queryParameters.get(name) ?? ""
        return [
            "name": name, "label": label, "is_select": true,
            "options": options.map { ["value": $0.value, "label": $0.label, "selected": $0.value == current] as [String: Any] },
        ]
    }

    /// A query parameter, nil when absent or empty.
    static func param(_ request: Request, _ name: String) -> String? {
        guard let v = request.uri.queryParameters.get(name), !v.isEmpty else { return nil }
        return v
    }

    /// The page asked for: `limit` (1–500, 50 by default) and `cursor`.
    static func page(_ request: Request, limit: Int = 50) throws -> PageRequest {
        var page = PageRequest(limit: limit, cursor: param(request, "cursor"))
        if let l = param(request, "limit") {
            guard let n = Int(l) else { throw ControlError.invalid("limit is not a number", field: "limit") }
            page.limit = n
        }
        return page
    }

    /// The next page's link: this page's filters and the cursor.
    static func next(_ path: String, _ request: Request, _ cursor: String?) -> String? {
        guard let cursor else { return nil }
        var parts: [String] = []
        for (k, v) in request.uri.queryParameters where k != "cursor" && !v.isEmpty {
            parts.append("\(WebPages.queryEscaped(String(k)))=\(WebPages.queryEscaped(String(v)))")
        }
        parts.append("cursor=" + WebPages.queryEscaped(cursor))
        return path + "?" + parts.sorted().joined(separator: "&")
    }

    func list(
        _ user: ConsoleUser, path: String, heading: String, intro: String? = nil, tableID: String,
        filters: [[String: Any]] = [], columns: [String], rows: [[[String: Any]]], next: String?, empty: String
    ) -> Response {
        var values: [String: Any] = [
            "heading": heading, "action": path, "table_id": tableID, "filters": filters, "has_filters": !filters.isEmpty,
            "columns": columns, "column_count": columns.count, "rows": rows.map { ["cells": $0] }, "empty": empty,
        ]
        if let intro { values["intro"] = intro }
        if let next { values["next"] = next }
        return pages.page("list", values, frame: frame(heading, user, current: path))
    }

    // MARK: Call log

    /// `since` / `until`: a duration before now (`15m`, `24h`, `7d`) or an ISO 8601 time.
    func time(_ request: Request, _ name: String) throws -> Double? {
        guard let text = Self.param(request, name) else { return nil }
        if let d = TimeText.parseDuration(text), d >= 0 { return now() - d }
        if let date = ISO8601DateFormatter().date(from: text) { return date.timeIntervalSince1970 }
        throw ControlError.invalid(
            "\(name) \"\(DisplayText.untrusted(text, limit: 40))\" is neither a duration (15m, 24h, 7d) nor an ISO 8601 time", field: name)
    }

    func calls(_ request: Request, _ user: ConsoleUser) throws -> Response {
        var status: Int?
        if let s = Self.param(request, "status") {
            guard let v = Int(s) else { throw ControlError.invalid("status is not a number", field: "status") }
            status = v
        }
        let page = try control.calls(
            user.actor, status: status, reason: Self.param(request, "reason"), route: Self.param(request, "route"),
            application: Self.param(request, "application"), since: try time(request, "since"), until: try time(request, "until"),
            page: try Self.page(request))
        let rows = page.items.map { r -> [[String: Any]] in
            [
                Self.timeCell(r.time), Self.cell(r.requestID, href: "/console/calls/" + WebPages.queryEscaped(r.requestID), code: true),
                Self.cell(String(r.status), num: true), Self.cell("\(r.method) \(r.path)"), Self.cell(r.route), Self.cell(r.consumer),
                Self.cell(r.reason, code: r.reason != nil), Self.cell(r.decidingCheck),
                Self.cell(ExplainText.fmt(r.totalMillis), num: true),
            ]
        }
        return list(
            user, path: "/console/calls", heading: "Call log",
            intro:
                "Newest first. The same filters as gatehouse logs; since and until take a duration before now (15m, 24h) or an ISO 8601 time.",
            tableID: "calls",
            filters: [
                Self.input("status", "Status", request, placeholder: "403"), Self.input("reason", "Reason", request),
                Self.input("route", "Route", request), Self.input("application", "Application", request),
                Self.input("since", "Since", request, placeholder: "1h"), Self.input("until", "Until", request),
            ],
            columns: ["Time", "Request id", "Status", "Request", "Route", "Application", "Reason", "Check", "ms"], rows: rows,
            next: Self.next("/console/calls", request, page.nextCursor), empty: "No calls match.")
    }

    /// One record, rendered by the renderer `gatehouse explain` uses.
    func call(_ id: String, _ user: ConsoleUser) throws -> Response {
        let found = try control.call(user.actor, requestID: id)
        var text = ExplainText.render(found.record)
        if let audit = found.record.auditEntry {
            text += "\n" + DisplayText.escaped(ExplainText.citation(audit, found.audit))
        }
        let r = found.record
        let verdict =
            r.reason.map { r.status >= 500 ? "Failed: \(r.status) \($0)" : "Denied: \(r.status) \($0)" } ?? "Allowed: \(r.status)"
        return pages.page(
            "call",
            [
                "request_id": r.requestID, "explanation": text, "verdict": verdict,
                "verdict_class": r.reason == nil ? "ok" : "deny",
            ], frame: frame("Request \(r.requestID)", user, current: "/console/calls"))
    }

    // MARK: Applications, keys, services

    func applications(_ request: Request, _ user: ConsoleUser) throws -> Response {
        let page = try control.applications(
            user.actor, tenant: Self.param(request, "tenant"), status: Self.param(request, "status"),
            namePrefix: Self.param(request, "name_prefix"), page: try Self.page(request))
        let rows = page.items.map { a -> [[String: Any]] in
            [
                Self.cell(a.name), Self.cell(a.id, code: true), Self.cell(a.tenant), Self.cell(a.status),
                Self.cell(a.roles.joined(separator: " ")), Self.cell(a.scopes.joined(separator: " ")),
                Self.cell("keys", href: "/console/keys?application=" + WebPages.queryEscaped(a.id)),
                Self.cell("calls", href: "/console/calls?application=" + WebPages.queryEscaped(a.name)), Self.timeCell(a.createdAt),
            ]
        }
        return list(
            user, path: "/console/applications", heading: "Applications", tableID: "applications",
            filters: [
                Self.input("name_prefix", "Name starts with", request), Self.input("tenant", "Tenant", request),
                Self.select("status", "Status", request, [("", "any"), ("active", "active"), ("suspended", "suspended")]),
            ],
            columns: ["Name", "Id", "Tenant", "Status", "Roles", "Scopes", "Keys", "Calls", "Created"], rows: rows,
            next: Self.next("/console/applications", request, page.nextCursor), empty: "No applications.")
    }

    func keys(_ request: Request, _ user: ConsoleUser) throws -> Response {
        let application = Self.param(request, "application")
        if let application { _ = try control.application(user.actor, application) }
        let page = try control.keys(user.actor, application: application, page: try Self.page(request))
        let rows = page.items.map { k -> [[String: Any]] in
            [
                Self.cell(k.id, code: true), Self.cell(k.application), Self.timeCell(k.createdAt), Self.timeCell(k.expiresAt),
                Self.timeCell(k.revokedAt),
            ]
        }
        return list(
            user, path: "/console/keys", heading: "API keys", intro: "Keys are shown once, when made; the store keeps their SHA-256.",
            tableID: "keys", filters: [Self.input("application", "Application", request)],
            columns: ["Key id", "Application", "Created", "Expires", "Revoked"], rows: rows,
            next: Self.next("/console/keys", request, page.nextCursor), empty: "No keys.")
    }

    func services(_ request: Request, _ user: ConsoleUser) throws -> Response {
        let page = try control.services(user.actor, tenant: Self.param(request, "tenant"), page: try Self.page(request))
        let rows = page.items.map { s -> [[String: Any]] in
            [
                Self.cell(s.name), Self.cell(s.id, code: true), Self.cell(s.tenant), Self.cell(s.approval),
                Self.cell(s.routes.joined(separator: " ")),
                Self.cell("subscriptions", href: "/console/subscriptions?service=" + WebPages.queryEscaped(s.name)),
                Self.timeCell(s.createdAt),
            ]
        }
        return list(
            user, path: "/console/services", heading: "Services", tableID: "services", filters: [Self.input("tenant", "Tenant", request)],
            columns: ["Name", "Id", "Tenant", "Approval", "Routes", "Subscriptions", "Created"], rows: rows,
            next: Self.next("/console/services", request, page.nextCursor), empty: "No services.")
    }

    // MARK: Subscriptions

    func subscriptions(_ request: Request, _ user: ConsoleUser) throws -> Response {
        let application = Self.param(request, "application")
        let service = Self.param(request, "service")
        let queue = try control.subscriptions(
            user.actor, state: "pending", application: application, service: service, page: PageRequest(limit: 100))
        let page = try control.subscriptions(
            user.actor, state: Self.param(request, "state"), application: application, service: service, page: try Self.page(request))
        let rows = page.items.map { s -> [[String: Any]] in
            [
                Self.cell(s.application), Self.cell(s.service), Self.cell(s.state), Self.cell(s.reason), Self.cell(s.opinion),
                Self.cell(s.actor), Self.timeCell(s.changedAt), Self.timeCell(s.expiresAt),
            ]
        }
        var values: [String: Any] = [
            "csrf": user.session.csrfToken(),
            "queue": queue.items.map {
                [
                    "id": $0.id, "application": $0.application, "service": $0.service, "reason": $0.reason ?? "",
                    "applied": TimeText.iso($0.appliedAt),
                ]
                    as [String: Any]
            },
            "action": "/console/subscriptions", "table_id": "subscriptions", "has_filters": true,
            "filters": [
                Self.select(
                    "state", "State", request,
                    [
                        ("", "any"), ("pending", "pending"), ("approved", "approved"), ("rejected", "rejected"), ("revoked", "revoked"),
                        ("cancelled", "cancelled"), ("expired", "expired"),
                    ]),
                Self.input("application", "Application", request), Self.input("service", "Service", request),
            ],
            "columns": ["Application", "Service", "State", "Reason", "Opinion", "Decided by", "Changed", "Expires"],
            "column_count": 8, "rows": rows.map { ["cells": $0] }, "empty": "No subscriptions match.",
        ]
        if queue.nextCursor != nil { values["queue_more"] = "/console/subscriptions?state=pending" }
        if let next = Self.next("/console/subscriptions", request, page.nextCursor) { values["next"] = next }
        return pages.page("subscriptions", values, frame: frame("Subscriptions", user, current: "/console/subscriptions"))
    }

    // MARK: Tenants, admin users, audit

    func tenants(_ request: Request, _ user: ConsoleUser) throws -> Response {
        let page = try control.tenants(user.actor, page: try Self.page(request))
        let rows = page.items.map { t -> [[String: Any]] in
            [
                Self.cell(t.name), Self.cell(t.id, code: true),
                Self.cell("applications", href: "/console/applications?tenant=" + WebPages.queryEscaped(t.name)),
                Self.cell("services", href: "/console/services?tenant=" + WebPages.queryEscaped(t.name)), Self.timeCell(t.createdAt),
            ]
        }
        return list(
            user, path: "/console/tenants", heading: "Tenants", tableID: "tenants",
            columns: ["Name", "Id", "Applications", "Services", "Created"], rows: rows,
            next: Self.next("/console/tenants", request, page.nextCursor), empty: "No tenants.")
    }

    func adminUsers(_ request: Request, _ user: ConsoleUser) throws -> Response {
        let page = try control.adminUsers(user.actor, page: try Self.page(request))
        let rows = page.items.map { u -> [[String: Any]] in
            [
                Self.cell(u.name), Self.cell(u.role.rawValue), Self.cell(u.tenant ?? "all tenants"),
                Self.cell(u.hasPassword ? "yes" : "no (tokens only)"), Self.timeCell(u.createdAt),
            ]
        }
        return list(
            user, path: "/console/admin-users", heading: "Admin users", tableID: "admin-users",
            columns: ["Name", "Role", "Tenant", "Console sign-in", "Created"], rows: rows,
            next: Self.next("/console/admin-users", request, page.nextCursor), empty: "No admin users.")
    }

    func audit(_ request: Request, _ user: ConsoleUser) throws -> Response {
        let page = try control.auditEntries(
            user.actor, action: Self.param(request, "action"), objectID: Self.param(request, "object_id"),
            since: try time(request, "since"), page: try Self.page(request))
        let rows = page.items.map { e -> [[String: Any]] in
            [
                Self.cell(String(e.id), num: true), Self.timeCell(e.time), Self.cell("\(e.actor) (\(e.role))"),
                Self.cell(e.action, code: true),
                Self.cell("\(e.objectType) \(e.objectID)"), Self.cell(e.tenants.joined(separator: " ")), Self.cell(e.source),
            ]
        }
        return list(
            user, path: "/console/audit", heading: "Audit log", intro: "Every change, by whom, from where. Append-only.",
            tableID: "audit",
            filters: [
                Self.input("action", "Action", request, placeholder: "subscription.approve"),
                Self.input("object_id", "Object id", request), Self.input("since", "Since", request, placeholder: "24h"),
            ],
            columns: ["#", "Time", "Actor", "Action", "Object", "Tenants", "Source"], rows: rows,
            next: Self.next("/console/audit", request, page.nextCursor), empty: "No entries.")
    }
}

extension String {
    /// Nil for an empty string (an empty form field).
    var nonEmpty: String? { isEmpty ? nil : self }
}

import Foundation
import GatehouseTestSupport
import NIOHTTP1

/// A live gateway process (`gatehouse serve`) with its admin API, tenants acme and initech, an unscoped owner
/// (`root`), an unscoped admin (`ada`), and per tenant an operator (`ann`, `carol`) and a scoped
/// admin (`sam` of acme); acme has an application `checkout` with a key, a service `ledger` and a
/// pending subscription.
final class AdminTarget: @unchecked Sendable {
    // @unchecked: written during init only.
    let gateway: GatewayProcess
    var tokens: [String: String] = [:]
    var appID = ""
    var keyID = ""
    var subID = ""
    var admin: String { "http://127.0.0.1:\(gateway.adminPort ?? 0)/admin/v1" }

    init() async throws {
        gateway = try GatewayProcess(
            yaml: """
                admin: 127.0.0.1:0
                upstreams:
                  app: { targets: ["http://127.0.0.1:1"] }
                routes:
                  - name: open
                    match: { path: /open }
                    upstream: app
                """)
        for t in ["acme", "initech"] { _ = try gateway.cli(["tenants", "create", t]) }
        for (name, role, tenant) in [
            ("root", "owner", nil), ("ada", "admin", nil), ("ann", "operator", "acme"), ("carol", "operator", "initech"),
            ("sam", "admin", "acme"),
        ] {
            _ = try gateway.cli(["admins", "create", name, "--role", role] + (tenant.map { ["--tenant", $0] } ?? []))
            tokens[name] = try gateway.cli(["admins", "token", name, "--quiet"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        appID = try await call(.POST, "/applications", as: "ann", body: #"{"name": "checkout"}"#).json["id"] as? String ?? ""
        keyID = (try await call(.POST, "/applications/\(appID)/keys", as: "ann").json["info"] as? [String: Any])?["id"] as? String ?? ""
        _ = try await call(.POST, "/services", as: "ann", body: #"{"name": "ledger"}"#)
        subID =
            try await call(
                .POST, "/subscriptions", as: "ann", body: #"{"application": "checkout", "service": "ledger", "reason": "books"}"#
            )
            .json["id"] as? String ?? ""
    }

    func call(
        _ method: HTTPMethod, _ path: String, as who: String?, body: String? = nil, authorization: String? = nil
    ) async throws -> Reply {
        var headers = [("Content-Type", "application/json")]
        if let auth = authorization ?? who.map({ "Bearer \(tokens[$0] ?? "")" }) { headers.append(("Authorization", auth)) }
        return try await send(method, admin + path, headers: headers, body: body)
    }

    func stop() { _ = gateway.stop() }
}

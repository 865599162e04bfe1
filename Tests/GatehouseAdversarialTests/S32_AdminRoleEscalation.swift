import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S32: admins try to make themselves (or a friend) more than they are: an admin creating an
/// owner, a scoped admin creating an unscoped one or one of another tenant, an operator creating
/// admins or minting tokens for others. Each is a 403 with the roles required and presented.
@Suite(.serialized) struct S32_AdminRoleEscalation {
    @Test func noAdminGrantsMoreThanItHas() async throws {
        let t = try await AdminTarget()
        defer { t.stop() }
        let attempts: [(String, HTTPMethod, String, String?)] = [
            ("ada", .POST, "/admin-users", #"{"name": "eve", "role": "owner"}"#),
            (
                "sam", .POST, "/admin-users",
                #"{"name": "eve", "role": "admin"}"#.replacingOccurrences(of: "}", with: #", "tenant": "initech"}"#)
            ),
            ("ann", .POST, "/admin-users", #"{"name": "eve", "role": "operator", "tenant": "acme"}"#),
            ("ann", .POST, "/admin-users/root/tokens", nil),
            ("ada", .POST, "/admin-users/root/tokens", nil),
            ("sam", .POST, "/admin-users/ada/tokens", nil),
            ("ann", .POST, "/tenants", #"{"name": "mine"}"#),
            ("sam", .POST, "/tenants", #"{"name": "mine"}"#),
        ]
        for (who, method, path, body) in attempts {
            let r = try await t.call(method, path, as: who, body: body)
            #expect(r.status == 403, "\(who) \(method) \(path) \(body ?? ""): \(r.status) \(r.body)")
            let reason = r.json["reason"] as? String
            #expect(reason == "admin_role_insufficient" || reason == "admin_tenant_mismatch", "\(who) \(path): \(reason ?? "none")")
            #expect((r.json["required"] as? [String])?.isEmpty == false && (r.json["presented"] as? [String])?.isEmpty == false)
            #expect(!r.body.contains("gha_"), "a token was returned")
        }
        // A scoped admin's user lands in its own tenant even when the body names none.
        let own = try await t.call(.POST, "/admin-users", as: "sam", body: #"{"name": "otto", "role": "operator"}"#)
        #expect(own.status == 201 && own.json["tenant"] as? String == "acme")
        let users = try await t.call(.GET, "/admin-users", as: "root")
        #expect(!users.body.contains("\"eve\""))
        // The self-service path: anyone may mint a token for itself, and only for itself.
        let mine = try await t.call(.POST, "/admin-users/ann/tokens", as: "ann")
        #expect(mine.status == 201)
        let whoami = try await t.call(.GET, "/whoami", as: nil, authorization: "Bearer \(mine.json["token"] as? String ?? "")")
        #expect(whoami.json["name"] as? String == "ann" && whoami.json["role"] as? String == "operator")
    }
}

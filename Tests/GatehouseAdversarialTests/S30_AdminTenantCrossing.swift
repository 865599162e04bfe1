import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S30: a tenant-scoped operator names another tenant's objects by id in paths and bodies. Every
/// attempt is refused with `admin_tenant_mismatch`, the same answer as for an id that does not
/// exist (so ids cannot be probed), and changes nothing.
@Suite(.serialized) struct S30_AdminTenantCrossing {
    @Test func idsOfAnotherTenantInPathsAndBodiesAreRefusedLikeUnknownIds() async throws {
        let t = try await AdminTarget()
        defer { t.stop() }
        let pairs: [((HTTPMethod, String, String?), (HTTPMethod, String, String?))] = [
            ((.GET, "/applications/\(t.appID)", nil), (.GET, "/applications/c_doesnotexist", nil)),
            ((.POST, "/keys/\(t.keyID)/revoke", nil), (.POST, "/keys/nokeyhere000/revoke", nil)),
            ((.GET, "/subscriptions/\(t.subID)", nil), (.GET, "/subscriptions/sub_doesnotexist", nil)),
            (
                (.POST, "/subscriptions", #"{"application": "\#(t.appID)", "service": "ledger"}"#),
                (.POST, "/subscriptions", #"{"application": "c_doesnotexist", "service": "ledger"}"#)
            ),
        ]
        for (real, fake) in pairs {
            let a = try await t.call(real.0, real.1, as: "carol", body: real.2)
            let b = try await t.call(fake.0, fake.1, as: "carol", body: fake.2)
            #expect(a.status == 403 && b.status == 403, "\(real.1): \(a.status), \(fake.1): \(b.status)")
            #expect(a.json["reason"] as? String == "admin_tenant_mismatch" && b.json["reason"] as? String == "admin_tenant_mismatch")
            #expect(a.json["title"] as? String == b.json["title"] as? String && a.json["hint"] as? String == b.json["hint"] as? String)
        }
        // A body that names the other tenant outright.
        let planted = try await t.call(.POST, "/applications", as: "carol", body: #"{"name": "planted", "tenant": "acme"}"#)
        #expect(planted.status == 403 && planted.json["reason"] as? String == "admin_tenant_mismatch")
        let services = try await t.call(.POST, "/services", as: "carol", body: #"{"name": "fake-ledger", "tenant": "acme"}"#)
        #expect(services.status == 403)
        // Nothing changed.
        let key = try await t.call(.GET, "/applications/\(t.appID)/keys", as: "ann")
        #expect((key.json["items"] as? [[String: Any]])?.first?["revoked_at"] == nil)
        #expect(try await t.call(.GET, "/applications?name_prefix=planted", as: "root").json["items"] as? [Any] != nil)
        #expect((try await t.call(.GET, "/applications?name_prefix=planted", as: "root").json["items"] as? [Any])?.isEmpty == true)
    }
}

import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S42: a page of another site could act on `/admin/v1` through credentials the browser held: the
/// API challenged with `WWW-Authenticate: Basic` (so browsers prompted and then cached the
/// password), read JSON whatever the Content-Type (a `text/plain` form whose field name forms
/// JSON), and checked no origin. Now unsafe requests need `Content-Type: application/json` and
/// are refused when their Origin or Sec-Fetch-Site shows another site; the challenge names
/// Bearer only.
@Suite(.serialized) struct S42_AdminCrossSiteForgery {
    @Test func aCrossSiteFormCannotCreateAnAdminUser() async throws {
        let t = try await AdminTarget()
        defer { t.stop() }
        let token = "Bearer \(t.tokens["root"] ?? "")"
        let json = #"{"name": "mallory", "role": "owner", "password": "mallory-password", "x": "="}"#
        // A form with enctype text/plain, as a browser sends it (credentials attached).
        let plain = try await send(
            .POST, t.admin + "/admin-users",
            headers: [("Content-Type", "text/plain"), ("Authorization", token), ("Origin", "https://evil.example")], body: json)
        #expect(plain.status == 415)
        #expect(plain.json["reason"] as? String == "admin_invalid_request")
        // The same without an Origin (an older browser): the type alone refuses it.
        let noOrigin = try await send(
            .POST, t.admin + "/admin-users", headers: [("Content-Type", "text/plain"), ("Authorization", token)], body: json)
        #expect(noOrigin.status == 415)
        // A body with no Content-Type at all.
        let untyped = try await send(.POST, t.admin + "/admin-users", headers: [("Authorization", token)], body: json)
        #expect(untyped.status == 415)
        // JSON from another site (fetch with credentials): refused by its origin.
        for header in [("Origin", "https://evil.example"), ("Sec-Fetch-Site", "cross-site")] {
            let r = try await send(
                .POST, t.admin + "/admin-users", headers: [("Content-Type", "application/json"), ("Authorization", token), header],
                body: json)
            #expect(r.status == 403, "\(header)")
            #expect(r.json["reason"] as? String == "csrf_origin_mismatch", "\(header)")
        }
        let users = try await t.call(.GET, "/admin-users?limit=100", as: "root").body
        #expect(!users.contains("mallory"))

        // The listener's own origin and non-browser clients (no origin headers) are served.
        let port = t.gateway.adminPort ?? 0
        let own = try await send(
            .POST, t.admin + "/tenants",
            headers: [
                ("Content-Type", "application/json; charset=utf-8"), ("Authorization", token), ("Origin", "http://127.0.0.1:\(port)"),
            ],
            body: #"{"name": "globex"}"#)
        #expect(own.status == 201, "\(own.body)")
        #expect(try await t.call(.POST, "/tenants", as: "root", body: #"{"name": "hooli"}"#).status == 201)
    }

    @Test func theChallengeDoesNotInviteABrowserToCacheAPassword() async throws {
        let t = try await AdminTarget()
        defer { t.stop() }
        for authorization in [nil, "Bearer gha_nope", "Basic " + Data("nobody:nothing".utf8).base64EncodedString()] {
            let r = try await send(.GET, t.admin + "/whoami", headers: authorization.map { [("Authorization", $0)] } ?? [])
            #expect(r.status == 401)
            let challenge = r.headers.first(name: "www-authenticate") ?? ""
            #expect(challenge.hasPrefix("Bearer"))
            #expect(!challenge.lowercased().contains("basic"), "\(challenge)")
        }
    }
}

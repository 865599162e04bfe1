import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S21: the `owner` and `tenant` checks percent-decoded path parameters a second time (the router
/// had already), so `/users/%2561lice` passed as alice's while the upstream got `%61lice`; and
/// numbers were compared as Doubles printed with `%e`, so a numeric `sub` 9007199254740992 owned
/// body owner 9007199254740993. (A numeric `sub` is now refused outright, as `token_malformed`;
/// numeric claims are compared through `claim:`.)
@Suite("S21 double decoding and big numbers", .serialized) struct S21DoubleDecodeAndBigNumbers {
    static func yaml(_ upstream: CaptureUpstream) -> String {
        """
        upstreams:
          app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
        routes:
          - name: users
            match: { methods: [GET], path: "/users/{id}" }
            upstream: app
            policies: [bearer, own-user]
          - name: transfer
            match: { methods: [POST], path: /transfer }
            upstream: app
            policies: [bearer, own-transfer]
          - name: transfer-uid
            match: { methods: [POST], path: /transfer-uid }
            upstream: app
            policies: [bearer, own-uid]
        policies:
          bearer: { type: jwt, jwks_file: jwks.json, algorithms: [HS256] }
          own-user: { type: owner, param: id }
          own-transfer: { type: owner, body_field: owner }
          own-uid: { type: owner, body_field: owner, claim: uid }
        """
    }

    @Test func aParameterIsDecodedOnceOnly() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try ownershipGateway(Self.yaml(upstream))
        defer { gw.stop() }
        let alice = OwnerTokens.bearer(OwnerTokens.token(sub: "alice"))
        let r = try await send(.GET, gw.url + "/users/%2561lice", headers: [alice])
        // Refused (403 not_owner; a stricter path normaliser may refuse it earlier with 400).
        #expect(r.status == 403 || r.status == 400)
        if r.status == 403 { #expect(r.json["reason"] as? String == "not_owner") }
        #expect(upstream.requests.isEmpty)
        // Controls: alice's own path, plainly and percent-encoded once.
        #expect(try await send(.GET, gw.url + "/users/alice", headers: [alice]).status == 200)
        #expect(try await send(.GET, gw.url + "/users/%61lice", headers: [alice]).status == 200)
        #expect(try await send(.GET, gw.url + "/users/bob", headers: [alice]).status == 403)
    }

    @Test func numbersBeyondTwoToThe53AreNeverTakenForEachOther() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try ownershipGateway(Self.yaml(upstream))
        defer { gw.stop() }
        // A numeric claim (`sub` must be a string, RFC 7519; so the claim compared here is `uid`).
        let numeric = OwnerTokens.bearer(OwnerTokens.raw(#""sub":"n","uid":9007199254740992"#))
        let json = ("Content-Type", "application/json")
        for body in [
            #"{"owner":9007199254740993}"#, #"{"owner":"9007199254740993"}"#, #"{"owner":9007199254740992}"#,
            #"{"owner":9.007199254740992e15}"#,
        ] {
            let r = try await send(.POST, gw.url + "/transfer-uid", headers: [numeric, json], body: body)
            #expect(r.status == 403 || r.status == 400, "\(body)")
            #expect(["not_owner", "ambiguous_body"].contains(r.json["reason"] as? String ?? ""), "\(body): \(r.body)")
        }
        #expect(upstream.requests.isEmpty)
        // A body integer beyond 2^53 is ambiguous whoever the caller is (JavaScript reads it rounded).
        let bigString = OwnerTokens.bearer(OwnerTokens.token(sub: "9007199254740993"))
        let rounded = try await send(.POST, gw.url + "/transfer", headers: [bigString, json], body: #"{"owner":9007199254740993}"#)
        #expect(rounded.status == 400 && rounded.json["reason"] as? String == "ambiguous_body")
        // Controls: exact integers within range, as numbers or strings, compare as their decimal text.
        let small = OwnerTokens.bearer(OwnerTokens.raw(#""sub":"s","uid":12345"#))
        #expect(try await send(.POST, gw.url + "/transfer-uid", headers: [small, json], body: #"{"owner":12345}"#).status == 200)
        #expect(try await send(.POST, gw.url + "/transfer-uid", headers: [small, json], body: #"{"owner":"12345"}"#).status == 200)
        #expect(try await send(.POST, gw.url + "/transfer-uid", headers: [small, json], body: #"{"owner":12346}"#).status == 403)
        #expect(
            try await send(.POST, gw.url + "/transfer", headers: [bigString, json], body: #"{"owner":"9007199254740993"}"#).status == 200)
        #expect(upstream.requests.count == 3)
    }

    @Test func aNumericTenantBeyondTwoToThe53NamesNoTenant() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try ownershipGateway(
            """
            upstreams:
              app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
            routes:
              - name: tenant
                match: { path: /tenant }
                upstream: app
                policies: [bearer, same-tenant]
            policies:
              bearer: { type: jwt, jwks_file: jwks.json, algorithms: [HS256], tenant_claim: tenant }
              same-tenant: { type: tenant, header: X-Tenant }
            """)
        defer { gw.stop() }
        // The claim 9007199254740993 was read as the Double 2^53 and printed 9.007199254740992e+15:
        // a header spelling that (which Python's float() reads as tenant 9007199254740992) matched.
        let big = OwnerTokens.bearer(OwnerTokens.raw(#""sub":"alice","tenant":9007199254740993"#))
        for spelled in ["9.007199254740992e+15", "9007199254740992", "9007199254740993"] {
            let r = try await send(.GET, gw.url + "/tenant", headers: [big, ("X-Tenant", spelled)])
            #expect(r.status == 403 && r.json["reason"] as? String == "wrong_tenant", "\(spelled)")
        }
        #expect(upstream.requests.isEmpty)
        // Control: an exact integer tenant matches its decimal text.
        let small = OwnerTokens.bearer(OwnerTokens.raw(#""sub":"alice","tenant":42"#))
        #expect(try await send(.GET, gw.url + "/tenant", headers: [small, ("X-Tenant", "42")]).status == 200)
    }
}

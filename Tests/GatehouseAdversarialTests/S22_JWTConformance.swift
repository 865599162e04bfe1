import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S22: JWT conformance. Each of the review's six tokens was accepted (200); each is now refused
/// with a reason code, and the well-formed control token still passes.
@Suite(.serialized) struct S22_JWTConformance {
    @Test func eachNonConformingTokenIsRefusedAndTheControlIsAccepted() async throws {
        let upstream = try await CaptureUpstream()
        let dir = try TempDir()
        _ = try dir.write("jwks.json", HSToken.jwks)
        let gw = try GatewayProcess(yaml: jwtGatewayYAML(upstreamPort: upstream.port), dir: dir)
        defer { gw.stop() }

        let control = HSToken.make(payload: HSToken.claims())
        let parts = control.split(separator: ".").map(String.init)
        // An HS256 signature is 32 bytes: 43 characters, the last one carrying 2 unused bits.
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        var sig = Array(parts[2])
        sig[sig.count - 1] = alphabet[alphabet.firstIndex(of: sig.last!)! ^ 1]
        let cases: [(String, String, String)] = [
            (
                "aud as one string with a space", HSToken.make(payload: HSToken.claims(aud: #""evil orders-api""#)),
                "token_audience_mismatch"
            ),
            (
                "crit naming an unknown extension",
                HSToken.make(
                    header: #"{"alg":"HS256","kid":"hs1","crit":["urn:x-unknown"],"urn:x-unknown":true}"#,
                    payload: HSToken.claims()), "token_malformed"
            ),
            (
                "crit b64 with b64 false",
                HSToken.make(header: #"{"alg":"HS256","kid":"hs1","crit":["b64"],"b64":false}"#, payload: HSToken.claims()),
                "token_malformed"
            ),
            ("signature followed by =junk", control + "=junk", "token_malformed"),
            ("signature with altered unused bits", parts[0] + "." + parts[1] + "." + String(sig), "token_malformed"),
            ("exp as a string", HSToken.make(payload: HSToken.claims(exp: "\"\(HSToken.inTenMinutes)\"")), "token_malformed"),
        ]
        for (name, token, reason) in cases {
            let r = try await send(.GET, gw.url + "/orders", headers: [("Authorization", "Bearer " + token)])
            #expect(r.status == 401, "\(name): \(r.status) \(r.body)")
            #expect(r.json["reason"] as? String == reason, "\(name): \(r.body)")
        }
        #expect(upstream.requests.isEmpty, "a non-conforming token reached the upstream")
        let ok = try await send(.GET, gw.url + "/orders", headers: [("Authorization", "Bearer " + control)])
        #expect(ok.status == 200, "\(ok.body)")
        #expect(upstream.requests.count == 1)
        await upstream.stop()
    }

    /// Review B: a signed payload `{"sub":"alice","roles":["user"],…,"sub":"bob","roles":["admin"]}`
    /// was alice with role user to the gateway (JSONDecoder keeps the first) and bob with role admin
    /// to a Python or Node upstream (the last), and a header naming `kid` twice was read by its
    /// first. Both are refused as token_malformed before any claim is used.
    @Test func tokensWithDuplicateMembersAreRefused() async throws {
        let upstream = try await CaptureUpstream()
        let dir = try TempDir()
        _ = try dir.write("jwks.json", HSToken.jwks)
        let gw = try GatewayProcess(
            yaml: jwtGatewayYAML(
                upstreamPort: upstream.port,
                extraRoutes: """
                      - name: admin
                        match: { path: /admin }
                        upstream: app
                        policies: [bearer-roles, admins]
                    """,
                extraPolicies: """
                      bearer-roles: { type: jwt, jwks_file: jwks.json, algorithms: [HS256], audience: orders-api, roles_claim: roles }
                      admins: { type: roles, any_of: [admin] }
                    """), dir: dir)
        defer { gw.stop() }
        let exp = HSToken.inTenMinutes
        let cases: [(String, String, String)] = [
            (
                "sub and roles twice", "/admin",
                HSToken.make(
                    payload: #"{"sub":"alice","aud":"orders-api","roles":["user"],"exp":"# + exp + #","sub":"bob","roles":["admin"]}"#)
            ),
            (
                "roles twice, admin first", "/admin",
                HSToken.make(payload: #"{"sub":"alice","aud":"orders-api","roles":["admin"],"exp":"# + exp + #","roles":["user"]}"#)
            ),
            ("kid twice", "/orders", HSToken.make(header: #"{"alg":"HS256","kid":"hs1","kid":"nope"}"#, payload: HSToken.claims())),
            ("nested", "/orders", HSToken.make(payload: HSToken.claims(#""ctx":{"tenant":"a","tenant":"b"}"#))),
        ]
        for (name, path, token) in cases {
            let r = try await send(.GET, gw.url + path, headers: [("Authorization", "Bearer " + token)])
            #expect(r.status == 401 && r.json["reason"] as? String == "token_malformed", "\(name): \(r.status) \(r.body)")
            #expect((r.json["detail"] as? String)?.contains("twice") == true, "\(name): \(r.body)")
        }
        #expect(upstream.requests.isEmpty)
        // Controls: the same claims once each.
        let admin = HSToken.make(payload: #"{"sub":"bob","aud":"orders-api","roles":["admin"],"exp":"# + exp + "}")
        #expect(try await send(.GET, gw.url + "/admin", headers: [("Authorization", "Bearer " + admin)]).status == 200)
        #expect(
            try await send(.GET, gw.url + "/orders", headers: [("Authorization", "Bearer " + HSToken.make(payload: HSToken.claims()))])
                .status == 200)
        await upstream.stop()
    }
}

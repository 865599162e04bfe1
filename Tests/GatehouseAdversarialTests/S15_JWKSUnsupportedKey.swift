import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S15: one key the gateway cannot use (an ML-DSA `AKP` key, an EC key on secp256k1, an unknown
/// `kty`) made the whole JWKS fail to load. Now such keys are skipped with a warning and the
/// others load, in `gatehouse token inspect` and in a live gateway.
@Suite(.serialized) struct S15_JWKSUnsupportedKey {
    static let jwks = """
        {"keys":[
          {"kty":"AKP","alg":"ML-DSA-44","kid":"pq1","pub":"\(String(repeating: "A", count: 64))"},
          {"kty":"EC","crv":"secp256k1","kid":"k256","x":"WfSPqWOJUnLF0hSqEbfS6XKjQfIA9qWb9cy6wp8iWNU","y":"Xt0Tc1TGOc6WaHsJpnN4f4_Zq7BUJnbPy1SXbgyqFu0"},
          {"kty":"PQX","kid":"future"},
          \(HSToken.jwksKey)
        ]}
        """

    @Test func tokenInspectUsesTheGoodKeyAndWarnsAboutTheOthers() throws {
        let dir = try TempDir()
        let path = try dir.write("jwks.json", Self.jwks)
        let token = HSToken.make(payload: HSToken.claims())
        let r = try gatehouse(["token", "inspect", token, "--jwks", path])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("VALID: HS256 signature by key hs1 verifies"), "\(r.stdout)")
        #expect(r.stdout.contains("warning: JWKS key pq1 skipped"), "\(r.stdout)")
        #expect(r.stdout.contains("warning: JWKS key k256 skipped"), "\(r.stdout)")
        #expect(r.stdout.contains("warning: JWKS key future skipped"), "\(r.stdout)")
        #expect(!r.stdout.contains("could not load"))
    }

    @Test func aLiveGatewayAcceptsTokensFromTheGoodKey() async throws {
        let upstream = try await CaptureUpstream()
        let dir = try TempDir()
        _ = try dir.write("jwks.json", Self.jwks)
        let gw = try GatewayProcess(yaml: jwtGatewayYAML(upstreamPort: upstream.port), dir: dir)
        defer { gw.stop() }
        var r = try await send(.GET, gw.url + "/orders", headers: [("Authorization", "Bearer " + HSToken.make(payload: HSToken.claims()))])
        for _ in 0..<40 where r.status == 503 {
            try await Task.sleep(for: .milliseconds(100))
            r = try await send(.GET, gw.url + "/orders", headers: [("Authorization", "Bearer " + HSToken.make(payload: HSToken.claims()))])
        }
        #expect(r.status == 200, "\(r.body)")
        #expect(upstream.requests.count == 1)
        // A token naming the skipped key is told why it is unknown.
        let pq = try await send(
            .GET, gw.url + "/orders",
            headers: [("Authorization", "Bearer " + HSToken.make(header: #"{"alg":"HS256","kid":"pq1"}"#, payload: HSToken.claims()))])
        #expect(pq.status == 401)
        #expect(pq.json["reason"] as? String == "token_unknown_key")
        #expect((pq.json["detail"] as? String ?? "").contains("skipped"), "\(pq.body)")
        // The operator is told once, on the gateway's standard error.
        #expect(gw.stderr.contains("JWKS key pq1 skipped"), "\(gw.stderr)")
        await upstream.stop()
    }
}

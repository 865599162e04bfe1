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
            ("aud as one string with a space", HSToken.make(payload: HSToken.claims(aud: #""evil orders-api""#)), "token_audience_mismatch"),
            ("crit naming an unknown extension", HSToken.make(header: #"{"alg":"HS256","kid":"hs1","crit":["urn:x-unknown"],"urn:x-unknown":true}"#,
                                                              payload: HSToken.claims()), "token_malformed"),
            ("crit b64 with b64 false", HSToken.make(header: #"{"alg":"HS256","kid":"hs1","crit":["b64"],"b64":false}"#, payload: HSToken.claims()),
             "token_malformed"),
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
}

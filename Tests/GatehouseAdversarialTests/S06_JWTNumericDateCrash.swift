import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S6: one validly signed token with an absurd NumericDate (`exp: 1e19`, `exp: "nan"`, a huge
/// `nbf`) killed the process: the value reached `Int64(_:)` when rendered. Now each is an explained
/// 401 `token_malformed`, and the gateway keeps serving.
@Suite(.serialized) struct S06_JWTNumericDateCrash {
    @Test func absurdNumericDatesAreRefusedAndTheProcessSurvives() async throws {
        let upstream = try await CaptureUpstream()
        let dir = try TempDir()
        _ = try dir.write("jwks.json", HSToken.jwks)
        let gw = try GatewayProcess(yaml: jwtGatewayYAML(upstreamPort: upstream.port), dir: dir)
        defer { gw.stop() }

        let attacks: [(String, String)] = [
            ("exp 1e19", HSToken.claims(exp: "1e19")),
            ("exp \"nan\"", HSToken.claims(exp: #""nan""#)),
            ("exp \"inf\"", HSToken.claims(exp: #""inf""#)),
            ("exp 1e308", HSToken.claims(exp: "1e308")),
            ("exp -1e19", HSToken.claims(exp: "-1e19")),
            ("exp -1e308", HSToken.claims(exp: "-1e308")),
            ("exp as a string of digits", HSToken.claims(exp: "\"\(HSToken.inTenMinutes)\"")),
            ("nbf 1e19", HSToken.claims(#""nbf":1e19"#)),
            ("nbf -1e300", HSToken.claims(#""nbf":-1e300"#)),
            ("iat 1e300", HSToken.claims(#""iat":1e300"#)),
        ]
        for (name, payload) in attacks {
            let token = HSToken.make(payload: payload)
            let r = try await send(.GET, gw.url + "/orders", headers: [("Authorization", "Bearer " + token)])
            #expect(r.status == 401, "\(name): \(r.status) \(r.body)")
            #expect(r.json["reason"] as? String == "token_malformed", "\(name): \(r.body)")
            #expect((r.json["detail"] as? String ?? "").contains("NumericDate"), "\(name): \(r.body)")
            #expect(gw.process.isRunning, "the gateway died on \(name)")
            guard gw.process.isRunning else { return }
        }
        // Still serving: a valid token reaches the upstream.
        let ok = try await send(.GET, gw.url + "/orders", headers: [("Authorization", "Bearer " + HSToken.make(payload: HSToken.claims()))])
        #expect(ok.status == 200, "\(ok.body)")
        #expect(upstream.requests.count == 1)
        #expect(gw.process.isRunning)
        // The explanation of a refused one renders too.
        let again = try await send(
            .GET, gw.url + "/orders", headers: [("Authorization", "Bearer " + HSToken.make(payload: HSToken.claims(exp: "1e19")))])
        _ = try await gw.record(again.requestID)
        let explain = try gw.cli(["explain", again.requestID])
        #expect(explain.status == 0)
        #expect(explain.stdout.contains("token_malformed"))
        await upstream.stop()
    }
}

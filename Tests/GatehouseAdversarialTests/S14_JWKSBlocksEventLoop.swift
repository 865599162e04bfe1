import Foundation
import GatehouseTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// S14: until the first JWKS load completed, every bearer request waited (up to 2 s) on its event
/// loop, so a JWKS server that hangs froze every route, junk tokens included. Now nothing waits:
/// bearer requests get 503 `check_unavailable` at once, naming the key set, and an open route on
/// the same gateway keeps answering.
///
/// The harness runs the gateway with two event-loop threads; the attack sends enough concurrent
/// bearer requests to reach both. Each request has a client deadline of a few seconds: an answer
/// that does not come by then fails the test (the review saw /open take up to 5.9 s).
@Suite(.serialized) struct S14_JWKSBlocksEventLoop {
    @Test func aHangingJWKSServerNeitherDelaysBearerRequestsNorFreezesOtherRoutes() async throws {
        let hole = try BlackholeListener()
        let upstream = try await CaptureUpstream()
        let jwksURL = "http://127.0.0.1:\(hole.port)/jwks.json"
        let gw = try GatewayProcess(yaml: jwtGatewayYAML(upstreamPort: upstream.port, keys: "jwks_url: \"\(jwksURL)\""))
        defer { gw.stop() }
        let token = HSToken.make(payload: HSToken.claims())

        for round in 0..<3 {
            // 12 bearer requests (valid-looking and junk) and 4 requests to the open route, all at once.
            let results = try await withThrowingTaskGroup(of: (String, TimedReply).self) { group in
                for i in 0..<12 {
                    let t = i % 3 == 0 ? "a.b.c" : token
                    group.addTask {
                        (
                            "bearer-\(t == token ? "jwt" : "junk")",
                            try await sendWithin(.seconds(3), gw.url + "/orders", headers: [("Authorization", "Bearer " + t)])
                        )
                    }
                }
                for _ in 0..<4 {
                    group.addTask { ("open", try await sendWithin(.seconds(3), gw.url + "/open")) }
                }
                var out: [(String, TimedReply)] = []
                for try await r in group { out.append(r) }
                return out
            }
            for (kind, r) in results {
                switch kind {
                case "open":
                    #expect(r.status == 200, "round \(round): /open answered \(r.status)")
                case "bearer-junk":
                    #expect(r.status == 401, "round \(round): junk token answered \(r.status)")
                    #expect(r.json["reason"] as? String == "token_malformed")
                default:
                    #expect(r.status == 503, "round \(round): bearer request answered \(r.status) \(r.body)")
                    #expect(r.json["reason"] as? String == "check_unavailable")
                    let detail = r.json["detail"] as? String ?? ""
                    #expect(detail.contains("JWKS URL \(jwksURL)"), "\(detail)")
                    #expect(detail.contains("since 20"), "\(detail)")
                }
            }
        }
        #expect(upstream.requests.count == 12)
        #expect(upstream.requests.allSatisfy { $0.path == "/open" })
        #expect(gw.process.isRunning)
        await upstream.stop()
    }
}

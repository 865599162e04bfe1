import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S9: after `jwt`, `rate_limit` with `key: consumer` counted by client address (a JWT principal
/// had no consumer), so bob was refused for alice's calls from the same address; `key: key` used
/// the signing kid, so every user of one issuer key shared one bucket.
@Suite("S09 rate-limit identity after jwt", .serialized) struct S09RateLimitIdentityAfterJWT {
    static func yaml(_ upstream: CaptureUpstream) -> String {
        """
        upstreams:
          app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
        routes:
          - name: by-consumer
            match: { path: /consumer }
            upstream: app
            policies: [bearer, per-consumer]
          - name: by-key
            match: { path: /key }
            upstream: app
            policies: [bearer, per-key]
        policies:
          bearer: { type: jwt, jwks_file: jwks.json, algorithms: [HS256] }
          per-consumer: { type: rate_limit, key: consumer, rate: 2/minute }
          per-key: { type: rate_limit, key: key, rate: 2/minute }
        """
    }

    func statuses(_ gw: GatewayProcess, _ path: String, _ tokens: [String]) async throws -> [Int] {
        var out: [Int] = []
        for t in tokens { out.append(try await send(.GET, gw.url + path, headers: [OwnerTokens.bearer(t)]).status) }
        return out
    }

    @Test func consumerMeansIssuerAndSubject() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try ownershipGateway(Self.yaml(upstream))
        defer { gw.stop() }
        let alice = OwnerTokens.token(sub: "alice", jti: "a-1"), bob = OwnerTokens.token(sub: "bob", jti: "b-1")
        #expect(try await statuses(gw, "/consumer", [alice, alice, alice]) == [200, 200, 429])
        // Same address, another subject: its own bucket.
        #expect(try await statuses(gw, "/consumer", [bob]) == [200])
        // A fresh token of alice's does not reset her count.
        #expect(try await statuses(gw, "/consumer", [OwnerTokens.token(sub: "alice", jti: "a-2")]) == [429])
        let refused = try await send(.GET, gw.url + "/consumer", headers: [OwnerTokens.bearer(alice)])
        #expect(refused.json["reason"] as? String == "rate_limited")
        #expect((refused.json["detail"] as? String)?.contains("for consumer alice") == true)
        // Tokens without iss are told apart by subject too.
        let noIss = ["carol", "dave"].map { OwnerTokens.token(sub: $0, iss: nil) }
        #expect(try await statuses(gw, "/consumer", noIss + noIss) == [200, 200, 200, 200])
    }

    @Test func keyMeansTheTokenNotTheSigningKey() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try ownershipGateway(Self.yaml(upstream))
        defer { gw.stop() }
        // Three users, all signed with kid own1: three buckets.
        let tokens = ["alice", "bob", "carol"].map { OwnerTokens.token(sub: $0, jti: "j-" + $0) }
        #expect(try await statuses(gw, "/key", tokens) == [200, 200, 200])
        #expect(try await statuses(gw, "/key", [tokens[0], tokens[0]]) == [200, 429])
        let refused = try await send(.GET, gw.url + "/key", headers: [OwnerTokens.bearer(tokens[0])])
        #expect((refused.json["detail"] as? String)?.contains("key jti j-alice") == true)
        #expect((refused.json["detail"] as? String)?.contains("kid") == false)
    }

    /// Review B: a `sub` that is not a string (true, an object, a number beyond 2^53) named no
    /// subject, so the consumer fell back to the token's fingerprint: a fresh bucket per token.
    /// RFC 7519 makes `sub` a string; such tokens are refused as token_malformed.
    @Test func aSubThatIsNotAStringIsRefusedNotCountedPerToken() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try ownershipGateway(Self.yaml(upstream))
        defer { gw.stop() }
        for sub in ["true", #"{"x":1}"#, "9007199254740993", "42"] {
            for j in 0..<3 {
                let token = OwnerTokens.raw(#""sub":"# + sub + #","iss":"i","jti":"\#(j)""#)
                let r = try await send(.GET, gw.url + "/consumer", headers: [OwnerTokens.bearer(token)])
                #expect(r.status == 401 && r.json["reason"] as? String == "token_malformed", "sub \(sub): \(r.status) \(r.body)")
                #expect((r.json["detail"] as? String)?.contains("must be a string") == true, "\(r.body)")
            }
        }
        #expect(upstream.requests.isEmpty)
        // Control: a string sub that looks like a number is a subject, counted across its tokens.
        let tokens = (0..<3).map { OwnerTokens.raw(#""sub":"42","iss":"i","jti":"\#($0)""#) }
        #expect(try await statuses(gw, "/consumer", tokens) == [200, 200, 429])
    }
}

import Foundation
import GatehouseCore
import GatehouseDoctor
import JWTKit
import Testing

/// Claims used to mint test tokens.
struct TestClaims: JWTPayload {
    var sub: String
    var iss: String
    var aud: [String]
    var exp: Int
    var nbf: Int?
    var scope: String
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

@Suite("doctor token")
struct TokenInspectorTests {
    struct Published: Codable { var name: String; var token: String; var source: String }
    static let published = try! JSONDecoder().decode([Published].self, from: Fixtures.data("tokens/tokens.json"))
    let now = Int(Date().timeIntervalSince1970)

    func mint(
        exp: Int, nbf: Int? = nil, scope: String = "orders:read", secret: String = "s3cret-s3cret-s3cret-s3cret-32by"
    ) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        return try await keys.sign(
            TestClaims(sub: "user-1", iss: "https://issuer.example", aud: ["orders-api"], exp: exp, nbf: nbf, scope: scope))
    }

    @Test("the jwt.io example verifies with its published secret and warns about the missing exp")
    func jwtIO() async throws {
        var o = TokenInspector.Options()
        o.secret = "your-256-bit-secret"
        let r = try await TokenInspector().inspect(Self.published[0].token, options: o)
        #expect(r.cause == nil)
        #expect(r.findings.contains { $0.check == "signature" && $0.severity == .ok })
        #expect(r.findings.contains { $0.check == "exp" && $0.severity == .warning })
        #expect(r.claims["name"] == .string("John Doe"))
        #expect(!r.render().contains(Self.published[0].token))
    }

    @Test("the RFC 7519 example is expired")
    func rfcExpired() async throws {
        let r = try await TokenInspector().inspect(Self.published[1].token, options: .init())
        #expect(r.cause == .expiredCredentials)
        #expect(r.render().contains("[FAIL] exp: expired 2011-03-22T18:43:00Z"))
    }

    @Test("alg none is flagged")
    func algNone() async throws {
        let r = try await TokenInspector().inspect(Self.published[2].token, options: .init())
        #expect(r.findings.contains { $0.check == "alg" && $0.severity == .problem })
        #expect(r.cause == .invalidCredentials)
    }

    @Test("a wrong secret fails the signature")
    func wrongSecret() async throws {
        let token = try await mint(exp: now + 3600)
        var o = TokenInspector.Options()
        o.secret = "another-secret-another-secret-32"
        let r = try await TokenInspector().inspect(token, options: o)
        #expect(r.problems.map(\.check) == ["signature"])
        #expect(r.cause == .invalidCredentials)
    }

    @Test("scope, audience, issuer and not-before are checked")
    func claims() async throws {
        let token = try await mint(exp: now + 3600, nbf: now + 7200)
        var o = TokenInspector.Options()
        o.secret = "s3cret-s3cret-s3cret-s3cret-32by"
        o.requiredScopes = ["orders:write"]
        o.audience = "billing-api"
        o.issuer = "https://issuer.example"
        let r = try await TokenInspector().inspect(token, options: o)
        #expect(Set(r.problems.map(\.check)) == ["nbf", "aud", "scope"])
        #expect(r.findings.contains { $0.check == "iss" && $0.severity == .ok })
        #expect(r.findings.contains { $0.check == "signature" && $0.severity == .ok })
        #expect(r.problems.first { $0.check == "scope" }?.message == "lacks scope orders:write; it grants [orders:read]")
    }

    @Test("a JWKS verifies an ES256 token and an unknown kid is named")
    func jwks() async throws {
        let key = ES256PrivateKey()
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: key, kid: "k1")
        let token = try await signer.sign(TestClaims(sub: "u", iss: "i", aud: ["a"], exp: now + 600, nbf: nil, scope: "s"), kid: "k1")
        let p = try #require(key.publicKey.parameters)
        let jwks = #"{"keys":[{"kty":"EC","crv":"P-256","x":"\#(p.x)","y":"\#(p.y)","kid":"k1","alg":"ES256","use":"sig"}]}"#
        var o = TokenInspector.Options()
        o.jwksJSON = jwks
        #expect(try await TokenInspector().inspect(token, options: o).cause == nil)
        o.jwksJSON = jwks.replacingOccurrences(of: "\"k1\"", with: "\"k2\"")
        let r = try await TokenInspector().inspect(token, options: o)
        #expect(r.cause == .invalidCredentials)
        #expect(r.problems.first?.message.contains("no key with kid 'k1'") == true)
    }

    @Test("something that is not a JWT is refused with the reason")
    func notJWT() async {
        await #expect(throws: TokenError.self) { try await TokenInspector().inspect("ghp_opaque", options: .init()) }
    }
}

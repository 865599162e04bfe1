import GatehouseTestSupport
import AsyncHTTPClient
import Foundation
import GatehouseProxy
import NIOCore
import NIOHTTP1
import NIOSSL
import Testing
import GatehouseServer
import GatehouseTesting

/// Mints an RS256 key set and tokens with PyJWT; nil (skip, or failure under CI=true) without it.
func mintTokens() throws -> [String: Any]? {
    let script = #"""
        import json, time, jwt
        from jwt.algorithms import RSAAlgorithm
        from cryptography.hazmat.primitives.asymmetric import rsa
        now = int(time.time())
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub = json.loads(RSAAlgorithm.to_jwk(key.public_key())); pub["kid"] = "k1"
        def tok(scope, **over):
            c = {"iss": "https://issuer.example", "aud": "payments", "sub": "svc-checkout", "iat": now, "exp": now + 900, "scope": scope, "jti": "j-" + scope.replace(" ", "-")}
            c.update(over)
            return jwt.encode(c, key, algorithm="RS256", headers={"kid": "k1"})
        print(json.dumps({"jwks": {"keys": [pub]},
          "payment_read": tok("payment:read user:profile"),
          "orders_read": tok("orders:read"),
          "expired": tok("payment:write", exp=now - 7200, iat=now - 9000)}))
        """#
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script]
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    guard p.terminationStatus == 0 else {
        let why = "python3 with PyJWT and cryptography is needed (pip install -r .ci/requirements.txt): \(e)"
        if inCI || !e.contains("ModuleNotFoundError") { Issue.record(Comment(rawValue: why)) } else { print("SKIPPED: \(why)") }
        return nil
    }
    return try JSONSerialization.jsonObject(with: o) as? [String: Any]
}

/// Runs `gatehouse ARGS` with `input` on standard input.
func gatehouse(_ args: [String], input: String) throws -> CommandResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: Binary.path)
    p.arguments = args
    let inp = Pipe(), out = Pipe(), err = Pipe()
    p.standardInput = inp
    p.standardOutput = out
    p.standardError = err
    try p.run()
    inp.fileHandleForWriting.write(Data(input.utf8))
    try inp.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return CommandResult(
        status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

@Suite(.serialized) struct IdentityIntegrationTests {
    static let yaml = """
        upstreams:
          app: { targets: ["http://127.0.0.1:UP"], timeout: 2s }
        routes:
          - name: process-payment
            match: { methods: [POST], path: /process-payment }
            upstream: app
            policies: [bearer, payment-write]
          - name: orders
            match: { methods: [GET, POST], path: /orders }
            upstream: app
            policies: [bearer, orders-rw]
          - name: users
            match: { methods: [GET], path: "/users/{id}" }
            upstream: app
            policies: [bearer, own-user]
          - name: reports
            match: { methods: [GET], path: /reports }
            upstream: app
            policies: [password]
        policies:
          bearer: { type: jwt, jwks_file: jwks.json, algorithms: [RS256], issuer: "https://issuer.example", audience: payments, leeway: 30s }
          payment-write: { type: scopes, require: ["payment:write"] }
          orders-rw: { type: scopes, by_method: { GET: ["orders:read"], POST: ["orders:write"] } }
          own-user: { type: owner, param: id, claim: sub }
          password: { type: basic, realm: reports }
        """

    @Test func caseStudyInsufficientScopeOnProcessPayment() async throws {
        guard let minted = try mintTokens() else { return }
        let upstream = try await startUpstream()
        let dir = try TempDir()
        _ = try dir.write("jwks.json", String(decoding: try JSONSerialization.data(withJSONObject: minted["jwks"]!), as: UTF8.self))
        let gw = try await LocalGateway(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port)), dir: dir)
        defer { gw.stop() }
        let token = minted["payment_read"] as! String

        let r = try await send(
            .POST, gw.url + "/process-payment", headers: [("Authorization", "Bearer " + token), ("Content-Type", "application/json")],
            body: #"{"amount": 10}"#)
        #expect(r.status == 403)
        #expect(r.json["reason"] as? String == "insufficient_scope")
        #expect(r.json["required"] as? [String] == ["payment:write"])
        #expect(r.json["presented"] as? [String] == ["payment:read", "user:profile"])
        let detail = r.json["detail"] as? String ?? ""
        #expect(detail.contains("payment:write") && detail.contains("payment:read user:profile"))
        #expect(
            r.headers.first(name: "www-authenticate") == "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", scope=\"payment:write\""
        )
        #expect(!r.body.contains(token))

        // The operator sees the same in `gatehouse explain`.
        _ = try await gw.record(r.requestID)
        let explain = try gw.cli(["explain", r.requestID])
        #expect(explain.status == 0)
        #expect(explain.stdout.contains("DENIED 403 insufficient_scope"))
        #expect(explain.stdout.contains("Required: payment:write"))
        #expect(explain.stdout.contains("Presented: payment:read, user:profile"))
        #expect(explain.stdout.contains("bearer [jwt] allow"))
        #expect(!explain.stdout.contains(token))

        // The caller can check the token offline with the same logic.
        let inspect = try gatehouse(["token", "inspect", token, "--jwks", dir.path + "/jwks.json", "--require-scope", "payment:write"])
        #expect(inspect.status == 1)
        #expect(inspect.stdout.contains("VALID: RS256 signature by key k1 verifies"))
        #expect(inspect.stdout.contains("insufficient_scope: requires payment:write; the token grants payment:read user:profile"))
        #expect(inspect.stdout.contains("iss  https://issuer.example"))
        #expect(!inspect.stdout.contains(token))
        let expired = try gatehouse(["token", "inspect", minted["expired"] as! String, "--jwks", dir.path + "/jwks.json"])
        #expect(expired.status == 1)
        #expect(expired.stdout.contains("INVALID (token_expired)"))
        #expect(
            expired.stdout.contains("2 h 0 min ago") || expired.stdout.contains("2 h ago") || expired.stdout.contains("ago; leeway 60 s"))
        await upstream.stop()
    }

    @Test func readingWorksWritingIsForbiddenAndTokenProblemsAre401() async throws {
        guard let minted = try mintTokens() else { return }
        let upstream = try await startUpstream()
        let dir = try TempDir()
        _ = try dir.write("jwks.json", String(decoding: try JSONSerialization.data(withJSONObject: minted["jwks"]!), as: UTF8.self))
        let gw = try await LocalGateway(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port)), dir: dir)
        defer { gw.stop() }
        let token = minted["orders_read"] as! String
        let get = try await send(.GET, gw.url + "/orders", headers: [("Authorization", "Bearer " + token)])
        #expect(get.status == 200)
        let post = try await send(.POST, gw.url + "/orders", headers: [("Authorization", "Bearer " + token)], body: "{}")
        #expect(post.status == 403)
        #expect(post.json["reason"] as? String == "insufficient_scope")
        #expect(post.json["required"] as? [String] == ["orders:write"])

        let missing = try await send(.GET, gw.url + "/orders")
        #expect(missing.status == 401)
        #expect(missing.json["reason"] as? String == "missing_credentials")
        #expect(missing.headers.first(name: "www-authenticate") == "Bearer realm=\"gatehouse\"")

        let expired = try await send(.GET, gw.url + "/orders", headers: [("Authorization", "Bearer " + (minted["expired"] as! String))])
        #expect(expired.status == 401)
        #expect(expired.json["reason"] as? String == "token_expired")
        #expect(expired.headers.first(name: "www-authenticate")?.contains("error=\"invalid_token\"") == true)

        // Ownership: sub svc-checkout may read /users/svc-checkout only.
        let own = try await send(.GET, gw.url + "/users/svc-checkout", headers: [("Authorization", "Bearer " + token)])
        #expect(own.status == 200)
        let other = try await send(.GET, gw.url + "/users/someone-else", headers: [("Authorization", "Bearer " + token)])
        #expect(other.status == 403)
        #expect(other.json["reason"] as? String == "not_owner")
        await upstream.stop()
    }

    @Test func basicAuthWithPasswordSetByTheCLI() async throws {
        let upstream = try await startUpstream()
        let dir = try TempDir()
        _ = try dir.write("jwks.json", #"{"keys":[]}"#)
        let gw = try await LocalGateway(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port)), dir: dir)
        defer { gw.stop() }
        #expect(try gw.cli(["consumers", "create", "alice"]).status == 0)
        let set = try gatehouse(["consumers", "set-password", "alice", "--cost", "4", "--store", gw.storePath], input: "s3cret-pass\n")
        #expect(set.status == 0, "\(set.stderr)")
        #expect(!set.stdout.contains("s3cret-pass"))
        let good = "Basic " + Data("alice:s3cret-pass".utf8).base64EncodedString()
        var status = 0
        for _ in 0..<40 {
            status = try await send(.GET, gw.url + "/reports", headers: [("Authorization", good)]).status
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(status == 200)
        let wrong = try await send(
            .GET, gw.url + "/reports", headers: [("Authorization", "Basic " + Data("alice:nope".utf8).base64EncodedString())])
        #expect(wrong.status == 401)
        #expect(wrong.json["reason"] as? String == "invalid_credentials")
        #expect(wrong.headers.first(name: "www-authenticate")?.hasPrefix("Basic realm=\"reports\"") == true)
        let none = try await send(.GET, gw.url + "/reports")
        #expect(none.status == 401)
        #expect(none.json["reason"] as? String == "missing_credentials")
        await upstream.stop()
    }

    @Test func mutualTLSHandshakesTrustedUntrustedExpiredUnmapped() async throws {
        let upstream = try await startUpstream()
        let dir = try TempDir()
        let pki = try TestPKI(name: "Gatehouse Test Client CA")
        let rogue = try TestPKI(name: "Rogue CA")
        let server = try pki.issue(commonName: "localhost", dns: ["localhost"], ip: true, server: true)
        _ = try dir.write("server.pem", server.certPEM)
        _ = try dir.write("server.key", server.keyPEM)
        _ = try dir.write("clients-ca.pem", pki.caPEM)
        let yaml = """
            tls: { certificate: server.pem, key: server.key, client_ca: clients-ca.pem, client_auth: optional }
            upstreams:
              app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
            routes:
              - name: ledger
                match: { path: /ledger }
                upstream: app
                policies: [client-cert]
            policies:
              client-cert: { type: mtls, identity: cn, consumers: { "billing-service": billing } }
            """
        let gw = try await LocalGateway(yaml: yaml, dir: dir)
        defer { gw.stop() }
        #expect(try gw.cli(["consumers", "create", "billing"]).status == 0)
        let url = "https://127.0.0.1:\(gw.port)/ledger"

        func call(_ cert: TestPKI.Issued?) async throws -> Reply {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(pki.caPEM.utf8), format: .pem)])
            tls.certificateVerification = .noHostnameVerification
            if let cert {
                tls.certificateChain = [.certificate(try NIOSSLCertificate(bytes: Array(cert.certPEM.utf8), format: .pem))]
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(cert.keyPEM.utf8), format: .pem))
            }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            do {
                let r = try await send(.GET, url, client: client)
                try await client.shutdown()
                return r
            } catch {
                try? await client.shutdown()
                throw error
            }
        }

        // Trusted and mapped: allowed, and the upstream sees it came over HTTPS.
        var ok = try await call(try pki.issue(commonName: "billing-service"))
        for _ in 0..<40 where ok.status != 200 {
            try await Task.sleep(for: .milliseconds(100))  // the consumer appears within a second
            ok = try await call(try pki.issue(commonName: "billing-service"))
        }
        #expect(ok.status == 200)
        #expect((ok.json["headers"] as? [String: String])?["x-forwarded-proto"] == "https")

        let none = try await call(nil)
        #expect(none.status == 401)
        #expect(none.json["reason"] as? String == "certificate_missing")

        let untrusted = try await call(try rogue.issue(commonName: "billing-service"))
        #expect(untrusted.status == 401)
        #expect(untrusted.json["reason"] as? String == "certificate_invalid")
        #expect((untrusted.json["detail"] as? String)?.contains("CN=Rogue CA, which is not a trusted CA") == true)

        let expiredCert = try pki.issue(commonName: "billing-service", notBefore: Date() - 86400 * 10, notAfter: Date() - 86400 * 2)
        let expired = try await call(expiredCert)
        #expect(expired.status == 401)
        #expect(expired.json["reason"] as? String == "certificate_invalid")
        #expect((expired.json["detail"] as? String)?.contains("expired on ") == true)

        let unmapped = try await call(try pki.issue(commonName: "stranger"))
        #expect(unmapped.status == 403)
        #expect(unmapped.json["reason"] as? String == "certificate_unmapped")
        #expect((unmapped.json["presented"] as? [String])?.contains("stranger") == true)
        await upstream.stop()
    }
}

@Suite struct IdentityConfigTests {
    @Test func unsafeOrIncompleteIdentityPoliciesAreRejectedWithPositions() throws {
        let dir = try TempDir()
        let file = try dir.write(
            "bad.yaml",
            """
            upstreams:
              app: { targets: ["http://127.0.0.1:9"] }
            routes:
              - match: { path: /x }
                upstream: app
                policies: [bearer, roles-only]
            policies:
              bearer: { type: jwt, jwks_file: jwks.json, algorithms: [none, HS265] }
              roles-only: { type: roles, require: [orders:write] }
              tls-less: { type: mtls, identity: subject }
            """)
        let r = try gatehouse(["check", file])
        #expect(r.status != 0)
        #expect(r.stderr.contains("bad.yaml:8:"))
        #expect(r.stderr.contains("alg none (unsigned tokens) can never be allowed"))
        #expect(r.stderr.contains("unknown algorithm \"HS265\""))
        #expect(r.stderr.contains("did you mean \"HS256\"?"))
        #expect(r.stderr.contains("add a permissions mapping"))
        #expect(r.stderr.contains("\"subject\" is not valid (expected one of: cn, san)"))
        let good = try dir.write(
            "good.yaml",
            """
            upstreams:
              app: { targets: ["http://127.0.0.1:9"] }
            routes:
              - match: { path: /x }
                upstream: app
                policies: [bearer, scoped]
            policies:
              bearer: { type: jwt, jwks_file: jwks.json, algorithms: [RS256, ES256] }
              scoped: { type: scopes, by_method: { GET: [x:read], POST: [x:write] } }
            """)
        let ok = try gatehouse(["check", good])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("route-1: ANY /x → app [bearer, scoped]"))
    }
}

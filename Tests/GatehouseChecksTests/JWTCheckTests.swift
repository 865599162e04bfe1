import Foundation
import GatehouseChecks
import GatehouseCore
import Testing

@Suite struct JWTCheckTests {
    static let rules = JWTRules(
        algorithms: ["HS256", "RS256", "ES256", "EdDSA"], issuers: ["https://issuer.example"], audiences: ["orders-api"],
        leeway: 60, rolesClaim: "realm_access.roles", tenantClaim: "https://example.com/tenant")

    func json(_ obj: Any) throws -> String { String(decoding: try JSONSerialization.data(withJSONObject: obj), as: UTF8.self) }

    func check(jwks: String, rules: JWTRules = JWTCheckTests.rules) async -> JWTCheck {
        let keys = JWTKeySet(source: .json(jwks))
        await keys.refreshNow()
        return JWTCheck(id: "jwt", keys: keys, rules: rules)
    }

    func request(_ token: String?, now: Double = Date().timeIntervalSince1970) -> PolicyRequest {
        var h = HeaderList()
        if let token { h.add("Authorization", "Bearer " + token) }
        return PolicyRequest(method: "GET", path: "/orders", headers: h, now: now)
    }

    func denial(_ v: Verdict) -> Denial? { if case .deny(let d) = v { return d } else { return nil } }

    @Test func acceptsTokensMintedByPyJWTForEveryAlgorithm() async throws {
        guard let out = try PyJWT.run(PyJWT.mintScript) else { return }
        let c = await check(jwks: try json(out["jwks"]!))
        let good = out["good"] as! [String: String]
        #expect(good.count == 4)
        for alg in ["HS256", "RS256", "ES256", "EdDSA"] {
            var req = request(good[alg]!)
            let v = c.evaluate(&req)
            guard case .allow = v else {
                Issue.record("\(alg) token minted by PyJWT was refused: \(denial(v)?.detail ?? "\(v)")")
                continue
            }
            #expect(req.principal?.subject == "user-17")
            #expect(req.principal?.scopes == ["orders:read", "orders:write"])
            // Nested claim path, and a dotted key name read whole rather than as nesting.
            #expect(req.principal?.roles == ["admin", "ops"])
            #expect(req.principal?.tenant == "acme")
        }
    }

    @Test func rejectsTheClassicAttacksEachWithItsReason() async throws {
        guard let out = try PyJWT.run(PyJWT.mintScript) else { return }
        let c = await check(jwks: try json(out["jwks"]!))
        let attacks = out["attacks"] as! [String: String]
        let expected: [String: String] = [
            "none": "token_algorithm_not_allowed",
            "confusion": "token_algorithm_not_allowed",
            "expired": "token_expired",
            "not_yet_valid": "token_not_yet_valid",
            "wrong_audience": "token_audience_mismatch",
            "wrong_issuer": "token_issuer_mismatch",
            "unknown_kid": "token_unknown_key",
            "wrong_key": "token_signature_invalid",
            "tampered": "token_signature_invalid",
            "truncated": "token_malformed",
        ]
        for (name, reason) in expected.sorted(by: { $0.key < $1.key }) {
            let token = attacks[name]!
            var req = request(token)
            guard let d = denial(c.evaluate(&req)) else {
                Issue.record("attack \(name) was allowed")
                continue
            }
            #expect(d.code.rawValue == reason, "attack \(name): \(d.detail)")
            #expect(d.status == 401)
            let challenge = d.headers.first { $0.name == "WWW-Authenticate" }?.value ?? ""
            #expect(challenge.hasPrefix("Bearer realm=\"gatehouse\""), "attack \(name)")
            #expect(challenge.contains("error=\"invalid_token\""), "attack \(name)")
            #expect(challenge.contains("error_description="), "attack \(name)")
            // The token never appears in what the caller or the log sees.
            #expect(!d.detail.contains(token) && !d.presented.joined().contains(token), "attack \(name) echoes the token")
            #expect(req.principal == nil)
        }
        // The expiry detail says when, how long ago, and the leeway.
        var req = request(attacks["expired"]!)
        let d = denial(c.evaluate(&req))!
        #expect(d.detail.contains("expired 20"))
        #expect(d.detail.contains("3 h 12 min ago"))
        #expect(d.detail.contains("leeway 60 s"))
        var unknown = request(attacks["unknown_kid"]!)
        #expect(denial(c.evaluate(&unknown))?.detail.contains("rogue-9") == true)
        var iss = request(attacks["wrong_issuer"]!)
        let issDetail = denial(c.evaluate(&iss))?.detail ?? ""
        #expect(issDetail.contains("https://evil.example") && issDetail.contains("https://issuer.example"))
    }

    @Test func pinnedAlgorithmsRefuseTokensOfOtherFamilies() async throws {
        guard let out = try PyJWT.run(PyJWT.mintScript) else { return }
        var rsOnly = Self.rules
        rsOnly.algorithms = ["RS256"]
        let c = await check(jwks: try json(out["jwks"]!), rules: rsOnly)
        let good = out["good"] as! [String: String]
        var hs = request(good["HS256"]!)
        #expect(denial(c.evaluate(&hs))?.code == "token_algorithm_not_allowed")
        var rs = request(good["RS256"]!)
        guard case .allow = c.evaluate(&rs) else { Issue.record("RS256 refused"); return }
    }

    @Test func missingTokenIsAChallengeWithoutErrorCode() async throws {
        let c = await check(jwks: #"{"keys":[{"kty":"oct","kid":"k","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYnk"}]}"#)
        var req = request(nil)
        let d = try #require(denial(c.evaluate(&req)))
        #expect(d.code == .missingCredentials)
        #expect(d.status == 401)
        #expect(d.headers == [HeaderField("WWW-Authenticate", "Bearer realm=\"gatehouse\"")])
    }

    @Test func noKeysAtAllFailsClosed() async throws {
        let keys = JWTKeySet(source: .file("/nonexistent/jwks.json"))
        await keys.refreshNow()
        let c = JWTCheck(id: "jwt", keys: keys, rules: Self.rules)
        var req = request("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
        let d = try #require(denial(c.evaluate(&req)))
        #expect(d.code == .checkUnavailable)
        #expect(d.detail.contains("/nonexistent/jwks.json"))
    }

    @Test func unknownKidRefreshesTheKeySetAndOutageKeepsLastGoodKeys() async throws {
        guard let out = try PyJWT.run(PyJWT.mintScript) else { return }
        let dir = NSTemporaryDirectory() + "jwks-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/jwks.json"
        try json(out["jwks"]!).write(toFile: path, atomically: true, encoding: .utf8)
        let keys = JWTKeySet(source: .file(path), minRefreshInterval: 3600)
        await keys.refreshNow()
        let c = JWTCheck(id: "jwt", keys: keys, rules: Self.rules)
        let rotated = (out["attacks"] as! [String: String])["unknown_kid"]!
        // The issuer rotates: the new key appears in the JWKS.
        try json(out["rogue_jwks"]!).write(toFile: path, atomically: true, encoding: .utf8)
        var first = request(rotated)
        let d = try #require(denial(c.evaluate(&first)))
        #expect(d.code == "token_unknown_key")
        #expect(d.detail.contains("being refreshed"))
        // The refresh started by that request serves the next one.
        var allowed = false
        for _ in 0..<100 {
            var next = request(rotated)
            if case .allow = c.evaluate(&next) { allowed = true; break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(allowed)
        // Refreshes are rate-bounded.
        #expect(keys.requestRefresh(now: Date().timeIntervalSince1970) == false)
        // Outage: the file disappears; a forced refresh fails and the last good keys stay.
        try FileManager.default.removeItem(atPath: path)
        keys.requestRefresh(now: Date().timeIntervalSince1970, force: true)
        await keys.refreshNow()
        var during = request((out["good"] as! [String: String])["RS256"]!)
        guard case .allow = c.evaluate(&during) else { Issue.record("last good keys were dropped during an outage"); return }
    }

    @Test func verifiedTokenCacheRechecksClaimsAndForgetsOnKeyRotation() async throws {
        guard let out = try PyJWT.run(PyJWT.mintScript) else { return }
        let dir = NSTemporaryDirectory() + "jwks-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/jwks.json"
        try json(out["jwks"]!).write(toFile: path, atomically: true, encoding: .utf8)
        let keys = JWTKeySet(source: .file(path))
        await keys.refreshNow()
        let c = JWTCheck(id: "jwt", keys: keys, rules: Self.rules)
        let token = (out["good"] as! [String: String])["RS256"]!
        for _ in 0..<2 {
            var req = request(token)
            guard case .allow = c.evaluate(&req) else { Issue.record("valid token refused"); return }
            #expect(req.principal?.subject == "user-17")
        }
        // The signature is remembered, the claims are not: ten days later the same token is expired.
        var late = request(token, now: Date().timeIntervalSince1970 + 10 * 86400)
        #expect(denial(c.evaluate(&late))?.code == "token_expired")
        // The issuer's key under the same kid changes: the cached verification does not survive the reload.
        let rogue = ((out["rogue_jwks"] as! [String: Any])["keys"] as! [[String: Any]]).first { $0["kid"] as? String == "rogue-9" }!
        var replaced = rogue
        replaced["kid"] = "rsa-1"
        try json(["keys": [replaced]]).write(toFile: path, atomically: true, encoding: .utf8)
        await keys.refreshNow()
        var after = request(token)
        #expect(denial(c.evaluate(&after))?.code == "token_signature_invalid")
    }

    @Test func tokenFromCookie() async throws {
        guard let out = try PyJWT.run(PyJWT.mintScript) else { return }
        let keys = JWTKeySet(source: .json(try json(out["jwks"]!)))
        await keys.refreshNow()
        let c = JWTCheck(id: "jwt", keys: keys, rules: Self.rules, cookie: "session")
        var req = PolicyRequest(
            method: "GET", path: "/", headers: HeaderList([("Cookie", "a=b; session=\((out["good"] as! [String: String])["ES256"]!)")]),
            now: Date().timeIntervalSince1970)
        guard case .allow = c.evaluate(&req) else { Issue.record("cookie token refused"); return }
    }

    @Test func keysFromAURLSurviveAnOutage() async throws {
        guard let out = try PyJWT.run(PyJWT.mintScript) else { return }
        let dir = NSTemporaryDirectory() + "jwks-url-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try json(out["jwks"]!).write(toFile: dir + "/jwks.json", atomically: true, encoding: .utf8)
        // A plain HTTP server on a port chosen by the OS, serving the directory.
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = [
            "python3", "-c",
            """
            import http.server, socketserver, sys, os
            os.chdir(sys.argv[1])
            class H(http.server.SimpleHTTPRequestHandler):
                def log_message(self, *a): pass
            s = socketserver.TCPServer(("127.0.0.1", 0), H)
            print(s.server_address[1], flush=True)
            s.serve_forever()
            """, dir,
        ]
        let pipe = Pipe()
        server.standardOutput = pipe
        try server.run()
        // SIGKILL: the test process may have SIGTERM blocked, and the child inherits the mask.
        defer { if server.isRunning { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() } }
        var line = Data()
        while true {
            let b = pipe.fileHandleForReading.readData(ofLength: 1)
            if b.isEmpty || b == Data([0x0A]) { break }
            line.append(b)
        }
        let port = try #require(Int(String(decoding: line, as: UTF8.self)))
        let keys = JWTKeySet(source: .url("http://127.0.0.1:\(port)/jwks.json"))
        await keys.refreshNow()
        let c = JWTCheck(id: "jwt", keys: keys, rules: Self.rules)
        let token = (out["good"] as! [String: String])["RS256"]!
        var first = request(token)
        guard case .allow = c.evaluate(&first) else {
            Issue.record("token refused with keys from the URL: \(denialOf(c.evaluate(&first))?.detail ?? "")"); return
        }
        // Outage: the server goes away; a refresh fails and the last good keys stay in use.
        kill(server.processIdentifier, SIGKILL)
        server.waitUntilExit()
        keys.requestRefresh(now: Date().timeIntervalSince1970, force: true)
        await keys.refreshNow()
        #expect(keys.currentKeys(now: Date().timeIntervalSince1970).lastError != nil)
        var during = request(token)
        guard case .allow = c.evaluate(&during) else { Issue.record("last good keys were dropped during a JWKS outage"); return }
        // A key set that never loaded fails closed at once, naming the source.
        let never = JWTCheck(id: "jwt", keys: JWTKeySet(source: .url("http://127.0.0.1:\(port)/never.json")), rules: Self.rules)
        var closed = request(token)
        let d = try #require(denialOf(never.evaluate(&closed)))
        #expect(d.code == .checkUnavailable)
        #expect(d.detail.contains("JWKS URL http://127.0.0.1:\(port)/never.json"))
        // A new key set for a source this process already loaded (a configuration reload) starts
        // from the last good keys instead of failing closed while it refreshes.
        let reloaded = JWTCheck(id: "jwt", keys: JWTKeySet(source: .url("http://127.0.0.1:\(port)/jwks.json")), rules: Self.rules)
        var afterReload = request(token)
        guard case .allow = reloaded.evaluate(&afterReload) else { Issue.record("a reloaded key set lost the last good keys"); return }
    }

    @Test func claimPathsPreferDottedKeysOverNesting() {
        let claims: [String: JSONValue] = [
            "a.b": .string("whole"),
            "a": .object(["b": .string("nested")]),
            "realm_access": .object(["roles": .array([.string("x")])]),
        ]
        #expect(ClaimPath.lookup("a.b", in: claims) == .string("whole"))
        #expect(ClaimPath.lookup("realm_access.roles", in: claims) == .array([.string("x")]))
        #expect(ClaimPath.lookup("realm_access.missing", in: claims) == nil)
        var rules = JWTRules(algorithms: ["HS256"])
        rules.scopeClaim = "permissions"
        #expect(
            JWTVerifier.scopes(["scp": .array([.string("a"), .string("b")]), "permissions": .string("c")], rules: rules) == ["a", "b", "c"])
    }
}

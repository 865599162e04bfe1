import Foundation
import GatehouseChecks
import GatehouseCore
import GatehouseIdentity
import GatehouseTestSupport
import NIOHTTP1
import Synchronization
import Testing

/// S16: an unknown Basic user never reached bcrypt, so it was answered ~500x faster than a known
/// user with a wrong password. Now an unknown user costs one bcrypt verification against a dummy
/// hash. No durations are measured: the verifications are counted through the check's injectable
/// verifier, and the live gateway's two answers are compared field by field.
@Suite(.serialized) struct S16_BasicAuthTiming {
    struct Directory: CredentialDirectory {
        var consumers: [ConsumerRecord]
        func key(id: String) -> KeyRecord? { nil }
        func consumer(id: String) -> ConsumerRecord? { consumers.first { $0.id == id } }
        func consumer(named name: String) -> ConsumerRecord? { consumers.first { $0.name == name } }
        var isAvailable: Bool { true }
    }

    @Test func everyRefusedPasswordCostsOneBcryptVerification() throws {
        let hash = BasicAuthCheck.hashPassword("correct horse", cost: 10)
        let calls = Mutex<[String]>([])
        let check = BasicAuthCheck(
            id: "basic",
            directory: Directory(consumers: [
                ConsumerRecord(id: "c1", name: "alice", passwordHash: hash),
                ConsumerRecord(id: "c2", name: "no-password"),
            ]),
            verifyPassword: { password, h in
                calls.withLock { $0.append(h) }
                return BasicAuthCheck.verifyBcrypt(password, h)
            })
        func attempt(_ userPass: String) -> Verdict {
            var r = PolicyRequest(
                method: "GET", path: "/reports",
                headers: HeaderList([("Authorization", "Basic " + Data(userPass.utf8).base64EncodedString())]))
            return check.evaluate(&r)
        }
        guard case .deny(let known) = attempt("alice:wrong") else { Issue.record("wrong password allowed"); return }
        guard case .deny(let unknown) = attempt("mallory:wrong") else { Issue.record("unknown user allowed"); return }
        guard case .deny(let noPassword) = attempt("no-password:x") else { Issue.record("user without password allowed"); return }
        let hashes = calls.withLock { $0 }
        #expect(hashes.count == 3, "bcrypt verifications: \(hashes.count) for 3 refused attempts")
        // The unknown users were checked against a dummy hash of the real hash's cost (10).
        #expect(hashes.dropFirst().allSatisfy { $0 != hash && $0.contains("$10$") }, "\(hashes)")
        // All three answers are the same to the caller.
        for d in [unknown, noPassword] {
            #expect(d.code == known.code && d.status == known.status && d.headers == known.headers && d.required == known.required)
        }
    }

    @Test func unknownAndKnownUsersGetTheSameAnswerFromALiveGateway() async throws {
        let upstream = try await CaptureUpstream()
        let gw = try GatewayProcess(
            yaml: """
                upstreams:
                  app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
                routes:
                  - name: reports
                    match: { path: /reports }
                    upstream: app
                    policies: [password]
                policies:
                  password: { type: basic, realm: reports }
                """)
        defer { gw.stop() }
        #expect(try gw.cli(["consumers", "create", "alice"]).status == 0)
        let set = try gatehouseWithInput(
            ["consumers", "set-password", "alice", "--cost", "4", "--store", gw.storePath], input: "s3cret-pass\n")
        #expect(set.status == 0, "\(set.stderr)")
        func basic(_ s: String) -> [(String, String)] { [("Authorization", "Basic " + Data(s.utf8).base64EncodedString())] }
        var good = try await send(.GET, gw.url + "/reports", headers: basic("alice:s3cret-pass"))
        for _ in 0..<40 where good.status != 200 {
            try await Task.sleep(for: .milliseconds(100))
            good = try await send(.GET, gw.url + "/reports", headers: basic("alice:s3cret-pass"))
        }
        #expect(good.status == 200)
        let known = try await send(.GET, gw.url + "/reports", headers: basic("alice:wrong"))
        let unknown = try await send(.GET, gw.url + "/reports", headers: basic("mallory:wrong"))
        #expect(known.status == 401 && unknown.status == 401)
        #expect(known.json["reason"] as? String == "invalid_credentials")
        #expect(unknown.json["reason"] as? String == known.json["reason"] as? String)
        #expect(unknown.headers.first(name: "www-authenticate") == known.headers.first(name: "www-authenticate"))
        let kd = (known.json["detail"] as? String ?? "").replacingOccurrences(of: "alice", with: "USER")
        let ud = (unknown.json["detail"] as? String ?? "").replacingOccurrences(of: "mallory", with: "USER")
        #expect(kd == ud, "\(kd) vs \(ud)")
        #expect(gw.process.isRunning)
        await upstream.stop()
    }
}

import Foundation
import GatehouseTestSupport
import GatehouseTesting
import NIOHTTP1
import Synchronization
import Testing

/// The developer portal in a real headless Chromium (Tests/browser/portal_test.py): a developer
/// applies, an admin approves, the developer's key is rate-limited, and the developer reads why
/// from the request id; another application's request id is the explained 403.
@Suite(.serialized) struct PortalBrowserTests {
    static let portalScript = BrowserPrerequisites.repoRoot + "/Tests/browser/portal_test.py"

    /// Runs a program to its end on a Dispatch thread: waiting for it must not hold one of the
    /// cooperative pool's threads (two on a two-core machine), which the in-process gateway and its
    /// admin listener need to answer the browser. Returns the exit status, stdout and stderr.
    static func run(_ executable: String, _ arguments: [String]) async throws -> (Int32, Data, String) {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: executable)
                p.arguments = arguments
                let stdout = Pipe(), stderr = Pipe()
                p.standardOutput = stdout
                p.standardError = stderr
                do { try p.run() } catch {
                    continuation.resume(throwing: error)
                    return
                }
                // stderr read on another thread, so that neither pipe fills while the other is read.
                let errorText = Mutex(Data())
                let group = DispatchGroup()
                DispatchQueue.global().async(group: group) {
                    let d = stderr.fileHandleForReading.readDataToEndOfFile()
                    errorText.withLock { $0 = d }
                }
                let o = stdout.fileHandleForReading.readDataToEndOfFile()
                group.wait()
                p.waitUntilExit()
                continuation.resume(returning: (p.terminationStatus, o, String(decoding: errorText.withLock { $0 }, as: UTF8.self)))
            }
        }
    }

    @Test(
        .enabled(
            if: BrowserPrerequisites.shouldRun,
            "needs python3 + selenium, chromium and chromium-driver (.ci/apt-packages, .ci/requirements.txt)"))
    func aDeveloperReadsWhyItsKeyWasRateLimited() async throws {
        let missing = BrowserPrerequisites.missing
        try #require(missing.isEmpty, "browser test prerequisites missing: \(missing.joined(separator: ", "))")
        let upstream = try await startUpstream()
        let gateway = try await LocalGateway(
            yaml: """
                admin: 127.0.0.1:0
                portal: { listen: 127.0.0.1:0 }
                upstreams:
                  app: { targets: ["http://127.0.0.1:\(upstream.port)"], timeout: 2s }
                routes:
                  - name: payments-api
                    match: { methods: [GET], path: "/payments/*" }
                    upstream: app
                    policies: [key, payments-subscription, payments-limit]
                policies:
                  key: { type: api_key }
                  payments-subscription: { type: subscription, service: payments }
                  payments-limit: { type: rate_limit, key: consumer, rate: 2/minute }
                """)
        defer { gateway.stop() }
        let adminURL = "http://127.0.0.1:\(try #require(gateway.adminPort))"
        // The developer is given the portal's listener, never the admin listener.
        let portalURL = "http://127.0.0.1:\(try #require(gateway.portalPort))"

        func cli(_ args: [String]) throws -> String {
            let r = try gateway.cli(args)
            #expect(r.status == 0, "gatehouse \(args.joined(separator: " ")): \(r.stderr)")
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        for t in ["acme", "globex"] { _ = try cli(["tenants", "create", t]) }
        _ = try cli(["consumers", "create", "checkout", "--tenant", "acme"])
        _ = try cli(["consumers", "create", "billing", "--tenant", "globex"])
        _ = try cli(["services", "create", "payments", "--tenant", "globex", "--approval", "manual", "--routes", "payments-api"])
        _ = try cli(["admins", "create", "bob", "--role", "operator", "--tenant", "globex"])
        let bobToken = try cli(["admins", "token", "bob", "--quiet"])
        // The password from the environment, as an operator would script it.
        setenv("GATEHOUSE_DEVELOPER_PASSWORD", "dana-portal-pw", 1)
        defer { unsetenv("GATEHOUSE_DEVELOPER_PASSWORD") }
        _ = try cli(["developer", "create", "dana@acme.test", "--application", "checkout", "--cost", "4"])

        // A request of another application (billing has no subscription: 403).
        let billingKey = try cli(["keys", "create", "--consumer", "billing", "--quiet"])
        let theirs = try await send(.GET, gateway.url + "/payments/1", headers: [("X-API-Key", billingKey)])
        #expect(theirs.status == 403)
        let theirID = theirs.requestID
        #expect(!theirID.isEmpty)

        let out = BrowserPrerequisites.repoRoot + "/bench/out/portal"
        let (status, o, e) = try await Self.run(
            BrowserPrerequisites.which("python3")!,
            [
                Self.portalScript, "--gateway", gateway.url, "--portal", portalURL, "--admin", adminURL, "--admin-token", bobToken,
                "--developer",
                "dana@acme.test", "--password", "dana-portal-pw", "--service", "payments", "--path", "/payments/1", "--other-request-id",
                theirID, "--out", out,
            ])
        await upstream.stop()
        try #require(status == 0, "portal_test.py exited \(status): \(e)")
        let seen = try #require(
            try JSONSerialization.jsonObject(with: o) as? [String: Any],
            "no JSON from portal_test.py: \(String(decoding: o, as: UTF8.self))")

        #expect((seen["signed_in_as"] as? String)?.contains("dana@acme.test") == true)
        #expect(seen["after_apply"] as? String == "pending")
        #expect(seen["pending_seen_by_admin"] as? Int == 1 && seen["approve_status"] as? Int == 200)
        #expect(seen["after_approval"] as? String == "approved")
        #expect(seen["key_prefix"] as? String == "gth_")
        // Allowed twice, then the limit.
        let calls = seen["calls"] as? [Int] ?? []
        #expect(calls.suffix(3) == [200, 200, 429], "calls: \(calls)")
        #expect((seen["limited_body"] as? [String: Any])?["reason"] as? String == "rate_limited")

        // The developer read why, with the limit.
        #expect(seen["explained_reason"] as? String == "rate_limited", "\(seen["explain_failed_page"] ?? "")")
        #expect((seen["explained_verdict"] as? String)?.contains("DENIED 429") == true)
        #expect((seen["explained_required"] as? String)?.contains("at most 2 per 1 min") == true, "\(seen)")
        #expect((seen["explained_steps"] as? String)?.contains("payments-limit") == true)
        // Nothing of the gateway's internals: the upstream's address is not on the page.
        #expect((seen["explained_page"] as? String)?.contains("127.0.0.1:\(upstream.port)") == false)

        // Another application's request: the explained 403, which says nothing of it.
        #expect(seen["other_reason"] as? String == "portal_request_not_yours", "\(seen["other_page"] ?? "")")
        let other = seen["other_page"] as? String ?? ""
        #expect(other.contains("403") && !other.contains("billing") && !other.contains("subscription_required"))

        #expect(FileManager.default.fileExists(atPath: out + "/explanation.png"))
    }
}

import Foundation
import GatehouseChecks
import GatehouseCore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// The JWKS loads of key sets made with a `JWKSRefresher` run in its task group: a load asked for
/// before the service runs waits for it, and none runs once it has returned.
@Suite struct JWKSRefresherTests {
    /// An HS256 key with a kid of its own, so no other test's last good keys seed the set.
    func uniqueJWKS() -> String {
        #"{"keys":[{"kty":"oct","kid":"\#(UUID().uuidString)","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYnk"}]}"#
    }

    @Test func aLoadAskedForBeforeTheServiceRunsIsRunByItAndRunEndsOnGracefulShutdown() async throws {
        let refresher = JWKSRefresher()
        let keys = JWTKeySet(source: .json(uniqueJWKS()), refresher: refresher, report: { _ in })
        // As when the configuration is built: the load is asked for before the group runs.
        #expect(keys.requestRefresh(now: Date().timeIntervalSince1970, force: true))
        #expect(!keys.snapshot().loaded)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await refresher.run() }
                for _ in 0..<500 where !keys.snapshot().loaded { try await Task.sleep(for: .milliseconds(10)) }
                #expect(keys.snapshot().loaded)
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
    }

    @Test func noLoadRunsOnceTheServiceHasReturned() async throws {
        let refresher = JWKSRefresher()
        let running = Task { try await refresher.run() }
        running.cancel()
        try await running.value
        let keys = JWTKeySet(source: .json(uniqueJWKS()), refresher: refresher, report: { _ in })
        #expect(!keys.requestRefresh(now: Date().timeIntervalSince1970, force: true))
        // A check on it fails closed at once, as with any key set that has not loaded.
        let check = JWTCheck(id: "jwt", keys: keys, rules: JWTCheckTests.rules)
        var request = PolicyRequest(
            method: "GET", path: "/orders", headers: HeaderList([("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")]),
            now: Date().timeIntervalSince1970)
        guard case .deny(let denial) = check.evaluate(&request) else { Issue.record("a key set that never loaded allowed a token"); return }
        #expect(denial.code == .checkUnavailable)
        #expect(!keys.snapshot().loaded)
    }
}

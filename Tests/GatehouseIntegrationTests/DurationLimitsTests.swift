import Foundation
import GatehouseProxy
import GatehouseTestSupport
import NIOHTTP1
import Testing
import GatehouseServer
import GatehouseTesting

/// Extreme durations: a timeout the gateway cannot honour is refused by `check` (exit 2, with its
/// position and the range expected), and an enormous `--grace` does not stop a clean shutdown.
@Suite(.serialized) struct DurationLimitsTests {
    static let upstream =
        "upstreams:\n  app: { targets: [\"http://127.0.0.1:9000\"] }\nroutes:\n  - match: { path: /x }\n    upstream: app\n"

    @Test func checkRefusesTimeoutsOutOfRange() throws {
        let dir = try TempDir()
        let cases: [(String, String)] = [
            // Zero closed every connection at the first sweep.
            (
                Self.upstream + "limits: { header_timeout: 0s }\n",
                "zero.yaml:6:27: limits.header_timeout: \"0s\" is out of range (expected a timeout from 1ms to 7d, e.g. 250ms, 30s, 5m)"
            ),
            (
                Self.upstream + "limits: { keepalive_timeout: 100000000000d }\n",
                "huge.yaml:6:30: limits.keepalive_timeout: \"100000000000d\" is out of range (expected a timeout from 1ms to 7d, e.g. 250ms, 30s, 5m)"
            ),
            // A huge upstream timeout trapped when a request armed it.
            (
                "upstreams:\n  app: { targets: [\"http://127.0.0.1:9000\"], timeout: 10000000000000d }\nroutes:\n  - match: { path: /x }\n    upstream: app\n",
                "upstream.yaml:2:55: upstreams.app.timeout: \"10000000000000d\" is out of range (expected a timeout from 1ms to 7d, e.g. 250ms, 30s, 5m)"
            ),
            (
                "upstreams:\n  app: { targets: [\"http://127.0.0.1:9000\"], connect_timeout: 8d }\nroutes:\n  - match: { path: /x }\n    upstream: app\n",
                "connect.yaml:2:63: upstreams.app.connect_timeout: \"8d\" is out of range (expected a timeout from 1ms to 7d, e.g. 250ms, 30s, 5m)"
            ),
            (
                Self.upstream + "log: { retention: 99999999999999d }\n",
                "retention.yaml:6:19: log.retention: \"99999999999999d\" is too long (expected a duration of at most 36500d)"
            ),
        ]
        for (yaml, message) in cases {
            let name = String(message.prefix { $0 != ":" })
            let file = try dir.write(name, yaml)
            let r = try gatehouse(["check", file])
            #expect(r.status == 2, "\(name): \(r.stdout)\(r.stderr)")
            #expect(r.stderr.contains(message), "\(name): \(r.stderr)")
        }
        let good = try dir.write("good.yaml", Self.upstream + "limits: { header_timeout: 1ms, send_timeout: 7d }\n")
        #expect(try gatehouse(["check", good]).status == 0)
    }

    @Test func anEnormousGraceStillShutsDownCleanly() async throws {
        let up = try await startUpstream()
        defer { Task { await up.stop() } }
        for grace in ["1e10", "1e300", "inf"] {
            let gw = try GatewayProcess(
                yaml:
                    "upstreams:\n  app: { targets: [\"http://127.0.0.1:\(up.port)\"] }\nroutes:\n  - match: { path: /x }\n    upstream: app\n",
                extraArguments: ["--grace", grace])
            #expect(try await send(.GET, gw.url + "/x").status == 200)
            #expect(gw.stop() == 0, "--grace \(grace): \(gw.stderr)")
            #expect(gw.process.terminationReason == .exit)
        }
    }
}

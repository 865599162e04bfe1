import Foundation
import GatehouseProxy
import GatehouseStore
import GatehouseTestSupport
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing
import GatehouseServer
import GatehouseTesting

/// The gateway and its companion services in one `ServiceGroup`, in process, ordered as `serve`
/// orders them: a graceful shutdown lets the request in flight finish, and the call log, which
/// shuts down after the gateway, holds its record when the group returns.
@Suite struct GatewayServiceTests {
    @Test func aGracefulShutdownDrainsTheRequestInFlightAndTheCallLogKeepsIt() async throws {
        // The upstream answers after half a second, so the request is still in flight at shutdown.
        let upstream = try await CaptureUpstream { _ in
            CannedResponse(pieces: [(500, Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8))])
        }
        let dir = try TempDir()
        let config = try dir.write(
            "gatehouse.yaml",
            """
            listen: 127.0.0.1:0
            store: { sqlite: gatehouse.db }
            upstreams:
              app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
            routes:
              - name: slow
                match: { path: /slow }
                upstream: app
            """)
        let (ports, announce) = AsyncStream.makeStream(of: Int.self)
        let gateway = try Gateway(configFile: config, threads: 1, grace: 30) { gateway in
            announce.yield(gateway.boundAddress?.port ?? 0)
        }
        let group = ServiceGroup(
            services: [gateway.callLog, gateway.credentialRefresher, gateway.jwksRefresher, gateway],
            logger: Logger(label: "gatehouse-test"))
        let reply = try await withThrowingTaskGroup(of: Reply?.self) { tasks in
            tasks.addTask {
                try await group.run(); return nil
            }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            let inFlight = Task { try await send(.GET, "http://127.0.0.1:\(port)/slow") }
            for _ in 0..<100 where upstream.requests.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            #expect(upstream.requests.count == 1)
            await group.triggerGracefulShutdown()
            let reply = try await inFlight.value
            try await tasks.waitForAll()
            return reply
        }
        #expect(reply.status == 200)
        #expect(reply.body == "ok")
        // The group has returned: the call log was written out after the gateway drained.
        #expect(gateway.callLog.written == 1)
        let store = try SQLiteStore(path: dir.path + "/gatehouse.db")
        #expect(try store.call(requestID: reply.requestID)?.status == 200)
        await upstream.stop()
    }
}

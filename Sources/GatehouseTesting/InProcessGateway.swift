import Foundation
import GatehouseChecks
import GatehouseServer
import GatehouseStore
import Logging
import NIOCore
import ServiceLifecycle

/// A gateway served in the caller's own process, as `gatehouse serve` runs it (the same
/// `Gateway` service with its call log, credential refresher and JWKS refresher in one
/// `ServiceGroup`), on 127.0.0.1 with a port chosen by the OS. For tests: no child process to
/// start, no stdout to wait on, and `record(_:)` waits for the call-log writer rather than a clock.
///
/// What needs a process of its own stays with one: signals, descriptor limits, the process's log
/// output, tracing (one tracer per process), attacks that could crash it.
public final class InProcessGateway: Sendable {
    public let gateway: Gateway
    public let configPath: String
    public let port: Int
    /// The admin listener's port, when the configuration has one.
    public let adminPort: Int?
    /// The portal listener's port, when the configuration has one.
    public let portalPort: Int?
    private let group: ServiceGroup
    private let running: Task<Void, any Error>

    /// Serves `yaml` (its `listen` and `store` are set here: port 0, `gatehouse.db` in
    /// `directory`) and returns once the listeners are bound and the first JWKS loads have ended.
    public init(yaml: String, directory: String, threads: Int = 2, logger: Logger = Logger(label: "gatehouse")) async throws {
        configPath = directory + "/gatehouse.yaml"
        try ("listen: 127.0.0.1:0\nstore: { sqlite: gatehouse.db }\n" + yaml).write(toFile: configPath, atomically: true, encoding: .utf8)
        let (bound, boundSignal) = AsyncStream<Void>.makeStream()
        gateway = try Gateway(configFile: configPath, threads: threads, grace: 2, logger: logger) { _ in
            boundSignal.yield()
            boundSignal.finish()
        }
        var services: [any Service] = []
        if let tracing = gateway.tracing { services.append(tracing) }
        if let cluster = gateway.cluster { services.append(cluster) }
        services += [gateway.callLog, gateway.credentialRefresher, gateway.jwksRefresher, gateway]
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [], logger: logger)
        self.group = group
        running = Task {
            // A group that fails to start (the port is taken, say) ends the wait too.
            defer { boundSignal.finish() }
            try await group.run()
        }
        for await _ in bound { break }
        guard let address = gateway.boundAddress, let port = address.port else {
            try await running.value
            throw InProcessGatewayError("the gateway stopped before it was listening")
        }
        self.port = port
        adminPort = gateway.adminAddress?.port
        portalPort = gateway.portalAddress?.port
        // The gateway binds after at most `Gateway.initialJWKSWait` of waiting for its first JWKS
        // loads; a test waits for them to end (on a loaded machine they can take longer), so its
        // first bearer request finds the keys.
        _ = await gateway.jwksRefresher.waitForQueuedLoads(upTo: .seconds(30))
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// Starts the graceful shutdown (drain, call log written out) and returns at once.
    public func stop() {
        let group = group
        Task { await group.triggerGracefulShutdown() }
    }

    /// The call-log records of `requestID` (a repeated id's records too), once the writer has
    /// written everything the gateway handed it so far.
    public func records(_ requestID: String) async throws -> [CallRecord] {
        await gateway.callLog.flush()
        return try gateway.store.calls(requestID: requestID)
    }
}

public struct InProcessGatewayError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

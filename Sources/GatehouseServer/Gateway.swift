import GatehouseAdmin
import GatehouseConsole
import GatehouseChecks
import GatehouseConfig
import GatehouseControl
import GatehouseCore
import GatehouseHTTP1
import GatehouseIdentity
import GatehousePostgres
import GatehouseStore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import GatehouseProxy
import Hummingbird
import ServiceLifecycle

/// The running gateway: listener, configuration, store, call log.
///
/// A `Service`: `run()` binds, serves until graceful shutdown, then drains in-flight requests for
/// up to `grace` seconds and returns. The call log, the credential refresh and the JWKS loads are
/// services of their own (`callLog`, `credentialRefresher`, `jwksRefresher`); run them in the same
/// `ServiceGroup`, before the gateway, so that they shut down after it and the call log takes the
/// last records:
///
/// ```swift
/// ServiceGroup(services: [gateway.callLog, gateway.credentialRefresher, gateway.jwksRefresher, gateway], ...)
/// ```
///
/// With `tracing:` configured, `tracing` is a service too, to run first (it stops last, after the
/// gateway's last spans have ended).
///
/// `start()` and `shutdown(grace:)` bind and drain for a caller that manages the gateway by hand;
/// `shutdown(grace:)` also closes the call log. Such a caller runs `credentialRefresher` itself if
/// it wants the store polled (without it, an unknown key id still re-reads the store at once).
public final class Gateway: Service, Sendable {
    /// The configuration file, or nil for the embedded defaults.
    public let configFile: String?
    /// Seconds `run()` lets in-flight requests finish once graceful shutdown starts.
    public let grace: Double
    /// Called by `run()` once the listeners are bound, before serving (to print the addresses).
    let onServerRunning: (@Sendable (Gateway) async -> Void)?
    /// Polls the store so key and consumer changes reach the request path.
    public let credentialRefresher: CredentialRefresher
    /// Runs the JWKS loads of the `jwt` checks of every configuration this gateway loads.
    public let jwksRefresher = JWKSRefresher()
    let services: GatewayServices
    let group: MultiThreadedEventLoopGroup
    package let store: SQLiteStore
    /// In cluster mode (`store: { postgres: … }`): keeps `store` a copy of the cluster store's
    /// credentials and subscriptions, delivers the call log there, reports this node. A service
    /// to run beside the gateway (`backgroundServices`).
    public let cluster: ClusterNode?
    /// The counters of `scope: cluster` rate limits (on connections of their own).
    let clusterRateLimiter: ClusterRateLimiter?
    let directory: StoreDirectory
    /// Released before the event loops stop: its deinit touches its loop.
    let quiesce: NIOLockedValueBox<ServerQuiescingHelper?>
    let serverChannel: NIOLockedValueBox<(any Channel)?>
    let adminChannel = NIOLockedValueBox<(any Channel)?>(nil)
    /// Runs the admin listener's Hummingbird application; cancelled by `drain`.
    let adminTask = NIOLockedValueBox<Task<Void, any Error>?>(nil)
    let portalChannel = NIOLockedValueBox<(any Channel)?>(nil)
    /// Runs the portal listener's Hummingbird application; cancelled by `drain`.
    let portalTask = NIOLockedValueBox<Task<Void, any Error>?>(nil)
    let logger: Logger
    /// Request tracing, when the configuration has `tracing:`: a service to run before the gateway
    /// (see ``GatewayTracing``). Read once, at start; a reload does not change it.
    public let tracing: GatewayTracing?

    /// Loads the configuration, opens the store and prepares the event loops; `run()` (or `start()`)
    /// binds.
    public init(
        configFile: String?, threads: Int = System.coreCount, grace: Double = 10, logger: Logger = Logger(label: "gatehouse"),
        onServerRunning: (@Sendable (Gateway) async -> Void)? = nil
    ) throws {
        self.configFile = configFile
        self.grace = grace
        self.onServerRunning = onServerRunning
        self.logger = logger
        // Before anything creates a metric: the call-log writer and rate-limit checks do.
        _ = MetricsExposition.bootstrap()
        // The configuration is read once: its checks get the directory, which is given the store the
        // same configuration names right after.
        directory = StoreDirectory(logger: logger)
        let document = try Gateway.readConfig(configFile)
        for w in document.warnings { logger.warning("configuration: \(w)") }
        let settings = document.settings
        store = try SQLiteStore(path: settings.storePath)
        directory.attach(store)
        if let c = settings.cluster {
            let location: PostgresLocation
            do { location = try PostgresLocation.parse(c.postgres) } catch { throw StoreError("store.postgres: \(error)") }
            if location.sslMode != "require" && !["127.0.0.1", "localhost", "::1"].contains(location.host) {
                logger.warning(
                    "store.postgres: sslmode=\(location.sslMode) to another machine: the connection can be read or altered on the way")
            }
            let pg = try PGStore(location)
            let node = try ClusterNode(
                settings: ClusterNode.Settings(
                    nodeID: c.nodeID, address: "\(settings.listen.host):\(settings.listen.port)", version: GatehouseVersion.string,
                    retention: settings.log.retention),
                store: pg, local: store, directory: directory, logger: logger)
            // Before serving: the cluster store's schema and a current copy (or, with the store
            // down, the last copy on disk; without one the node does not start).
            try node.prepare()
            cluster = node
            // Short deadlines of its own: a store that stops answering must be noticed within a
            // second, so that `on_store_error` decides rather than 429s while a lease waits.
            clusterRateLimiter = ClusterRateLimiter(
                database: try PGDatabase(location, maxConnections: 2, statementTimeout: .seconds(1), connectTimeout: .milliseconds(500)),
                logger: logger)
        } else {
            cluster = nil
            clusterRateLimiter = nil
            // A former cluster node: retention applies to its whole log again.
            let undelivered = try store.stopSpool()
            if undelivered > 0 {
                logger.warning(
                    "this store was a cluster node's: \(undelivered) call-log records were never delivered to the cluster store; they stay in the local log"
                )
            }
        }
        let config = document.provision(
            BuildContext(
                directory: directory, baseDirectory: document.baseDirectory, jwksRefresher: jwksRefresher,
                clusterRateLimits: clusterRateLimiter))
        credentialRefresher = CredentialRefresher(directory: directory)
        let writer = CallLogWriter(
            store: store, capacity: config.log.queueCapacity, capacityBytes: config.log.queueBytes,
            batchSize: config.log.batchSize, retention: config.log.retention, maxBytes: config.log.maxBytes,
            logger: logger)
        tracing = try config.tracing.map { try GatewayTracing.bootstrap($0, logger: logger) }
        services = GatewayServices(runtime: RuntimeState(config: config, generation: 1), callLog: writer, logger: logger, tracing: tracing)
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        quiesce = NIOLockedValueBox(ServerQuiescingHelper(group: group))
        serverChannel = NIOLockedValueBox<(any Channel)?>(nil)
    }

    /// Reads a configuration file, or the embedded defaults when `file` is nil, without building
    /// its checks: nothing is fetched or opened (`gatehouse check`, the CLI's store lookup).
    public static func readConfig(_ file: String?) throws -> ConfigDocument {
        if let file { return try ConfigLoader.read(file: file) }
        return try ConfigLoader.read(yaml: DefaultConfig.yaml, file: DefaultConfig.name, baseDirectory: ".")
    }

    /// Reads a configuration (`readConfig`) and builds its checks to serve. The JWKS loads of its
    /// `jwt` checks run on `jwksRefresher`, or each as a task of its own without one. The
    /// configuration's warnings (e.g. rule-file directives a `crs` WAF does not run) go to `logger`.
    public static func loadConfig(
        _ file: String?, directory: any CredentialDirectory, jwksRefresher: JWKSRefresher? = nil,
        clusterRateLimits: (any ClusterRateLimits)? = nil, logger: Logger? = nil
    ) throws -> GatewayConfig {
        let document = try readConfig(file)
        for w in document.warnings { logger?.warning("configuration: \(w)") }
        return document.provision(
            BuildContext(
                directory: directory, baseDirectory: document.baseDirectory, jwksRefresher: jwksRefresher,
                clusterRateLimits: clusterRateLimits))
    }

    /// The address the listener is bound to (useful with port 0).
    public var boundAddress: SocketAddress? { serverChannel.withLockedValue { $0?.localAddress } }

    /// The call log's writer: a service to run beside the gateway (see the type's summary).
    public var callLog: CallLogWriter { services.callLog }

    /// Longest `run()` waits for the configuration's first JWKS loads before it binds.
    public static let initialJWKSWait = Duration.seconds(2)

    /// Binds, serves until graceful shutdown, then drains in-flight requests for up to `grace`
    /// seconds (what remains is answered 503 `gateway_shutting_down` or cut, and logged) and stops
    /// the event loops. Cancellation instead of graceful shutdown drains with no grace.
    ///
    /// Binding waits for the first JWKS loads (run by `jwksRefresher`, in the same group), at most
    /// `initialJWKSWait`: the first requests find the keys, and a slow issuer delays serving by no
    /// more than that (its `jwt` checks deny `check_unavailable` until the keys arrive).
    public func run() async throws {
        if await !jwksRefresher.waitForQueuedLoads(upTo: Gateway.initialJWKSWait) {
            logger.warning("JWKS keys are still loading; serving now: jwt checks answer check_unavailable until they arrive")
        }
        do {
            try await start()
        } catch {
            // Whatever did bind is closed and the event loops stop.
            await drain(grace: 0)
            throw error
        }
        await onServerRunning?(self)
        var grace = self.grace
        do {
            try await gracefulShutdown()
            logger.info("draining and stopping", metadata: ["grace_seconds": "\(grace)"])
        } catch {
            grace = 0
            logger.info("cancelled: stopping without grace")
        }
        await drain(grace: grace)
    }

    /// Binds the listener and starts serving. Internal: `run()`, in a group with the call log and
    /// the credential and JWKS refreshers, is the way to serve (without the refreshers a revoked
    /// key would stay usable and JWT checks would wait for keys forever).
    func start() async throws {
        let config = services.current.config
        let services = self.services
        guard let quiesce = self.quiesce.withLockedValue({ $0 }) else { throw ChannelError.ioOnClosedChannel }
        // TLS settings are read at start; changing them needs a restart.
        let tls = try config.tls.map(TLSListener.init)
        // The connection cap is read at start, like the listener itself.
        ClientConnections.raiseDescriptorLimit()
        let maxConnections = config.limits.maxConnections ?? ClientConnections.defaultMaxConnections()
        let logger = self.logger
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                let connections = services.connections
                let open = connections.opened()
                channel.closeFuture.whenComplete { _ in connections.closed() }
                if open > maxConnections {
                    // At the cap, a new client takes the place of the connection that has waited
                    // longest for a request head (idle keep-alive or a head still trickling in, as
                    // a slow-loris attack holds them); when there is none, it is refused.
                    if !connections.loop(for: channel.eventLoop).evictLongestWaiting() {
                        connections.refused()
                        if connections.shouldWarnRefusal() {
                            logger.warning(
                                "connection refused: the gateway holds its maximum of \(maxConnections) client connections (limits.max_connections)",
                                metadata: ["refused_total": "\(connections.refusedTotal)"])
                        }
                        channel.close(promise: nil)
                        return channel.eventLoop.makeSucceededVoidFuture()
                    }
                }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    let peer = try tls?.addHandler(to: sync)
                    // GatewayHandler reads and writes bytes: it parses HTTP/1 itself (GatehouseHTTP1),
                    // answers parse errors as problem+json with a request id, and queues pipelined
                    // requests.
                    try sync.addHandler(GatewayHandler(services: services, isTLS: tls != nil, peerIdentity: peer))
                }
            }
            .bind(host: config.listen.host, port: config.listen.port)
            .get()
        serverChannel.withLockedValue { $0 = channel }
        // The admin listener and the portal's share one control plane (in cluster mode, one set
        // of connections of their own).
        let control = config.admin != nil || config.portal != nil ? try controlPlane() : nil
        if let admin = config.admin, let control {
            let adminCh = try await startAdmin(host: admin.host, port: admin.port, control: control)
            adminChannel.withLockedValue { $0 = adminCh }
            logger.info("admin listening", metadata: ["address": "\(adminCh.localAddress?.description ?? "?")"])
        }
        if let portal = config.portal, let control {
            let portalCh = try await startPortal(host: portal.listen.host, port: portal.listen.port, control: control)
            portalChannel.withLockedValue { $0 = portalCh }
            logger.info("portal listening", metadata: ["address": "\(portalCh.localAddress?.description ?? "?")"])
        }
        logger.info(
            "gatehouse listening",
            metadata: [
                "address": "\(channel.localAddress?.description ?? "?")", "config": "\(configFile ?? DefaultConfig.name)",
                "routes": "\(config.router.routes.count)",
            ])
    }

    /// Serves the admin listener (the admin API on Hummingbird, with `/metrics`, `/healthz`,
    /// `/status`) on event loops of its own (NIO's shared group), apart from the gateway's request
    /// path; returns once it is bound. `drain` stops it.
    func startAdmin(host: String, port: Int, control: ControlPlane) async throws -> any Channel {
        let services = self.services
        let loop = group.next()
        // The problem type prefix is read at start, like the listener itself.
        let typeBase = services.current.config.problemTypeBase
        let cluster = self.cluster
        let api = AdminAPI(control: control, problemTypeBase: typeBase, logger: logger, console: consoleOptions()) { path in
            (try? await Gateway.admin(path, services, cluster: cluster, on: loop).get()) ?? (503, "text/plain", "unavailable\n")
        }
        let (channel, task) = try await serve(api.router().router, host: host, port: port)
        adminTask.withLockedValue { $0 = task }
        return channel
    }

    /// Serves the developer portal's listener (`portal: { listen: … }`): `/portal/` and nothing
    /// else, so that developers never reach the admin listener's API, console, `/status` or
    /// `/metrics`. `drain` stops it.
    func startPortal(host: String, port: Int, control: ControlPlane) async throws -> any Channel {
        let services = self.services
        // The portal explains a denial no further than its route's problem body does, read from
        // the configuration serving now (docs/console.md: the call log does not record it).
        let exposure: @Sendable (String?) -> PortalExposure = { route in
            guard let r = services.current.config.router.routes.first(where: { $0.name == route }) else { return .minimal }
            return PortalExposure(exposure: r.exposure, revealsOperatorDetail: r.explicitDetailed)
        }
        let router = PortalRoutes.router(control: control, options: consoleOptions(), exposure: exposure, logger: logger)
        let (channel, task) = try await serve(router, host: host, port: port)
        portalTask.withLockedValue { $0 = task }
        return channel
    }

    /// The control plane of the admin and portal listeners. In cluster mode they have connections
    /// of their own: however busy they get, the node's replication and heartbeats keep theirs.
    func controlPlane() throws -> ControlPlane {
        let database: any SQLDatabase =
            if let location = cluster?.store.database.location { try PGDatabase(location, maxConnections: 4) } else { store.sqlDatabase }
        return ControlPlane(database: database)
    }

    /// The `console:` settings as the web interfaces take them (read at start, like the listeners).
    func consoleOptions() -> ConsoleOptions {
        let c = services.current.config.console
        return ConsoleOptions(
            lifetime: WebSessionLifetime(idle: c.idleTimeout, absolute: c.lifetime), trustedOrigins: c.trustedOrigins,
            signInPerName: c.signInPerName, signInPerAddress: c.signInPerAddress,
            trustedProxies: services.current.config.trustedProxies)
    }

    /// Runs a Hummingbird application on `router` at `host:port` until cancelled; returns once it
    /// is bound, with the task that runs it.
    func serve<Context: RequestContext>(
        _ router: Hummingbird.Router<Context>, host: String, port: Int
    ) async throws -> (any Channel, Task<Void, any Error>) where Context.Source == ApplicationRequestContextSource {
        let (bound, signal) = AsyncStream<any Channel>.makeStream()
        let app = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                signal.yield(channel)
                signal.finish()
            }, eventLoopGroupProvider: .singleton, logger: logger)
        let task = Task {
            // A server that fails to bind ends the wait too.
            defer { signal.finish() }
            try await app.run()
        }
        var channel: (any Channel)?
        for await c in bound {
            channel = c
            break
        }
        guard let channel else {
            try await task.value
            throw ChannelError.ioOnClosedChannel
        }
        return (channel, task)
    }

    /// The admin listener's bound address, if any.
    public var adminAddress: SocketAddress? { adminChannel.withLockedValue { $0?.localAddress } }
    /// The portal listener's bound address, if any.
    public var portalAddress: SocketAddress? { portalChannel.withLockedValue { $0?.localAddress } }

    static func admin(
        _ path: String, _ services: GatewayServices, cluster: ClusterNode? = nil, on loop: any EventLoop
    ) -> EventLoopFuture<(Int, String, String)> {
        guard path == "/metrics" else { return loop.makeSucceededFuture(admin(path, services, cluster: cluster)) }
        // Each event loop buffers its requests' durations (no lock on the request path); they are
        // handed to the histograms on that loop before the registry is rendered.
        let flushed = services.connections.all().map { l in l.eventLoop.submit { services.metrics.flushCurrentLoop() } }
        return EventLoopFuture.andAllComplete(flushed, on: loop).map {
            let state = services.current
            let queued = services.callLog.queued
            let text = MetricsExposition.render(
                services.metrics,
                GatewayMetrics.Snapshot(
                    connectionsOpen: services.connections.openCount, connectionsRefused: services.connections.refusedTotal,
                    callLogQueueRecords: queued.records, callLogQueueBytes: queued.bytes, configGeneration: state.generation))
            return (200, "text/plain; version=0.0.4; charset=utf-8", String(decoding: text, as: UTF8.self))
        }
    }

    static func admin(_ path: String, _ services: GatewayServices, cluster: ClusterNode? = nil) -> (Int, String, String) {
        let state = services.current
        switch path {
        case "/healthz":
            return (200, "text/plain", "ok\n")
        case "/status":
            var w = JSONWriter()
            w.beginObject()
            w.field("config", state.config.file)
            w.field("generation", state.generation)
            w.field("routes", state.config.router.routes.map(\.name))
            w.field("calllog_written", services.callLog.written)
            w.field("calllog_dropped", services.callLog.dropped)
            w.field("connections_open", services.connections.openCount)
            w.field("connections_refused", services.connections.refusedTotal)
            w.field("buffered_body_bytes", services.connections.bufferedBytes)
            if let cluster {
                let c = cluster.status
                w.key("cluster")
                w.beginObject()
                w.field("node", c.node)
                w.field("store_reachable", c.storeReachable)
                if let r = c.revision { w.field("revision", Int(r)) }
                if let a = c.snapshotAge { w.field("snapshot_age_seconds", a) }
                w.field("calllog_spooled", c.spooled)
                if let l = c.propagationLag { w.field("propagation_lag_seconds", l) }
                if let e = c.lastError { w.field("store_error", e) }
                w.endObject()
            }
            w.endObject()
            return (200, "application/json", String(decoding: w.bytes, as: UTF8.self) + "\n")
        default:
            return (404, "text/plain", "not found: try /metrics, /healthz or /status\n")
        }
    }

    /// Re-reads the configuration file. A file that fails validation is rejected and the running
    /// configuration keeps serving; the errors are returned (and logged).
    @discardableResult
    public func reload() -> Result<Int, ConfigError> {
        do {
            let config = try Gateway.loadConfig(
                configFile, directory: directory, jwksRefresher: jwksRefresher, clusterRateLimits: clusterRateLimiter, logger: logger)
            if config.cluster != services.current.config.cluster || config.storePath != services.current.config.storePath {
                logger.warning("store: is read at start only; the change takes effect when the gateway is restarted")
            }
            let gen = services.runtime.withLockedValue { state -> Int in
                state = RuntimeState(config: config, generation: state.generation + 1)
                return state.generation
            }
            logger.info("configuration reloaded", metadata: ["generation": "\(gen)", "routes": "\(config.router.routes.count)"])
            if config.tracing != tracing?.settings {
                logger.warning("tracing: is read at start only; the change takes effect when the gateway is restarted")
            }
            return .success(gen)
        } catch let e as ConfigError {
            logger.error("configuration rejected; the previous configuration keeps serving:\n\(e)")
            return .failure(e)
        } catch {
            let e = ConfigError(issues: [
                ConfigIssue(file: configFile ?? DefaultConfig.name, line: 1, column: 1, path: "", message: "\(error)")
            ])
            logger.error("configuration rejected; the previous configuration keeps serving:\n\(e)")
            return .failure(e)
        }
    }

    public var configGeneration: Int { services.current.generation }

    /// Stops accepting, lets in-flight requests finish (up to `grace` seconds), flushes the call log.
    public func shutdown(grace: Double = 10) async {
        await drain(grace: grace)
        await services.callLog.closeAndWait()
        logger.info(
            "gatehouse stopped", metadata: ["calls_logged": "\(services.callLog.written)", "calls_dropped": "\(services.callLog.dropped)"])
    }

    /// Stops accepting, lets in-flight requests finish (up to `grace` seconds), answers or cuts
    /// what remains (each logged to the call log, still open), and stops the event loops.
    func drain(grace: Double) async {
        let promise = group.next().makePromise(of: Void.self)
        quiesce.withLockedValue { $0 }?.initiateShutdown(promise: promise)
        // In-flight work still running after the grace period is cut off. The period is clamped
        // to 0...10^9 s (NaN as 0), so that no value given converts out of Int64's range.
        let graceSeconds = grace.isNaN ? 0 : min(max(grace, 0), 1e9)
        let graceDeadline = promise.futureResult.eventLoop.scheduleTask(in: .nanoseconds(Int64(graceSeconds * 1e9))) { promise.succeed(()) }
        try? await promise.futureResult.get()
        graceDeadline.cancel()
        if let server = serverChannel.withLockedValue({ $0 }) { try? await server.closeFuture.get() }
        for task in [adminTask.withLockedValue({ $0 }), portalTask.withLockedValue({ $0 })].compactMap({ $0 }) {
            task.cancel()
            _ = try? await task.value
        }
        // What still runs at the deadline is answered (503) or cut, and logged, on its own loop,
        // before the call log closes; then nothing more is scheduled on the loops.
        for loop in services.connections.all() {
            try? await loop.eventLoop.submit { loop.closeAll() }.get()
        }
        for _ in 0..<100 where services.connections.openCount > 0 {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for loop in services.connections.all() {
            try? await loop.eventLoop.submit { loop.stop() }.get()
        }
        for pool in services.pools.all() {
            try? await pool.eventLoop.submit { pool.closeAll() }.get()
        }
        quiesce.withLockedValue { $0 = nil }
        clusterRateLimiter?.stop()
        try? await group.shutdownGracefully()
    }

    public var callLogDropped: Int { services.callLog.dropped }
}

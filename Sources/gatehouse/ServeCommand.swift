import ArgumentParser
import Foundation
import GatehouseConfig
import GatehouseProxy
import GatehouseServer
import GatehouseTesting
import GatehouseStore
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway.",
        discussion: """
            Without --config, serves the embedded defaults (see `gatehouse check --print-defaults`) and starts the \
            built-in demo upstream on 127.0.0.1:\(DefaultConfig.demoUpstreamPort), so it needs nothing else.
            SIGHUP reloads the file; a file that fails validation is rejected and the running configuration keeps serving.
            SIGTERM or SIGINT stops accepting, drains in-flight requests (up to --grace seconds) and flushes the call \
            log before exiting.
            """
    )

    @Option(name: [.short, .long], help: "Configuration file (YAML).")
    var config: String?

    @Option(help: "Event-loop threads (default: one per core).")
    var threads: Int?

    @Option(help: "Seconds to let in-flight requests finish on shutdown.")
    var grace: Double = 10

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "gatehouse")
        var demo: DemoUpstream?
        if config == nil {
            demo = try await DemoUpstream(port: DefaultConfig.demoUpstreamPort)
            logger.info("demo upstream listening on 127.0.0.1:\(DefaultConfig.demoUpstreamPort)")
        }
        let gateway: Gateway
        do {
            gateway = try Gateway(configFile: config, threads: threads ?? System.coreCount, grace: grace, logger: logger) { gateway in
                if let addr = gateway.boundAddress { print("gatehouse listening on \(addr.ipAddress ?? "?"):\(addr.port ?? 0)") }
                if let addr = gateway.adminAddress { print("admin listening on \(addr.ipAddress ?? "?"):\(addr.port ?? 0)") }
                if let addr = gateway.portalAddress { print("portal listening on \(addr.ipAddress ?? "?"):\(addr.port ?? 0)") }
                fflush(nil)
            }
        } catch let e as ConfigError {
            printError("gatehouse: the configuration is invalid; not serving.\n\(e)")
            throw ExitCode(2)
        }
        let configName = config ?? DefaultConfig.name
        let reload = await HangupService {
            logger.info("SIGHUP: reloading \(configName)")
            gateway.reload()
        }
        // Graceful shutdown runs through the services from last to first, each after the one
        // behind it has returned: the reload loop ends, the gateway drains (its last call-log
        // records queued), the JWKS loads and the credential refresh stop, the call log is written
        // out, the demo upstream, which the gateway may still be forwarding to while it drains,
        // stops, and the tracing exporter, which the gateway's last spans reach, flushes last.
        var services: [any Service] = []
        if let tracing = gateway.tracing { services.append(tracing) }
        if let demo { services.append(demo) }
        // A cluster node stops after the call log, so that it delivers the last records.
        if let cluster = gateway.cluster { services.append(cluster) }
        services += [gateway.callLog, gateway.credentialRefresher, gateway.jwksRefresher, gateway, reload]
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
        logger.info(
            "gatehouse stopped", metadata: ["calls_logged": "\(gateway.callLog.written)", "calls_dropped": "\(gateway.callLog.dropped)"])
    }
}

struct DemoUpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-upstream",
        abstract: "Run the built-in demo upstream (echoes what it receives as JSON; ?delay_ms=, ?bytes=, ?chunked=1, ?status=)."
    )

    @Option(help: "Address to listen on.")
    var listen: String = "127.0.0.1:9000"

    func run() async throws {
        guard let hp = HostPort.parse(listen) else { throw ValidationError("--listen \"\(listen)\" is not host:port") }
        let up = try await DemoUpstream(host: hp.host, port: hp.port)
        print("demo upstream listening on \(hp.host):\(up.port)")
        fflush(nil)
        let logger = Logger(label: "gatehouse.demo-upstream")
        // SIGHUP has nothing to reload here; it is trapped so that it does not end the process.
        let hangup = await HangupService { logger.info("SIGHUP: nothing to reload") }
        let group = ServiceGroup(services: [up, hangup], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

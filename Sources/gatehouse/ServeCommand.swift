import NIOCore
import GatehouseChecks
import GatehouseCore
import ArgumentParser
import Dispatch
import Foundation
import GatehouseConfig
import GatehouseProxy
import Logging

#if canImport(Glibc)
import Glibc
#endif

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway.",
        discussion: """
            Without --config, serves the embedded defaults (see `gatehouse check --print-defaults`) and starts the \
            built-in demo upstream on 127.0.0.1:\(DefaultConfig.demoUpstreamPort), so it needs nothing else.
            SIGHUP reloads the file; a file that fails validation is rejected and the running configuration keeps serving.
            SIGTERM or SIGINT stops accepting, drains in-flight requests and flushes the call log before exiting.
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
            gateway = try Gateway(configFile: config, threads: threads ?? System.coreCount, logger: logger)
        } catch let e as ConfigError {
            printError("gatehouse: the configuration is invalid; not serving.\n\(e)")
            throw ExitCode(2)
        }
        try await gateway.start()
        if let addr = gateway.boundAddress { print("gatehouse listening on \(addr.ipAddress ?? "?"):\(addr.port ?? 0)") }
        if let addr = gateway.adminAddress { print("admin listening on \(addr.ipAddress ?? "?"):\(addr.port ?? 0)") }
        fflush(nil)

        let signals = SignalWaiter()
        while true {
            let sig = await signals.next()
            if sig == SIGHUP {
                logger.info("SIGHUP: reloading \(config ?? DefaultConfig.name)")
                gateway.reload()
            } else {
                logger.info("signal \(sig): draining and stopping")
                break
            }
        }
        await gateway.shutdown(grace: grace)
        await demo?.stop()
    }
}

/// Delivers SIGHUP, SIGTERM and SIGINT as values instead of killing the process.
final class SignalWaiter: @unchecked Sendable {
    // @unchecked: state is confined to `queue`.
    private let queue = DispatchQueue(label: "gatehouse.signals")
    private var sources: [any DispatchSourceSignal] = []
    private var pending: [Int32] = []
    private var waiter: CheckedContinuation<Int32, Never>?

    init() {
        for sig in [SIGHUP, SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            src.setEventHandler { [unowned self] in
                if let w = waiter {
                    waiter = nil
                    w.resume(returning: sig)
                } else {
                    pending.append(sig)
                }
            }
            src.resume()
            sources.append(src)
        }
    }

    func next() async -> Int32 {
        await withCheckedContinuation { cont in
            queue.async { [self] in
                if !pending.isEmpty {
                    cont.resume(returning: pending.removeFirst())
                } else {
                    waiter = cont
                }
            }
        }
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
        let signals = SignalWaiter()
        while true {
            let s = await signals.next()
            if s != SIGHUP { break }
        }
        await up.stop()
    }
}

import AsyncHTTPClient
import Foundation
import Logging
import GatehouseProxy
import GatehouseServer
import GatehouseTesting
import NIOCore
import NIOHTTP1
import Testing

/// Locates the `gatehouse` binary built next to the test bundle (or $GATEHOUSE_BIN).
public enum Binary {
    public static var path: String {
        if let p = ProcessInfo.processInfo.environment["GATEHOUSE_BIN"] { return p }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("gatehouse").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return FileManager.default.currentDirectoryPath + "/.build/debug/gatehouse"
    }
}

/// The result of running a `gatehouse` command to completion.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs `gatehouse ARGS` and waits for it.
@discardableResult
public func gatehouse(_ args: [String], cwd: String? = nil) throws -> CommandResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: Binary.path)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return CommandResult(
        status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

/// A temporary directory removed when the test ends.
public final class TempDir {
    public let path: String
    public init() throws {
        path = NSTemporaryDirectory() + "gatehouse-test-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    public func write(_ name: String, _ text: String) throws -> String {
        let p = path + "/" + name
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
}

/// A real `gatehouse serve` process on 127.0.0.1 with a port chosen by the OS.
public final class GatewayProcess: @unchecked Sendable {
    // @unchecked: stderrData is guarded by lock; the rest is immutable after init.
    public let process: Process
    public let dir: TempDir
    public let configPath: String
    public let port: Int
    /// The admin listener's port, when the configuration has one.
    public let adminPort: Int?
    /// The portal listener's port, when the configuration has one (`portal: { listen: … }`).
    public let portalPort: Int?
    public let stderrPipe: Pipe
    private var stderrData = Data()
    private let lock = NSLock()

    /// Starts the gateway with `yaml` (its `listen` and `store` are set by the harness).
    /// `descriptorLimit` runs it under `ulimit -n` (soft and hard); `extraArguments` go to `serve`.
    public init(
        yaml: String, dir: TempDir? = nil, threads: Int = 2, descriptorLimit: Int? = nil,
        extraArguments: [String] = [], logLevel: String = "debug", store: String = "{ sqlite: gatehouse.db }",
        configName: String = "gatehouse.yaml"
    ) throws {
        let dir = try dir ?? TempDir()
        self.dir = dir
        configPath = try dir.write(configName, "listen: 127.0.0.1:0\nstore: \(store)\n" + yaml)
        process = Process()
        let serve = ["serve", "-c", configPath, "--threads", String(threads), "--log-level", logLevel] + extraArguments
        if let descriptorLimit {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\"", Binary.path] + serve
        } else {
            process.executableURL = URL(fileURLWithPath: Binary.path)
            process.arguments = serve
        }
        let out = Pipe()
        stderrPipe = Pipe()
        process.standardOutput = out
        process.standardError = stderrPipe
        try process.run()
        // The first stdout line names the bound port; with an admin listener, the second names its port.
        let handle = out.fileHandleForReading
        func readLine() -> String {
            var line = Data()
            while true {
                let b = handle.readData(ofLength: 1)
                if b.isEmpty || b == Data([0x0A]) { break }
                line.append(b)
            }
            return String(decoding: line, as: UTF8.self)
        }
        let text = readLine()
        guard let portText = text.split(separator: ":").last, let port = Int(portText) else {
            process.waitUntilExit()
            throw HarnessError(
                "gateway did not start: \(text)\n\(String(decoding: stderrPipe.fileHandleForReading.availableData, as: UTF8.self))")
        }
        self.port = port
        adminPort = yaml.contains("admin:") ? readLine().split(separator: ":").last.flatMap { Int($0) } : nil
        // The next names the portal listener's.
        portalPort = yaml.contains("portal:") ? readLine().split(separator: ":").last.flatMap { Int($0) } : nil
        // Read by a thread of its own with blocking reads until EOF (the process's end), not by a
        // `readabilityHandler`: a handler left on a pipe whose read end is torn down races
        // libdispatch's asynchronous source cancellation and can crash the test process in
        // `_dispatch_event_loop_drain` (swift-corelibs-foundation, seen under parallel tests).
        let reader = stderrPipe.fileHandleForReading
        Thread { [weak self] in
            while true {
                let d = reader.availableData
                if d.isEmpty { return }
                guard let self else { continue }
                self.lock.lock(); self.stderrData.append(d); self.lock.unlock()
            }
        }.start()
    }

    public var url: String { "http://127.0.0.1:\(port)" }
    public var storePath: String { dir.path + "/gatehouse.db" }
    public var stderr: String { lock.lock(); defer { lock.unlock() }; return String(decoding: stderrData, as: UTF8.self) }

    public func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Sends SIGTERM and waits for exit.
    @discardableResult
    public func stop() -> Int32 {
        if process.isRunning {
            signal(SIGTERM)
            process.waitUntilExit()
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Runs a CLI command against this gateway's store.
    public func cli(_ args: [String]) throws -> CommandResult {
        try gatehouse(args + ["--store", storePath])
    }

    /// Waits until the call-log record for `requestID` exists and returns `explain --json` of it.
    public func record(_ requestID: String) async throws -> [String: Any] {
        for _ in 0..<50 {
            let r = try cli(["explain", requestID, "--json"])
            if r.status == 0, let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] { return obj }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError("no call-log record for \(requestID)")
    }
}

public struct HarnessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// A response with its body read and parsed.
public struct Reply: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: String
    public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:] }
    public var requestID: String { headers.first(name: "x-request-id") ?? "" }
}

/// Sends one request with AsyncHTTPClient.
public func send(
    _ method: HTTPMethod = .GET, _ url: String, headers: [(String, String)] = [], body: String? = nil,
    client: HTTPClient = .shared
) async throws -> Reply {
    var req = HTTPClientRequest(url: url)
    req.method = method
    for (k, v) in headers { req.headers.add(name: k, value: v) }
    if let body { req.body = .bytes(ByteBuffer(string: body)) }
    let resp = try await client.execute(req, timeout: .seconds(30))
    let buf = try await resp.body.collect(upTo: 64 << 20)
    return Reply(status: Int(resp.status.code), headers: resp.headers, body: String(buffer: buf))
}

/// An in-process upstream on 127.0.0.1.
public func startUpstream() async throws -> DemoUpstream {
    try await DemoUpstream(host: "127.0.0.1", port: 0)
}

/// Whether the test runs in CI, where missing prerequisites must fail rather than skip.
public var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

/// Sends raw bytes to 127.0.0.1:port and returns everything read until the server closes (or 5 s).
public func rawExchange(port: Int, _ bytes: String) throws -> String {
    let socket = try RawSocket(port: port)
    socket.send(bytes)
    return String(decoding: socket.readUntilClose(seconds: 5).bytes, as: UTF8.self)
}

/// A gateway served in the test's own process (`InProcessGateway`), with the same surface as
/// `GatewayProcess` for what does not need a process: its address, its store, the CLI against
/// that store, and call-log records, read once the writer has written them.
public final class LocalGateway: @unchecked Sendable {
    // @unchecked: immutable after init.
    public let server: InProcessGateway
    public let dir: TempDir

    private let captured: CapturedLog

    /// `logLevel`: what the gateway's logger keeps in `stderr` (debug, like `GatewayProcess`).
    public init(yaml: String, dir: TempDir? = nil, logLevel: Logger.Level = .debug) async throws {
        let dir = try dir ?? TempDir()
        self.dir = dir
        let captured = CapturedLog()
        self.captured = captured
        var logger = Logger(label: "gatehouse") { label in CapturingLogHandler(label: label, into: captured) }
        logger.logLevel = logLevel
        server = try await InProcessGateway(yaml: yaml, directory: dir.path, logger: logger)
    }

    /// What the gateway's logger wrote, one line per message with its metadata (the in-process
    /// counterpart of the process's standard error).
    public var stderr: String { captured.text }

    public var url: String { server.url }
    public var port: Int { server.port }
    public var adminPort: Int? { server.adminPort }
    public var portalPort: Int? { server.portalPort }
    public var configPath: String { server.configPath }
    public var storePath: String { dir.path + "/gatehouse.db" }

    /// Starts the graceful shutdown; the gateway drains and stops on its own.
    public func stop() { server.stop() }

    /// Runs a CLI command against this gateway's store.
    public func cli(_ args: [String]) throws -> CommandResult {
        try gatehouse(args + ["--store", storePath])
    }

    /// The call-log record for `requestID`, as `explain --json` prints it. A request answered
    /// before its body arrived (a denial of a POST) is logged when the gateway has read the body
    /// to its end, which can be just after the client has its answer: the lookup is repeated,
    /// each time after the writer has written what it was handed, for up to 10 s.
    public func record(_ requestID: String) async throws -> [String: Any] {
        var found = try await server.records(requestID).first
        for _ in 0..<500 where found == nil {
            try await Task.sleep(for: .milliseconds(20))
            found = try await server.records(requestID).first
        }
        guard let record = found else {
            throw HarnessError("no call-log record for \(requestID)")
        }
        let data = try JSONEncoder().encode(record)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw HarnessError("the record for \(requestID) is not a JSON object")
        }
        return object
    }
}

/// Log lines kept in memory (`LocalGateway.stderr`).
final class CapturedLog: @unchecked Sendable {
    // @unchecked: `lines` is guarded by `lock`.
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return lines.joined(separator: "\n") }
}

/// A swift-log handler that keeps what it is given in a `CapturedLog`, formatted as the gateway's
/// standard-error handler writes it (level, label, message, metadata).
struct CapturingLogHandler: LogHandler {
    let label: String
    let log: CapturedLog
    var logLevel: Logger.Level = .debug
    var metadata: Logger.Metadata = [:]

    init(label: String, into log: CapturedLog) {
        self.label = label
        self.log = log
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let fields = all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        log.append("\(event.level) \(label) : \(fields.isEmpty ? "" : fields + " ")\(event.message)")
    }
}

/// What a test reads of a gateway, served in-process (`LocalGateway`) or as a process of its own
/// (`GatewayProcess`, for what is per process: metrics, signals, memory, the log).
public protocol GatewayUnderTest: AnyObject, Sendable {
    var url: String { get }
    var port: Int { get }
    var adminPort: Int? { get }
    var storePath: String { get }
    var stderr: String { get }
    func cli(_ args: [String]) throws -> CommandResult
    func record(_ requestID: String) async throws -> [String: Any]
    /// Stops it (gracefully).
    func shutDown()
}

extension GatewayProcess: GatewayUnderTest {
    public func shutDown() { stop() }
}

extension LocalGateway: GatewayUnderTest {
    public func shutDown() { stop() }
}

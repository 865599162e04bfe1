import Foundation
import Synchronization

/// Servers started and not yet stopped, and their data directories (for the exit cleanup).
private let livePIDs = Mutex<Set<Int32>>([])
private let liveDirectories = Mutex<Set<String>>([])
private let exitCleanupRegistered = Atomic<Bool>(false)

/// A PostgreSQL server of the tests' own: a throwaway data directory, listening on 127.0.0.1
/// only, started and stopped by pid. Debian's `postgresql` package provides the binaries
/// (`.ci/apt-packages`); the server never runs as root, so under root it runs as the
/// `postgres` user (through `setpriv`, which execs it: the pid is the server's).
///
/// `shared` serves every test that only needs a database (`newDatabase()` gives each its own);
/// a test that stops the server (an outage) starts one of its own.
public final class PostgresServer: Sendable {
    public let dataDirectory: String
    public let port: Int
    let binDirectory: String
    let pid = Mutex<Int32?>(nil)
    let counter = Atomic<Int>(0)

    public static let shared: Result<PostgresServer, any Error> = Result {
        let s = try PostgresServer()
        try s.start()
        return s
    }

    /// The shared server, or a clear failure when PostgreSQL is not installed.
    public static func sharedServer() throws -> PostgresServer { try shared.get() }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public init() throws {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let v = versions.compactMap(Int.init).max() else {
            throw Failure(
                description:
                    "PostgreSQL is not installed (no /usr/lib/postgresql/N/bin): install Debian's postgresql package (scripts/test does)")
        }
        binDirectory = "/usr/lib/postgresql/\(v)/bin"
        dataDirectory = NSTemporaryDirectory() + "gh-pg-" + UUID().uuidString.prefix(8)
        port = try Self.freePort()
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        if getuid() == 0 { try Self.run("/bin/chown", ["postgres:postgres", dataDirectory]) }
        let initdb = Self.asServerUser(
            binDirectory + "/initdb", ["-D", dataDirectory + "/data", "-A", "trust", "-U", "gatehouse", "--locale=C", "-E", "UTF8", "-N"])
        try Self.run(initdb.path, initdb.args)
    }

    deinit {
        stop()
        liveDirectories.withLock { _ = $0.remove(dataDirectory) }
        try? FileManager.default.removeItem(atPath: dataDirectory)
    }

    public var url: String { "postgres://gatehouse@127.0.0.1:\(port)/postgres" }

    /// Creates a database of its own for a test; returns its URL.
    public func newDatabase() throws -> String {
        let name = "t\(getpid())_\(counter.add(1, ordering: .relaxed).newValue)"
        try Self.run(
            "/usr/bin/psql",
            ["-q", "-h", "127.0.0.1", "-p", "\(port)", "-U", "gatehouse", "-d", "postgres", "-c", "CREATE DATABASE \(name)"])
        return "postgres://gatehouse@127.0.0.1:\(port)/\(name)"
    }

    /// Starts the server and waits until it accepts connections.
    public func start() throws {
        guard pid.withLock({ $0 }) == nil else { return }
        let p = Process()
        let command = Self.asServerUser(
            binDirectory + "/postgres",
            [
                "-D", dataDirectory + "/data", "-c", "listen_addresses=127.0.0.1", "-p", "\(port)", "-k", dataDirectory,
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200",
            ])
        p.executableURL = URL(fileURLWithPath: command.path)
        p.arguments = command.args
        let log =
            FileHandle(forWritingAtPath: dataDirectory + "/server.log")
            ?? {
                FileManager.default.createFile(atPath: dataDirectory + "/server.log", contents: nil)
                return FileHandle(forWritingAtPath: dataDirectory + "/server.log")!
            }()
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        pid.withLock { $0 = p.processIdentifier }
        Self.registerExitCleanup()
        livePIDs.withLock { $0.insert(p.processIdentifier) }
        liveDirectories.withLock { _ = $0.insert(dataDirectory) }
        for _ in 0..<200 {
            if (try? Self.run(binDirectory + "/pg_isready", ["-q", "-h", "127.0.0.1", "-p", "\(port)"])) != nil { return }
            if !p.isRunning {
                pid.withLock { $0 = nil }
                let text = (try? String(contentsOfFile: dataDirectory + "/server.log", encoding: .utf8)) ?? ""
                throw Failure(description: "PostgreSQL exited at start:\n\(text.suffix(2000))")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw Failure(description: "PostgreSQL did not accept connections within 10 s (port \(port))")
    }

    /// Freezes the server and its backends (SIGSTOP): connections stay open and nothing answers,
    /// as when a network drops packets. `resume()` thaws them.
    public func suspend() { signalAll(SIGSTOP) }
    public func resume() { signalAll(SIGCONT) }

    func signalAll(_ sig: Int32) {
        guard let p = pid.withLock({ $0 }) else { return }
        // The postmaster and its children (backends, background workers), found by parent pid.
        var pids = [p]
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in procs {
            guard let child = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, Int32(fields[1]) == p { pids.append(child) }
        }
        for q in pids { kill(q, sig) }
    }

    /// Stops the server (fast shutdown: open connections are closed) and waits for it to exit.
    public func stop() {
        guard
            let p = pid.withLock({ v -> Int32? in
                defer { v = nil }; return v
            })
        else { return }
        livePIDs.withLock { _ = $0.remove(p) }
        Self.terminate(p)
    }

    static func terminate(_ p: Int32) {
        kill(p, SIGINT)
        var status: Int32 = 0
        for _ in 0..<400 {
            if waitpid(p, &status, WNOHANG) != 0 { return }
            Thread.sleep(forTimeInterval: 0.025)
        }
        kill(p, SIGKILL)
        waitpid(p, &status, 0)
    }

    /// The shared server lives as long as the test process: its server is stopped, and every
    /// data directory removed, when the process exits.
    static func registerExitCleanup() {
        guard !exitCleanupRegistered.exchange(true, ordering: .relaxed) else { return }
        atexit {
            for p in livePIDs.withLock({ $0 }) { PostgresServer.terminate(p) }
            for d in liveDirectories.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: d) }
        }
    }

    /// `binary args`, as the `postgres` user when this process is root (setpriv execs the binary).
    static func asServerUser(_ binary: String, _ args: [String]) -> (path: String, args: [String]) {
        guard getuid() == 0 else { return (binary, args) }
        return ("/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", binary] + args)
    }

    static func run(_ path: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw Failure(
                description:
                    "\(([path] + args).joined(separator: " ")) failed (\(p.terminationStatus)): \(String(decoding: data, as: UTF8.self))"
            )
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw Failure(description: "no free port on 127.0.0.1") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

import Foundation
import GatehouseTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A real nginx on 127.0.0.1 with a configuration of its own in a temp dir (`daemon off`, its own
/// pid and log files), started with posix_spawn (an empty signal mask: the test runner blocks some
/// signals, and a child would inherit that) and stopped by its pid.
final class NginxServer {
    static let binary = "/usr/sbin/nginx"
    let pid: pid_t
    let port: Int
    let dir: TempDir
    private var reaped = false

    /// nginx is installed by `.ci/apt-packages`; without it the test fails in CI and is skipped locally.
    static func available(sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        if FileManager.default.isExecutableFile(atPath: binary) { return true }
        if inCI {
            Issue.record(
                "\(binary) is not installed but CI=true requires it (.ci/apt-packages installs nginx)", sourceLocation: sourceLocation)
        } else {
            print("skipping: \(binary) is not installed")
        }
        return false
    }

    /// Starts nginx with `server` as the body of its one `server { }` block (`listen` is added).
    init(server: String) throws {
        dir = try TempDir()
        port = Self.freePort()
        let conf = """
            worker_processes 1;
            daemon off;
            pid \(dir.path)/nginx.pid;
            error_log \(dir.path)/error.log;
            events { worker_connections 64; }
            http {
              access_log off;
              client_body_temp_path \(dir.path)/body;
              proxy_temp_path \(dir.path)/proxy;
              fastcgi_temp_path \(dir.path)/fastcgi;
              uwsgi_temp_path \(dir.path)/uwsgi;
              scgi_temp_path \(dir.path)/scgi;
              server {
                listen 127.0.0.1:\(port);
            \(server)
              }
            }
            """
        let confPath = try dir.write("nginx.conf", conf)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, dir.path + "/stdout", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, dir.path + "/stderr", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &empty)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        // -e: the error log from the start, before the configuration names it (not /var/log/nginx).
        let args: [String] = [Self.binary, "-p", dir.path + "/", "-e", dir.path + "/error.log", "-c", confPath]
        let argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, Self.binary, &actions, &attr, argv, environ)
        guard rc == 0 else { throw HarnessError("cannot start nginx: error \(rc)") }
        pid = child
        for _ in 0..<100 {
            if let s = try? RawSocket(port: port) { s.close(); return }
            if !isRunning { break }
            usleep(50_000)
        }
        let log = (try? String(contentsOfFile: dir.path + "/error.log", encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: dir.path + "/stderr", encoding: .utf8)) ?? ""
        stop()
        throw HarnessError("nginx did not start on port \(port): \(err) \(log)")
    }

    var isRunning: Bool {
        guard !reaped else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { reaped = true }
        return !reaped
    }

    /// SIGTERM (nginx's fast shutdown), then SIGKILL after 5 s; always reaped.
    func stop() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        for _ in 0..<50 where isRunning { usleep(100_000) }
        if isRunning {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            reaped = true
        }
    }

    deinit { stop() }

    /// Sends raw bytes and returns (status, body bytes).
    func exchange(_ bytes: [UInt8]) throws -> (status: Int, body: [UInt8]) {
        let s = try RawSocket(port: port)
        defer { s.close() }
        s.send(bytes)
        let (reply, _) = s.readUntilClose(seconds: 5)
        return Self.split(reply)
    }

    static func split(_ reply: [UInt8]) -> (status: Int, body: [UInt8]) {
        let sep: [UInt8] = [13, 10, 13, 10]
        var headEnd = reply.count
        if reply.count >= 4 {
            for i in 0...(reply.count - 4) where Array(reply[i..<i + 4]) == sep { headEnd = i; break }
        }
        let head = String(decoding: reply[0..<headEnd], as: UTF8.self)
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        let body = headEnd + 4 <= reply.count ? Array(reply[(headEnd + 4)...]) : []
        return (status, body)
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

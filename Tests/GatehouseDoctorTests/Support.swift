import Foundation
import GatehouseDoctor
import Testing

/// Test helpers: fixtures, the bundled knowledge, external binaries and child processes.
enum Fixtures {
    static var root: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)! }
    static func url(_ path: String) -> URL { root.appendingPathComponent(path) }
    static func data(_ path: String) throws -> Data { try Data(contentsOf: url(path)) }
    static func text(_ path: String) throws -> String { String(decoding: try data(path), as: UTF8.self) }
    static let knowledge: KnowledgeBase = try! KnowledgeBase.standard()
}

/// Whether CI demands every external binary (a missing one then fails instead of skipping).
let inCI = ProcessInfo.processInfo.environment["CI"] == "true"

/// Finds an executable on PATH or in the usual system directories.
func findExecutable(_ name: String) -> String? {
    let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    return dirs.map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Returns the binary, or records why it is missing: an issue in CI, a skip message otherwise.
func requireBinary(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
    if let path = findExecutable(name) { return path }
    if inCI {
        Issue.record("\(name) is not installed but CI=true requires it (add it to .ci/apt-packages)", sourceLocation: sourceLocation)
    } else {
        print("skipping: \(name) is not installed (install it to run this test)")
    }
    return nil
}

/// A child process started by a test and stopped by its pid.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let stdout = Pipe()
    let stderr = Pipe()

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
    }

    /// The first line written to stdout (the port, for the probe server).
    func firstLine() -> String {
        var bytes = Data()
        while true {
            let chunk = stdout.fileHandleForReading.readData(ofLength: 1)
            if chunk.isEmpty || chunk == Data("\n".utf8) { break }
            bytes.append(chunk)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// SIGTERM, then SIGKILL after 3 s: children inherit the test runner's signal mask, in which
    /// SIGTERM may be blocked.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<30 where process.isRunning { usleep(100_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// Sends one plain HTTP/1.0 GET to 127.0.0.1:port and returns the status code (nil when refused).
func httpStatus(port: Int, path: String) -> Int? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard ok == 0 else { return nil }
    let request = "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    var buffer = [UInt8](repeating: 0, count: 256)
    let n = recv(fd, &buffer, 255, 0)
    guard n > 12 else { return nil }
    let head = String(decoding: buffer[0..<n], as: UTF8.self)
    return Int(head.split(separator: " ").dropFirst().first ?? "")
}

/// A TCP port that was free a moment ago.
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

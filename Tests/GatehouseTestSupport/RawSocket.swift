import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A plain TCP connection to 127.0.0.1, optionally from another loopback source address (to stand
/// for a trusted proxy, say 127.0.0.2). For attacks that need byte-level control: partial heads,
/// trickled bytes, stalled bodies, many idle connections.
public final class RawSocket {
    public let fd: Int32
    public private(set) var closed = false

    /// Connects (blocking) to 127.0.0.1:port from `source` (any port).
    public init(port: Int, source: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { closed = true; throw HarnessError("socket() failed: errno \(errno)") }
        if let source {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(source)
            local.sin_port = 0
            let rc = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            // `closed` first: a class whose init throws after its properties are set is deinitialised,
            // and a second close could hit a descriptor another thread has opened meanwhile.
            guard rc == 0 else { let e = errno; close(); throw HarnessError("bind to \(source) failed: errno \(e)") }
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { let e = errno; close(); throw HarnessError("connect failed: errno \(e)") }
    }

    deinit { close() }

    public func close() {
        if !closed { Glibc.close(fd); closed = true }
    }

    /// Sends bytes; false when the peer has closed (no SIGPIPE).
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBufferPointer { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    @discardableResult
    public func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Reads until the peer closes or `seconds` pass without a byte. Returns what was read and
    /// whether the peer closed (EOF or reset).
    public func readUntilClose(seconds: Double) -> (bytes: [UInt8], closed: Bool) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n > 0 { out.append(contentsOf: buf[0..<n]); continue }
            if n == 0 { return (out, true) }
            if errno == ECONNRESET { return (out, true) }
            return (out, false)
        }
    }

    /// Reads one HTTP/1.1 response with a Content-Length body (or until close), waiting up to `seconds`.
    public func readResponse(seconds: Double) -> String? {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            if let text = Self.completeResponse(out) { return text }
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { return out.isEmpty ? nil : String(decoding: out, as: UTF8.self) }
            out.append(contentsOf: buf[0..<n])
        }
    }

    static func completeResponse(_ bytes: [UInt8]) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let end = text.range(of: "\r\n\r\n") else { return nil }
        let head = text[..<end.lowerBound].lowercased()
        var length = 0
        for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
            length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        let bodyBytes = bytes.count - text[..<end.upperBound].utf8.count
        return bodyBytes >= length ? text : nil
    }
}

/// Raises this process's soft descriptor limit to its hard limit (tests that hold many sockets).
public func raiseOwnDescriptorLimit() {
    var lim = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0, lim.rlim_cur < lim.rlim_max else { return }
    lim.rlim_cur = lim.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
}

/// The resident set size of a process, in KiB, from /proc (nil when unreadable).
public func residentKiB(pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
    return nil
}

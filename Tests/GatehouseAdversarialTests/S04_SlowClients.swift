import Foundation
import GatehouseTestSupport
import Testing

/// S4: slow-loris and idle connections were held forever; at a 1,024-descriptor limit they locked
/// every other client out.
@Suite("S4 slow clients", .serialized) struct S04SlowClients {
    static let yaml = """
        upstreams:
          app: { targets: ["http://127.0.0.1:UP"] }
        limits: { header_timeout: 2s, keepalive_timeout: 2s }
        routes:
          - name: open
            match: { path: /open }
            upstream: app
        """

    /// 1,000 partial heads trickling a byte a second, against a gateway limited to 1,024
    /// descriptors: legitimate clients are still served, and every slow connection is closed.
    @Test func thousandSlowLorisConnectionsDoNotLockOutClients() async throws {
        raiseOwnDescriptorLimit()
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(
            yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port)),
            descriptorLimit: 1024, logLevel: "info")
        defer { gw.stop() }

        var slow: [RawSocket] = []
        for _ in 0..<1000 {
            guard let s = try? RawSocket(port: gw.port) else { continue }
            s.send("GET /open HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        }
        #expect(slow.count == 1000, "the kernel accepted \(slow.count) of 1000 slow connections")

        // While they trickle, legitimate clients come and go.
        var served = 0
        var closedByGateway = Set<Int>()
        for round in 0..<4 {
            for (i, s) in slow.enumerated() where !closedByGateway.contains(i) {
                // A failed send means the gateway has closed the connection.
                if !s.send("X") { closedByGateway.insert(i) }
            }
            for _ in 0..<5 {
                let reply = RawReply(try rawExchange(port: gw.port, "GET /open HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
                if reply.status == 200 { served += 1 }
            }
            if round < 3 { try await Task.sleep(for: .seconds(1)) }
        }
        #expect(served == 20, "legitimate requests served: \(served) of 20")

        // Every slow connection is closed by the gateway (the header timeout, or a new client taking
        // its place), whatever it keeps sending.
        // One budget for all of them, so a gateway that keeps them open fails in seconds, not hours.
        let deadline = Date().addingTimeInterval(8)
        for (i, s) in slow.enumerated() where !closedByGateway.contains(i) {
            let (_, closed) = s.readUntilClose(seconds: max(0.05, deadline.timeIntervalSinceNow))
            if closed { closedByGateway.insert(i) }
        }
        for s in slow { s.close() }
        #expect(closedByGateway.count == 1000, "slow connections closed by the gateway: \(closedByGateway.count) of 1000")
        #expect(gw.process.isRunning)
    }

    /// A head that never completes is answered 408 `request_timeout`, with a request id, and logged.
    @Test func partialHeadGets408AndIsLogged() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port)))
        defer { gw.stop() }
        let s = try RawSocket(port: gw.port)
        s.send("GET /open HTTP/1.1\r\nHost: x\r\n")
        let (bytes, closed) = s.readUntilClose(seconds: 10)
        let reply = RawReply(String(decoding: bytes, as: UTF8.self))
        #expect(closed)
        #expect(reply.status == 408)
        #expect(reply.reason == "request_timeout")
        let id = reply.header("x-request-id") ?? ""
        #expect(!id.isEmpty)
        let record = try await gw.record(id)
        #expect(record["reason"] as? String == "request_timeout")
    }

    /// An idle keep-alive connection is closed after `keepalive_timeout`.
    @Test func idleKeepAliveConnectionIsClosed() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port)))
        defer { gw.stop() }
        let s = try RawSocket(port: gw.port)
        s.send("GET /open HTTP/1.1\r\nHost: x\r\n\r\n")
        let first = s.readResponse(seconds: 5).map(RawReply.init)
        #expect(first?.status == 200)
        let (rest, closed) = s.readUntilClose(seconds: 10)
        #expect(closed, "the idle connection was not closed")
        #expect(rest.isEmpty, "an idle close sends nothing")
    }

    /// A client that stops sending its body mid-way gets 408 and the upstream never gets a whole request.
    @Test func stalledBodyGets408() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(
            yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port))
                .replacingOccurrences(of: "keepalive_timeout: 2s", with: "keepalive_timeout: 2s, body_timeout: 2s"))
        defer { gw.stop() }
        let s = try RawSocket(port: gw.port)
        s.send("POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        let (bytes, closed) = s.readUntilClose(seconds: 10)
        let reply = RawReply(String(decoding: bytes, as: UTF8.self))
        #expect(closed)
        #expect(reply.status == 408)
        #expect(reply.reason == "request_timeout")
        #expect(upstream.requests.isEmpty)
    }

    /// A client that never reads its (large) response is disconnected after `send_timeout`.
    @Test func clientThatStopsReadingIsDisconnected() async throws {
        // Larger than what the kernel's socket buffers on both sides can absorb.
        let big = String(repeating: "x", count: 64 << 20)
        let upstream = try await CaptureUpstream { _ in .ok(big) }
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(
            yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port))
                .replacingOccurrences(of: "keepalive_timeout: 2s", with: "keepalive_timeout: 2s, send_timeout: 2s"))
        defer { gw.stop() }
        let s = try RawSocket(port: gw.port)
        s.send("GET /open HTTP/1.1\r\nHost: x\r\n\r\n")
        // Read nothing for a while, then drain: the gateway must have cut the connection.
        try await Task.sleep(for: .seconds(5))
        let (bytes, closed) = s.readUntilClose(seconds: 10)
        #expect(closed)
        #expect(bytes.count < big.utf8.count, "the whole response was delivered to a client that did not read")
    }

    // Follow-ups from the review of the fix.

    static func status(_ gw: GatewayProcess) throws -> [String: Any] {
        let r = RawReply(try rawExchange(port: gw.adminPort ?? 0, "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        return (try? JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any]) ?? [:]
    }

    static let limitsYAML = """
        admin: 127.0.0.1:0
        upstreams:
          app: { targets: ["http://127.0.0.1:UP"] }
        limits: { header_timeout: 2s, keepalive_timeout: 2s, body_timeout: 2s, send_timeout: 2s }
        routes:
          - name: open
            match: { path: /open }
            upstream: app
        """

    /// A connection that is to close after its answers, whose client never reads them, is closed
    /// after the send timeout: the close does not wait for writes that never complete.
    @Test func aClosingConnectionWhoseClientDoesNotReadIsClosed() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.limitsYAML.replacingOccurrences(of: "UP", with: String(upstream.port)), logLevel: "info")
        defer { gw.stop() }
        let s = try RawSocket(port: gw.port)
        var small: Int32 = 4096
        setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let one = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
        s.send(String(repeating: one, count: 30_000) + "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        var open = 1
        for _ in 0..<40 {
            try await Task.sleep(for: .milliseconds(250))
            open = try Self.status(gw)["connections_open"] as? Int ?? -1
            if open == 0 { break }
        }
        #expect(open == 0, "the non-reading client's connection is still open")
        s.close()
    }

    /// Pipelined requests the gateway answers itself are not read while the client reads none of
    /// the answers: they cannot pile answers up in the gateway's memory.
    @Test func pipelinedAnswersDoNotPileUpForAClientThatDoesNotRead() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(
            yaml: Self.limitsYAML.replacingOccurrences(of: "UP", with: String(upstream.port))
                .replacingOccurrences(of: "send_timeout: 2s", with: "send_timeout: 60s"), logLevel: "info")
        defer { gw.stop() }
        let before = residentKiB(pid: gw.process.processIdentifier) ?? 0
        let s = try RawSocket(port: gw.port)
        var small: Int32 = 4096
        setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let batch = String(repeating: "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", count: 2000)
        var sent = 0
        for _ in 0..<100 {
            if !s.send(batch) { break }
            sent += 1
        }
        try await Task.sleep(for: .seconds(1))
        let after = residentKiB(pid: gw.process.processIdentifier) ?? 0
        // 100 batches of 2,000 requests would be 200,000 answers of ~500 bytes: ~100 MB held.
        #expect(after - before < 48 * 1024, "RSS grew from \(before) KiB to \(after) KiB after \(sent) batches")
        #expect(sent < 100, "the gateway kept reading requests whose answers nobody read")
        s.close()
    }

    /// After a denial, the rest of a body is drained for a moment only: trickling it does not hold
    /// the connection.
    @Test func aDeniedRequestsBodyCannotBeTrickledForever() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.limitsYAML.replacingOccurrences(of: "UP", with: String(upstream.port)), logLevel: "info")
        defer { gw.stop() }
        let s = try RawSocket(port: gw.port)
        s.send("POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nA")
        let answer = s.readResponse(seconds: 5).map(RawReply.init)
        #expect(answer?.status == 404)
        var closed = false
        for _ in 0..<8 {
            try await Task.sleep(for: .seconds(1))
            if !s.send("A") { closed = true; break }
            let (_, eof) = s.readUntilClose(seconds: 0.1)
            if eof { closed = true; break }
        }
        #expect(closed, "the connection was still open after 8 s of trickling a denied body")
    }

    /// At the connection cap, connections that only trickle the body of a denied or slow request
    /// give their place to a new client.
    @Test func tricklingConnectionsDoNotLockOutNewClientsAtTheCap() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(
            yaml: Self.limitsYAML.replacingOccurrences(of: "UP", with: String(upstream.port))
                .replacingOccurrences(of: "body_timeout: 2s", with: "body_timeout: 30s, max_connections: 4"), logLevel: "info")
        defer { gw.stop() }
        var hogs: [RawSocket] = []
        for i in 0..<4 {
            let s = try RawSocket(port: gw.port)
            s.send(
                i % 2 == 0
                    ? "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nA"
                    : "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nA")
            hogs.append(s)
        }
        try await Task.sleep(for: .milliseconds(1500))
        for h in hogs { h.send("A") }
        let r = try attack(gw, "GET /open HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(r.status == 200)
        for h in hogs { h.close() }
    }

    /// An upstream that stops reading the request body is timed out like one that does not answer.
    @Test func anUpstreamThatDoesNotReadTheBodyGets504() async throws {
        // A listening socket nobody accepts on: the kernel completes connections and buffers a
        // little, then the upstream takes nothing more.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        listen(fd, 16)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let gw = try GatewayProcess(
            yaml: """
                upstreams:
                  app: { targets: ["http://127.0.0.1:\(port)"], timeout: 2s }
                limits: { body_timeout: 30s }
                routes:
                  - name: upload
                    match: { path: /upload }
                    upstream: app
                """, logLevel: "info")
        defer { gw.stop() }
        let s = try RawSocket(port: gw.port)
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        s.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        let chunk = [UInt8](repeating: 0x61, count: 1 << 16)
        for _ in 0..<400 { if !s.send(chunk) { break } }
        let reply = s.readResponse(seconds: 15).map(RawReply.init)
        #expect(reply?.status == 504)
        #expect(reply?.reason == "upstream_timeout")
    }
}

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
        let gw = try GatewayProcess(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port)),
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
        for (i, s) in slow.enumerated() where !closedByGateway.contains(i) {
            let (_, closed) = s.readUntilClose(seconds: 5)
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
        let gw = try GatewayProcess(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port))
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
        let gw = try GatewayProcess(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port))
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
}

import Foundation
import GatehouseTestSupport
import NIOCore
import NIOPosix
import Testing

/// S7: an upstream that writes a body for a HEAD, 204 or 304 in a later segment must not answer
/// another client's request with it. The gateway no longer reuses a connection whose response
/// framing left doubt, and drops a pooled connection that receives anything while idle.
@Suite(.serialized) struct S07_UpstreamDesync {
    static let poison = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED"

    /// The capture upstream's answers: a bodyless response announcing a body, the "body" 50 ms
    /// later; anything else gets the default "upstream saw TARGET".
    static let respond: CaptureUpstream.Responder = { req in
        switch req.path {
        case "/cap/head":
            return CannedResponse(pieces: [(0, Array("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n".utf8)), (50, Array(poison.utf8))])
        case "/cap/nocontent":
            return CannedResponse(pieces: [(0, Array("HTTP/1.1 204 No Content\r\nContent-Length: 8\r\n\r\n".utf8)), (50, Array(poison.utf8))])
        case "/cap/notmodified":
            return CannedResponse(pieces: [(0, Array("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)),
                                           (50, Array("8\r\nPOISONED\r\n0\r\n\r\n".utf8))])
        case "/cap/continue-then-late":
            // Interim responses, the final one, then stray bytes later.
            return CannedResponse(pieces: [(0, Array("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n".utf8)),
                                           (0, Array("HTTP/1.1 204 No Content\r\nContent-Length: 8\r\n\r\n".utf8)),
                                           (50, Array(poison.utf8))])
        default:
            return .ok("upstream saw \(req.target)")
        }
    }

    static func yaml(_ upstream: CaptureUpstream) -> String {
        """
        upstreams:
          cap: { targets: ["\(upstream.url)"], timeout: 5s }
        routes:
          - name: cap
            match: { methods: [GET, HEAD], path: "/cap/*" }
            upstream: cap
        """
    }

    /// `trials` times: the attacker's request, then four victims on their own connections at once
    /// (the gateway runs two event loops and spreads connections over them in turn, so two of
    /// the four share the attacker's loop and its pool). Each victim must get its own answer.
    func attackThenVictims(_ attackerRequest: String, label: String, trials: Int = 20) async throws {
        let upstream = try await CaptureUpstream(respond: Self.respond)
        let gw = try GatewayProcess(yaml: Self.yaml(upstream))
        defer { gw.stop() }
        var poisoned = 0, wrong = 0
        for trial in 0..<trials {
            _ = try rawExchange(port: gw.port, attackerRequest)
            for v in 0..<4 {
                let target = "/cap/victim-\(label)-\(trial)-\(v)"
                let reply = try attack(gw, "GET \(target) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if reply.body.contains("POISONED") { poisoned += 1 }
                if reply.status != 200 || reply.body != "upstream saw \(target)" { wrong += 1 }
            }
        }
        #expect(poisoned == 0, "\(label): \(poisoned) victim responses carried the upstream's late bytes")
        #expect(wrong == 0, "\(label): \(wrong) of \(trials * 4) victims did not get their own response")
        // Every victim's request reached the upstream once.
        let victims = upstream.requests.filter { $0.path.hasPrefix("/cap/victim-") }
        #expect(victims.count == trials * 4)
        await upstream.stop()
    }

    @Test func aLateBodyAfterAHeadResponseNeverReachesAnotherClient() async throws {
        try await attackThenVictims("HEAD /cap/head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", label: "head")
    }

    @Test func aLateBodyAfterA204NeverReachesAnotherClient() async throws {
        try await attackThenVictims("GET /cap/nocontent HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", label: "204")
    }

    @Test func aLateChunkAfterA304NeverReachesAnotherClient() async throws {
        try await attackThenVictims("GET /cap/notmodified HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", label: "304", trials: 10)
    }

    @Test func interimResponsesThenALateBodyNeverReachAnotherClient() async throws {
        try await attackThenVictims("GET /cap/continue-then-late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", label: "1xx", trials: 10)
    }

    /// The attacker's own connection stays correct too: a HEAD, then a GET pipelined behind it on
    /// the same client connection, gets its own answer.
    @Test func theNextRequestOnTheSameClientConnectionGetsItsOwnAnswer() async throws {
        let upstream = try await CaptureUpstream(respond: Self.respond)
        let gw = try GatewayProcess(yaml: Self.yaml(upstream))
        defer { gw.stop() }
        let text = try rawExchange(port: gw.port, "HEAD /cap/head HTTP/1.1\r\nHost: x\r\n\r\n"
                                   + "GET /cap/mine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(!text.contains("POISONED"))
        #expect(text.hasSuffix("upstream saw /cap/mine"))
        await upstream.stop()
    }

    /// An upstream answers a POST after its head alone, keeps the connection and reads the body the
    /// client sends next as a request of its own, whose answer comes later. That connection must
    /// not serve anyone after the POST's response.
    @Test func anUpstreamThatAnsweredBeforeTheBodyIsNotReused() async throws {
        let naive = try await NaiveUpstream()
        let gw = try GatewayProcess(yaml: """
            upstreams:
              naive: { targets: ["http://127.0.0.1:\(naive.port)"], timeout: 5s }
            routes:
              - name: naive
                match: { methods: [GET, POST], path: "/cap/*" }
                upstream: naive
            """)
        defer { gw.stop() }
        var wrong = 0
        for trial in 0..<10 {
            let smuggled = "GET /cap/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
            let early = try paced(port: gw.port, [
                (0, "POST /cap/early HTTP/1.1\r\nHost: x\r\nContent-Length: \(smuggled.utf8.count)\r\nConnection: close\r\n\r\n"),
                (30, smuggled),
            ])
            #expect(early.hasSuffix("early"))
            for v in 0..<4 {
                let target = "/cap/victim-early-\(trial)-\(v)"
                let reply = try attack(gw, "GET \(target) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if reply.status != 200 || reply.body != "upstream saw \(target)" { wrong += 1 }
            }
        }
        #expect(wrong == 0, "\(wrong) of 40 victims did not get their own response")
        await naive.stop()
    }

    /// A pooled connection that the upstream closes without answering is retried on a new one only
    /// for an idempotent method: a POST the upstream may have acted on is not sent twice.
    @Test func aPOSTIsNotSentAgainWhenItsPooledConnectionDies() async throws {
        let calls = Counter()
        let upstream = try await CaptureUpstream { req in
            switch req.path {
            case "/cap/dies":
                // Acts on the request, then closes without answering (a crash, a restart).
                return CannedResponse(pieces: [], closeAfter: true)
            case "/cap/dies-once":
                return calls.next() == 0 ? CannedResponse(pieces: [], closeAfter: true) : .ok("second try")
            default:
                return .ok("upstream saw \(req.target)")
            }
        }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream).replacingOccurrences(of: "[GET, HEAD]", with: "[GET, HEAD, POST]"))
        defer { gw.stop() }
        // One client connection, so the second request reuses the first one's upstream connection.
        let post = try rawExchange(port: gw.port, "GET /cap/warm HTTP/1.1\r\nHost: x\r\n\r\n"
                                   + "POST /cap/dies HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(post.contains("HTTP/1.1 502 "))
        #expect(upstream.requests.filter { $0.method == "POST" }.count == 1)
        // A GET in the same spot is retried once, on a new connection.
        let get = try rawExchange(port: gw.port, "GET /cap/warm HTTP/1.1\r\nHost: x\r\n\r\n"
                                  + "GET /cap/dies-once HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(get.hasSuffix("second try"))
        await upstream.stop()
    }
}

/// A thread-safe counter for a responder.
final class Counter: @unchecked Sendable {
    // @unchecked: `n` is guarded by `lock`.
    private let lock = NSLock()
    private var n = 0
    func next() -> Int {
        lock.lock(); defer { lock.unlock() }
        n += 1
        return n - 1
    }
}

/// Sends each piece after its pause on one connection, then reads until the server closes (5 s at most).
func paced(port: Int, _ pieces: [(delayMillis: Int, text: String)]) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else { throw HarnessError("connect failed") }
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    for piece in pieces {
        if piece.delayMillis > 0 { usleep(UInt32(piece.delayMillis * 1000)) }
        _ = piece.text.utf8CString.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count - 1, 0) }
    }
    var out = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = recv(fd, &buf, buf.count, 0)
        if n <= 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return String(decoding: out, as: UTF8.self)
}

/// An upstream that reads only heads: it answers each head it finds, one at a time, and never skips
/// a body, so a body is read as the next request. `POST /cap/early` gets its response head at once
/// and its body 150 ms later; `/cap/smuggled` is answered after 60 ms; anything else at once with
/// "upstream saw TARGET".
final class NaiveUpstream: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: any Channel
    let port: Int

    init() async throws {
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(NaiveHandler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
    }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

private final class NaiveHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var pending: [UInt8] = []
    var busy = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        pending += b.readBytes(length: b.readableBytes) ?? []
        next(context: context)
    }

    private func next(context: ChannelHandlerContext) {
        guard !busy, pending.count >= 4, let end = (0...(pending.count - 4)).first(where: { pending[$0..<$0 + 4].elementsEqual([13, 10, 13, 10]) }) else { return }
        let head = String(decoding: pending[0..<end], as: UTF8.self)
        pending.removeFirst(end + 4)
        let target = head.split(separator: " ").dropFirst().first.map(String.init) ?? "?"
        busy = true
        func send(_ text: String, after millis: Int64, then: @escaping () -> Void) {
            context.eventLoop.scheduleTask(in: .milliseconds(millis)) {
                guard context.channel.isActive else { return }
                context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: text)), promise: nil)
                then()
            }
        }
        let done = { [self] in
            busy = false
            next(context: context)
        }
        switch target {
        case "/cap/early":
            send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", after: 0) { send("early", after: 150, then: done) }
        case "/cap/smuggled":
            send("HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\nupstream saw /cap/smuggled", after: 60, then: done)
        default:
            let body = "upstream saw \(target)"
            send("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)", after: 0, then: done)
        }
    }
}

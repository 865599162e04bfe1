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
            return CannedResponse(pieces: [
                (0, Array("HTTP/1.1 204 No Content\r\nContent-Length: 8\r\n\r\n".utf8)), (50, Array(poison.utf8)),
            ])
        case "/cap/notmodified":
            return CannedResponse(pieces: [
                (0, Array("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)),
                (50, Array("8\r\nPOISONED\r\n0\r\n\r\n".utf8)),
            ])
        case "/cap/cl-te":
            // Both Content-Length and Transfer-Encoding: read as chunked, the response ends after
            // "hello"; a full response follows 50 ms later (security review, S7 second round).
            return CannedResponse(pieces: [
                (0, Array("HTTP/1.1 200 OK\r\nContent-Length: 60\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".utf8)),
                (50, Array(poison.utf8)),
            ])
        case "/cap/continue-then-late":
            // Interim responses, the final one, then stray bytes later.
            return CannedResponse(pieces: [
                (0, Array("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n".utf8)),
                (0, Array("HTTP/1.1 204 No Content\r\nContent-Length: 8\r\n\r\n".utf8)),
                (50, Array(poison.utf8)),
            ])
        default:
            return .ok("upstream saw \(req.target)")
        }
    }

    static func yaml(_ upstream: CaptureUpstream) -> String { yaml(upstream.url) }

    static func yaml(_ url: String) -> String {
        """
        upstreams:
          cap: { targets: ["\(url)"], timeout: 5s }
        routes:
          - name: cap
            match: { methods: [GET, HEAD], path: "/cap/*" }
            upstream: cap
        """
    }

    /// `trials` times: the attacker's request, then four victims on their own connections at once
    /// (the gateway runs two event loops and spreads connections over them in turn, so two of
    /// the four share the attacker's loop and its pool). Each victim must get its own answer.
    func attackThenVictims(
        _ attackerRequest: String, label: String, trials: Int = 20,
        attackerGets: (String) -> Bool = { _ in true }
    ) async throws {
        let upstream = try await CaptureUpstream(respond: Self.respond)
        let gw = try GatewayProcess(yaml: Self.yaml(upstream))
        defer { gw.stop() }
        let outcome = try Self.victims(gw, after: attackerRequest, label: label, trials: trials, attackerGets: attackerGets)
        #expect(outcome.attackerWrong == 0, "\(label): \(outcome.attackerWrong) of \(trials) attacker requests got an unexpected answer")
        #expect(outcome.poisoned == 0, "\(label): \(outcome.poisoned) victim responses carried the upstream's late bytes")
        #expect(outcome.wrong == 0, "\(label): \(outcome.wrong) of \(trials * 4) victims did not get their own response")
        // Every victim's request reached the upstream once.
        let victims = upstream.requests.filter { $0.path.hasPrefix("/cap/victim-") }
        #expect(victims.count == trials * 4)
        await upstream.stop()
    }

    struct Outcome {
        var poisoned = 0, wrong = 0, badGateway = 0, attackerWrong = 0
    }

    /// `trials` times: the attacker's request, then four victims on their own connections. A
    /// victim's answer is its own ("upstream saw TARGET"), POISONED, a 502, or another one's.
    static func victims(
        _ gw: GatewayProcess, after attackerRequest: String, label: String, trials: Int,
        attackerGets: (String) -> Bool = { _ in true }
    ) throws -> Outcome {
        var outcome = Outcome()
        for trial in 0..<trials {
            if !attackerGets(try rawExchange(port: gw.port, attackerRequest)) { outcome.attackerWrong += 1 }
            for v in 0..<4 {
                let target = "/cap/victim-\(label)-\(trial)-\(v)"
                let reply = try attack(gw, "GET \(target) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if reply.body.contains("POISONED") { outcome.poisoned += 1 }
                if reply.status == 502 {
                    outcome.badGateway += 1
                } else if reply.status != 200 || reply.body != "upstream saw \(target)" {
                    outcome.wrong += 1
                }
            }
        }
        return outcome
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
        try await attackThenVictims(
            "GET /cap/continue-then-late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", label: "1xx", trials: 10)
    }

    /// The review's second round: a response with both Content-Length and Transfer-Encoding, read as
    /// chunked, then a whole response 50 ms later. The connection is closed after the first (RFC
    /// 9112 §6.3: such a message "ought to be handled as an error"), so the late one reaches nobody;
    /// the attacker gets the chunked reading, without the Content-Length.
    @Test func aLateResponseAfterContentLengthAndChunkedNeverReachesAnotherClient() async throws {
        try await attackThenVictims("GET /cap/cl-te HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", label: "cl-te") { text in
            let reply = RawReply(text)
            return reply.status == 200 && reply.header("Content-Length") == nil && reply.body == "5\r\nhello\r\n0\r\n\r\n"
        }
    }

    /// An upstream that echoes X-Request-Id and answers one request twice, the second time 50 ms
    /// later (the first answer's framing was exact, so nothing in it tells). A victim whose request
    /// went on that connection reads the second answer, which names the attacker's request: 502,
    /// the connection is closed, and no victim ever gets the attacker's answer.
    @Test func aLateSecondAnswerNamingItsRequestNeverReachesAnotherClient() async throws {
        let upstream = try await EchoUpstream { target, id -> EchoUpstream.Pieces in
            guard target == "/cap/twice" else { return [(0, EchoUpstream.ok("upstream saw \(target)", id: id))] }
            return [(0, EchoUpstream.ok("hello", id: id)), (50, EchoUpstream.ok("POISONED", id: id))]
        }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream.url))
        defer { gw.stop() }
        let outcome = try Self.victims(
            gw, after: "GET /cap/twice HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", label: "twice", trials: 20
        ) {
            RawReply($0).body == "hello"
        }
        #expect(outcome.attackerWrong == 0)
        #expect(outcome.poisoned == 0, "\(outcome.poisoned) victim responses were the attacker's second answer")
        #expect(outcome.wrong == 0, "\(outcome.wrong) victims got another request's answer")
        await upstream.stop()
    }

    /// An upstream that echoed the gateway's X-Request-Id on a connection, then answers with
    /// another id there: the response is not this request's. 502 `upstream_unavailable` naming both
    /// ids, and the connection is closed: the next request goes on a new one.
    @Test func aResponseNamingAnotherRequestIsABadGatewayAndItsConnectionIsClosed() async throws {
        let upstream = try await EchoUpstream { target, id -> EchoUpstream.Pieces in
            [(0, EchoUpstream.ok("upstream saw \(target)", id: target == "/cap/wrong-id" ? "0000-someone-else" : id))]
        }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream.url))
        defer { gw.stop() }
        // One client connection: its requests share one event loop, so one upstream pool.
        let text = try rawExchange(
            port: gw.port,
            "GET /cap/warm HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /cap/wrong-id HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /cap/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let replies: [RawReply] = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { RawReply("HTTP/1.1 " + $0) }
        try #require(replies.count == 3, "\(text)")
        #expect(replies[0].status == 200 && replies[0].body == "upstream saw /cap/warm")
        #expect(replies[1].status == 502)
        #expect(replies[1].reason == "upstream_unavailable")
        #expect(!replies[1].body.contains("upstream saw /cap/wrong-id"))
        let wrongID = try #require(replies[1].header("X-Request-Id"))
        #expect(replies[1].body.contains("names request 0000-someone-else, not \(wrongID)"), "\(replies[1].body)")
        #expect(replies[1].body.contains("out of step"))
        #expect(replies[2].status == 200 && replies[2].body == "upstream saw /cap/after")
        // The connection that carried the wrong answer served nobody after it.
        let warm = try #require(replies[0].header("X-Upstream-Connection"))
        #expect(replies[1].header("X-Upstream-Connection") == nil)
        #expect(replies[2].header("X-Upstream-Connection") != warm)
        await upstream.stop()
    }

    /// An upstream that names its own request ids (nginx's `add_header X-Request-Id $request_id`,
    /// say) never echoed the gateway's: its responses are served, on reused connections too.
    @Test func anUpstreamThatNamesItsOwnRequestIdsIsServed() async throws {
        let upstream = try await EchoUpstream { target, _ -> EchoUpstream.Pieces in
            [(0, EchoUpstream.ok("upstream saw \(target)", id: UUID().uuidString))]
        }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream.url))
        defer { gw.stop() }
        let text = try rawExchange(
            port: gw.port,
            (0..<4).map { "GET /cap/own-\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined()
                + "GET /cap/own-last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let replies: [RawReply] = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { RawReply("HTTP/1.1 " + $0) }
        #expect(replies.map(\.status) == [200, 200, 200, 200, 200])
        #expect(Set(replies.compactMap { $0.header("X-Upstream-Connection") }).count == 1)
        await upstream.stop()
    }

    /// The attacker's own connection stays correct too: a HEAD, then a GET pipelined behind it on
    /// the same client connection, gets its own answer.
    @Test func theNextRequestOnTheSameClientConnectionGetsItsOwnAnswer() async throws {
        let upstream = try await CaptureUpstream(respond: Self.respond)
        let gw = try GatewayProcess(yaml: Self.yaml(upstream))
        defer { gw.stop() }
        let text = try rawExchange(
            port: gw.port,
            "HEAD /cap/head HTTP/1.1\r\nHost: x\r\n\r\n"
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
        let gw = try GatewayProcess(
            yaml: """
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
            let early = try paced(
                port: gw.port,
                [
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
        let post = try rawExchange(
            port: gw.port,
            "GET /cap/warm HTTP/1.1\r\nHost: x\r\n\r\n"
                + "POST /cap/dies HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(post.contains("HTTP/1.1 502 "))
        #expect(upstream.requests.filter { $0.method == "POST" }.count == 1)
        // A GET in the same spot is retried once, on a new connection.
        let get = try rawExchange(
            port: gw.port,
            "GET /cap/warm HTTP/1.1\r\nHost: x\r\n\r\n"
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
    let socket = try RawSocket(port: port)
    for piece in pieces {
        if piece.delayMillis > 0 { usleep(UInt32(piece.delayMillis * 1000)) }
        socket.send(piece.text)
    }
    return String(decoding: socket.readUntilClose(seconds: 5).bytes, as: UTF8.self)
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
        guard !busy, pending.count >= 4,
            let end = (0...(pending.count - 4)).first(where: { pending[$0..<$0 + 4].elementsEqual([13, 10, 13, 10]) })
        else { return }
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

/// An upstream that echoes each request's X-Request-Id (as many frameworks do) and numbers its
/// connections (`X-Upstream-Connection`): `respond` gives the pieces to send for a target and the
/// request's id, each after its pause. One request at a time per connection; heads only (GETs).
final class EchoUpstream: Sendable {
    typealias Pieces = [(delayMillis: Int64, text: String)]
    typealias Responder = @Sendable (_ target: String, _ id: String) -> Pieces
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: any Channel
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }

    init(respond: @escaping Responder) async throws {
        let connections = Counter()
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(EchoHandler(connection: connections.next(), respond: respond))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
    }

    /// A 200 with `body`, naming request `id`; the connection number is filled in when it is sent.
    static func ok(_ body: String, id: String) -> String {
        "HTTP/1.1 200 OK\r\nX-Request-Id: \(id)\r\nX-Upstream-Connection: {conn}\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

private final class EchoHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let connection: Int
    let respond: EchoUpstream.Responder
    var pending: [UInt8] = []
    var busy = false

    init(connection: Int, respond: @escaping EchoUpstream.Responder) {
        self.connection = connection
        self.respond = respond
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        pending += b.readBytes(length: b.readableBytes) ?? []
        next(context: context)
    }

    private func next(context: ChannelHandlerContext) {
        guard !busy, pending.count >= 4,
            let end = (0...(pending.count - 4)).first(where: { pending[$0..<$0 + 4].elementsEqual([13, 10, 13, 10]) })
        else { return }
        let head = String(decoding: pending[0..<end], as: UTF8.self)
        pending.removeFirst(end + 4)
        let target = head.split(separator: " ").dropFirst().first.map(String.init) ?? "?"
        let id =
            head.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("x-request-id:") }
            .map { String($0.dropFirst("x-request-id:".count)).trimmingCharacters(in: .whitespaces) } ?? ""
        busy = true
        send(respond(target, id)[...], context: context)
    }

    private func send(_ pieces: ArraySlice<(delayMillis: Int64, text: String)>, context: ChannelHandlerContext) {
        guard let piece = pieces.first else {
            busy = false
            next(context: context)
            return
        }
        let write = { [self] in
            guard context.channel.isActive else { return }
            let text = piece.text.replacingOccurrences(of: "{conn}", with: String(connection))
            context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: text)), promise: nil)
            send(pieces.dropFirst(), context: context)
        }
        if piece.delayMillis > 0 {
            context.eventLoop.scheduleTask(in: .milliseconds(piece.delayMillis)) { write() }
        } else {
            write()
        }
    }
}

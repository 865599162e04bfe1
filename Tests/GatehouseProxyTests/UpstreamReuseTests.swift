import GatehouseConfig
import GatehouseCore
import NIOCore
import NIOEmbedded
import Testing

@testable import GatehouseHTTP1
@testable import GatehouseProxy

/// When an upstream connection may serve a next request (security review S7) and how a response
/// head's framing fields reach the client (S28): a connection goes back to the pool only when
/// nothing more can arrive on it.
@Suite struct UpstreamReuseTests {
    func response(_ text: String, head: Bool = false) throws -> ResponseHead {
        let buf = ByteBuffer(string: text)
        let len = try #require(buf.withUnsafeReadableBytes { HTTP1Parse.headLength($0) })
        return try HTTP1Parse.response(buf, length: len, headRequest: head)
    }

    // MARK: The parser's verdict

    @Test func aBodylessResponseThatAnnouncesABodyLeavesDoubt() throws {
        // To a HEAD: only an explicit Content-Length: 0 settles where the response ends.
        #expect(try response("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n", head: true).framingInDoubt)
        #expect(try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", head: true).framingInDoubt)
        #expect(try response("HTTP/1.1 200 OK\r\n\r\n", head: true).framingInDoubt)
        #expect(try response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", head: true).framingInDoubt == false)
        // 204 and 304: settled unless they announce a non-empty body.
        #expect(try response("HTTP/1.1 204 No Content\r\n\r\n").framingInDoubt == false)
        #expect(try response("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n").framingInDoubt == false)
        #expect(try response("HTTP/1.1 204 No Content\r\nContent-Length: 8\r\n\r\n").framingInDoubt)
        #expect(try response("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n").framingInDoubt)
        #expect(try response("HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n").framingInDoubt == false)
        #expect(try response("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").framingInDoubt)
        #expect(try response("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n").framingInDoubt)
        // A body the framing delimits leaves no doubt.
        #expect(try response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").framingInDoubt == false)
        #expect(try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").framingInDoubt == false)
    }

    @Test func contentLengthReachesTheClientOnceAsABareNumber() throws {
        func lengths(_ h: ResponseHead) -> [String] { h.lines.filter { $0.kind == .contentLength }.map { h.value($0) } }
        let list = try response("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nServer: x\r\n\r\n")
        #expect(list.framing == .length(5))
        #expect(lengths(list) == ["5"])
        #expect(list.lines.map { list.name($0) } == ["Content-Length", "Server"])
        let twice = try response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")
        #expect(lengths(twice) == ["5"])
        #expect(lengths(try response("HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n")) == ["7"])
        #expect(lengths(try response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) == ["0"])
        #expect(lengths(try response("HTTP/1.1 200 OK\r\nContent-Length: 10,10 , 10\r\n\r\n", head: true)) == ["10"])
        // A 204 carries none (RFC 9110 §8.6); a 304 keeps the representation's length.
        #expect(lengths(try response("HTTP/1.1 204 No Content\r\nContent-Length: 8\r\n\r\n")).isEmpty)
        #expect(lengths(try response("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n")) == ["9"])
        // Differing values stay refused.
        #expect(throws: HTTP1Error.self) { try response("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n") }
        #expect(throws: HTTP1Error.self) { try response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") }
    }

    @Test func aSwitchingProtocolsAnswerIsRefused() {
        #expect(throws: HTTP1Error.self) { try response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n") }
    }

    // MARK: The connection

    final class Sink: UpstreamResponseSink {
        var heads: [Int] = []
        var body = ""
        var ends: [Bool] = []
        var failures: [(error: String, receivedHead: Bool)] = []
        func upstreamHead(_ head: ResponseHead) { heads.append(head.status) }
        func upstreamBody(_ buffer: ByteBuffer) { body += String(buffer: buffer) }
        func upstreamEnd(reusable: Bool) { ends.append(reusable) }
        func upstreamFailed(_ error: any Error, receivedHead: Bool) { failures.append(("\(error)", receivedHead)) }
        func upstreamWritabilityChanged(writable: Bool) {}
        func upstreamReadComplete() {}
    }

    struct Rig {
        let target = HostPort.parse("127.0.0.1:9")!
        let pool: LoopPool
        let conn: UpstreamConnection
        let channel: EmbeddedChannel
        let sink = Sink()

        init() throws {
            let loop = EmbeddedEventLoop()
            pool = LoopPool(eventLoop: loop)
            conn = UpstreamConnection(target: target, key: target.description, pool: pool)
            channel = EmbeddedChannel(handler: conn, loop: loop)
            conn.channel = channel
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        }

        /// Begins an exchange and writes its whole request.
        func request(_ text: String = "GET / HTTP/1.1\r\nHost: u\r\n\r\n", head: Bool = false) {
            conn.begin(sink: sink, headRequest: head)
            conn.write(ByteBuffer(string: text), flush: true)
        }

        func upstreamSends(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }
    }

    @Test func noReuseAfterAHeadOr204Or304ThatAnnouncedABody() throws {
        let cases: [(response: String, head: Bool, reusable: Bool)] = [
            ("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n", true, false),
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, true),
            ("HTTP/1.1 204 No Content\r\nContent-Length: 8\r\n\r\n", false, false),
            ("HTTP/1.1 204 No Content\r\n\r\n", false, true),
            ("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false, false),
            ("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", false, true),
            ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, true),
        ]
        for c in cases {
            let rig = try Rig()
            rig.request(head: c.head)
            try rig.upstreamSends(c.response)
            #expect(rig.sink.ends == [c.reusable], "\(c.response)")
        }
    }

    @Test func anIdlePooledConnectionThatReceivesAnythingIsDropped() throws {
        let rig = try Rig()
        rig.request()
        try rig.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        #expect(rig.sink.ends == [true])
        rig.pool.release(rig.conn, maxIdle: 4)
        // A late body for the finished response arrives while the connection is idle.
        try rig.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED")
        #expect(rig.channel.isActive == false)
        #expect(rig.pool.takeIdle(rig.target) == nil)
        #expect(rig.sink.body == "ok")
    }

    @Test func aConnectionStaysPooledWhileQuiet() throws {
        let rig = try Rig()
        rig.request()
        try rig.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        rig.pool.release(rig.conn, maxIdle: 4)
        #expect(rig.pool.takeIdle(rig.target) === rig.conn)
    }

    @Test func bytesBeforeTheRequestWasWrittenAreAnError() throws {
        let rig = try Rig()
        rig.conn.begin(sink: rig.sink, headRequest: false)
        try rig.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED")
        #expect(rig.sink.heads.isEmpty)
        #expect(rig.sink.ends.isEmpty)
        #expect(rig.sink.failures.count == 1)
        #expect(rig.channel.isActive == false)
    }

    @Test func anAnswerBeforeTheWholeRequestWasWrittenEndsTheConnection() throws {
        let rig = try Rig()
        rig.conn.begin(sink: rig.sink, headRequest: false)
        rig.conn.write(ByteBuffer(string: "POST / HTTP/1.1\r\nHost: u\r\nContent-Length: 40\r\n\r\n"), flush: true)
        // The upstream answers after the head alone, then the gateway writes the body.
        try rig.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
        rig.conn.write(ByteBuffer(string: "GET /smuggled HTTP/1.1\r\nHost: u\r\n\r\n...."), flush: true)
        try rig.upstreamSends("ok")
        #expect(rig.sink.body == "ok")
        #expect(rig.sink.ends == [false])
    }

    @Test func interimResponsesThenStrayBytesFailTheExchange() throws {
        let rig = try Rig()
        rig.request()
        try rig.upstreamSends("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nPOISONED\r\n\r\n")
        #expect(rig.sink.heads.isEmpty)
        #expect(rig.sink.failures.count == 1 && rig.sink.failures.first?.receivedHead == false)
        // Something was read: a retry could repeat a request the upstream acted on.
        #expect(rig.conn.receivedAny)
    }

    // MARK: Framing the parser had to decide or repair

    @Test func aResponseWithContentLengthAndChunkedLeavesDoubt() throws {
        let both = try response("HTTP/1.1 200 OK\r\nContent-Length: 60\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(both.framing == .chunked && both.framingInDoubt)
        #expect(try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n").framingInDoubt)
        #expect(try response("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n").framingInDoubt)
    }

    @Test func aResponseWithContentLengthAndChunkedIsRelayedChunkedAndItsConnectionEnds() throws {
        // The review's attack: read as chunked the response ends after "hello"; whatever the
        // upstream meant by Content-Length: 60 arrives later, and must find the connection closed.
        let rig = try Rig()
        rig.request()
        try rig.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 60\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        #expect(rig.sink.heads == [200])
        #expect(rig.sink.body == "hello")
        // Not reusable: GatewayHandler closes it instead of returning it to the pool.
        #expect(rig.sink.ends == [false])
    }

    @Test func aResponseHeadTheParserRepairedLeavesDoubt() throws {
        for text in [
            "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n",  // a list of one repeated value
            "HTTP/1.1 200 OK\r\nContent-Length: 02\r\n\r\n",  // a leading zero
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",  // a repeated field
            "HTTP/1.1 200 OK\nContent-Length: 2\n\n",  // bare LF line ends
            "HTTP/1.1 200 OK\r\nServer: x\nContent-Length: 2\r\n\r\n",
        ] {
            #expect(try response(text).framingInDoubt, "\(text)")
            let rig = try Rig()
            rig.request()
            try rig.upstreamSends(text + "ok")
            #expect(rig.sink.body == "ok", "\(text)")
            #expect(rig.sink.ends == [false], "\(text)")
        }
        #expect(try response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n").framingInDoubt == false)
    }

    @Test func aChunkedBodyTheDecoderRepairedEndsItsConnection() throws {
        let cases: [(body: String, reusable: Bool)] = [
            ("2\r\nok\r\n0\r\n\r\n", true),
            ("2;name=value\r\nok\r\n0\r\nTrailer: x\r\n\r\n", true),
            ("2\nok\r\n0\r\n\r\n", false),  // a size line ending with a bare LF
            ("2\r\nok\n0\r\n\r\n", false),  // a chunk followed by a bare LF
            ("2\r\nok\r\n0\r\nTrailer: x\n\r\n", false),  // a trailer line ending with a bare LF
            ("2\r\nok\r\n0\r\n\n", false),  // the last line a bare LF
            ("2 junk\r\nok\r\n0\r\n\r\n", false),  // something other than ;extensions after the size
        ]
        for c in cases {
            let rig = try Rig()
            rig.request()
            try rig.upstreamSends("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + c.body)
            #expect(rig.sink.body == "ok", "\(c.body)")
            #expect(rig.sink.ends == [c.reusable], "\(c.body)")
        }
    }

    // MARK: X-Request-Id

    @Test func aResponseNamingAnotherRequestIsForeignOnceTheConnectionEchoedTheId() throws {
        let rig = try Rig()
        func head(_ id: String?) throws -> ResponseHead {
            try response("HTTP/1.1 200 OK\r\n" + (id.map { "X-Request-Id: \($0)\r\n" } ?? "") + "Content-Length: 0\r\n\r\n")
        }
        // Until the upstream has echoed the gateway's id on this connection, another id is the
        // upstream's own (it names its requests itself), not a sign of a response out of step.
        #expect(rig.conn.foreignRequestID(in: try head("upstream-own-7"), sent: "gw-1") == nil)
        #expect(rig.conn.foreignRequestID(in: try head(nil), sent: "gw-1") == nil)
        #expect(!rig.conn.echoesRequestID)
        #expect(rig.conn.foreignRequestID(in: try head("gw-2"), sent: "gw-2") == nil)
        #expect(rig.conn.echoesRequestID)
        // Then a response naming another request is that request's.
        #expect(rig.conn.foreignRequestID(in: try head("gw-2"), sent: "gw-3") == "gw-2")
        #expect(rig.conn.foreignRequestID(in: try head("GW-3"), sent: "gw-3") == "GW-3")
        #expect(rig.conn.foreignRequestID(in: try head("gw-3"), sent: "gw-3") == nil)
        // A response without the field says nothing; one of several fields naming it is its own.
        #expect(rig.conn.foreignRequestID(in: try head(nil), sent: "gw-4") == nil)
        let two = try response("HTTP/1.1 200 OK\r\nX-Request-Id: other\r\nX-Request-Id: gw-5\r\nContent-Length: 0\r\n\r\n")
        #expect(rig.conn.foreignRequestID(in: two, sent: "gw-5") == nil)
        // The id named is shown printable and bounded.
        let odd = try response(
            "HTTP/1.1 200 OK\r\nX-Request-Id: a\u{85}b\t\(String(repeating: "z", count: 300))\r\nContent-Length: 0\r\n\r\n")
        let shown = try #require(rig.conn.foreignRequestID(in: odd, sent: "gw-6"))
        #expect(shown.hasPrefix("a??b?zzz") && shown.utf8.count <= 131 && shown.allSatisfy { $0.isASCII && !$0.isNewline })
    }

    // MARK: Which idle connection is reused

    static func idleConnection(_ pool: LoopPool, _ target: HostPort) throws -> UpstreamConnection {
        let conn = UpstreamConnection(target: target, key: target.description, pool: pool)
        let channel = EmbeddedChannel(handler: conn, loop: pool.eventLoop as! EmbeddedEventLoop)
        conn.channel = channel
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        return conn
    }

    @Test func thePoolReusesTheLatestConnectionThatHasSettled() throws {
        let target = HostPort.parse("127.0.0.1:9")!
        let pool = LoopPool(eventLoop: EmbeddedEventLoop())
        let s = LoopPool.settleNanos
        let t: UInt64 = 10_000_000_000
        let (a, b, c) = (
            try Self.idleConnection(pool, target), try Self.idleConnection(pool, target), try Self.idleConnection(pool, target)
        )
        pool.release(a, maxIdle: 8, now: t)
        pool.release(b, maxIdle: 8, now: t + s)
        pool.release(c, maxIdle: 8, now: t + 2 * s)
        // c became idle a moment ago (stray bytes may still be on their way): b, idle longer, is
        // taken, and of a and b the later (LIFO among the settled, so the oldest can age out).
        let now = t + 2 * s + s / 2
        #expect(pool.takeIdle(target, now: now) === b)
        #expect(pool.takeIdle(target, now: now) === a)
        // Only c is left: taken although it is fresh (the alternative is a new connection).
        #expect(pool.takeIdle(target, now: now) === c)
        #expect(pool.takeIdle(target, now: now) == nil)
    }

    @Test func whenEveryIdleConnectionIsFreshThePoolTakesTheOldest() throws {
        let target = HostPort.parse("127.0.0.1:9")!
        let pool = LoopPool(eventLoop: EmbeddedEventLoop())
        let t: UInt64 = 10_000_000_000
        let conns = try (0..<4).map { _ in try Self.idleConnection(pool, target) }
        for (i, conn) in conns.enumerated() { pool.release(conn, maxIdle: 8, now: t + UInt64(i)) }
        #expect(pool.takeIdle(target, now: t + 10) === conns[0])
        #expect(pool.takeIdle(target, now: t + 10) === conns[1])
        // Under load, every connection is used in turn: each waits as long as it can.
        pool.release(conns[0], maxIdle: 8, now: t + 11)
        #expect(pool.takeIdle(target, now: t + 12) === conns[2])
        #expect(pool.takeIdle(target, now: t + 12) === conns[3])
        #expect(pool.takeIdle(target, now: t + 12) === conns[0])
    }

    @Test func aClosedIdleConnectionIsSkipped() throws {
        let target = HostPort.parse("127.0.0.1:9")!
        let pool = LoopPool(eventLoop: EmbeddedEventLoop())
        let s = LoopPool.settleNanos
        let t: UInt64 = 10_000_000_000
        let (a, b) = (try Self.idleConnection(pool, target), try Self.idleConnection(pool, target))
        pool.release(a, maxIdle: 8, now: t)
        pool.release(b, maxIdle: 8, now: t + 2 * s)
        try a.channel?.close().wait()
        #expect(pool.takeIdle(target, now: t + 2 * s + 1) === b)
    }

    @Test func usesCountTheExchangesOfAConnection() throws {
        let rig = try Rig()
        rig.request()
        #expect(rig.conn.uses == 1 && !rig.conn.receivedAny)
        try rig.upstreamSends("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        rig.pool.release(rig.conn, maxIdle: 4)
        let again = try #require(rig.pool.takeIdle(rig.target))
        again.begin(sink: rig.sink, headRequest: false)
        #expect(again.uses == 2 && !again.receivedAny)
    }
}

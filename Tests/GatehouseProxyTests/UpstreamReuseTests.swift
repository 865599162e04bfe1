import GatehouseConfig
import GatehouseCore
import NIOCore
import NIOEmbedded
import Testing

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

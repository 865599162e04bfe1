import GatehouseTestSupport
import Foundation
import GatehouseProxy
import NIOCore
import NIOPosix
import Testing
import GatehouseServer
import GatehouseTesting

/// The gateway's HTTP/1 handling seen from the wire: body framing both ways, HEAD, 100-continue,
/// HTTP/1.0 clients, and requests refused because they could be read two ways.
@Suite(.serialized) struct HTTPCodecTests {
    static let yaml = """
        upstreams:
          app: { targets: ["http://127.0.0.1:UP"], timeout: 5s }
        routes:
          - name: open
            match: { methods: [GET, HEAD, POST, PUT], path: /open }
            upstream: app
          - name: inspected
            match: { methods: [POST], path: /inspected }
            upstream: app
            policies: [waf]
          - name: local-denied
            match: { methods: [POST], path: /denied }
            upstream: app
            policies: [no-local]
        policies:
          waf: { type: waf, paranoia: 1 }
          no-local: { type: ip, deny: [127.0.0.0/8] }
        """

    /// Splits a reply into (head, body) at the first empty line.
    func split(_ reply: String) -> (String, String) {
        guard let r = reply.range(of: "\r\n\r\n") else { return (reply, "") }
        return (String(reply[..<r.lowerBound]), String(reply[r.upperBound...]))
    }

    /// Decodes a chunked body; nil if it is not well-formed or does not end.
    func dechunk(_ body: String) -> String? {
        let b = Array(body.utf8)
        var i = 0
        var out: [UInt8] = []
        while let nl = b[i...].firstIndex(of: UInt8(ascii: "\n")), nl > i, b[nl - 1] == UInt8(ascii: "\r") {
            guard let size = Int(String(decoding: b[i..<(nl - 1)], as: UTF8.self), radix: 16) else { return nil }
            i = nl + 1
            if size == 0 { return Array(b[i...]) == Array("\r\n".utf8) ? String(decoding: out, as: UTF8.self) : nil }
            guard b.count - i >= size + 2, b[i + size] == UInt8(ascii: "\r"), b[i + size + 1] == UInt8(ascii: "\n") else { return nil }
            out += b[i..<(i + size)]
            i += size + 2
        }
        return nil
    }

    @Test func chunkedBodiesBothWays() async throws {
        let up = try await startUpstream()
        let g = try await LocalGateway(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(up.port)))
        defer { g.stop() }

        // A chunked request body (with an extension and a trailer) reaches the upstream whole.
        let post = try rawExchange(
            port: g.port,
            "POST /open HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + "5\r\nhello\r\n6;note=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        #expect(post.hasPrefix("HTTP/1.1 200"))
        #expect(post.contains("\"body_bytes\":11"))

        // The same body buffered for a body-inspecting check is forwarded with its length.
        let inspected = try rawExchange(
            port: g.port,
            "POST /inspected HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        #expect(inspected.hasPrefix("HTTP/1.1 200"))
        #expect(inspected.contains("\"body_bytes\":11"))

        // An upstream body without a length goes to an HTTP/1.1 client chunked, on a kept-alive connection.
        let (head, body) = split(
            try rawExchange(port: g.port, "GET /open?bytes=100000&chunked=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        #expect(head.hasPrefix("HTTP/1.1 200"))
        #expect(head.lowercased().contains("transfer-encoding: chunked"))
        #expect(!head.lowercased().contains("content-length"))
        let data = try #require(dechunk(body))
        #expect(data.utf8.count == 100_000 && data.utf8.allSatisfy { $0 == UInt8(ascii: "x") })

        // To an HTTP/1.0 client it is sent as is and the connection closes after it.
        let (head10, body10) = split(try rawExchange(port: g.port, "GET /open?bytes=100000&chunked=1 HTTP/1.0\r\nHost: x\r\n\r\n"))
        #expect(head10.hasPrefix("HTTP/1.0 200"))
        #expect(!head10.lowercased().contains("transfer-encoding"))
        #expect(head10.contains("Connection: close"))
        #expect(body10.utf8.count == 100_000)

        let rec = try await g.record(String(head.split(separator: "\r\n").first { $0.hasPrefix("X-Request-Id: ") }!.dropFirst(14)))
        #expect(rec["status"] as? Int == 200)
        await up.stop()
    }

    @Test func headAndContinueAndPipelining() async throws {
        let up = try await startUpstream()
        let g = try await LocalGateway(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(up.port)))
        defer { g.stop() }
        // A HEAD answer carries the length of the body it does not send; the next request on the
        // connection is read correctly after it.
        let reply = try rawExchange(
            port: g.port,
            "HEAD /open?bytes=500 HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /open?n=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let parts = reply.components(separatedBy: "HTTP/1.1 ")
        #expect(parts.count == 3)
        #expect(parts[1].contains("Content-Length: 500"))
        #expect(parts[1].hasSuffix("\r\n\r\n"))
        #expect(parts[2].hasPrefix("200") && parts[2].contains("n=2"))

        // Expect: 100-continue gets an interim 100 before the final answer.
        let cont = try rawExchange(
            port: g.port, "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhello")
        #expect(cont.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"))
        #expect(cont.contains("\"body_bytes\":5"))
        await up.stop()
    }

    /// A denial answered before the request body arrived is logged even when the client then
    /// hangs up without sending the body.
    @Test func aDenialIsLoggedWhenTheClientLeavesMidBody() async throws {
        let up = try await startUpstream()
        let g = try await LocalGateway(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(up.port)))
        defer { g.stop() }
        // rawExchange reads until the gateway closes or 5 s pass, then closes its end.
        let reply = try rawExchange(
            port: g.port, "POST /denied HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"partial\":")
        #expect(reply.hasPrefix("HTTP/1.1 403"))
        let id = String(try #require(reply.split(separator: "\r\n").first { $0.hasPrefix("X-Request-Id: ") }).dropFirst(14))
        let rec = try await g.record(id)
        #expect(rec["status"] as? Int == 403)
        #expect(rec["reason"] as? String == "ip_denied")
        await up.stop()
    }

    @Test func ambiguousOrOversizedRequestsAreRefusedAndLogged() async throws {
        let up = try await startUpstream()
        let g = try await LocalGateway(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(up.port)))
        defer { g.stop() }
        let smuggle = try rawExchange(
            port: g.port,
            "POST /open HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "0\r\n\r\nGET /open?smuggled=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(smuggle.hasPrefix("HTTP/1.1 400"))
        #expect(smuggle.contains("\"reason\":\"bad_request\""))
        #expect(smuggle.contains("both Content-Length and Transfer-Encoding"))
        #expect(smuggle.contains("Connection: close"))
        #expect(!smuggle.contains("smuggled"))  // the connection ends; nothing after the bad request is read

        // An absolute-form target would name a host the router never saw.
        let absolute = try rawExchange(port: g.port, "GET http://internal.example/open HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(absolute.hasPrefix("HTTP/1.1 400"))
        #expect(absolute.contains("absolute-form"))

        let big = String(repeating: "a", count: 70_000)
        let oversized = try rawExchange(port: g.port, "GET /open HTTP/1.1\r\nHost: x\r\nX-Big: \(big)\r\n\r\n")
        #expect(oversized.hasPrefix("HTTP/1.1 431"))
        #expect(oversized.contains("\"reason\":\"headers_too_large\""))

        let id = String(smuggle.split(separator: "\r\n").first { $0.hasPrefix("X-Request-Id: ") }!.dropFirst(14))
        let rec = try await g.record(id)
        #expect(rec["status"] as? Int == 400)
        #expect(rec["reason"] as? String == "bad_request")
        await up.stop()
    }
}

/// An upstream that answers every request with the same raw bytes, whatever they are.
final class RawUpstream: Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    init(reply: String) async throws {
        channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RawReplyHandler(reply: reply)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func stop() async { try? await group.shutdownGracefully() }
}

final class RawReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let reply: String
    var received = ""
    init(reply: String) { self.reply = reply }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += String(buffer: unwrapInboundIn(data))
        guard received.contains("\r\n\r\n") else { return }
        received = ""
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply)), promise: nil)
    }
}

/// What the gateway passes on from an upstream that frames its response oddly or puts a line
/// break in its status line.
@Suite(.serialized) struct UpstreamResponseCodecTests {
    func gateway(_ upstream: RawUpstream) async throws -> LocalGateway {
        try await LocalGateway(
            yaml: """
                upstreams:
                  raw: { targets: ["http://127.0.0.1:\(upstream.port)"], timeout: 2s }
                routes:
                  - name: raw
                    match: { path: /raw }
                    upstream: raw
                """)
    }

    @Test func transferEncodingWinsAndContentLengthIsDropped() async throws {
        let up = try await RawUpstream(
            reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        let g = try await gateway(up)
        defer { g.stop() }
        let reply = try rawExchange(port: g.port, "GET /raw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let codec = HTTPCodecTests()
        let (head, body) = codec.split(reply)
        #expect(head.hasPrefix("HTTP/1.1 200"))
        #expect(!head.lowercased().contains("content-length"))
        #expect(head.lowercased().contains("transfer-encoding: chunked"))
        #expect(codec.dechunk(body) == "hello world")
        await up.stop()
    }

    @Test func aLineBreakInTheStatusLineIsABadGatewayNotAnInjectedField() async throws {
        let up = try await RawUpstream(reply: "HTTP/1.1 200 OK\rSet-Cookie: stolen=1\r\nContent-Length: 0\r\n\r\n")
        let g = try await gateway(up)
        defer { g.stop() }
        let reply = try rawExchange(port: g.port, "GET /raw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(reply.hasPrefix("HTTP/1.1 502"))
        #expect(reply.contains("\"reason\":\"upstream_unavailable\""))
        #expect(reply.contains("not valid HTTP/1.1"))
        #expect(!reply.contains("Set-Cookie"))
        await up.stop()
    }
}

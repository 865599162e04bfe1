import Foundation
import GatehouseTestSupport
import Testing

/// S28: minor protocol issues. No `100 Continue` to an HTTP/1.0 client (RFC 9110 §10.1.1); an
/// upstream's repeated Content-Length reaches the client as one bare number; a 204 reaches it
/// without a Content-Length (RFC 9110 §8.6). (Rate counters reset on reload: documented.)
@Suite(.serialized) struct S28_ProtocolDetails {
    static let respond: CaptureUpstream.Responder = { req in
        switch req.path {
        case "/cap/cl-list": return CannedResponse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello")
        case "/cap/cl-twice": return CannedResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello")
        case "/cap/cl-zeros": return CannedResponse("HTTP/1.1 200 OK\r\nContent-Length: 005\r\n\r\nhello")
        case "/cap/nocontent": return CannedResponse("HTTP/1.1 204 No Content\r\nContent-Length: 8\r\nX-Done: yes\r\n\r\n")
        default: return .ok("upstream saw \(req.target) body=\(String(decoding: req.body, as: UTF8.self))")
        }
    }

    static func yaml(_ upstream: CaptureUpstream) -> String {
        """
        upstreams:
          cap: { targets: ["\(upstream.url)"], timeout: 5s }
        routes:
          - name: cap
            match: { methods: [GET, POST], path: "/cap/*" }
            upstream: cap
        """
    }

    @Test func anHTTP10ClientGetsNo100Continue() async throws {
        let upstream = try await CaptureUpstream(respond: Self.respond)
        let gw = try GatewayProcess(yaml: Self.yaml(upstream))
        defer { gw.stop() }
        let text = try rawExchange(port: gw.port, "POST /cap/upload HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
        #expect(!text.contains("100 Continue"))
        #expect(text.hasPrefix("HTTP/1.0 200 "))
        #expect(text.hasSuffix("upstream saw /cap/upload body=hello"))
        // An HTTP/1.1 client still gets its interim response.
        let v11 = try rawExchange(
            port: gw.port,
            "POST /cap/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\nhello")
        #expect(v11.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 "))
        await upstream.stop()
    }

    @Test func aRepeatedContentLengthReachesTheClientOnce() async throws {
        let upstream = try await CaptureUpstream(respond: Self.respond)
        let gw = try GatewayProcess(yaml: Self.yaml(upstream))
        defer { gw.stop() }
        for path in ["/cap/cl-list", "/cap/cl-twice", "/cap/cl-zeros"] {
            let reply = try attack(gw, "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(reply.status == 200, "\(path)")
            #expect(reply.headers.filter { $0.name.lowercased() == "content-length" }.map(\.value) == ["5"], "\(path)")
            #expect(reply.body == "hello", "\(path)")
        }
        await upstream.stop()
    }

    @Test func a204ReachesTheClientWithoutContentLength() async throws {
        let upstream = try await CaptureUpstream(respond: Self.respond)
        let gw = try GatewayProcess(yaml: Self.yaml(upstream))
        defer { gw.stop() }
        // A 204, then a second request pipelined on the same client connection.
        let text = try rawExchange(
            port: gw.port,
            "GET /cap/nocontent HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /cap/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let first = RawReply(text)
        #expect(first.status == 204)
        #expect(first.header("x-done") == "yes")
        #expect(first.header("content-length") == nil)
        #expect(text.hasSuffix("upstream saw /cap/after body="))
        await upstream.stop()
    }
}

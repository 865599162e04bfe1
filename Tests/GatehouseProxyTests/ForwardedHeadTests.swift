import GatehouseChecks
import GatehouseConfig
import GatehouseCore
import GatehouseIdentity
import Foundation
import NIOCore
import Testing

@testable import GatehouseHTTP1
@testable import GatehouseProxy

/// What the upstream receives and what the client receives, written without sockets.
@Suite struct ForwardedHeadTests {
    struct NoKeys: CredentialDirectory {
        func key(id: String) -> KeyRecord? { nil }
        func consumer(id: String) -> ConsumerRecord? { nil }
        var isAvailable: Bool { true }
    }

    let route: CompiledRoute

    init() throws {
        let config = try ConfigLoader.parse(
            yaml: """
                upstreams:
                  app: { targets: ["http://127.0.0.1:9000"] }
                routes:
                  - name: app
                    match: { path: "/api/{rest*}" }
                    upstream: app
                    strip_prefix: /api
                    policies: [key]
                policies:
                  key: { type: api_key, header: X-API-Key, query: api_key }
                """, file: "t.yaml", context: BuildContext(directory: NoKeys(), baseDirectory: "/tmp"))
        route = try #require(config.router.routes.first)
    }

    func request(_ text: String) throws -> RequestHead {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { p in
            let len = try #require(HTTP1Parse.headLength(p))
            return try HTTP1Parse.request(p, length: len)
        }
    }

    func forwarded(
        _ text: String, path: String, query: String? = nil, trusted: Bool = false,
        untrusted: HeaderNameSet? = HeaderNameSet(["x-user"])
    ) throws -> (line: String, fields: [(String, String)]) {
        let head = try request(text)
        var out = ByteBuffer()
        ForwardedHead.write(
            head, path: path, query: query, route: route, requestID: "rid-1", peerTrusted: trusted,
            peerText: "203.0.113.9", isTLS: false, untrustedHeaders: trusted ? nil : untrusted, into: &out)
        let lines = String(buffer: out).components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let fields = lines.dropFirst().map { l -> (String, String) in
            let colon = l.firstIndex(of: ":")!
            return (String(l[..<colon]), String(l[l.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        }
        return (lines[0], fields)
    }

    func values(_ fields: [(String, String)], _ name: String) -> [String] {
        fields.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    @Test func theUpstreamSeesTheCheckedPathWithoutCredentials() throws {
        let f = try forwarded(
            "GET /api/../api/orders?api_key=gth_x&q=1 HTTP/1.1\r\nHost: shop.example.com.\r\nX-API-Key: gth_secret\r\n\r\n",
            path: "/api/orders", query: "api_key=gth_x&q=1")
        #expect(f.line == "GET /orders?q=1 HTTP/1.1")
        #expect(values(f.fields, "x-api-key").isEmpty)
        #expect(values(f.fields, "host") == ["shop.example.com"])
        #expect(values(f.fields, "x-forwarded-host") == ["shop.example.com"])
        #expect(values(f.fields, "x-request-id") == ["rid-1"])
    }

    @Test func hopByHopAndSpoofedFieldsDoNotTravel() throws {
        let f = try forwarded(
            """
            POST /api/x HTTP/1.1\r
            Host: a.example\r
            Connection: keep-alive, X-Secret\r
            X-Secret: s\r
            Keep-Alive: timeout=5\r
            TE: trailers\r
            Upgrade: h2c\r
            Proxy-Connection: keep-alive\r
            Content-Length: 3\r
            X-Forwarded-For: 10.0.0.1\r
            X-Forwarded-Proto: https\r
            X_Forwarded_For: 10.0.0.2\r
            X-Request-Id: forged\r
            X-User: admin\r
            Accept: */*\r
            \r\n
            """, path: "/api/x")
        for name in [
            "connection", "x-secret", "keep-alive", "te", "upgrade", "proxy-connection", "content-length", "x_forwarded_for", "x-user",
        ] {
            #expect(values(f.fields, name).isEmpty, "\(name) travelled")
        }
        #expect(values(f.fields, "x-forwarded-for") == ["203.0.113.9"])
        #expect(values(f.fields, "x-forwarded-proto") == ["http"])
        #expect(values(f.fields, "x-request-id") == ["rid-1"])
        #expect(values(f.fields, "accept") == ["*/*"])
    }

    @Test func aTrustedProxysForwardingFieldsAreKeptAndExtended() throws {
        let f = try forwarded(
            "GET /api/x HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 198.51.100.2\r\nX-Forwarded-Proto: https\r\nX-User: kept\r\n\r\n",
            path: "/api/x", trusted: true)
        #expect(values(f.fields, "x-forwarded-for") == ["198.51.100.1, 198.51.100.2, 203.0.113.9"])
        #expect(values(f.fields, "x-forwarded-proto") == ["https"])
        #expect(values(f.fields, "x-user") == ["kept"])
    }

    @Test(arguments: [
        ("a.example.", "a.example"), ("a.example.:8080", "a.example:8080"), ("a.example..", "a.example"),
        ("a.example:80", "a.example:80"), ("[::1]:80", "[::1]:80"), ("127.0.0.1", "127.0.0.1"),
    ])
    func hostsLoseOnlyTheirTrailingDot(_ field: String, _ expected: String) {
        #expect(ForwardedHead.hostWithoutTrailingDot(field) == expected)
    }

    func clientHead(
        _ upstream: String, minor: Int = 1, extra: [HeaderField] = [], chunked: Bool = false, keepAlive: Bool = true
    ) throws -> String {
        let buf = ByteBuffer(string: upstream)
        let len = try #require(buf.withUnsafeReadableBytes { HTTP1Parse.headLength($0) })
        let up = try HTTP1Parse.response(buf, length: len, headRequest: false)
        var out = ByteBuffer()
        ClientResponseHead.write(
            up, minor: minor, extraFields: extra, requestID: "rid-2", chunked: chunked, keepAlive: keepAlive, into: &out)
        return String(buffer: out)
    }

    @Test func theClientSeesTheUpstreamsFieldsWithTheGatewaysOwn() throws {
        let text = try clientHead(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Internal\r\nX-Internal: 1\r\nKeep-Alive: timeout=9\r\nX-Request-Id: other\r\nVary: Accept-Encoding\r\nCache-Control: no-store\r\nServer: up\r\n\r\n",
            extra: [
                HeaderField("Vary", "Origin"), HeaderField("Cache-Control", "private"),
                HeaderField("Access-Control-Allow-Origin", "https://a"),
            ],
            keepAlive: false)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.contains("Content-Length: 2\r\n"))
        #expect(text.contains("Vary: Accept-Encoding, Origin\r\n"))
        #expect(text.contains("Cache-Control: private\r\n"))
        #expect(!text.contains("no-store"))
        #expect(text.contains("Access-Control-Allow-Origin: https://a\r\n"))
        #expect(text.contains("X-Request-Id: rid-2\r\n"))
        #expect(!text.contains("other"))
        #expect(!text.contains("X-Internal"))
        #expect(!text.contains("Keep-Alive"))
        #expect(text.contains("Server: up\r\n"))
        #expect(text.hasSuffix("Connection: close\r\n\r\n"))
    }

    @Test func anHTTP10ClientGetsAnHTTP10StatusLineAndChunkingIsAnnounced() throws {
        let old = try clientHead("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", minor: 0)
        #expect(old.hasPrefix("HTTP/1.0 404 Not Found\r\n"))
        let chunked = try clientHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", chunked: true)
        #expect(!chunked.contains("Content-Length"))
        #expect(chunked.contains("Transfer-Encoding: chunked\r\n"))
    }

    // MARK: Trace context

    @Test func withTracingTheSpansTraceContextReplacesTheClients() throws {
        let head = try request(
            "GET /api/a HTTP/1.1\r\nHost: h\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
                + "TraceState: vendor=client\r\nX-User: u\r\n\r\n")
        let mine = TraceFields(traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: nil)
        let config = try ConfigLoader.parse(
            yaml: """
                untrusted_headers: { add: [x-user] }
                upstreams:
                  app: { targets: ["http://127.0.0.1:9000"] }
                routes:
                  - match: { path: /a }
                    upstream: app
                """, file: "t.yaml", context: BuildContext(directory: NoKeys(), baseDirectory: "/tmp"))
        let state = RuntimeState(config: config, generation: 1)
        for trusted in [false, true] {
            var out = ByteBuffer()
            ForwardedHead.write(
                head, path: "/api/a", query: nil, route: route, requestID: "rid-1", peerTrusted: trusted,
                peerText: "203.0.113.9", isTLS: false,
                untrustedHeaders: trusted ? TraceFields.names : state.untrustedAndTraceFields, traceFields: mine, into: &out)
            let text = String(buffer: out).lowercased()
            #expect(text.components(separatedBy: "traceparent:").count == 2, "\(text)")
            #expect(text.contains("traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"))
            #expect(!text.contains("tracestate"))
            // Only the trace fields are added to what a trusted peer's request loses.
            #expect(text.contains("x-user: u") == trusted)
        }
        // Off: the client's fields pass as any other.
        let off = try forwarded(
            "GET /api/a HTTP/1.1\r\nHost: h\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n",
            path: "/api/a")
        #expect(values(off.fields, "traceparent") == ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"])
    }
}

import Foundation
import GatehouseTestSupport
import Testing

/// S8: `request.max_body` was checked only against Content-Length; a chunked body of any size passed.
@Suite("S8 chunked max_body", .serialized) struct S08ChunkedMaxBody {
    static let yaml = """
        upstreams:
          app: { targets: ["http://127.0.0.1:UP"] }
        routes:
          - name: upload
            match: { methods: [POST], path: /upload }
            upstream: app
            policies: [shape]
        policies:
          shape: { type: request, max_body: 1KiB }
        """

    static func chunked(_ total: Int, piece: Int = 4096) -> String {
        var out = ""
        var left = total
        while left > 0 {
            let n = min(piece, left)
            out += String(n, radix: 16) + "\r\n" + String(repeating: "b", count: n) + "\r\n"
            left -= n
        }
        return out + "0\r\n\r\n"
    }

    @Test func chunkedBodyOverTheLimitIsStoppedWith413() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port)))
        defer { gw.stop() }
        let r = try attack(gw, "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + Self.chunked(1 << 20))
        #expect(r.status == 413)
        #expect(r.reason == "body_too_large")
        #expect(r.body.contains("shape"))
        try await Task.sleep(for: .milliseconds(300))
        #expect(upstream.requests.allSatisfy { $0.body.count <= 1024 }, "the upstream received a body over the limit")
        let record = try await gw.record(r.header("x-request-id") ?? "")
        #expect(record["reason"] as? String == "body_too_large")
    }

    @Test func chunkedBodyWithinTheLimitIsForwarded() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml.replacingOccurrences(of: "UP", with: String(upstream.port)))
        defer { gw.stop() }
        let r = try attack(
            gw,
            "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + Self.chunked(1000, piece: 300))
        #expect(r.status == 200)
        #expect(upstream.requests.first?.body.count == 1000)
        // Exactly at the limit is allowed; one byte over is not.
        let at = try attack(
            gw,
            "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + Self.chunked(1024, piece: 100))
        #expect(at.status == 200)
        let over = try attack(
            gw,
            "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + Self.chunked(1025, piece: 100))
        #expect(over.status == 413)
    }

    /// A `request` check in shadow mode records what it would deny and never enforces, streamed
    /// bodies included.
    @Test func aShadowShapeCheckDoesNotStopAChunkedBody() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(
            yaml: """
                upstreams:
                  app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
                routes:
                  - name: upload
                    match: { methods: [POST], path: /upload }
                    upstream: app
                    policies: [{ policy: shape, mode: shadow }]
                policies:
                  shape: { type: request, max_body: 1KiB }
                """)
        defer { gw.stop() }
        let r = try attack(
            gw,
            "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + Self.chunked(2048, piece: 512))
        #expect(r.status == 200)
        #expect(upstream.requests.first?.body.count == 2048)
    }
}

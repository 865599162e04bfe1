import Foundation
import GatehouseTestSupport
import Testing

/// S27: the request parser accepted bare-LF heads, bare LF after chunk data or extensions,
/// chunk-size lines with garbage after the size, lowercase methods, and `#`, `\` or raw 8-bit
/// bytes in the target. A stricter front proxy could read such a request differently. Each is now
/// 400 `bad_request`, logged, and the connection closed.
@Suite(.serialized) struct S27_LenientParsing {
    static let cases: [(String, String)] = [
        ("bare-LF head", "GET /cap/a HTTP/1.1\nHost: x\nConnection: close\n\n"),
        ("bare LF ending one field", "GET /cap/a HTTP/1.1\r\nHost: x\nConnection: close\r\n\r\n"),
        (
            "bare LF after chunk data",
            "POST /cap/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\n0\r\n\r\n"
        ),
        (
            "bare LF after a chunk extension",
            "POST /cap/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;a=b\nhello\r\n0\r\n\r\n"
        ),
        (
            "garbage after a chunk size",
            "POST /cap/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5 xyz\r\nhello\r\n0\r\n\r\n"
        ),
        ("lowercase method", "get /cap/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        ("# in the target", "GET /cap/a#b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        ("\\ in the target", "GET /cap/a\\b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        ("raw 8-bit byte in the target", "GET /cap/caf\u{E9} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    ]

    @Test func eachLenientFormIsRefusedAndLogged() async throws {
        let upstream = try await CaptureUpstream()
        let gw = try GatewayProcess(
            yaml: """
                upstreams:
                  cap: { targets: ["\(upstream.url)"], timeout: 5s }
                routes:
                  - name: cap
                    match: { path: "/cap/{rest*}" }
                    upstream: cap
                """)
        defer { gw.stop() }
        // The control: a well-formed chunked request goes through.
        let ok = try attack(
            gw, "POST /cap/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n")
        #expect(ok.status == 200)
        for (label, bytes) in Self.cases {
            let reply = try attack(gw, bytes)
            #expect(reply.status == 400, "\(label) → \(reply.status) \(reply.body)")
            #expect(reply.reason == "bad_request", "\(label) → \(reply.body)")
            #expect(reply.header("connection")?.lowercased() == "close", "\(label)")
            let id = reply.header("x-request-id") ?? ""
            let record = try await gw.record(id)
            #expect(record["status"] as? Int == 400, "\(label): \(record)")
            #expect("\(record)".contains("bad_request"), "\(label): \(record)")
        }
        // Only the control's body reached the upstream complete.
        #expect(upstream.requests.count == 1, "\(upstream.requests.map(\.rawHead))")
        await upstream.stop()
    }
}

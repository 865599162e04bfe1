import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S17: an unsigned token's kid (and jti) and a Basic user name went raw into the denial detail,
/// `presented`, the call log and the `WWW-Authenticate` header; `gatehouse explain` printed 12 ESC
/// and 3 BEL bytes that retitled the window, cleared the screen and drew forged lines. Now the
/// response headers carry no control bytes, and `explain` and `logs` print escapes instead.
@Suite(.serialized) struct S17_TerminalEscapes {
    static let kid = "\u{1b}]0;owned-title\u{07}\u{1b}[2J\u{1b}[32mALLOWED 200\u{1b}[0m\nReason: none"
    static let user = "\u{1b}[31mroot\u{07}\u{1b}[0m\nDecided by: nobody"

    @Test func hostileKidAndUserNameNeverReachATerminalOrAHeaderRaw() async throws {
        let upstream = try await CaptureUpstream()
        let dir = try TempDir()
        _ = try dir.write("jwks.json", HSToken.jwks)
        let gw = try GatewayProcess(
            yaml: jwtGatewayYAML(
                upstreamPort: upstream.port,
                extraRoutes: """
                      - name: reports
                        match: { path: /reports }
                        upstream: app
                        policies: [password]
                      - name: odd-realm
                        match: { path: /odd }
                        upstream: app
                        policies: [odd]
                    """,
                extraPolicies: """
                      password: { type: basic, realm: reports }
                      odd: { type: basic, realm: "r\\e]0;t\\a\\x7f\\u0085\\u009b31m\\tok" }
                    """), dir: dir)
        defer { gw.stop() }

        // The review's payloads: a kid (unsigned: the signature is never checked for an unknown
        // key) with a jti of the same kind, and a Basic user name.
        let header = #"{"alg":"HS256","kid":"# + HSToken.json(Self.kid) + "}"
        let token = HSToken.make(header: header, payload: HSToken.claims(#""jti":"# + HSToken.json("j\u{1b}[31m\u{07}\nDetail: forged")))
        let basic = Data((Self.user + ":pw").utf8).base64EncodedString()
        var ids: [String] = []
        for (path, auth, reason) in [
            ("/orders", "Bearer " + token, "token_unknown_key"), ("/reports", "Basic " + basic, "invalid_credentials"),
        ] {
            let raw = try rawExchange(
                port: gw.port, "GET \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: \(auth)\r\nConnection: close\r\n\r\n")
            let reply = RawReply(raw)
            #expect(reply.status == 401, "\(path): \(raw)")
            #expect(reply.reason == reason)
            // The head, between its CRLFs, holds no control byte at all.
            let head = raw.components(separatedBy: "\r\n\r\n").first ?? ""
            for line in head.components(separatedBy: "\r\n") {
                #expect(
                    controlBytes(in: Array(line.utf8)).isEmpty, "\(path): control bytes in response header line \(line.debugDescription)")
            }
            let id = try #require(reply.header("x-request-id"))
            ids.append(id)
        }
        #expect(upstream.requests.isEmpty)
        // A header value from configuration (a realm with ESC, BEL, DEL and C1 characters) is
        // written without them; a tab is kept.
        let odd = try rawExchange(port: gw.port, "GET /odd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(RawReply(odd).status == 401, "\(odd)")
        let oddHead = odd.components(separatedBy: "\r\n\r\n").first ?? ""
        for line in oddHead.components(separatedBy: "\r\n") {
            #expect(controlBytes(in: Array(line.utf8)).isEmpty, "control bytes in response header line \(line.debugDescription)")
        }
        #expect(RawReply(odd).header("www-authenticate")?.contains("]0;t") == true, "\(oddHead)")

        for id in ids {
            _ = try await gw.record(id)
            let explain = try gw.cli(["explain", id])
            #expect(explain.status == 0)
            let out = Array(explain.stdout.utf8)
            #expect(!out.contains(0x1B), "explain printed ESC")
            #expect(!out.contains(0x07), "explain printed BEL")
            #expect(controlBytes(in: out, allowingLineBreaks: true).isEmpty)
            // No forged lines: each of these starts exactly one line, the real one, or none.
            let lines = explain.stdout.components(separatedBy: "\n")
            #expect(lines.filter { $0.hasPrefix("Reason:") }.count == 1, "\(explain.stdout)")
            #expect(lines.filter { $0.hasPrefix("Decided by:") }.count == 1, "\(explain.stdout)")
            #expect(lines.filter { $0.hasPrefix("Detail:") }.count == 1, "\(explain.stdout)")
            #expect(!lines.contains { $0.hasPrefix("ALLOWED") || $0.contains("Reason: none") && $0.hasPrefix("Reason") })
            // The text is still there for the operator, visibly escaped.
            #expect(explain.stdout.contains("\\u{1b}"), "\(explain.stdout)")
            let json = try gw.cli(["explain", id, "--json"])
            #expect(!Array(json.stdout.utf8).contains(0x1B) && !Array(json.stdout.utf8).contains(0x07))
        }
        let logs = try gw.cli(["logs"])
        #expect(logs.status == 0)
        #expect(!Array(logs.stdout.utf8).contains(0x1B) && !Array(logs.stdout.utf8).contains(0x07))
        #expect(controlBytes(in: Array(logs.stdout.utf8), allowingLineBreaks: true).isEmpty)
        #expect(logs.stdout.split(separator: "\n").count == ids.count + 1, "\(logs.stdout)")  // and /odd
        let logsJSON = try gw.cli(["logs", "--json"])
        #expect(!Array(logsJSON.stdout.utf8).contains(0x1B) && !Array(logsJSON.stdout.utf8).contains(0x07))
        await upstream.stop()
    }

    /// Review B: the 429's detail and `presented` carried the consumer name raw, and for a token
    /// that name is its signed `sub`: the issuer's text, not the gateway's. It is escaped now.
    @Test func aHostileSubIsEscapedInTheRateLimitRefusal() async throws {
        let upstream = try await CaptureUpstream()
        let dir = try TempDir()
        _ = try dir.write("jwks.json", HSToken.jwks)
        let gw = try GatewayProcess(
            yaml: jwtGatewayYAML(
                upstreamPort: upstream.port,
                extraRoutes: """
                      - name: limited
                        match: { path: /limited }
                        upstream: app
                        policies: [bearer, per-consumer]
                    """,
                extraPolicies: """
                      per-consumer: { type: rate_limit, key: consumer, rate: 1/minute }
                    """), dir: dir)
        defer { gw.stop() }
        let sub = "\u{1b}]0;owned\u{07}\u{1b}[2J\nDecided by: nobody"
        let token = HSToken.make(
            payload: #"{"sub":"# + HSToken.json(sub) + #","aud":"orders-api","iss":"i","exp":"# + HSToken.inTenMinutes + "}")
        var last: Reply?
        for _ in 0..<2 { last = try await send(.GET, gw.url + "/limited", headers: [("Authorization", "Bearer " + token)]) }
        let r = try #require(last)
        #expect(r.status == 429 && r.json["reason"] as? String == "rate_limited", "\(r.status) \(r.body)")
        let detail = r.json["detail"] as? String ?? ""
        let presented = (r.json["presented"] as? [String]) ?? []
        for text in [detail] + presented {
            #expect(!text.unicodeScalars.contains { $0.value < 0x20 || ($0.value >= 0x7F && $0.value <= 0x9F) }, "\(text.debugDescription)")
        }
        #expect(detail.contains(#"consumer \u{1b}]0;owned\u{07}\u{1b}[2J\u{0a}Decided by: nobody"#), "\(detail)")
        await upstream.stop()
    }
}

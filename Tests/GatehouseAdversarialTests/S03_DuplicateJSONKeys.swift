import Foundation
import GatehouseTestSupport
import Testing

/// S3: the `owner` check read its body field with Foundation's JSONDecoder, which keeps the first
/// of two duplicate members; Python, Node and Go keep the last. `{"account":{"owner":"alice",
/// "owner":"bob"}}` passed as alice's while the upstream acted on bob's account.
@Suite("S03 duplicate JSON keys", .serialized) struct S03DuplicateJSONKeys {
    static func yaml(_ upstream: CaptureUpstream) -> String {
        """
        upstreams:
          app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
        routes:
          - name: transfer
            match: { methods: [POST], path: /transfer }
            upstream: app
            policies: [bearer, own-transfer]
        policies:
          bearer: { type: jwt, jwks_file: jwks.json, algorithms: [HS256] }
          own-transfer: { type: owner, body_field: account.owner }
        """
    }

    func post(_ gw: GatewayProcess, _ body: [UInt8], contentType: String = "application/json") throws -> RawReply {
        let head =
            "POST /transfer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(OwnerTokens.token(sub: "alice"))\r\n"
            + "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        return try exchangeBytes(port: gw.port, Array(head.utf8) + body)
    }

    @Test func theReviewsBodiesAreRefusedAsAmbiguousAndNeverReachTheUpstream() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try ownershipGateway(Self.yaml(upstream))
        defer { gw.stop() }

        let attacks: [(body: String, pointer: String)] = [
            (#"{"account":{"owner":"alice"},"account":{"owner":"bob"}}"#, "/account"),
            (#"{"account":{"owner":"alice","owner":"bob"}}"#, "/account/owner"),
            // The same name once unescaped; and a letter-case twin that Go's decoder matches.
            (#"{"account":{"owner":"alice","\u006fwner":"bob"}}"#, "/account/owner"),
            (#"{"account":{"owner":"alice","Owner":"bob"}}"#, "/account/Owner"),
        ]
        for (body, pointer) in attacks {
            let r = try post(gw, Array(body.utf8))
            #expect(r.status == 400, "\(body)")
            #expect(r.reason == "ambiguous_body", "\(body)")
            #expect(r.body.contains(pointer), "\(body): \(r.body)")
            #expect(r.body.contains("disagree"), "\(r.body)")
        }
        #expect(upstream.requests.isEmpty)
        // The call log says why, naming the member.
        let last = try post(gw, Array(#"{"account":{"owner":"alice","owner":"bob"}}"#.utf8))
        let record = try await gw.record(last.header("x-request-id") ?? "")
        #expect(record["reason"] as? String == "ambiguous_body")
        #expect((record["detail"] as? String)?.contains("/account/owner") == true)

        // Controls: alice's own transfer passes unchanged; bob's is not_owner.
        let mine = try post(gw, Array(#"{"account":{"owner":"alice"},"amount":10}"#.utf8))
        #expect(mine.status == 200)
        #expect(upstream.requests.count == 1)
        #expect(upstream.requests.first?.body == Array(#"{"account":{"owner":"alice"},"amount":10}"#.utf8))
        let theirs = try post(gw, Array(#"{"account":{"owner":"bob"}}"#.utf8))
        #expect(theirs.status == 403 && theirs.reason == "not_owner")
        #expect(upstream.requests.count == 1)
    }

    @Test func bodiesThatAreNotStrictJSONAreRefusedToo() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try ownershipGateway(Self.yaml(upstream))
        defer { gw.stop() }
        let good = Array(#"{"account":{"owner":"alice"}}"#.utf8)
        let attacks: [(String, [UInt8], String)] = [
            ("BOM", [0xEF, 0xBB, 0xBF] + good, "application/json"),
            ("UTF-16 announced in charset", good.flatMap { [$0, 0] }, "application/json;charset=utf-16"),
            ("UTF-16 with its byte-order mark", [0xFF, 0xFE] + good.flatMap { [$0, 0] }, "application/json"),
            (
                "100,000 nesting levels",
                Array(#"{"account":{"owner":"alice"},"x":"#.utf8) + Array(repeating: UInt8(ascii: "["), count: 100_000), "application/json"
            ),
            ("trailing garbage", good + Array(#"{"account":{"owner":"bob"}}"#.utf8), "application/json"),
            ("owner as 1e400", Array(#"{"account":{"owner":1e400}}"#.utf8), "application/json"),
            // JSON text that a form parser reads as account[owner]=bob.
            (
                "declared as a form", Array(#"{"account":{"owner":"alice"},"x":"&account[owner]=bob&account.owner=bob"}"#.utf8),
                "application/x-www-form-urlencoded"
            ),
            ("declared Latin-1", good, "application/json; charset=iso-8859-1"),
        ]
        for (name, body, type) in attacks {
            let r = try post(gw, body, contentType: type)
            #expect(r.status == 400 && r.reason == "ambiguous_body", "\(name): \(r.status) \(r.body.prefix(300))")
        }
        #expect(upstream.requests.isEmpty)
        // Still alive, and a large array of numbers beside the owner (under max_body_buffer) passes.
        var big = Array(#"{"account":{"owner":"alice"},"n":["#.utf8)
        for k in 0..<120_000 { big += Array("\(k),".utf8) }
        big += Array("0]}".utf8)
        #expect(try post(gw, big).status == 200)
    }

    /// Review B: a parameter with spaces around `=` (`charset = utf-7`) was no charset to the
    /// check, but Django REST Framework and Spring trim it and decode the body as UTF-7, where
    /// `+ACIALAAi-…` spells `","account":{"owner":"bob"},"x":"`: the upstream read bob's account.
    /// A second Content-Encoding field was not looked at either.
    @Test func contentTypeParametersAndEncodingsThatSomeReaderTakesDifferently() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try ownershipGateway(Self.yaml(upstream))
        defer { gw.stop() }
        // The review's body: UTF-8 JSON owned by alice whose note, read as UTF-7, closes the
        // string and adds "account":{"owner":"bob"}.
        let injected = Array(#"","account":{"owner":"bob"},"x":""#.utf16).flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let utf7 = "+" + Data(injected).base64EncodedString().replacingOccurrences(of: "=", with: "") + "-"
        let body = Array(#"{"account":{"owner":"alice"},"note":""#.utf8) + Array(utf7.utf8) + Array(#""}"#.utf8)
        for type in [
            "application/json; charset = utf-7", "application/json; charset =utf-7", "application/json;\tcharset\t=\tutf-7",
            #"application/json; charset="utf-8"; charset = utf-7"#, "application/json; charset=utf-8; charset=utf-7",
            "application/json; charset=UTF-7", #"application/json; charset="utf-7""#,
        ] {
            let r = try post(gw, body, contentType: type)
            #expect(r.status == 400 && r.reason == "ambiguous_body", "\(type): \(r.status) \(r.body.prefix(300))")
            #expect(r.body.contains("charset"), "\(type): \(r.body)")
        }
        // Content-Encoding in a second field (the first says identity).
        let head =
            "POST /transfer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(OwnerTokens.token(sub: "alice"))\r\n"
            + "Content-Type: application/json\r\nContent-Encoding: identity\r\nContent-Encoding: gzip\r\n"
            + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let twice = try exchangeBytes(port: gw.port, Array(head.utf8) + body)
        #expect(twice.status == 400 && twice.reason == "ambiguous_body", "\(twice.status) \(twice.body.prefix(300))")
        #expect(upstream.requests.isEmpty)
        // Control: the same bytes declared plainly are alice's, and pass.
        #expect(try post(gw, body, contentType: "application/json; charset=utf-8").status == 200)
        #expect(upstream.requests.count == 1)
    }

    /// Review B: Go ≥ 1.21 encoding/json folds member names with `ToUpper(ToLower(r))` per
    /// scalar, so `user_İd` (U+0130) fills the field `user_id`, the last one winning; the check's
    /// full case mapping did not see it as a twin and passed alice's `user_id`.
    @Test func nonASCIINamesThatGoFoldsOntoTheReadMember() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try ownershipGateway(
            """
            upstreams:
              app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
            routes:
              - name: transfer-id
                match: { methods: [POST], path: /transfer }
                upstream: app
                policies: [bearer, own-id]
            policies:
              bearer: { type: jwt, jwks_file: jwks.json, algorithms: [HS256] }
              own-id: { type: owner, body_field: account.user_id }
            """)
        defer { gw.stop() }
        let twins =
            ["user_\u{130}d", "user_\u{131}d", "u\u{17F}er_id", "\u{FF55}ser_id"].map {
                "{\"account\":{\"user_id\":\"alice\",\"\($0)\":\"bob\"}}"
            }
            + [
                #"{"account":{"user_id":"alice","user_\u0130d":"bob"}}"#,
                "{\"acco\u{FF55}nt\":{\"user_id\":\"bob\"},\"account\":{\"user_id\":\"alice\"}}",
            ]
        for body in twins {
            let r = try post(gw, Array(body.utf8))
            #expect(r.status == 400 && r.reason == "ambiguous_body", "\(body): \(r.status) \(r.body.prefix(300))")
            #expect(r.body.contains("not ASCII"), "\(body): \(r.body)")
        }
        #expect(upstream.requests.isEmpty)
        // Control: alice's own body, beside a non-ASCII name that folds onto nothing read.
        #expect(try post(gw, Array("{\"account\":{\"user_id\":\"alice\",\"not\u{E9}\":\"x\"}}".utf8)).status == 200)
    }
}

import Crypto
import Foundation
import GatehouseChecks
import GatehouseCore
import GatehouseIdentity
import Synchronization
import Testing

/// HS256 tokens built byte for byte, so tests control exactly what the header and claims say.
enum HS {
    static let secret = Array("s3cret-s3cret-s3cret-s3cret-32by!".utf8)
    static var jwks: String {
        #"{"keys":[{"kty":"oct","kid":"hs1","alg":"HS256","k":""# + Base64URL.encode(secret) + #""}]}"#
    }
    static func b64(_ s: String) -> String { Base64URL.encode(Array(s.utf8)) }
    static func sign(_ input: String, secret: [UInt8] = HS.secret) -> String {
        Base64URL.encode(Array(HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: secret))))
    }
    /// A signed token from raw header and payload JSON.
    static func token(header: String = #"{"alg":"HS256","typ":"JWT","kid":"hs1"}"#, payload: String) -> String {
        let input = b64(header) + "." + b64(payload)
        return input + "." + sign(input)
    }
    static func claims(_ extra: String = "", exp: String? = nil) -> String {
        let e = exp ?? String(Int(Date().timeIntervalSince1970) + 600)
        return #"{"sub":"alice","aud":"orders-api","exp":"# + e + (extra.isEmpty ? "" : "," + extra) + "}"
    }
}

/// True when `text` holds a character that could drive a terminal or break a line.
func hasControl(_ text: String) -> Bool { text.unicodeScalars.contains { DisplayText.isControl($0.value) } }

@Suite struct JWTHardeningTests {
    static let rules = JWTRules(algorithms: ["HS256"], audiences: ["orders-api"], leeway: 60)

    func check(jwks: String = HS.jwks, rules: JWTRules = JWTHardeningTests.rules) async -> JWTCheck {
        let keys = JWTKeySet(source: .json(jwks), report: { _ in })
        await keys.refreshNow()
        return JWTCheck(id: "jwt", keys: keys, rules: rules)
    }

    func evaluate(_ c: JWTCheck, _ token: String) -> Verdict {
        var req = PolicyRequest(
            method: "GET", path: "/orders", headers: HeaderList([("Authorization", "Bearer " + token)]),
            now: Date().timeIntervalSince1970)
        return c.evaluate(&req)
    }

    // MARK: S6: NumericDate claims

    @Test func timeTextIsTotal() {
        for t in [Double.nan, .infinity, -.infinity, 1e19, -1e19, 1e308, -1e308, .greatestFiniteMagnitude, 9.3e18, -9.3e18] {
            _ = TimeText.iso(t)
            _ = TimeText.duration(t)
        }
        #expect(TimeText.iso(1e19) == "9999-12-31T23:59:59Z")
        #expect(TimeText.iso(-.infinity) == "0001-01-01T00:00:00Z")
        #expect(TimeText.iso(.nan) == "NaN")
        #expect(TimeText.iso(0) == "1970-01-01T00:00:00Z")
        #expect(TimeText.iso(1_700_000_000) == "2023-11-14T22:13:20Z")
        #expect(TimeText.parseDuration(String(repeating: "9", count: 400) + "d") == nil)
    }

    @Test func numericDatesMustBeFiniteNumbersInRange() async throws {
        let c = await check()
        let cases: [(String, String)] = [
            ("exp 1e19", HS.claims(exp: "1e19")),
            ("exp 10^19 as an integer", HS.claims(exp: "10000000000000000000")),
            ("exp 1e308", HS.claims(exp: "1e308")),
            ("exp -1e19", HS.claims(exp: "-1e19")),
            ("exp \"nan\"", HS.claims(exp: #""nan""#)),
            ("exp \"inf\"", HS.claims(exp: #""inf""#)),
            ("exp as a numeric string", HS.claims(exp: "\"\(Int(Date().timeIntervalSince1970) + 600)\"")),
            ("exp true", HS.claims(exp: "true")),
            ("exp null", HS.claims(exp: "null")),
            ("exp []", HS.claims(exp: "[]")),
            ("nbf 1e19", HS.claims(#""nbf":1e19"#)),
            ("nbf -1e300", HS.claims(#""nbf":-1e300"#)),
            ("iat 1e300", HS.claims(#""iat":1e300"#)),
            ("iat \"nan\"", HS.claims(#""iat":"nan""#)),
        ]
        for (name, payload) in cases {
            let d = try #require(denialOf(evaluate(c, HS.token(payload: payload))), "\(name) was allowed")
            #expect(d.code == "token_malformed", "\(name): \(d.code) \(d.detail)")
            #expect(d.status == 401)
            #expect(d.detail.contains("NumericDate"), "\(name): \(d.detail)")
        }
        // The control: the same token with a sane exp is accepted.
        #expect(allowed(evaluate(c, HS.token(payload: HS.claims()))))
        // Fractional and in-range values are numbers like any other.
        #expect(allowed(evaluate(c, HS.token(payload: HS.claims(exp: "\(Date().timeIntervalSince1970 + 600.5)")))))
        // An expiry in year 9999 is valid, and the allow note renders it.
        var req = PolicyRequest(
            method: "GET", path: "/",
            headers: HeaderList([("Authorization", "Bearer " + HS.token(payload: HS.claims(exp: "253402300799")))]),
            now: Date().timeIntervalSince1970)
        guard case .allow(let note) = c.evaluate(&req) else { Issue.record("year-9999 exp refused"); return }
        #expect(note?.contains("9999-12-31T23:59:59Z") == true)
    }

    // MARK: S22: conformance

    @Test func critAudienceAndStrictBase64() async throws {
        let c = await check()
        let good = HS.token(payload: HS.claims())
        #expect(allowed(evaluate(c, good)))
        func reason(_ t: String) -> String? { denialOf(evaluate(c, t))?.code.rawValue }
        // aud as a string is one value, not a space-separated list.
        #expect(
            reason(HS.token(payload: #"{"sub":"a","aud":"evil orders-api","exp":"# + "\(Int(Date().timeIntervalSince1970) + 600)}"))
                == "token_audience_mismatch")
        #expect(
            reason(HS.token(payload: #"{"sub":"a","aud":["evil","orders-api"],"exp":"# + "\(Int(Date().timeIntervalSince1970) + 600)}"))
                == nil)
        // crit: every extension is unknown to the gateway, b64 included.
        #expect(
            reason(HS.token(header: #"{"alg":"HS256","kid":"hs1","crit":["urn:x-unknown"],"urn:x-unknown":1}"#, payload: HS.claims()))
                == "token_malformed")
        #expect(
            reason(HS.token(header: #"{"alg":"HS256","kid":"hs1","crit":["b64"],"b64":false}"#, payload: HS.claims())) == "token_malformed")
        #expect(reason(HS.token(header: #"{"alg":"HS256","kid":"hs1","crit":[]}"#, payload: HS.claims())) == "token_malformed")
        #expect(reason(HS.token(header: #"{"alg":"HS256","kid":"hs1","crit":"b64"}"#, payload: HS.claims())) == "token_malformed")
        #expect(reason(HS.token(header: #"{"alg":"HS256","kid":"hs1","b64":false}"#, payload: HS.claims())) == "token_malformed")
        // Base64url: padding or junk after the signature, and non-canonical last characters.
        #expect(reason(good + "=") == "token_malformed")
        #expect(reason(good + "=junk") == "token_malformed")
        let parts = good.split(separator: ".").map(String.init)
        #expect(reason(parts[0] + "==." + parts[1] + "." + parts[2]) == "token_malformed")
        // HS256 signatures are 32 bytes: 43 characters, the last carrying 2 unused bits.
        let sig = Array(parts[2].utf8)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        let last = alphabet.firstIndex(of: sig.last!)!
        for flip in 1...3 {
            var altered = sig
            altered[altered.count - 1] = alphabet[last ^ flip]
            #expect(
                reason(parts[0] + "." + parts[1] + "." + String(decoding: altered, as: UTF8.self)) == "token_malformed",
                "unused bits \(flip)")
        }
    }

    /// JSONDecoder keeps the first of two same-named members; Python, Node and PyJWT the last. A
    /// token that reads two ways is refused before it is decoded.
    @Test func duplicateMembersInHeaderOrPayloadAreMalformed() async throws {
        let c = await check()
        let exp = "\(Int(Date().timeIntervalSince1970) + 600)"
        let tokens = [
            (
                "sub twice",
                HS.token(
                    payload: #"{"sub":"alice","aud":"orders-api","roles":["user"],"exp":"# + exp + #","sub":"bob","roles":["admin"]}"#),
                "/sub"
            ),
            ("kid twice", HS.token(header: #"{"alg":"HS256","kid":"hs1","kid":"nope"}"#, payload: HS.claims()), "/kid"),
            ("alg twice", HS.token(header: #"{"alg":"HS256","kid":"hs1","alg":"none"}"#, payload: HS.claims()), "/alg"),
            ("nested", HS.token(payload: HS.claims(#""realm_access":{"roles":["user"],"roles":["admin"]}"#)), "/realm_access/roles"),
            ("in an array", HS.token(payload: HS.claims(#""x":[1,{"a":1,"a":2}]"#)), "/x/1/a"),
            ("escaped", HS.token(payload: HS.claims(#""\u0073ub":"bob""#)), "/sub"),
        ]
        for (name, token, pointer) in tokens {
            let d = try #require(denialOf(evaluate(c, token)), "\(name)")
            #expect(d.code == "token_malformed" && d.status == 401, "\(name): \(d.detail)")
            #expect(d.detail.contains("twice") && d.detail.contains(pointer), "\(name): \(d.detail)")
        }
        // Not strict JSON either: a lone surrogate, a trailing comma.
        #expect(denialOf(evaluate(c, HS.token(payload: HS.claims(#""x":"\ud800""#))))?.code == "token_malformed")
        #expect(denialOf(evaluate(c, HS.token(header: #"{"alg":"HS256","kid":"hs1",}"#, payload: HS.claims())))?.code == "token_malformed")
        // The same names in different objects are not duplicates.
        #expect(allowed(evaluate(c, HS.token(payload: HS.claims(#""a":{"sub":"x"},"b":[{"sub":"y"},{"sub":"z"}]"#)))))
    }

    /// RFC 7519 §4.1.2: `sub` is a StringOrURI. Any other value named no subject, so each token was
    /// a caller of its own (a fresh rate-limit bucket per token).
    @Test func aSubThatIsNotAStringIsMalformed() async throws {
        let c = await check()
        let exp = "\(Int(Date().timeIntervalSince1970) + 600)"
        for (sub, shown) in [
            ("true", "the boolean true"), (#"{"x":1}"#, "an object"), ("9007199254740993", "the number"), ("12345", "the number 12345"),
            ("null", "null"), (#"["alice"]"#, "an array"),
        ] {
            let d = try #require(
                denialOf(evaluate(c, HS.token(payload: #"{"sub":"# + sub + #","aud":"orders-api","exp":"# + exp + "}"))), "\(sub)")
            #expect(d.code == "token_malformed" && d.status == 401, "\(sub): \(d.detail)")
            #expect(d.detail.contains("sub \(shown)") && d.detail.contains("must be a string"), "\(sub): \(d.detail)")
        }
        #expect(allowed(evaluate(c, HS.token(payload: #"{"sub":"12345","aud":"orders-api","exp":"# + exp + "}"))))
        // No sub at all is still accepted (the token's fingerprint names the caller).
        #expect(allowed(evaluate(c, HS.token(payload: #"{"aud":"orders-api","exp":"# + exp + "}"))))
    }

    @Test func base64urlIsStrictAndRoundTrips() {
        for n in 0..<40 {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255) }
            let text = Base64URL.encode(bytes)
            #expect(Base64URL.decode(text) == bytes)
            #expect(Base64URL.decode(text + "=") == nil)
        }
        #expect(Base64URL.decode("QQ") == [0x41])
        #expect(Base64URL.decode("QR") == nil)  // unused bits set
        #expect(Base64URL.decode("QQ==") == nil)
        #expect(Base64URL.decode("QUI") == [0x41, 0x42])
        #expect(Base64URL.decode("QUJ") == nil)
        #expect(Base64URL.decode("Q") == nil)
        #expect(Base64URL.decode("QU+I") == nil)
        #expect(Base64URL.decode("") == [])
    }

    // MARK: size limits and hostile shapes

    @Test func hostileTokensAreRefusedCheaply() async throws {
        let c = await check()
        // 10 MB and just over the limit.
        for n in [JWTVerifier.maxTokenLength + 1, 10_000_000] {
            let big = HS.b64(#"{"alg":"HS256"}"#) + "." + String(repeating: "A", count: n) + ".sig"
            #expect(denialOf(evaluate(c, big))?.code == "token_malformed")
        }
        // Deep nesting in the payload.
        let deep = HS.token(payload: String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000))
        #expect(denialOf(evaluate(c, deep))?.code == "token_malformed")
        let deepObject = HS.token(
            payload: #"{"exp":1,"x":"# + String(repeating: #"{"a":"#, count: 1500) + "1" + String(repeating: "}", count: 1500) + "}")
        #expect(denialOf(evaluate(c, deepObject)) != nil)
        // A kid of 10,000 characters with control characters: the denial is bounded and clean.
        let kid = String(repeating: "\u{1b}[2J\u{07}k", count: 400)
        let header = String(decoding: try JSONSerialization.data(withJSONObject: ["alg": "HS256", "kid": kid]), as: UTF8.self)
        let t = HS.token(header: header, payload: HS.claims())
        let d = try #require(denialOf(evaluate(c, t)))
        #expect(d.code == "token_unknown_key")
        #expect(d.detail.utf8.count < 2000)
        #expect(!hasControl(d.detail) && !hasControl(d.presented.joined()))
        #expect(!d.headers.contains { hasControl($0.value) })
    }

    @Test func unsignedHeaderTextIsEscapedEverywhereItIsShown() async throws {
        let c = await check()
        let kid = "\u{1b}]0;owned-title\u{07}\u{1b}[2J\u{1b}[32mALLOWED 200\u{1b}[0m\nReason: none"
        let jti = "j\u{1b}[31m\nDecided by: nobody"
        for header in [["alg": "HS256", "kid": kid], ["alg": "HS2\u{1b}[1m56\n", "kid": kid]] {
            let h = String(decoding: try JSONSerialization.data(withJSONObject: header), as: UTF8.self)
            let claims: [String: Any] = ["sub": "a", "aud": "orders-api", "exp": Int(Date().timeIntervalSince1970) + 600, "jti": jti]
            let t = HS.token(header: h, payload: String(decoding: try JSONSerialization.data(withJSONObject: claims), as: UTF8.self))
            let d = try #require(denialOf(evaluate(c, t)))
            #expect(!hasControl(d.detail), "\(d.code): \(d.detail)")
            #expect(!hasControl(d.presented.joined()))
            #expect(!d.headers.contains { hasControl($0.value) })
            #expect(d.detail.contains("\\u{1b}"))
        }
    }

    // MARK: S14: never waiting for a key set

    /// A TCP listener that accepts connections and never answers.
    final class Blackhole: @unchecked Sendable {
        let fd: Int32
        let port: Int
        init() throws {
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = 0
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
            listen(s, 128)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
            fd = s
            port = Int(UInt16(bigEndian: addr.sin_port))
        }
        deinit { close(fd) }
    }

    @Test func aKeySetThatHasNotLoadedAnswersAtOnceWithAnExplanation() async throws {
        let hole = try Blackhole()
        let keys = JWTKeySet(source: .url("http://127.0.0.1:\(hole.port)/jwks.json"), report: { _ in })
        let c = JWTCheck(id: "jwt", keys: keys, rules: Self.rules)
        // Junk is refused as junk, without touching the key set.
        #expect(denialOf(evaluate(c, "a.b.c"))?.code == "token_malformed")
        #expect(keys.snapshot().loaded == false)
        // A well-formed token: 503 now, while the first load is still running.
        let d = try #require(denialOf(evaluate(c, HS.token(payload: HS.claims()))))
        #expect(d.code == .checkUnavailable)
        #expect(d.status == 503)
        #expect(d.detail.contains("JWKS URL http://127.0.0.1:\(hole.port)/jwks.json"))
        #expect(d.detail.contains("since 20"))
        #expect(d.detail.contains("first load is still running"))
        // Many more requests start no second load (one at a time).
        for _ in 0..<50 { _ = evaluate(c, HS.token(payload: HS.claims())) }
        #expect(keys.requestRefresh(now: Date().timeIntervalSince1970, force: true) == false)
    }

    @Test func aFailedFirstLoadIsExplainedWithTheLastError() async throws {
        let keys = JWTKeySet(source: .file("/nonexistent/jwks.json"), report: { _ in })
        await keys.refreshNow()
        let c = JWTCheck(id: "jwt", keys: keys, rules: Self.rules)
        let d = try #require(denialOf(evaluate(c, HS.token(payload: HS.claims()))))
        #expect(d.code == .checkUnavailable)
        #expect(d.detail.contains("JWKS file /nonexistent/jwks.json"))
        #expect(d.detail.contains("last error at 20"))
        #expect(d.detail.contains("cannot read JWKS file"))
    }

    /// An HTTP server on 127.0.0.1 that answers every connection with `head` and then `bodyBytes`
    /// bytes of `{`, written in 64 KiB pieces until done or the client goes away.
    final class FloodServer: @unchecked Sendable {
        let fd: Int32
        let port: Int
        init(head: String, bodyBytes: Int) throws {
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var one: Int32 = 1
            setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
            listen(s, 16)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
            fd = s
            port = Int(UInt16(bigEndian: addr.sin_port))
            let listener = s
            Thread.detachNewThread {
                while true {
                    let c = accept(listener, nil, nil)
                    if c < 0 { return }
                    var buf = [UInt8](repeating: 0, count: 4096)
                    _ = recv(c, &buf, buf.count, 0)
                    signal(SIGPIPE, SIG_IGN)
                    _ = head.utf8CString.withUnsafeBufferPointer { send(c, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
                    let piece = [UInt8](repeating: UInt8(ascii: "{"), count: 65536)
                    var sent = 0
                    while sent < bodyBytes {
                        let n = piece.withUnsafeBytes { send(c, $0.baseAddress, min(piece.count, bodyBytes - sent), Int32(MSG_NOSIGNAL)) }
                        if n <= 0 { break }
                        sent += n
                    }
                    close(c)
                }
            }
        }
        deinit { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
    }

    @Test func aJWKSURLSendingAHundredMegabytesIsCutOffAtTheLimit() async throws {
        // Without a length (until close), and with a declared length of 100 MB.
        for head in [
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
        ] {
            let server = try FloodServer(head: head, bodyBytes: 100_000_000)
            let keys = JWTKeySet(source: .url("http://127.0.0.1:\(server.port)/jwks.json"), report: { _ in })
            await keys.refreshNow()
            // On a machine loaded by the other suites the flooding thread can stall long enough
            // for the client's read timeout, which also ends the fetch but says nothing of the
            // limit: fetch again then (the server answers every connection the same way).
            for _ in 0..<3 where keys.snapshot().lastError?.lowercased().contains("timeout") == true {
                await keys.refreshNow()
            }
            let snap = keys.snapshot()
            #expect(!snap.loaded)
            #expect(snap.lastError?.contains("\(JWTKeySet.maxDocumentBytes)") == true, "\(snap.lastError ?? "")")
        }
        // A file larger than the limit is refused; a device or FIFO is never opened.
        let dir = NSTemporaryDirectory() + "jwks-big-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(repeating: UInt8(ascii: "{"), count: JWTKeySet.maxDocumentBytes + 10).write(to: URL(fileURLWithPath: dir + "/big.json"))
        let big = JWTKeySet(source: .file(dir + "/big.json"), report: { _ in })
        await big.refreshNow()
        #expect(big.snapshot().lastError?.contains("larger than") == true)
        #expect(mkfifo(dir + "/fifo", 0o600) == 0)
        for path in ["/dev/zero", dir + "/fifo"] {
            let odd = JWTKeySet(source: .file(path), report: { _ in })
            await odd.refreshNow()
            #expect(odd.snapshot().lastError?.contains("not a regular file") == true, "\(path)")
        }
    }

    /// Answers the first connection with `jwks`, then accepts connections and never answers.
    final class OnceThenHang: @unchecked Sendable {
        let fd: Int32
        let port: Int
        init(jwks: String) throws {
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
            listen(s, 64)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
            fd = s
            port = Int(UInt16(bigEndian: addr.sin_port))
            let listener = s
            Thread.detachNewThread {
                let c = accept(listener, nil, nil)
                guard c >= 0 else { return }
                var buf = [UInt8](repeating: 0, count: 4096)
                _ = recv(c, &buf, buf.count, 0)
                let reply =
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(jwks.utf8.count)\r\nConnection: close\r\n\r\n"
                    + jwks
                _ = reply.utf8CString.withUnsafeBufferPointer { send(c, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
                close(c)
                // Every later connection waits in the backlog, unanswered.
            }
        }
        deinit { close(fd) }
    }

    @Test func unknownKidsWhileTheJWKSServerHangsAreAnsweredAtOnceAndRefreshOnlyInTheBackground() async throws {
        let server = try OnceThenHang(jwks: HS.jwks)
        let keys = JWTKeySet(source: .url("http://127.0.0.1:\(server.port)/jwks.json"), minRefreshInterval: 3600, report: { _ in })
        await keys.refreshNow()
        #expect(keys.snapshot().loaded)
        let c = JWTCheck(id: "jwt", keys: keys, rules: Self.rules)
        let unknown = HS.token(header: #"{"alg":"HS256","kid":"rotated"}"#, payload: HS.claims())
        // The first unknown kid starts a refresh (which hangs); the next ones do not start another.
        let first = try #require(denialOf(evaluate(c, unknown)))
        #expect(first.code == "token_unknown_key")
        #expect(first.detail.hasSuffix("the key set is being refreshed"))
        for _ in 0..<100 {
            let d = try #require(denialOf(evaluate(c, unknown)))
            #expect(d.code == "token_unknown_key")
            #expect(d.detail.hasSuffix("the key set was refreshed recently"))
        }
        // Meanwhile the known key keeps working.
        #expect(allowed(evaluate(c, HS.token(payload: HS.claims()))))
    }

    // MARK: S15: unsupported keys

    static let mixedJWKS = #"""
        {"keys":[
          {"kty":"AKP","alg":"ML-DSA-44","kid":"pq1","pub":"AAAA"},
          {"kty":"EC","crv":"secp256k1","kid":"k256","x":"WfSPqWOJUnLF0hSqEbfS6XKjQfIA9qWb9cy6wp8iWNU","y":"Xt0Tc1TGOc6WaHsJpnN4f4_Zq7BUJnbPy1SXbgyqFu0"},
          {"kty":"XYZ","kid":"odd"},
          {"kty":"oct","kid":"short","k":"c2hvcnQ"},
          "not an object",
          {"kty":"oct","kid":"hs1","alg":"HS256","k":"REPLACE"}
        ]}
        """#.replacingOccurrences(of: "REPLACE", with: Base64URL.encode(HS.secret))

    @Test func unsupportedKeysAreSkippedWithWarningsAndTheOthersLoad() async throws {
        let reported = Mutex<[String]>([])
        let keys = JWTKeySet(source: .json(Self.mixedJWKS), report: { m in reported.withLock { $0.append(m) } })
        await keys.refreshNow()
        let snap = keys.snapshot()
        #expect(snap.loaded, "\(snap.lastError ?? "")")
        #expect(Array(snap.keys.keys) == ["hs1"])
        #expect(Set(snap.skipped.keys) == ["pq1", "k256", "odd", "short", "#5"])
        #expect(snap.warnings.count == 5)
        #expect(snap.warnings.contains { $0.contains("pq1") && $0.contains("AKP") })
        #expect(snap.warnings.contains { $0.contains("k256") && $0.contains("secp256k1") })
        #expect(reported.withLock { $0.count } == 5)
        // A reload with the same warnings does not repeat them.
        await keys.refreshNow()
        #expect(reported.withLock { $0.count } == 5)
        let c = JWTCheck(id: "jwt", keys: keys, rules: Self.rules)
        #expect(allowed(evaluate(c, HS.token(payload: HS.claims()))))
        // A token naming a skipped key says why.
        let d = try #require(denialOf(evaluate(c, HS.token(header: #"{"alg":"HS256","kid":"pq1"}"#, payload: HS.claims()))))
        #expect(d.code == "token_unknown_key")
        #expect(d.detail.contains("skipped"))
    }

    @Test func aKeySetWithNoUsableKeyFailsAndLargeSetsAreCapped() async throws {
        await #expect(throws: JWKSError.self) { try await JWTKeySet.load(jwks: #"{"keys":[{"kty":"AKP","kid":"pq1"}]}"#) }
        await #expect(throws: JWKSError.self) { try await JWTKeySet.load(jwks: #"{"keys":"#) }
        let huge = #"{"keys":[],"pad":""# + String(repeating: "x", count: JWTKeySet.maxDocumentBytes) + #""}"#
        await #expect(throws: JWKSError.self) { try await JWTKeySet.load(jwks: huge) }
        // 10,000 keys: the first maxKeys load, and a warning says the rest were ignored.
        let k = Base64URL.encode(HS.secret)
        let many =
            #"{"keys":["# + (0..<10_000).map { #"{"kty":"oct","alg":"HS256","kid":"k\#($0)","k":"\#(k)"}"# }.joined(separator: ",") + "]}"
        let parsed = try await JWTKeySet.load(jwks: many)
        #expect(parsed.keys.count == JWTKeySet.maxKeys)
        #expect(parsed.warnings.contains { $0.contains("10000 keys") })
    }

    // MARK: S16: unknown users cost a bcrypt

    @Test func unknownUsersCostABcryptVerificationLikeKnownOnes() throws {
        let count = Mutex(0)
        let hash = BasicAuthCheck.hashPassword("correct horse", cost: 4)
        let dir = MemoryDirectory(consumers: [
            ConsumerRecord(id: "c1", name: "alice", passwordHash: hash),
            ConsumerRecord(id: "c2", name: "nopass"),
        ])
        let c = BasicAuthCheck(
            id: "basic", directory: dir,
            verifyPassword: { p, h in
                count.withLock { $0 += 1 }
                return BasicAuthCheck.verifyBcrypt(p, h)
            })
        func attempt(_ userPass: String) -> Denial? {
            var r = PolicyRequest(
                method: "GET", path: "/", headers: HeaderList([("Authorization", "Basic " + Data(userPass.utf8).base64EncodedString())]))
            return denialOf(c.evaluate(&r))
        }
        // A known user with a wrong password: one verification.
        #expect(attempt("alice:wrong")?.code == .invalidCredentials)
        #expect(count.withLock { $0 } == 1)
        // An unknown user: one verification too (against the dummy hash), and the same answer.
        let unknown = try #require(attempt("mallory:wrong"))
        #expect(unknown.code == .invalidCredentials)
        #expect(count.withLock { $0 } == 2)
        // A consumer without a password: the same.
        #expect(attempt("nopass:x")?.code == .invalidCredentials)
        #expect(count.withLock { $0 } == 3)
        // The dummy hash has the cost of the real one, and no password matches it.
        #expect(
            BasicAuthCheck.dummyHash(cost: 4).hasPrefix("$2b$04$") || BasicAuthCheck.dummyHash(cost: 4).hasPrefix("$2a$04$")
                || BasicAuthCheck.dummyHash(cost: 4).hasPrefix("$2y$04$"))
    }

    // MARK: S17: user names

    @Test func basicUserNamesAreEscapedInDenials() throws {
        let dir = MemoryDirectory(consumers: [])
        let c = BasicAuthCheck(id: "basic", directory: dir, verifyPassword: { _, _ in false })
        let user = "\u{1b}[31mroot\u{07}\nDecided by: nobody"
        var r = PolicyRequest(
            method: "GET", path: "/", headers: HeaderList([("Authorization", "Basic " + Data((user + ":pw").utf8).base64EncodedString())]))
        let d = try #require(denialOf(c.evaluate(&r)))
        #expect(!hasControl(d.detail) && !hasControl(d.presented.joined()))
        // (Basic splits at the first colon, so the user name ends at "Decided by".)
        #expect(d.detail.contains("\\u{1b}[31mroot\\u{07}\\u{0a}Decided by"))
    }

    @Test func displayTextEscapesEveryControlCharacter() {
        #expect(DisplayText.escaped("plain text, ünïcode ✓") == "plain text, ünïcode ✓")
        #expect(
            DisplayText.escaped("a\u{1b}b\u{07}c\nd\te\u{7f}f\u{9b}g\u{202e}h")
                == "a\\u{1b}b\\u{07}c\\u{0a}d\\u{09}e\\u{7f}f\\u{9b}g\\u{202e}h")
        #expect(DisplayText.untrusted(String(repeating: "x", count: 300)).hasSuffix("…(172 more characters)"))
        for v: UInt32 in 0..<0x20 { #expect(DisplayText.isControl(v)) }
        #expect(!DisplayText.isControl(0x20) && !DisplayText.isControl(0xA0))
    }
}

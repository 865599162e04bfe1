import GatehouseCore
import NIOCore
import Testing

@testable import GatehouseHTTP1
@testable import GatehouseProxy

/// The gateway's own HTTP/1 codec: what it accepts, what it refuses, how it frames bodies.
@Suite struct HTTP1ParserTests {
    func request(_ text: String) throws -> RequestHead {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { p in
            guard let len = HTTP1Parse.headLength(p) else { throw HTTP1Error.malformed("incomplete") }
            return try HTTP1Parse.request(p, length: len)
        }
    }

    func refusal(_ text: String) -> String? {
        do {
            _ = try request(text)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func parsesARequestHead() throws {
        let h = try request("GET /orders/7?x=1 HTTP/1.1\r\nHost: api.example\r\nX-API-Key:  k1 \r\nAccept: */*\r\n\r\n")
        #expect(h.method == "GET")
        #expect(h.uri == "/orders/7?x=1")
        #expect(h.minor == 1)
        #expect(h.headers.map(\.name) == ["Host", "X-API-Key", "Accept"])
        #expect(h.first("x-api-key") == "k1")
        #expect(h.framing == .none)
        #expect(h.keepAlive)
        #expect(!h.hasBody)
    }

    @Test func keepAliveFollowsTheVersionAndConnection() throws {
        #expect(try request("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").keepAlive == false)
        #expect(try request("GET / HTTP/1.0\r\n\r\n").keepAlive == false)
        #expect(try request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keepAlive == true)
        let h = try request("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\r\n")
        #expect(h.connectionNames == ["x-secret"])
    }

    @Test func transferEncodingInHTTP10ClosesTheConnection() throws {
        let h = try request("POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(h.framing == .chunked && !h.keepAlive)
        #expect(try request("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").uri == "*")
    }

    @Test func refusesBareLineFeedsInRequestHeads() {
        #expect(refusal("GET / HTTP/1.1\nHost: a\n\n")?.contains("bare LF") == true)
    }

    @Test func anIncompleteHeadNeedsMoreBytes() {
        for text in ["GET / HTTP/1.1\r\nHost: a\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\r", "GET / HTTP/1.1\r\n"] {
            let len = Array(text.utf8).withUnsafeBytes { HTTP1Parse.headLength($0) }
            #expect(len == nil, "\(text.debugDescription)")
        }
    }

    @Test func framingFromContentLengthAndChunked() throws {
        #expect(try request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n").framing == .length(12))
        #expect(try request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").hasBody == false)
        #expect(try request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n").framing == .chunked)
        #expect(try request("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n").expectContinue)
    }

    /// Each ambiguity a front proxy and a back end could read differently is refused.
    @Test func refusesWhatCouldSmuggleARequest() {
        let cases: [(String, String)] = [
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                "both Content-Length and Transfer-Encoding"
            ),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "other than \"chunked\""),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "other than \"chunked\""),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "more than once"),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "differing values"),
            // A list, even of one repeated value, is not one number (llhttp and nginx refuse it too).
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", "is a list"),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12, 12\r\n\r\n", "is a list"),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", "not a number"),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", "too large"),
            ("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "obsolete line folding"),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", "whitespace before a header field's colon"),
            ("GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", "whitespace before"),
            ("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", "no colon"),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{1}b\r\n\r\n", "control character"),
            ("GET / HTTP/2.0\r\n\r\n", "is not supported"),
            ("GET /\r\n\r\n", "request target"),
            ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "method"),
            ("GET http://internal.example/admin HTTP/1.1\r\nHost: a\r\n\r\n", "absolute-form"),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host"),
            ("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", "must have a Host"),
        ]
        for (text, expected) in cases {
            let why = refusal(text)
            #expect(why?.contains(expected) == true, "\(text.debugDescription) → \(why ?? "accepted")")
        }
    }

    /// Feeds `wire` to a body decoder one byte at a time; returns the body and whether it ended.
    func decode(_ framing: BodyFraming, _ wire: String) throws -> (String, Bool, Int) {
        var decoder = BodyDecoder()
        decoder.start(framing)
        var pending = ByteBuffer()
        var out = ""
        var ended = false
        for byte in Array(wire.utf8) {
            pending.writeInteger(byte)
            while let e = try decoder.next(&pending) {
                switch e {
                case .data(let b): out += String(buffer: b)
                case .end: ended = true
                }
                if ended { break }
            }
            if ended { break }
        }
        return (out, ended, pending.readableBytes)
    }

    @Test func decodesChunkedBodiesByteByByte() throws {
        let (body, ended, left) = try decode(.chunked, "5\r\nhello\r\n6;name=value\r\n world\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n")
        #expect(body == "hello world0123456789")
        #expect(ended)
        #expect(left == 0)
    }

    @Test func decodesLengthBodies() throws {
        let (body, ended, _) = try decode(.length(5), "hello")
        #expect(body == "hello" && ended)
    }

    @Test func refusesBrokenChunks() {
        #expect(throws: HTTP1Error.self) { try decode(.chunked, "zz\r\n") }
        #expect(throws: HTTP1Error.self) { try decode(.chunked, "5\r\nhelloXX") }
        #expect(throws: HTTP1Error.self) { try decode(.chunked, "1000000000000000\r\n") }
    }

    func response(_ text: String, head: Bool = false) throws -> ResponseHead {
        let buf = ByteBuffer(string: text)
        let len = try #require(buf.withUnsafeReadableBytes { HTTP1Parse.headLength($0) })
        return try HTTP1Parse.response(buf, length: len, headRequest: head)
    }

    @Test func responseFramingAndReuse() throws {
        let ok = try response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: x\r\n\r\n")
        #expect(ok.status == 200 && ok.framing == .length(3) && ok.keepAlive)
        #expect(ok.lines.map { ok.name($0) } == ["Content-Length", "Server"])
        #expect(try response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", head: true).framing == .none)
        #expect(try response("HTTP/1.1 204 No Content\r\n\r\n").framing == .none)
        #expect(try response("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").framing == .none)
        #expect(try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").framing == .chunked)
        let close = try response("HTTP/1.1 200 OK\r\n\r\n")
        #expect(close.framing == .untilClose && !close.keepAlive)
        #expect(try response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n").keepAlive == false)
        #expect(try response("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").keepAlive == false)
        #expect(try response("HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n").status == 404)
        #expect(throws: HTTP1Error.self) { try response("HTTP/1.1 2000 OK\r\n\r\n") }
        // Transfer-Encoding wins over Content-Length, which is marked to be dropped.
        let both = try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n")
        #expect(both.framing == .chunked && both.hadTransferEncoding)
        // What could reach the client mislabelled or with an injected line is refused.
        #expect(throws: HTTP1Error.self) { try response("HTTP/1.1 200 OK\rSet-Cookie: x=y\r\nContent-Length: 0\r\n\r\n") }
        #expect(throws: HTTP1Error.self) { try response("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") }
        #expect(try response("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n").keepAlive == false)
    }

    @Test func writesNumbersAndChunkHeaders() {
        var b = ByteBuffer()
        b.writeDecimal(0); b.writeStaticString(" "); b.writeDecimal(7); b.writeStaticString(" "); b.writeDecimal(1_048_576)
        #expect(String(buffer: b) == "0 7 1048576")
        var c = ByteBuffer()
        c.writeChunkHeader(255); c.writeChunkHeader(1); c.writeChunkHeader(0x10000)
        #expect(String(buffer: c) == "ff\r\n1\r\n10000\r\n")
        var d = ByteBuffer()
        d.writeCheckedField("X-Note", "a\r\nInjected: yes")
        #expect(String(buffer: d) == "X-Note: aInjected: yes\r\n")
    }

    @Test func classifiesFieldNamesWithoutCase() {
        #expect(FieldKind.of("Transfer-Encoding") == .transferEncoding)
        #expect(FieldKind.of("x-forwarded-for") == .xForwardedFor)
        #expect(FieldKind.of("X-FORWARDED-PROTO") == .xForwardedProto)
        #expect(FieldKind.of("Connection") == .connection)
        #expect(FieldKind.of("Content-Type") == .other)
        #expect(FieldKind.of("TE") == .te)
    }
}

/// Mutated and random input never crashes the codec or reads outside its buffer (debug builds
/// check every unsafe-buffer index, so an out-of-bounds read traps here).
@Suite struct HTTP1ParserRobustnessTests {
    static let seeds = [
        "GET /orders/7?x=1 HTTP/1.1\r\nHost: api.example\r\nX-API-Key: k1\r\nConnection: keep-alive, X-A\r\n\r\n",
        "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\nVary: Origin\r\n\r\nhello",
        "HTTP/1.0 304 Not Modified\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    ]

    /// A small deterministic generator, so a failure reproduces.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    func exercise(_ bytes: [UInt8]) {
        let buf = ByteBuffer(bytes: bytes)
        let len = buf.withUnsafeReadableBytes { HTTP1Parse.headLength($0) }
        if let len {
            _ = try? buf.withUnsafeReadableBytes { try HTTP1Parse.request($0, length: len) }
            _ = try? HTTP1Parse.response(buf, length: len, headRequest: false)
        }
        for framing in [BodyFraming.chunked, .length(7), .untilClose] {
            var decoder = BodyDecoder()
            decoder.start(framing)
            var b = buf
            var steps = 0
            while steps < 10_000, let e = try? decoder.next(&b) {
                steps += 1
                if case .end = e { break }
            }
        }
    }

    @Test func mutatedMessagesNeverCrash() {
        var rng = SplitMix(state: 42)
        let alphabet = Array("\r\n :;,0123456789abcdefABCDEF/HTTP.\t\u{0}\u{7f}".utf8)
        for seed in Self.seeds {
            let original = Array(seed.utf8)
            for _ in 0..<20_000 {
                var m = original
                for _ in 0..<Int.random(in: 1...6, using: &rng) {
                    let i = Int.random(in: 0..<m.count, using: &rng)
                    switch Int.random(in: 0..<4, using: &rng) {
                    case 0: m[i] = alphabet.randomElement(using: &rng)!
                    case 1: m.insert(alphabet.randomElement(using: &rng)!, at: i)
                    case 2: if m.count > 1 { m.remove(at: i) }
                    default: m = Array(m[..<i])
                    }
                    if m.isEmpty { m = [0x0A] }
                }
                exercise(m)
            }
        }
        for _ in 0..<2000 {
            exercise((0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
    }
}

import Foundation
import GatehouseCore
import NIOCore
import Testing

@testable import GatehouseHTTP1
@testable import GatehouseProxy

/// Strict request parsing (review finding S27): what a lenient parser accepted and a stricter
/// front proxy would read differently is refused.
@Suite struct StrictRequestParsingTests {
    func refusal(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { p -> String? in
            guard let len = HTTP1Parse.headLength(p) else { return "incomplete" }
            do {
                _ = try HTTP1Parse.request(p, length: len)
                return nil
            } catch {
                return "\(error)"
            }
        }
    }

    @Test(
        "refused request heads",
        arguments: [
            ("GET / HTTP/1.1\nHost: a\n\n", "bare LF"),
            ("GET / HTTP/1.1\r\nHost: a\n\r\n", "bare LF"),
            ("GET / HTTP/1.1\nHost: a\r\n\r\n", "bare LF"),
            ("get / HTTP/1.1\r\nHost: a\r\n\r\n", "uppercase method"),
            ("Get / HTTP/1.1\r\nHost: a\r\n\r\n", "uppercase method"),
            ("G.T / HTTP/1.1\r\nHost: a\r\n\r\n", "uppercase method"),
            ("GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", "\"#\""),
            ("GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n", "backslash"),
            ("GET /caf\u{E9} HTTP/1.1\r\nHost: a\r\n\r\n", "8-bit"),
            ("GET /a\u{1}b HTTP/1.1\r\nHost: a\r\n\r\n", "control character"),
            ("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", "control character"),
        ])
    func refusedHeads(_ text: String, _ expected: String) {
        let why = refusal(text)
        #expect(why?.contains(expected) == true, "\(text.debugDescription) → \(why ?? "accepted")")
    }

    @Test func acceptedMethods() {
        for m in ["GET", "POST", "M-SEARCH", "VERSION-CONTROL", "PROPFIND", "X_CUSTOM"] {
            #expect(refusal("\(m) / HTTP/1.1\r\nHost: a\r\n\r\n") == nil, "\(m)")
        }
    }

    func decode(_ wire: String, strict: Bool = true) throws -> String {
        var decoder = BodyDecoder(strict: strict)
        decoder.start(.chunked)
        var buf = ByteBuffer(string: wire)
        var out = ""
        while let e = try decoder.next(&buf) {
            if case .data(let b) = e { out += String(buffer: b) } else { break }
        }
        return out
    }

    @Test(
        "refused chunk framing in request bodies",
        arguments: [
            "5\r\nhello\n0\r\n\r\n",  // bare LF after chunk data
            "5\nhello\r\n0\r\n\r\n",  // bare LF after the size
            "5;a=b\nhello\r\n0\r\n\r\n",  // bare LF after an extension
            "5 xyz\r\nhello\r\n0\r\n\r\n",  // garbage after the size
            "5;\r\nhello\r\n0\r\n\r\n",  // an extension without a name
            "5;a=\r\nhello\r\n0\r\n\r\n",  // an extension without a value
            "5;a=\"b\r\nhello\r\n0\r\n\r\n",  // an unterminated quoted string
            "5;a b\r\nhello\r\n0\r\n\r\n",
            "5\r\nhello\r\n0\r\nT: 1\n\r\n",  // a trailer with a bare LF
        ])
    func refusedChunks(_ wire: String) {
        #expect(throws: HTTP1Error.self, "\(wire.debugDescription)") { try decode(wire) }
    }

    @Test func acceptedChunkExtensions() throws {
        #expect(try decode("5;a=b\r\nhello\r\n0\r\n\r\n") == "hello")
        #expect(try decode("5 ; a = b ;c\r\nhello\r\n0\r\n\r\n") == "hello")
        #expect(try decode("5\t;a=\"x y\\\"z\"\r\nhello\r\n0\r\n\r\n") == "hello")
        // Whitespace after the size only before an extension (RFC 9112 §7.1.1; llhttp agrees).
        #expect(throws: HTTP1Error.self) { try decode("5 \r\nhello\r\n0\r\n\r\n") }
        #expect(throws: HTTP1Error.self) { try decode("5\r\nhello\r\n0\r\nnot a field\r\n\r\n") }
        #expect(try decode("5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n") == "hello")
        // Upstream responses are read leniently (they are re-framed).
        #expect(try decode("5 xyz\nhello\n0\n\n", strict: false) == "hello")
    }
}

/// Mutated heads and targets through the request parser and the normaliser: no crash, and every
/// target they accept has a canonical path that is canonical (no `//`, `.`, `..`, `\`, `%2F`,
/// lowercase or needless escapes), is a fixed point, and means what a plain RFC 3986 resolver makes
/// of the decoded target. `GATEHOUSE_FUZZ_LONG=1` runs 1,000,000 inputs instead of 100,000.
@Suite struct RequestTargetFuzzTests {
    /// The deterministic generator of the parser's robustness tests, so a failure reproduces.
    typealias SplitMix = HTTP1ParserRobustnessTests.SplitMix

    static let targets = [
        "/public/../admin/users", "/public/%2e%2e/admin/users", "/public/.%2E/admin/users", "/public/x/..\\..\\admin/users",
        "/a/b/c?x=/../y", "//api//x/", "/api/../etc", "/a;b=c/..;/d", "/%61dmin/%7e", "/caf%C3%A9/%e2%80%a5",
        "/a/%252e%252e/", "/x/./y/../../z/.", "/", "/a%20b%3B%3a", "/orders/7?q=a&b=%2F",
    ]
    static let alphabet: [UInt8] =
        Array("/.%2eEfF5cC;#\\?0aA~-_ \t\r\n:@!$&'()*+,=".utf8) + [0x00, 0x7F, 0x80, 0xC3, 0xA9, 0xFF, 0x2E, 0x2F, 0x2F]

    static func mutate(_ s: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        var m = s
        for _ in 0..<Int.random(in: 1...5, using: &rng) {
            let i = m.isEmpty ? 0 : Int.random(in: 0..<m.count, using: &rng)
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: if !m.isEmpty { m[i] = alphabet.randomElement(using: &rng)! }
            case 1: m.insert(alphabet.randomElement(using: &rng)!, at: i)
            case 2: if m.count > 1 { m.remove(at: i) }
            case 3:
                m.insert(
                    contentsOf: Array(["/..", "/.", "%2e", "%2E%2e", "//", ";", "%2f", "%25", "/../.."].randomElement(using: &rng)!.utf8),
                    at: i)
            case 4: if !m.isEmpty { m.insert(contentsOf: m[i..<min(m.count, i + 6)], at: i) }
            default: if !m.isEmpty { m = Array(m[..<i]) }
            }
        }
        return m
    }

    /// RFC 3986 §5.2.4 on a fully decoded path, with empty segments collapsed first (as nginx).
    static func reference(_ decoded: String) -> String? {
        var stack: [Substring] = []
        let parts = decoded.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        var trailing = false
        for (k, seg) in parts.enumerated() {
            let last = k == parts.count - 1
            if seg.isEmpty { if last { trailing = true }; continue }
            if seg == "." { if last { trailing = true }; continue }
            if seg == ".." {
                guard stack.popLast() != nil else { return nil }
                if last { trailing = true }
                continue
            }
            stack.append(seg)
            trailing = false
        }
        if stack.isEmpty { return "/" }
        return "/" + stack.joined(separator: "/") + (trailing ? "/" : "")
    }

    /// Checks the invariants of an accepted target; returns what is wrong.
    static func violation(raw: String, _ t: CanonicalTarget) -> String? {
        let p = t.path
        guard p.hasPrefix("/") else { return "does not start with /" }
        if p.contains("//") { return "has //" }
        let segs = p.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        if segs.contains(where: { $0 == "." || $0 == ".." }) { return "has a dot-segment" }
        if p.contains("\\") || p.contains("#") { return "has \\ or #" }
        if p.utf8.contains(where: { $0 < 0x20 || $0 >= 0x7F }) { return "has a control or 8-bit byte" }
        let u = Array(p.utf8)
        var i = 0
        while i < u.count {
            if u[i] == 0x25 {
                guard i + 2 < u.count else { return "has a cut escape" }
                let hex = String(decoding: u[(i + 1)...(i + 2)], as: UTF8.self)
                guard hex == hex.uppercased(), let v = UInt8(hex, radix: 16) else { return "has a lowercase or bad escape" }
                if v == 0x2F || v == 0x5C || v < 0x20 || v == 0x7F { return "has an escaped separator or control" }
                let c = Character(UnicodeScalar(v))
                if v < 0x80, c.isLetter || c.isNumber || "-._~".contains(c) { return "has an escaped unreserved character" }
                i += 3
            } else {
                i += 1
            }
        }
        guard case .success(let again) = CanonicalTarget.parse(t.target), again == t else { return "normalising again changes it" }
        // Same meaning as a plain resolver's reading of the decoded target.
        let rawPath = String(raw.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        if let ref = reference(PercentDecoding.decode(rawPath)), ref != PercentDecoding.decode(p) {
            return "means \(PercentDecoding.decode(p)), a resolver reads \(ref)"
        }
        return nil
    }

    @Test func mutatedHeadsAndTargetsKeepTheInvariants() throws {
        let long = ProcessInfo.processInfo.environment["GATEHOUSE_FUZZ_LONG"] == "1"
        let total = long ? 1_000_000 : 100_000
        var rng = SplitMix(state: 2026_12)
        var accepted = 0
        var problems: [String] = []
        for n in 0..<total {
            let seed = Array(Self.targets[n % Self.targets.count].utf8)
            let target = Self.mutate(seed, &rng)
            var head =
                Array("GET ".utf8) + target
                + Array(" HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\n\r\n".utf8)
            if n % 4 == 3 { head = Self.mutate(head, &rng) }
            let buf = ByteBuffer(bytes: head)
            guard let len = buf.withUnsafeReadableBytes({ HTTP1Parse.headLength($0) }) else { continue }
            guard let parsed = try? buf.withUnsafeReadableBytes({ try HTTP1Parse.request($0, length: len) }) else { continue }
            var body = buf
            body.moveReaderIndex(forwardBy: len)
            var decoder = BodyDecoder(strict: true)
            decoder.start(parsed.framing)
            var steps = 0
            while steps < 1000, let e = try? decoder.next(&body) {
                steps += 1
                if case .end = e { break }
            }
            switch CanonicalTarget.parse(parsed.uri) {
            case .success(let t):
                accepted += 1
                if let v = Self.violation(raw: parsed.uri, t), problems.count < 20 {
                    problems.append("\(parsed.uri.debugDescription) → \(t.path.debugDescription): \(v)")
                }
            case .failure(let r):
                if r.why.isEmpty, problems.count < 20 { problems.append("\(parsed.uri.debugDescription): a refusal without a reason") }
            }
        }
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
        #expect(accepted > total / 20, "too few accepted targets (\(accepted)) to exercise the invariants")
        print("request-target fuzz: \(total) inputs, \(accepted) targets accepted, \(problems.count) violations")
    }
}

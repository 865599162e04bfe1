import GatehouseCore
import Testing

/// The one canonical request target: what it accepts and how, and what it refuses.
@Suite struct CanonicalTargetTests {
    func canonical(_ target: String) -> String? {
        try? CanonicalTarget.parse(target).get().target
    }

    func refusal(_ target: String) -> TargetRefusal.Kind? {
        if case .failure(let r) = CanonicalTarget.parse(target) { return r.kind }
        return nil
    }

    @Test func ordinaryTargetsStayAsTheyAre() {
        for t in [
            "/", "/orders/7", "/orders/7?x=1&y=%2F..%2F", "/a/b/", "/a.b/c.d", "/.well-known/x", "/a/.b/..c", "/a/b./c..",
            "/a:b@c!$&'()*+,=", "/a?",
        ] {
            #expect(canonical(t) == t, "\(t)")
        }
    }

    @Test(
        "dot-segments are removed after decoding %2e (RFC 3986 §5.2.4)",
        arguments: [
            ("/public/../admin/users", "/admin/users"),
            ("/public/%2e%2e/admin/users", "/admin/users"),
            ("/public/.%2E/admin/users", "/admin/users"),
            ("/public/%2E./admin/users", "/admin/users"),
            ("/public/%2e/admin", "/public/admin"),
            ("/a/./b", "/a/b"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/%2E", "/a/b/"),
            ("/a/..", "/"),
            ("/.", "/"),
            ("/a/b/../../c", "/c"),
            ("/a/./../b/./c/.", "/b/c/"),
            ("/a/..//b", "/b"),
            ("/a//../b", "/b"),
        ])
    func dotSegments(_ input: String, _ expected: String) {
        #expect(canonical(input) == expected)
    }

    @Test func emptySegmentsCollapse() {
        #expect(canonical("//admin//users") == "/admin/users")
        #expect(canonical("/admin/users//") == "/admin/users/")
        #expect(canonical("///") == "/")
    }

    @Test func unreservedEscapesAreDecodedOthersUppercased() {
        #expect(canonical("/%61dmin/%7Euser/%41-%5f") == "/admin/~user/A-_")
        #expect(canonical("/a%20b/%3b/%c3%a9") == "/a%20b/%3B/%C3%A9")
        #expect(canonical("/a%3a%40") == "/a%3A%40")
        // The query is kept as received.
        #expect(canonical("/a%61?q=%61&r=../x") == "/aa?q=%61&r=../x")
    }

    @Test(
        "refused, with what and why",
        arguments: [
            ("/a#b", TargetRefusal.Kind.fragment),
            ("/a?x#y", .fragment),
            ("/public/x/..\\..\\admin/users", .backslash),
            ("/a?x=\\", .backslash),
            ("/a/%5Cb", .encodedBackslash),
            ("/a/%5cb", .encodedBackslash),
            ("/admin%2fusers", .encodedSlash),
            ("/admin%2Fusers", .encodedSlash),
            ("/a/%2e%2e%2fb", .encodedSlash),
            ("/a%00", .encodedControl),
            ("/a%0d%0aSet-Cookie:x", .encodedControl),
            ("/a%7F", .encodedControl),
            ("/a\u{1}b", .controlByte),
            ("/a\tb", .controlByte),
            ("/caf\u{E9}", .eightBit),
            ("/a%", .malformedEscape),
            ("/a%4", .malformedEscape),
            ("/a%zz", .malformedEscape),
            ("/a/%u002e%u002e/b", .malformedEscape),
            ("/..", .climbsAboveRoot),
            ("/../admin", .climbsAboveRoot),
            ("/a/../../admin", .climbsAboveRoot),
            ("/%2e%2e/admin", .climbsAboveRoot),
            ("/public/..;/admin", .dotSegmentWithParameters),
            ("/public/..;x=1/admin", .dotSegmentWithParameters),
            ("/public/.;/admin", .dotSegmentWithParameters),
            ("/public/%2e%2e;/admin", .dotSegmentWithParameters),
            ("/;x/admin", .dotSegmentWithParameters),
            ("/a/.../b", .dotSegmentLookalike),
            ("/a/..%20/b", .dotSegmentLookalike),
            ("/a/.%20./b", .dotSegmentLookalike),
            ("/a/%2e%2e%2e", .dotSegmentLookalike),
            ("/a/...;x", .dotSegmentLookalike),
            ("/a/%252e%252e/b", .doubleEncoding),
            ("/a/%25%32%65", .doubleEncoding),
            ("/a/%25%32%66", .doubleEncoding),
            ("/a/%c0%ae%c0%ae/b", .invalidUTF8),
            ("/a/%e9", .invalidUTF8),
            ("/a/%ef%bc%8f/b", .lookalikeCharacter),  // U+FF0F fullwidth solidus
            ("/a/%ef%bc%8e%ef%bc%8e/b", .lookalikeCharacter),  // U+FF0E fullwidth full stop
            ("/a/%e2%80%a5/b", .lookalikeCharacter),  // U+2025 two dot leader
            ("/a/%e2%88%95/b", .lookalikeCharacter),  // U+2215 division slash
            ("/a/%c2%85", .lookalikeCharacter),  // U+0085 next line
            ("a/b", .notOriginForm),
            ("*", .notOriginForm),
            ("", .notOriginForm),
        ])
    func refused(_ input: String, _ kind: TargetRefusal.Kind) {
        guard case .failure(let r) = CanonicalTarget.parse(input) else {
            Issue.record("\(input.debugDescription) was accepted as \(canonical(input) ?? "?")")
            return
        }
        #expect(r.kind == kind, "\(input.debugDescription): \(r)")
        #expect(!r.why.isEmpty)
        #expect(!r.description.contains("\u{1}") && !r.description.contains("\t"))
    }

    @Test func semicolonIsOrdinaryElsewhere() {
        #expect(canonical("/admin;jsessionid=1/users") == "/admin;jsessionid=1/users")
        #expect(canonical("/a/b;v=1") == "/a/b;v=1")
        #expect(canonical("/a/x;/../b") == "/a/b")
    }

    @Test func unicodeLettersInEscapesAreFine() {
        #expect(canonical("/caf%c3%a9") == "/caf%C3%A9")
        #expect(canonical("/%e6%97%a5%e6%9c%ac") == "/%E6%97%A5%E6%9C%AC")
    }

    @Test func normalisingTwiceIsTheIdentity() {
        for t in ["/public/%2e%2e/admin/%61", "//a/./b/../c/", "/a%3b%20b", "/x/y/..", "/a;b=c/d"] {
            let once = canonical(t)!
            #expect(canonical(once) == once, "\(t)")
        }
    }

    @Test func stripPrefixWorksOnWholeSegments() {
        #expect(CanonicalTarget.stripPrefix("/api", from: "/api/x") == "/x")
        #expect(CanonicalTarget.stripPrefix("/api", from: "/api") == "/")
        #expect(CanonicalTarget.stripPrefix("/api", from: "/api/") == "/")
        #expect(CanonicalTarget.stripPrefix("/api", from: "/apix") == nil)
        #expect(CanonicalTarget.stripPrefix("/api", from: "/x/api") == nil)
        #expect(CanonicalTarget.stripPrefix("/api/", from: "/api/x/y") == "/x/y")
        #expect(CanonicalTarget.stripPrefix("/api/v1", from: "/api/v1/orders") == "/orders")
        #expect(CanonicalTarget.stripPrefix("/api/v1", from: "/api/v2/orders") == nil)
        #expect(CanonicalTarget.stripPrefix("/api", from: "/api;v=1/x") == "/x")
        #expect(CanonicalTarget.stripPrefix("/", from: "/x") == "/x")
    }

    @Test func literalSegmentsMatchDecodedAndWithParameters() {
        #expect(CanonicalTarget.segment("admin", matchesLiteral: "admin"))
        #expect(CanonicalTarget.segment("admin;jsessionid=1", matchesLiteral: "admin"))
        #expect(CanonicalTarget.segment("a%3Ab", matchesLiteral: "a:b"))
        #expect(!CanonicalTarget.segment("adminx", matchesLiteral: "admin"))
        #expect(!CanonicalTarget.segment("Admin", matchesLiteral: "admin"))
    }
}

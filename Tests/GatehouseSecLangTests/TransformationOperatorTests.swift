import GatehouseSecLang
import Testing

@Suite("SecLang transformations and operators")
struct TransformationOperatorTests {
    static let cases: [(Transformation, String, String)] = [
        (.lowercase, "SeLeCT", "select"),
        (.urlDecode, "a%20b+c%zz", "a b c%zz"),
        (.urlDecodeUni, "%u0041%uFF1C%41", "A<A"),
        (.htmlEntityDecode, "&lt;&#x41;&#66;&quot;&amp&bogus;", "<AB\"&&bogus;"),
        (.jsDecode, #"\x41\u0042\103\n\q"#, "ABC\nq"),
        (.cssDecode, #"\6a\61 vascript"#, "javascript"),
        (.cmdLine, #"C^at  "/etc/pass"wd" , x"#, "cat/etc/passwd x"),
        (.compressWhitespace, "a \t\n b", "a b"),
        (.removeWhitespace, "a b\tc", "abc"),
        (.removeNulls, "a\u{0}b", "ab"),
        (.replaceComments, "UNION/**/SELECT/*x", "UNION SELECT "),
        (.removeComments, "a/*x*/b-- c", "ab"),
        (.normalisePath, "/a/./b/../../c//d/", "/c/d/"),
        (.normalisePathWin, #"\a\..\b"#, "/b"),
        (.utf8toUnicode, "é<", "%u00e9<"),
        (.base64Decode, "PHNjcmlwdD4=", "<script>"),
        (.hexDecode, "3c73", "<s"),
        (.hexEncode, "<s", "3c73"),
        (.length, "hello", "5"),
        (.trim, "  x \n", "x"),
        (.escapeSeqDecode, #"\x41\n\\"#, "A\n\\"),
    ]

    @Test(arguments: 0..<cases.count) func transformation(_ k: Int) {
        let (t, input, expected) = TransformationOperatorTests.cases[k]
        #expect(String(decoding: t.apply(Array(input.utf8)), as: UTF8.self) == expected, "\(t.rawValue)")
    }

    @Test func sha1IsBinaryAndHexEncodesToTheKnownDigest() {
        let digest = Transformation.hexEncode.apply(Transformation.sha1.apply(Array("abc".utf8)))
        #expect(String(decoding: digest, as: UTF8.self) == "a9993e364706816aba3e25717850c26c9cd0d89d")
    }

    @Test func phraseMatcherFindsOverlappingPhrasesCaseInsensitively() {
        let pm = PhraseMatcher(["he", "she", "his", "hers"].map { Array($0.utf8) })
        #expect(pm.firstMatch(in: Array("uSHErs".utf8)).map { String(decoding: $0, as: UTF8.self) } == "SHE")
        #expect(pm.firstMatch(in: Array("xyz".utf8)) == nil)
        let suffix = PhraseMatcher(["abcd", "bc"].map { Array($0.utf8) })
        #expect(suffix.firstMatch(in: Array("abce".utf8)).map { String(decoding: $0, as: UTF8.self) } == "bc")
    }

    static let operators: [(rule: String, value: String, fires: Bool)] = [
        ("@pm passwd shadow", "cat /etc/PASSWD", true),
        ("@pm passwd shadow", "cat /etc/hosts", false),
        ("@within GET POST", "POST", true),
        ("@within GET POST", "PUT", false),
        ("@containsWord select", "x select y", true),
        ("@containsWord select", "selection", false),
        ("@beginsWith /adm", "/admin", true),
        ("@endsWith .php", "/x.php", true),
        ("@streq abc", "abcd", false),
        ("!@streq abc", "abcd", true),
        ("@eq 5", "5", true),
        ("@lt 10", "9", true),
        ("@ge 10", "9", false),
        ("@ipMatch 10.0.0.0/8,192.168.1.1", "10.2.3.4", true),
        ("@ipMatch 10.0.0.0/8,192.168.1.1", "192.168.1.2", false),
        ("@validateByteRange 32-126", "abc", false),
        ("@validateByteRange 32-126", "a\u{1}c", true),
        ("@validateUrlEncoding", "a%2", true),
        ("@validateUrlEncoding", "a%20", false),
        ("@detectSQLi", "1' OR '1'='1", true),
        ("@detectSQLi", "O'Reilly", false),
        ("@detectXSS", "<script>alert(1)</script>", true),
        ("@detectXSS", "a < b", false),
        ("@unconditionalMatch", "", true),
        ("@noMatch", "x", false),
    ]

    @Test(arguments: 0..<operators.count) func operatorOnAnArgument(_ k: Int) throws {
        let (op, value, fires) = TransformationOperatorTests.operators[k]
        let e = try engine("SecRule ARGS:v \"\(op)\" \"id:1,phase:2,pass\"")
        var target = Array("/?v=".utf8)
        target += Transformation.urlEncode.apply(Array(value.utf8))
        let req = SecLangRequest(method: "GET", target: target, headers: [(Array("Host".utf8), Array("x".utf8))])
        #expect(e.evaluate(req).logged(1) == fires, "\(op) on \(value)")
    }

    @Test func validateUtf8RejectsOverlongAndTruncatedSequences() throws {
        let e = try engine("SecRule REQUEST_BODY \"@validateUtf8Encoding\" \"id:1,phase:2,pass\"")
        func body(_ b: [UInt8]) -> SecLangRequest {
            SecLangRequest(
                method: "POST", target: Array("/".utf8),
                headers: [(Array("Content-Type".utf8), Array("application/x-www-form-urlencoded".utf8))], body: b)
        }
        #expect(!e.evaluate(body(Array("héllo".utf8))).logged(1))
        #expect(e.evaluate(body([0xC0, 0xAF])).logged(1))
        #expect(e.evaluate(body([0x61, 0xE2, 0x82])).logged(1))
    }
}

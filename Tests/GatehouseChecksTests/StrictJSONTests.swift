@testable import GatehouseCore
import Testing

private func read(_ text: String, maxDepth: Int = StrictJSON.defaultMaxDepth) throws -> StrictJSONValue {
    try StrictJSON.parse(Array(text.utf8), maxDepth: maxDepth)
}

private func refusal(_ bytes: [UInt8], at paths: Set<[String]> = [[]], maxDepth: Int = StrictJSON.defaultMaxDepth) -> StrictJSONError? {
    do {
        _ = try StrictJSON.values(at: paths, in: bytes, maxDepth: maxDepth)
        return nil
    } catch let e as StrictJSONError {
        return e
    } catch {
        return nil
    }
}

private func refusal(_ text: String, at paths: Set<[String]> = [[]]) -> StrictJSONError? { refusal(Array(text.utf8), at: paths) }

@Suite struct StrictJSONTests {
    @Test func readsAWholeDocumentKeepingNumbersAsText() throws {
        let v = try read(#" {"a": [1, -0, 9007199254740993, 1.50, 1e400, true, null, "x\u00e9"], "b": {}} "#)
        #expect(
            v["a"]
                == .array([
                    .number("1"), .number("-0"), .number("9007199254740993"), .number("1.50"), .number("1e400"),
                    .bool(true), .null, .string("xé"),
                ]))
        #expect(v["b"] == .object([]))
    }

    @Test func duplicateNamesAreRefusedAtAnyDepthWithTheirPointer() throws {
        // The review's two bodies: a duplicated parent object, and a duplicated member inside one.
        let parent = try #require(refusal(#"{"account":{"owner":"alice"},"account":{"owner":"bob"}}"#))
        #expect(parent.kind == .duplicateKey)
        #expect(parent.pointer == "/account")
        #expect(parent.message.contains("\"account\" appears twice"))
        let inner = try #require(refusal(#"{"account":{"owner":"alice","owner":"bob"}}"#))
        #expect(inner.kind == .duplicateKey && inner.pointer == "/account/owner")
        // Deep inside arrays, away from any path a check reads.
        let deep = try #require(refusal(#"{"x":[1,{"y":[{"z":1,"z":2}]}]}"#, at: [["account", "owner"]]))
        #expect(deep.pointer == "/x/1/y/0/z")
        // The same name after unescaping is the same name.
        let escaped = try #require(refusal(#"{"owner":"a","\u006fwner":"b"}"#))
        #expect(escaped.kind == .duplicateKey && escaped.pointer == "/owner")
        let surrogate = try #require(refusal(#"{"😀":1,"\ud83d\ude00":2}"#))
        #expect(surrogate.kind == .duplicateKey)
        // Different code points (composed and decomposed é) are different names, as upstreams read them.
        #expect(refusal("{\"caf\u{E9}\":1,\"cafe\u{301}\":2}") == nil)
    }

    @Test func letterCaseVariantsOnTheReadPathAreRefused() throws {
        let path: Set<[String]> = [["account", "owner"]]
        let e = try #require(refusal(#"{"account":{"owner":"alice","Owner":"bob"}}"#, at: path))
        #expect(e.kind == .duplicateKey && e.message.contains("letter case"))
        #expect(refusal(#"{"ACCOUNT":{"owner":"bob"},"account":{"owner":"alice"}}"#, at: path)?.kind == .duplicateKey)
        // U+017F (long s) folds to s in Go's matcher; a non-ASCII name that folds onto the read
        // name is refused even without the read name beside it.
        #expect(
            refusal(#"{"account":{"owner":"alice","owner\u017f":"x","owne\u0280":"y"}}"#, at: [["account", "owners"]])?.kind
                == .duplicateKey)
        #expect(refusal(#"{"account":{"owner":"alice","owne\u0280":"y"}}"#, at: [["account", "owners"]]) == nil)
        #expect(refusal(#"{"account":{"owners":"alice","owner\u017f":"x"}}"#, at: [["account", "owners"]])?.kind == .duplicateKey)
        // Canonically equivalent spellings of a read member are refused too (some readers normalise).
        #expect(refusal("{\"caf\u{E9}\":1,\"cafe\u{301}\":2}", at: [["caf\u{E9}"]])?.kind == .duplicateKey)
        // Off the path, case variants are left alone.
        #expect(refusal(#"{"account":{"owner":"alice"},"meta":{"id":1,"ID":2}}"#, at: path) == nil)
    }

    /// Go ≥ 1.21 encoding/json compares names by `ToUpper(ToLower(r))` per scalar: `user_İd`
    /// (U+0130) is `USER_ID` to it, though Swift's full case mapping lowercases İ to `i` + U+0307.
    @Test func nonASCIINamesThatFoldOntoTheReadNameAreRefused() throws {
        let path: Set<[String]> = [["user_id"]]
        for twin in ["user_\u{130}d", "user_\u{131}d", "USER_\u{130}D", "\u{FF55}ser_id"] {
            let e = try #require(refusal("{\"user_id\":\"alice\",\"\(twin)\":\"bob\"}", at: path), "\(twin)")
            #expect(e.kind == .duplicateKey, "\(twin)")
            #expect(e.message.contains("not ASCII") && e.message.contains("\"user_id\""), "\(e.message)")
            // Alone, or before the read name, or escaped: refused all the same.
            #expect(refusal("{\"\(twin)\":\"bob\"}", at: path)?.kind == .duplicateKey, "\(twin)")
            #expect(refusal("{\"\(twin)\":\"bob\",\"user_id\":\"alice\"}", at: path)?.kind == .duplicateKey, "\(twin)")
        }
        #expect(refusal(#"{"user_id":"alice","user_\u0130d":"bob"}"#, at: path)?.kind == .duplicateKey)
        // The Kelvin sign folds to k, long s to s, on every level of a dotted path.
        let nested: Set<[String]> = [["account", "key", "owners"]]
        #expect(
            refusal("{\"account\":{\"\u{212A}ey\":{\"owners\":\"bob\"},\"key\":{\"owners\":\"alice\"}}}", at: nested)?.kind == .duplicateKey
        )
        #expect(refusal("{\"account\":{\"key\":{\"owners\":\"alice\",\"owner\u{17F}\":\"bob\"}}}", at: nested)?.kind == .duplicateKey)
        #expect(refusal("{\"\u{212A}\":1}", at: [["k"]])?.kind == .duplicateKey)
        #expect(refusal("{\"\u{17F}\":1}", at: [["S"]])?.kind == .duplicateKey)
        #expect(refusal("{\"\u{130}\":1}", at: [["i"]])?.kind == .duplicateKey)
        #expect(refusal("{\"\u{131}\":1}", at: [["i"]])?.kind == .duplicateKey)
        // Non-ASCII names that fold onto nothing read, or sit off the path, are left alone.
        #expect(refusal("{\"user_id\":\"alice\",\"user_\u{130}d_x\":1,\"n\u{E9}\":2,\"meta\":{\"user_\u{130}d\":3}}", at: path) == nil)
        // A non-ASCII read name is itself read.
        #expect(refusal("{\"b\u{E9}n\u{E9}ficiaire\":\"alice\"}", at: [["b\u{E9}n\u{E9}ficiaire"]]) == nil)
        #expect(StrictJSON.goFold("user_\u{130}d") == "USER_ID")
        #expect(StrictJSON.goFold("\u{212A}\u{17F}\u{131}\u{DF}") == "KSI\u{DF}")
    }

    @Test func onlyAskedPathsAreKept() throws {
        let found = try StrictJSON.values(
            at: [["account", "owner"], ["account.owner"]],
            in: Array(#"{"big":[1,2,3],"account":{"owner":12345,"n":"x"}}"#.utf8))
        #expect(found == [["account", "owner"]: .number("12345")])
    }

    @Test func nestingBeyondTheLimitIsRefusedWithoutRecursingFurther() throws {
        #expect(try read(String(repeating: "[", count: 64) + String(repeating: "]", count: 64)) != .null)
        let e = try #require(refusal(String(repeating: "[", count: 65) + String(repeating: "]", count: 65)))
        #expect(e.kind == .tooDeep && e.message.contains("64"))
        // 100,000 levels: refused at level 65, no stack overflow.
        let flood = try #require(refusal(Array(repeating: UInt8(ascii: "["), count: 100_000)))
        #expect(flood.kind == .tooDeep && flood.offset == 64)
        let objects = try #require(refusal(String(repeating: #"{"a":"#, count: 100_000)))
        #expect(objects.kind == .tooDeep && objects.pointer.hasPrefix("/a/a/a"))
    }

    @Test func invalidJSONIsRefusedWithAnExplanation() throws {
        let cases: [(String, String)] = [
            ("", "empty"),
            (#"{"a":1,}"#, "trailing comma"),
            ("[1,2,]", "trailing comma"),
            (#"{"a":NaN}"#, "NaN"),
            (#"{"a":+1}"#, "leading +"),
            (#"{"a":01}"#, "leading zero"),
            (#"{"a":1.}"#, "decimal point"),
            (#"{"a":1e}"#, "exponent"),
            (#"{"a":"\ud800"}"#, "lone high surrogate"),
            (#"{"a":"\udc00x"}"#, "lone low surrogate"),
            (#"{"a":"\x"}"#, "invalid escape"),
            ("{\"a\":\"tab\there\"}", "control character"),
            (#"{"a":1} {"b":2}"#, "after the JSON value"),
            (#"{'a':1}"#, "member name was expected"),
            (#"{"a" 1}"#, "':' was expected"),
            (#"{"a":tru}"#, "expected true"),
            (#"{"a":"x"#, "not terminated"),
            ("// c\n{}", "starts no JSON value"),
        ]
        for (text, words) in cases {
            let e = refusal(text)
            #expect(e?.kind == .invalid, "\(text)")
            #expect(e?.message.contains(words) == true, "\(text): \(e?.message ?? "accepted")")
        }
        #expect(refusal([0xEF, 0xBB, 0xBF] + Array("{}".utf8))?.message.contains("byte-order mark") == true)
        #expect(refusal([0xFF, 0xFE, 0x7B, 0x00, 0x7D, 0x00])?.message.contains("not UTF-8") == true)
        #expect(refusal([0x7B, 0x00, 0x7D, 0x00])?.message.contains("not UTF-8") == true)
        #expect(refusal([0x22, 0xC3, 0x28, 0x22])?.message.contains("not valid UTF-8") == true)
        // Overlong and surrogate encodings are not UTF-8 either.
        #expect(refusal([0x22, 0xC0, 0xAF, 0x22]) != nil)
        #expect(refusal([0x22, 0xED, 0xA0, 0x80, 0x22]) != nil)
    }

    @Test func aLargeArrayOfNumbersIsReadWithoutKeepingIt() throws {
        var body = Array(#"{"account":{"owner":"alice"},"n":["#.utf8)
        for k in 0..<200_000 { body += Array("\(k),".utf8) }
        body += Array(#"1e400]}"#.utf8)
        let found = try StrictJSON.values(at: [["account", "owner"]], in: body)
        #expect(found == [["account", "owner"]: .string("alice")])
    }

    @Test func pointersEscapeSlashAndTilde() throws {
        let e = try #require(refusal(#"{"a/b":{"c~d":1,"c~d":2}}"#))
        #expect(e.pointer == "/a~1b/c~0d")
    }
}

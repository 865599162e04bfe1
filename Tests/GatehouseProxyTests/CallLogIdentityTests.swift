import Testing

@testable import GatehouseProxy

/// Request ids (unique, unguessable, time-ordered) and what the call log keeps of a request target.
@Suite struct CallLogIdentityTests {
    @Test func generatedIdsAreHexTimeOrderedAndCarry64UnguessableBits() {
        var g = RequestIDGenerator()
        let ids = (0..<20_000).map { _ in g.next() }
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.utf8.count == RequestIDGenerator.length && $0.utf8.allSatisfy { b in (0x30...0x39).contains(b) || (0x61...0x66).contains(b) } })
        // The first 11 characters are milliseconds: ids sort by time.
        let times = ids.map { $0.prefix(11) }
        #expect(times == times.sorted())
        // The other 64 bits are not a counter: consecutive ids differ in about half of them.
        var differing = 0
        for i in 1..<ids.count {
            let a = UInt64(ids[i - 1].suffix(16), radix: 16)!, b = UInt64(ids[i].suffix(16), radix: 16)!
            differing += (a ^ b).nonzeroBitCount
        }
        let mean = Double(differing) / Double(ids.count - 1)
        #expect(mean > 30 && mean < 34)
    }

    @Test func sipHashMatchesTheReferenceVector() {
        // SipHash-2-4 paper, appendix A: key 00 01 … 0f, message 00 01 … 07.
        let key = (UInt64(0x0706_0504_0302_0100), UInt64(0x0f0e_0d0c_0b0a_0908))
        #expect(RequestIDGenerator.sipHash(0x0706_0504_0302_0100, key: key) == 0x93f5_f579_9a93_2462)
    }

    @Test func onlyShortTokenIdsAreAcceptedFromProxies() {
        #expect(RequestIDGenerator.isAcceptable("incident-7"))
        #expect(RequestIDGenerator.isAcceptable(String(repeating: "a", count: 128)))
        #expect(!RequestIDGenerator.isAcceptable(String(repeating: "a", count: 129)))
        #expect(!RequestIDGenerator.isAcceptable(String(repeating: "a", count: 10_000)))
        #expect(!RequestIDGenerator.isAcceptable(""))
        for bad in ["a\u{0}b", "a\rb", "a\nb", "a\u{1b}[31m", "a b", "a~2", "é", "a\"b", "a;b", "a/b"] {
            #expect(!RequestIDGenerator.isAcceptable(bad))
        }
    }

    @Test func aRepeatedIncomingIdGetsTheNextSuffix() {
        let recent = RecentRequestIDs(capacity: 2)
        #expect(recent.claim("a") == "a")
        #expect(recent.claim("a") == "a~2")
        #expect(recent.claim("b") == "b")
        // The newer generation is full: it becomes the older one, still remembered.
        #expect(recent.claim("c") == "c")
        #expect(recent.claim("a") == "a~3")
        #expect(recent.claim("b") == "b~2")
    }

    @Test func secretQueryParametersAreRedactedHoweverTheyAreSpelled() {
        let key = "gth_abcdefghijkl_0123456789ABCDEFGHIJKLMNOPQRSTUVabcdef"
        func r(_ uri: String, _ configured: Set<String> = []) -> String { CallLogRedaction.redact(uri: uri, configured: configured) }
        #expect(r("/keyed?api_key=s3cret&x=1") == "/keyed?api_key=[redacted]&x=1")
        #expect(r("/keyed?x=1;api_key=s3cret") == "/keyed?x=1;api_key=[redacted]")
        #expect(r("/keyed?X-API-Key=s3cret") == "/keyed?X-API-Key=[redacted]")
        #expect(r("/keyed?API_KEY=s3cret") == "/keyed?API_KEY=[redacted]")
        #expect(r("/keyed?api%5Fkey=s3cret") == "/keyed?api%5Fkey=[redacted]")
        #expect(r("/keyed?api+key=s3cret") == "/keyed?api+key=[redacted]")
        #expect(r("/keyed?api.key=s3cret") == "/keyed?api.key=[redacted]")
        #expect(r("/keyed?api_key[]=s3cret") == "/keyed?api_key[]=[redacted]")
        #expect(r("/keyed?%20token%20=s3cret") == "/keyed?%20token%20=[redacted]")
        #expect(r("/keyed?a=1&sig=s3cret", ["sig"]) == "/keyed?a=1&sig=[redacted]")
        #expect(r("/keyed?a=1?token=s3cret#x") == "/keyed?a=1?token=[redacted]#x")
        // A value shaped like a Gatehouse key, whatever its name; a key in the path keeps its id only.
        #expect(r("/keyed?q=" + key) == "/keyed?q=[redacted]")
        #expect(r("/keyed?q=%67th_abcdefghijkl_0123") == "/keyed?q=[redacted]")
        #expect(r("/keyed?" + key) == "/keyed?[redacted]")
        #expect(r("/keys/" + key + "/x") == "/keys/gth_abcdefghijkl_[redacted]/x")
        #expect(r("/keyed?Api-Key=s3cret") == "/keyed?Api-Key=[redacted]")
        #expect(r("/keyed?q=+%20gth_x") == "/keyed?q=[redacted]")
        #expect(r("/keyed?api_key%3D=s3cret") == "/keyed?api_key%3D=s3cret")
        // A query of thousands of parameters is read to its end.
        let many = "/keyed?" + String(repeating: "key1=1&", count: 9000) + "TOKEN=s3cret"
        #expect(r(many) == "/keyed?" + String(repeating: "key1=1&", count: 9000) + "TOKEN=[redacted]")
        let long = String(repeating: "x", count: 300)
        #expect(r("/keyed?\(long)=1&\(long)_api_key=2") == "/keyed?\(long)=1&\(long)_api_key=2")
        // Nothing to redact: the same string.
        #expect(r("/plain/path") == "/plain/path")
        #expect(r("/search?q=hello&page=2;sort=asc") == "/search?q=hello&page=2;sort=asc")
        #expect(r("/monkey?keyboard=1&length_gth_=2") == "/monkey?keyboard=1&length_gth_=2")
    }
}

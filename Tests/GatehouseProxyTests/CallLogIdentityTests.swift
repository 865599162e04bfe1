import Testing

@testable import GatehouseProxy

/// Request ids (unique, unguessable, time-ordered) and what the call log keeps of a request target.
@Suite struct CallLogIdentityTests {
    @Test func generatedIdsAreHexTimeOrderedAndCarry64UnguessableBits() {
        var g = RequestIDGenerator()
        let ids = (0..<20_000).map { _ in g.next() }
        #expect(Set(ids).count == ids.count)
        #expect(
            ids.allSatisfy {
                $0.utf8.count == RequestIDGenerator.length
                    && $0.utf8.allSatisfy { b in (0x30...0x39).contains(b) || (0x61...0x66).contains(b) }
            })
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

    @Test func keysAreFoundHoweverMuchOfThemIsPercentEncoded() {
        let id = "abcdefghijkl", secret = "0123456789ABCDEFGHIJKLMNOPQRSTUVabcdef"
        let key = "gth_\(id)_\(secret)"
        func r(_ uri: String) -> String { CallLogRedaction.redact(uri: uri, configured: []) }
        func escaped(_ s: String) -> String { s.utf8.map { "%" + String($0, radix: 16, uppercase: true) }.joined() }
        let kept = "gth_\(id)_[redacted]"
        // The review's two forms: a value that does not start with the key, and a refused target.
        #expect(r("/x?q=x%67th_\(id)_\(secret)") == "/x?q=x\(kept)")
        #expect(r("/x/..;%67th_\(id)_\(secret)") == "/x/..;\(kept)")
        // Any part of the key escaped, in the path or the query, upper or lower case hex.
        let spellings = [
            "%67%74%68%5F\(id)_\(secret)", "g%74h_\(id)_\(secret)", "gth%5f\(id)_\(secret)",
            "gth_\(id)%5F\(secret)", "gth_\(id)_\(secret.prefix(3))%34\(secret.dropFirst(4))",
            "gth_abc%64efghijkl_\(secret)", escaped(key),
            // Escaped twice, for an upstream that decodes twice.
            "%2567th_\(id)_\(secret)", "%25%36%37th_\(id)_\(secret)", "gth_\(id)_%2541\(secret)",
        ]
        for spelling in spellings {
            for uri in ["/keys/\(spelling)/x", "/x?q=x\(spelling)&y=1", "/x?a=1;\(spelling)", "/x/..;\(spelling)"] {
                let stored = r(uri)
                // (A parameter that is only a key, once decoded, is replaced whole.)
                #expect(stored.contains(kept) || stored == "/x?a=1;[redacted]", "\(uri) stored as \(stored)")
                #expect(!stored.contains(secret.dropFirst(6).prefix(10)), "\(uri) stored as \(stored)")
                // Nothing of the secret is left behind the marker.
                #expect(!stored.contains("[redacted]%") && !stored.contains("[redacted]0"), "\(uri) stored as \(stored)")
            }
        }
        // A whole parameter value shaped like a key is still replaced whole.
        #expect(r("/x?q=%67th_\(id)_\(secret)") == "/x?q=[redacted]")
        #expect(r("/x?q=%2567th_\(id)_\(secret)") == "/x?q=\(kept)")
        // Escapes that are not a key stay as they are.
        #expect(r("/files/a%20b%2Fc?q=caf%C3%A9&g=%67") == "/files/a%20b%2Fc?q=caf%C3%A9&g=%67")
        #expect(r("/x/%67th_short") == "/x/%67th_short")
        #expect(r("/x/%%%25%2%g%67t%") == "/x/%%%25%2%g%67t%")
        #expect(r("/x?q=100%25") == "/x?q=100%25")
        // A target of nothing but escapes is read in linear time.
        let long = "/x/" + String(repeating: "%25%25%", count: 4000)
        #expect(r(long) == long)
    }
}

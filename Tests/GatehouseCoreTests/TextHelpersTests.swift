import GatehouseCore
import Testing

@Suite struct TextHelpersTests {
    @Test func percentDecodingDecodesOnceAndKeepsTheRest() {
        #expect(PercentDecoding.decode("plain") == "plain")
        #expect(PercentDecoding.decode("a%2Fb%41") == "a/bA")
        #expect(PercentDecoding.decode(Substring("x%252F")) == "x%2F")
        #expect(PercentDecoding.decode("50%") == "50%")
        #expect(PercentDecoding.decode("%zz%4") == "%zz%4")
        #expect(PercentDecoding.decode("a+b", plusAsSpace: true) == "a b")
        #expect(PercentDecoding.decode("a+b") == "a+b")
        #expect(PercentDecoding.decode("caf%C3%A9") == "café")
    }

    @Test func namesMatchInAnyASCIICase() {
        let names: Set<String> = ["x-api-key", "authorization"]
        #expect(names.containsIgnoringASCIICase("X-API-Key"))
        #expect(names.containsIgnoringASCIICase("AUTHORIZATION"))
        #expect(!names.containsIgnoringASCIICase("x-api-keys"))
        #expect(!names.containsIgnoringASCIICase("x-api-ke"))
        #expect(!names.containsIgnoringASCIICase("x_api_key"))
        #expect(["keep-alive", "x-secret"].containsIgnoringASCIICase("X-Secret"))
        #expect(![String]().containsIgnoringASCIICase("x"))
    }
}

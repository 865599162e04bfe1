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

    @Test(arguments: [0, 7, 10, 99, 100, 12345, -1, -10, Int.max, Int.min])
    func decimalDigitsAreTheIntegersText(_ v: Int) {
        var scratch = [UInt8](repeating: 0, count: 24)
        let n = scratch.withUnsafeMutableBytes { ASCIIDigits.decimal(v, endingAt: $0) }
        #expect(String(decoding: scratch.suffix(n), as: UTF8.self) == String(v))
    }

    @Test func hexDigitsBothWays() {
        #expect((0..<16).map { ASCIIDigits.hex($0) } == Array("0123456789abcdef".utf8))
        #expect(ASCIIDigits.hex(0x1F) == UInt8(ascii: "f"))
        for (i, c) in "0123456789abcdef".utf8.enumerated() { #expect(ASCIIDigits.hexValue(c) == UInt8(i)) }
        for (i, c) in "ABCDEF".utf8.enumerated() { #expect(ASCIIDigits.hexValue(c) == UInt8(10 + i)) }
        for c in "gG/:@`\u{0}".utf8 { #expect(ASCIIDigits.hexValue(c) == nil) }
    }
}

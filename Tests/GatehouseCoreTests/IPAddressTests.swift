import GatehouseCore
import Testing

@Suite struct IPAddressTests {
    @Test(arguments: [
        "203.0.113.7", "0.0.0.0", "255.255.255.255", "10.100.9.199", "1.20.0.250", "2001:db8::1", "::1", "fe80::1:2:3:4", "1:2:3:4:5:6:7:8",
    ])
    func roundTrips(_ text: String) throws {
        let addr = try #require(IPAddress(text))
        #expect(addr.description == text)
    }

    @Test func mappedV4BecomesV4() throws {
        let addr = try #require(IPAddress("::ffff:10.1.2.3"))
        #expect(addr.family == .v4)
        #expect(addr.description == "10.1.2.3")
    }

    @Test(arguments: ["256.1.1.1", "1.2.3", "01.2.3.4", "1::2::3", "12345::", "abc", ""])
    func rejectsInvalid(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func cidrContains() throws {
        let block = try CIDRBlock.parse("10.0.0.0/8").get()
        #expect(block.contains(IPAddress("10.200.3.4")!))
        #expect(!block.contains(IPAddress("11.0.0.1")!))
        #expect(!block.contains(IPAddress("::1")!))
        let v6 = try CIDRBlock.parse("2001:db8::/32").get()
        #expect(v6.contains(IPAddress("2001:db8:ffff::1")!))
        #expect(!v6.contains(IPAddress("2001:db9::1")!))
        #expect(try CIDRBlock.parse("0.0.0.0/0").get().contains(IPAddress("8.8.8.8")!))
    }

    @Test func cidrErrorsExplainTheRange() {
        guard case .failure(let e) = CIDRBlock.parse("10.0.0.0/33") else { Issue.record("accepted /33"); return }
        #expect(e.description.contains("IPv4 prefix length is 0...32"))
        guard case .failure(let e6) = CIDRBlock.parse("::/129") else { Issue.record("accepted /129"); return }
        #expect(e6.description.contains("IPv6 prefix length is 0...128"))
    }

    @Test func forwardedForUsesRightmostUntrustedHop() {
        let trusted = [try! CIDRBlock.parse("10.0.0.0/8").get()]
        let peer = IPAddress("10.0.0.5")
        // Client spoofs a first hop; the rightmost untrusted address is what the trusted proxy saw.
        let got = ClientAddressResolver.resolve(peer: peer, forwardedFor: ["1.1.1.1, 203.0.113.9, 10.0.0.7"], trusted: trusted)
        #expect(got == IPAddress("203.0.113.9"))
        // An untrusted peer's header is ignored.
        let direct = ClientAddressResolver.resolve(peer: IPAddress("198.51.100.1"), forwardedFor: ["1.1.1.1"], trusted: trusted)
        #expect(direct == IPAddress("198.51.100.1"))
    }

    @Test func counterTextNamesIPv6ByItsNetwork() throws {
        let a = try #require(IPAddress("2001:db8:1:2:aaaa:bbbb:cccc:dddd"))
        #expect(a.counterText(ipv6Prefix: 64) == "2001:db8:1:2::/64")
        #expect(a.counterText(ipv6Prefix: 48) == "2001:db8:1::/48")
        #expect(a.counterText(ipv6Prefix: 128) == "2001:db8:1:2:aaaa:bbbb:cccc:dddd")
        #expect(a.counterText(ipv6Prefix: 65) == "2001:db8:1:2:8000::/65")
        #expect(a.masked(toPrefix: 64) == IPAddress("2001:db8:1:2::"))
        // IPv4, and IPv4-mapped IPv6, stay whole addresses.
        #expect(IPAddress("203.0.113.7")?.counterText(ipv6Prefix: 64) == "203.0.113.7")
        #expect(IPAddress("::ffff:203.0.113.7")?.counterText(ipv6Prefix: 64) == "203.0.113.7")
        #expect(IPAddress("203.0.113.7")?.masked(toPrefix: 24) == IPAddress("203.0.113.0"))
    }
}

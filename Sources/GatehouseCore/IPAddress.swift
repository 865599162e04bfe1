// Hand-written: IP address parsing and CIDR matching. SwiftNIO's SocketAddress parses addresses but
// offers no prefix matching, and Core must stay free of NIO; no listed library provides this.

/// An IPv4 or IPv6 address as 128 bits (IPv4 kept in its own family, not mapped).
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Family: Sendable { case v4, v6 }
    public let family: Family
    /// For v4, the address is in the low 32 bits of `low`.
    public let high: UInt64
    public let low: UInt64

    public init(v4 value: UInt32) {
        family = .v4
        high = 0
        low = UInt64(value)
    }

    public init(v6High: UInt64, low: UInt64) {
        family = .v6
        high = v6High
        self.low = low
    }

    /// Parses "203.0.113.7", "2001:db8::1", "::ffff:10.0.0.1" (mapped v4 becomes v4) and "[::1]".
    public init?(_ text: some StringProtocol) {
        var s = Substring(text)
        if s.hasPrefix("["), s.hasSuffix("]") { s = s.dropFirst().dropLast() }
        if let pct = s.firstIndex(of: "%") { s = s[..<pct] }  // zone id
        if !s.contains(":") {
            guard let v = IPAddress.parseV4(s) else { return nil }
            self.init(v4: v)
            return
        }
        guard let (h, l) = IPAddress.parseV6(s) else { return nil }
        if h == 0, l >> 32 == 0xFFFF {
            self.init(v4: UInt32(truncatingIfNeeded: l))
        } else {
            self.init(v6High: h, low: l)
        }
    }

    static func parseV4(_ s: Substring) -> UInt32? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }), let n = UInt32(p), n <= 255 else {
                return nil
            }
            if p.count > 1, p.first == "0" { return nil }  // no octal ambiguity
            v = v << 8 | n
        }
        return v
    }

    static func parseV6(_ s: Substring) -> (UInt64, UInt64)? {
        var groups: [UInt16] = []
        var tailGroups: [UInt16] = []
        var seenDouble = false
        let halves = s.components(separatedByDoubleColon: ())
        guard halves.count <= 2 else { return nil }
        func parseGroups(_ part: Substring, allowV4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let items = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, item) in items.enumerated() {
                if allowV4Tail, i == items.count - 1, item.contains(".") {
                    guard let v4 = parseV4(item) else { return nil }
                    out.append(UInt16(v4 >> 16))
                    out.append(UInt16(v4 & 0xFFFF))
                } else {
                    guard !item.isEmpty, item.count <= 4, let g = UInt16(item, radix: 16) else { return nil }
                    out.append(g)
                }
            }
            return out
        }
        if halves.count == 2 {
            seenDouble = true
            guard let a = parseGroups(halves[0], allowV4Tail: false), let b = parseGroups(halves[1], allowV4Tail: true) else {
                return nil
            }
            groups = a
            tailGroups = b
            guard groups.count + tailGroups.count <= 7 else { return nil }
        } else {
            guard let a = parseGroups(halves[0], allowV4Tail: true), a.count == 8 else { return nil }
            groups = a
        }
        var all = groups
        if seenDouble { all += Array(repeating: 0, count: 8 - groups.count - tailGroups.count) + tailGroups }
        guard all.count == 8 else { return nil }
        var h: UInt64 = 0
        var l: UInt64 = 0
        for i in 0..<4 { h = h << 16 | UInt64(all[i]) }
        for i in 4..<8 { l = l << 16 | UInt64(all[i]) }
        return (h, l)
    }

    /// The address with every bit after the first `prefix` bits cleared (`prefix` is clamped to
    /// the family's length: 32 for IPv4, 128 for IPv6).
    public func masked(toPrefix prefix: Int) -> IPAddress {
        CIDRBlock(network: self, prefix: max(0, min(prefix, family == .v4 ? 32 : 128))).network
    }

    /// How a per-address counter names this address: IPv4 as itself; IPv6 by its network of
    /// `ipv6Prefix` bits (`2001:db8:1:2::/64`), since one subscriber usually holds a whole /64 and
    /// can rotate through it at will. `ipv6Prefix` 128 counts full addresses.
    public func counterText(ipv6Prefix: Int) -> String {
        guard family == .v6, ipv6Prefix < 128 else { return description }
        return CIDRBlock(network: self, prefix: max(0, ipv6Prefix)).description
    }

    public var description: String {
        switch family {
        case .v4:
            // Written as bytes (it is formatted for every request's trace note and call record).
            let v = UInt32(truncatingIfNeeded: low)
            return String(unsafeUninitializedCapacity: 15) { out in
                var i = 0
                for octet in 0..<4 {
                    let b = UInt8(truncatingIfNeeded: v >> UInt32(24 - 8 * octet))
                    if octet > 0 { out[i] = UInt8(ascii: "."); i += 1 }
                    if b >= 100 { out[i] = 0x30 + b / 100; i += 1 }
                    if b >= 10 { out[i] = 0x30 + b / 10 % 10; i += 1 }
                    out[i] = 0x30 + b % 10; i += 1
                }
                return i
            }
        case .v6:
            var g: [UInt16] = []
            for i in (0..<4).reversed() { g.append(UInt16(truncatingIfNeeded: high >> (UInt64(i) * 16))) }
            for i in (0..<4).reversed() { g.append(UInt16(truncatingIfNeeded: low >> (UInt64(i) * 16))) }
            // RFC 5952: compress the longest run (>= 2) of zero groups.
            var bestStart = -1, bestLen = 0, i = 0
            while i < 8 {
                if g[i] == 0 {
                    var j = i
                    while j < 8, g[j] == 0 { j += 1 }
                    if j - i > bestLen, j - i >= 2 { bestStart = i; bestLen = j - i }
                    i = j
                } else {
                    i += 1
                }
            }
            func hex(_ r: Range<Int>) -> String { r.map { String(g[$0], radix: 16) }.joined(separator: ":") }
            if bestStart < 0 { return hex(0..<8) }
            return hex(0..<bestStart) + "::" + hex((bestStart + bestLen)..<8)
        }
    }
}

extension Substring {
    fileprivate func components(separatedByDoubleColon: Void) -> [Substring] {
        var parts: [Substring] = []
        var start = startIndex
        var i = startIndex
        while i < endIndex {
            let next = index(after: i)
            if self[i] == ":", next < endIndex, self[next] == ":" {
                parts.append(self[start..<i])
                start = index(after: next)
                i = start
                continue
            }
            i = next
        }
        parts.append(self[start..<endIndex])
        return parts
    }
}

/// A CIDR block such as 10.0.0.0/8 or 2001:db8::/32.
public struct CIDRBlock: Hashable, Sendable, CustomStringConvertible {
    public let network: IPAddress
    public let prefix: Int

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case notAnAddress
        case badPrefix(max: Int)
        public var description: String {
            switch self {
            case .notAnAddress: return "is not a CIDR block (expected an IPv4 or IPv6 address with an optional /prefix)"
            case .badPrefix(let max):
                return "is not a CIDR block (\(max == 32 ? "IPv4" : "IPv6") prefix length is 0...\(max))"
            }
        }
    }

    /// Parses "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
    public static func parse(_ text: String) -> Result<CIDRBlock, ParseError> {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let addr = IPAddress(parts[0]) else { return .failure(.notAnAddress) }
        let max = addr.family == .v4 ? 32 : 128
        var prefix = max
        if parts.count == 2 {
            guard let p = Int(parts[1]), p >= 0, p <= max, parts[1].allSatisfy(\.isNumber) else {
                return .failure(.badPrefix(max: max))
            }
            prefix = p
        }
        return .success(CIDRBlock(network: addr, prefix: prefix))
    }

    public init(network: IPAddress, prefix: Int) {
        self.prefix = prefix
        let (mh, ml) = CIDRBlock.mask(family: network.family, prefix: prefix)
        self.network =
            network.family == .v4
            ? IPAddress(v4: UInt32(truncatingIfNeeded: network.low & ml))
            : IPAddress(v6High: network.high & mh, low: network.low & ml)
    }

    static func mask(family: IPAddress.Family, prefix: Int) -> (UInt64, UInt64) {
        if family == .v4 {
            return (0, prefix == 0 ? 0 : UInt64(UInt32.max << (32 - UInt32(prefix))))
        }
        let hi: UInt64 = prefix >= 64 ? .max : (prefix == 0 ? 0 : .max << (64 - UInt64(prefix)))
        let lo: UInt64 = prefix <= 64 ? 0 : (prefix == 128 ? .max : .max << (128 - UInt64(prefix)))
        return (hi, lo)
    }

    public func contains(_ address: IPAddress) -> Bool {
        guard address.family == network.family else { return false }
        let (mh, ml) = CIDRBlock.mask(family: network.family, prefix: prefix)
        return address.high & mh == network.high && address.low & ml == network.low
    }

    public var description: String { "\(network)/\(prefix)" }
}

/// Resolves the client address from `X-Forwarded-For`: walk from the right, skipping trusted
/// proxies; the first untrusted hop is the client. Without a trusted direct peer, the header is ignored.
public enum ClientAddressResolver {
    public static func resolve(peer: IPAddress?, forwardedFor: [String], trusted: [CIDRBlock]) -> IPAddress? {
        guard let peer else { return nil }
        guard !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingSpaces }
        var client = peer
        for hop in hops.reversed() {
            guard let addr = IPAddress(hop) else { return client }
            client = addr
            if !trusted.contains(where: { $0.contains(addr) }) { return addr }
        }
        return client
    }
}

// Hand-written: server-side request forgery shapes. URLs in a value are parsed (scheme,
// userinfo, host, port) and the host is read the way inet_aton and URL parsers do, so
// `http://2852039166/`, `http://0xA9FEA9FE/`, `http://0251.0376.0251.0376/`, `http://127.1/`,
// `http://[::ffff:a9fe:a9fe]/` and `http://good.example@169.254.169.254/` all resolve to the
// address they reach. Ideas: OWASP SSRF Prevention Cheat Sheet, PortSwigger's SSRF research
// (URL-parser differentials), AWS/GCP/Azure instance-metadata documentation.

import GatehouseCore

enum SSRFDetector {
    static let badSchemes: Set<String> = ["file", "gopher", "dict", "ldap", "ldaps", "tftp", "jar", "netdoc", "sftp", "smb", "rmi", "jdbc"]
    static let metadataHosts: Set<String> = [
        "metadata.google.internal", "metadata", "metadata.azure.internal", "instance-data", "instance-data.ec2.internal",
        "metadata.packet.net", "metadata.platformequinix.com", "kubernetes.default.svc", "kubernetes.default",
    ]
    static let rebindSuffixes: [String] = [
        ".nip.io", ".xip.io", ".sslip.io", ".localtest.me", ".lvh.me", ".1u.ms", ".rbndr.us", ".burpcollaborator.net", ".oastify.com",
        ".interact.sh", ".oast.fun", ".oast.me", ".requestbin.net", ".localhost",
    ]

    static let metadataMarkerNames = [
        "169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "/latest/meta-data", "/latest/user-data",
        "/computemetadata/v1", "/metadata/instance", "/openstack/latest/meta_data", "/metadata/v1/",
    ]
    static let metadataMarkers: [[UInt8]] = metadataMarkerNames.map { Array($0.utf8) }

    static func scan(_ value: [UInt8], kind: FieldSource, bytes set: ByteSet, into out: inout [PatternMatch]) {
        let hasColon = set.has(0x3A), hasSlash = set.has(0x2F), hasWide = set.hasWideLead
        var hasDigitDot = false
        if set.has(0x2E), set.hasDigit {
            var prevDigit = false
            for c in value {
                if c == 0x2E, prevDigit { hasDigitDot = true; break }
                prevDigit = c >= 0x30 && c <= 0x39
            }
        }
        guard hasColon || hasDigitDot || hasWide else { return }
        let s = hasWide ? Decoding.lowercased(foldDigits(value)) : value  // value is already lowercased
        let n = s.count
        // Metadata addresses and paths anywhere, with or without a scheme.
        for (k, marker) in metadataMarkers.enumerated() {
            if marker.first == 0x2F ? !hasSlash : !(hasDigitDot || hasColon || hasWide) { continue }
            if let at = Decoding.find(marker, in: s) {
                out.append(
                    PatternMatch(rule: "934100", start: at, end: min(n, at + 60), message: "cloud metadata \(metadataMarkerNames[k])"))
                return
            }
        }
        guard hasColon else { return }
        var i = 0
        while i + 2 < n {
            guard s[i] == 0x3A else { i += 1; continue }
            // Scheme backwards.
            var b = i - 1
            while b >= 0, (s[b] >= 0x61 && s[b] <= 0x7A) || (s[b] >= 0x30 && s[b] <= 0x39) || s[b] == 0x2B || s[b] == 0x2D || s[b] == 0x2E {
                b -= 1
            }
            let schemeStart = b + 1
            guard schemeStart < i else { i += 1; continue }
            let scheme = String(decoding: s[schemeStart..<i], as: UTF8.self)
            let afterColon = i + 1
            let slashes =
                afterColon + 1 < n && (s[afterColon] == 0x2F || s[afterColon] == 0x5C)
                && (s[afterColon + 1] == 0x2F || s[afterColon + 1] == 0x5C)
            if badSchemes.contains(scheme),
                slashes || scheme == "file" && afterColon < n && s[afterColon] == 0x2F || scheme == "jar" || scheme == "gopher"
            {
                out.append(PatternMatch(rule: "934110", start: schemeStart, end: min(n, i + 60), message: "\(scheme): URL"))
                return
            }
            guard slashes else { i += 1; continue }
            var a = afterColon + 2
            while a < n, s[a] == 0x2F || s[a] == 0x5C { a += 1 }
            var e = a
            while e < n, s[e] != 0x2F, s[e] != 0x5C, s[e] != 0x3F, s[e] != 0x23, s[e] > 0x20, s[e] != 0x22, s[e] != 0x27, s[e] != 0x3C,
                s[e] != 0x3E
            { e += 1 }
            var authority = Array(s[a..<e])
            if let at = authority.lastIndex(of: 0x40) { authority = Array(authority[(at + 1)...]) }
            var host = authority
            if host.first == 0x5B, let close = host.firstIndex(of: 0x5D) {
                host = Array(host[1..<close])
            } else if let colon = host.lastIndex(of: 0x3A) {
                host = Array(host[..<colon])
            }
            while host.last == 0x2E { host.removeLast() }
            if let (rule0, msg) = classify(host) {
                // An internal URL inside prose ("the dev server runs at http://localhost:8080") is a
                // warning; as the value itself (`url=http://127.0.0.1/`) it is the SSRF shape.
                var lead = schemeStart - 1
                while lead >= 0,
                    s[lead] <= 0x20 || s[lead] == 0x22 || s[lead] == 0x27 || s[lead] == 0x3D || s[lead] == 0x3A || s[lead] == 0x40
                { lead -= 1 }
                let textBefore = lead >= 0 && s[..<schemeStart].contains(0x20)
                var textAfter = false
                if e < n, let sp = s[e...].firstIndex(of: 0x20), sp + 1 < n, (s[sp + 1] >= 0x61 && s[sp + 1] <= 0x7A) { textAfter = true }
                let rule = rule0 == "934120" && (textBefore || textAfter) ? "934125" : rule0
                out.append(PatternMatch(rule: rule, start: schemeStart, end: min(n, e + 10), message: msg))
                return
            }
            // `http://good.example#@evil/`, `http://good.example?@evil/`: parsers disagree on which host
            // this is; read the one after the '@' too.
            if e < n, s[e] == 0x23 || s[e] == 0x3F || s[e] == 0x5C {
                var k = e
                while k < n, s[k] != 0x2F, s[k] > 0x20 { k += 1 }
                if let at = s[e..<k].lastIndex(of: 0x40) {
                    var h2 = Array(s[(at + 1)..<k])
                    if let colon = h2.lastIndex(of: 0x3A), h2.first != 0x5B { h2 = Array(h2[..<colon]) }
                    if let (rule, msg) = classify(h2) {
                        out.append(
                            PatternMatch(
                                rule: rule, start: schemeStart, end: min(n, k + 10), message: msg + " (after a URL-parser confusion)"))
                        return
                    }
                }
            }
            i = e
        }
    }

    /// Folds circled, fullwidth and other compatibility digits and dots to ASCII (NFKC does this
    /// in URL parsers that normalise hosts: `http://①②⑦.⓪.⓪.①/`).
    static func foldDigits(_ v: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(v.count)
        for scalar in String(decoding: v, as: UTF8.self).unicodeScalars {
            let x = scalar.value
            switch x {
            case 0x2460...0x2468: out.append(UInt8(0x31 + x - 0x2460))  // ① … ⑨
            case 0x24EA, 0x24FF: out.append(0x30)  // ⓪ ⓿
            case 0x2776...0x277E: out.append(UInt8(0x31 + x - 0x2776))
            case 0xFF10...0xFF19: out.append(UInt8(0x30 + x - 0xFF10))  // fullwidth digits
            case 0xFF0E, 0x3002, 0xFF61: out.append(0x2E)  // fullwidth / ideographic full stops
            case 0xFF1A: out.append(0x3A)
            case 0xFF0F: out.append(0x2F)
            default: Decoding.appendUTF8(x, to: &out)
            }
        }
        return out
    }

    static func classify(_ hostBytes: [UInt8]) -> (String, String)? {
        guard !hostBytes.isEmpty else { return nil }
        let host = String(decoding: hostBytes, as: UTF8.self)
        if metadataHosts.contains(host) { return ("934100", "cloud metadata host \(host)") }
        if host == "localhost" || host == "localhost.localdomain" || host == "ip6-localhost" || host == "0" {
            return ("934120", "URL to \(host)")
        }
        for suffix in rebindSuffixes where host.hasSuffix(suffix) || host == suffix.dropFirst() && suffix != ".localhost" {
            return ("934120", "URL to a rebinding or out-of-band host (\(suffix.dropFirst()))")
        }
        if let (v4, canonical) = parseInetAton(hostBytes) {
            let addr = IPAddress(v4: v4)
            if v4 >> 16 == 0xA9FE, v4 == 0xA9FE_A9FE || v4 == 0xA9FE_AA02 { return ("934100", "cloud metadata address \(addr)") }
            if v4 == 0x6464_64C8 { return ("934100", "cloud metadata address \(addr)") }
            if isInternal(v4) { return ("934120", "URL to internal address \(addr)" + (canonical ? "" : " written as \(host)")) }
            if !canonical { return ("934120", "URL to an obfuscated address \(host) (\(addr))") }
            return ("934130", "URL to IP literal \(addr)")
        }
        if host.contains(":"), let addr = IPAddress(host) {
            if addr.family == .v4 {
                let v4 = UInt32(truncatingIfNeeded: addr.low)
                if v4 == 0xA9FE_A9FE { return ("934100", "cloud metadata address \(addr) (IPv6-mapped)") }
                return ("934120", "URL to IPv4-mapped address \(addr)")
            }
            let top = addr.high >> 48
            if (addr.high == 0 && addr.low <= 1) || top & 0xFE00 == 0xFC00 || top & 0xFFC0 == 0xFE80 {
                if addr.high == 0xFD00_0EC2_0000_0000 && addr.low == 0x254 { return ("934100", "cloud metadata address \(addr)") }
                return ("934120", "URL to internal IPv6 address \(addr)")
            }
            return ("934130", "URL to IPv6 literal \(addr)")
        }
        return nil
    }

    static func isInternal(_ v: UInt32) -> Bool {
        // 127/8, 10/8, 0/8, 172.16/12, 192.168/16, 169.254/16, 100.64/10
        v >> 24 == 127 || v >> 24 == 10 || v >> 24 == 0 || v >> 20 == 0xAC1 || v >> 16 == 0xC0A8 || v >> 16 == 0xA9FE || v >> 22 == 0x191
    }

    /// inet_aton: 1–4 parts, each decimal, octal (leading 0) or hex (0x). Returns the address and
    /// whether it was written canonically (four plain decimal parts).
    static func parseInetAton(_ h: [UInt8]) -> (UInt32, Bool)? {
        let parts = h.split(separator: 0x2E, omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return nil }
        var values: [UInt64] = []
        var canonical = parts.count == 4
        for p in parts {
            guard !p.isEmpty else { return nil }
            var v: UInt64 = 0
            var digits = Array(p)
            var radix: UInt64 = 10
            if digits.count > 1, digits[0] == 0x30, digits[1] | 0x20 == 0x78 {
                radix = 16; digits.removeFirst(2); canonical = false
            } else if digits.count > 1, digits[0] == 0x30 {
                radix = 8; canonical = false
            }
            guard !digits.isEmpty || radix == 16 else { return nil }
            for d in digits {
                guard let x = Decoding.hex(d), UInt64(x) < radix else { return nil }
                v = v * radix + UInt64(x)
                if v > 0xFFFF_FFFF { return nil }
            }
            values.append(v)
        }
        var addr: UInt64 = 0
        switch values.count {
        case 1: addr = values[0]
        case 2: guard values[0] <= 255, values[1] <= 0xFF_FFFF else { return nil }; addr = values[0] << 24 | values[1]
        case 3:
            guard values[0] <= 255, values[1] <= 255, values[2] <= 0xFFFF else { return nil };
            addr = values[0] << 24 | values[1] << 16 | values[2]
        default:
            guard values.allSatisfy({ $0 <= 255 }) else { return nil }
            addr = values[0] << 24 | values[1] << 16 | values[2] << 8 | values[3]
        }
        // A bare small number ("http://5/") is a hostname to most people; require a dotted form or a 32-bit value.
        if values.count == 1, addr < 0x0100_0000 { return nil }
        return (UInt32(addr), canonical)
    }
}

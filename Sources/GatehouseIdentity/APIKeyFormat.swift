import Crypto
import GatehouseCore

/// The API key format: `gth_<key id>_<secret><checksum>`.
///
/// - The `gth_` prefix lets secret scanners find leaked keys.
/// - The key id (12 lowercase base-36 characters) is what logs and responses show.
/// - The secret is 32 base-62 characters (~190 bits).
/// - The checksum (6 base-62 characters of CRC-32 over everything before it) catches typos and
///   truncation before any lookup.
/// The store keeps only SHA-256 of the whole key: the secret has enough entropy that a slow hash
/// adds nothing but latency.
public enum APIKeyFormat {
    public static let prefix = "gth_"
    static let idLength = 12
    static let secretLength = 32
    static let checksumLength = 6
    /// `prefix` (4 bytes), id, `_`, secret, checksum; a constant (no lazy global on every request).
    public static let length = 4 + idLength + 1 + secretLength + checksumLength

    static let base62 = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
    static let base36 = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
    /// Membership of the two alphabets, by range (no global table to reach on every request).
    @inline(__always) static func isBase62(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
    }
    @inline(__always) static func isBase36(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7A)
    }
    /// The base-62 digit for `v` (0..<62), in `base62`'s order.
    @inline(__always) static func base62Digit(_ v: Int) -> UInt8 {
        v < 10 ? 0x30 + UInt8(v) : v < 36 ? 0x41 + UInt8(v - 10) : 0x61 + UInt8(v - 36)
    }

    /// Why a presented key is malformed; never includes the key itself.
    public enum Malformation: Error, Equatable, Sendable, CustomStringConvertible {
        case wrongPrefix
        case wrongLength(Int)
        case badCharacters
        case checksumMismatch
        public var description: String {
            switch self {
            case .wrongPrefix: return "it does not start with \(APIKeyFormat.prefix)"
            case .wrongLength(let n): return "it is \(n) characters long; keys are \(APIKeyFormat.length)"
            case .badCharacters: return "it contains characters keys never have"
            case .checksumMismatch: return "its checksum does not match (a typo or a truncated copy)"
            }
        }
    }

    /// Creates a new key and returns it with its id.
    public static func generate() -> (key: String, keyID: String) {
        var rng = SystemRandomNumberGenerator()
        let id = String(decoding: (0..<idLength).map { _ in base36[Int(rng.next(upperBound: UInt32(36)))] }, as: UTF8.self)
        let secret = String(decoding: (0..<secretLength).map { _ in base62[Int(rng.next(upperBound: UInt32(62)))] }, as: UTF8.self)
        let body = prefix + id + "_" + secret
        return (body + checksum(body), id)
    }

    /// Validates shape and checksum and returns the key id.
    public static func parse(_ key: String) -> Result<String, Malformation> {
        var key = key
        // On the key's own UTF-8 bytes: nothing is copied until the id is returned.
        return key.withUTF8 { bytes -> Result<String, Malformation> in
            let p = "gth_".utf8  // `prefix`, as a literal: no global to reach
            guard bytes.count >= p.count, zip(bytes, p).allSatisfy({ $0 == $1 }) else { return .failure(.wrongPrefix) }
            guard bytes.count == length else { return .failure(.wrongLength(bytes.count)) }
            let idStart = p.count
            let idEnd = idStart + idLength
            for i in idStart..<idEnd where !isBase36(bytes[i]) { return .failure(.badCharacters) }
            guard bytes[idEnd] == UInt8(ascii: "_") else { return .failure(.badCharacters) }
            for i in (idEnd + 1)..<bytes.count where !isBase62(bytes[i]) { return .failure(.badCharacters) }
            let bodyEnd = bytes.count - checksumLength
            var v = UInt64(CRC32.checksum(UnsafeBufferPointer(rebasing: bytes[..<bodyEnd])))
            for i in (bodyEnd..<bytes.count).reversed() {
                guard bytes[i] == base62Digit(Int(v % 62)) else { return .failure(.checksumMismatch) }
                v /= 62
            }
            return .success(String(decoding: UnsafeBufferPointer(rebasing: bytes[idStart..<idEnd]), as: UTF8.self))
        }
    }

    /// Whether `key`'s SHA-256 equals `stored`, compared in constant time, without copying either.
    public static func hashMatches(_ key: String, _ stored: [UInt8]) -> Bool {
        var key = key
        let digest = key.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) }
        return digest.withUnsafeBytes { d in stored.withUnsafeBytes { s in constantTimeEqual(d, s) } }
    }

    /// SHA-256 of the whole key: what the store keeps.
    public static func hash(_ key: String) -> [UInt8] {
        var key = key
        return key.withUTF8 { Array(SHA256.hash(data: UnsafeRawBufferPointer($0))) }
    }

    static func checksum(_ body: String) -> String {
        var v = UInt64(Array(body.utf8).withUnsafeBufferPointer { CRC32.checksum($0) })
        var out = [UInt8](repeating: base62[0], count: checksumLength)
        for i in (0..<checksumLength).reversed() {
            out[i] = base62[Int(v % 62)]
            v /= 62
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// CRC-32 (IEEE 802.3). Hand-written: swift-crypto has no CRC and the key checksum must not depend
/// on zlib being linked.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for b in bytes { crc = t[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }
}

/// Constant-time comparison of two digests.
@inline(__always)
package func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.withUnsafeBytes { x in b.withUnsafeBytes { y in constantTimeEqual(x, y) } }
}

/// Constant-time comparison of two byte ranges (differing lengths compare unequal at once).
package func constantTimeEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<a.count { diff |= a[i] ^ b[i] }
    return diff == 0
}

import AsyncHTTPClient
import Crypto
import Foundation
import GatehouseTestSupport
import NIOCore
import NIOHTTP1

/// HS256 tokens built byte for byte from raw JSON, so an attack controls exactly what the header
/// and claims say (`1e19`, `"nan"`, `crit`, …), signed with a key the gateway trusts.
enum HSToken {
    static let secret = Array("adversarial-hs256-secret-of-32-bytes!".utf8)

    static func b64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
    static func b64(_ text: String) -> String { b64(Array(text.utf8)) }

    /// The JWKS holding the HS256 key as `hs1`.
    static var jwksKey: String { #"{"kty":"oct","kid":"hs1","alg":"HS256","k":""# + b64(secret) + #""}"# }
    static var jwks: String { #"{"keys":["# + jwksKey + "]}" }

    static func sign(_ input: String) -> String {
        b64(Array(HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: secret))))
    }

    static func make(header: String = #"{"alg":"HS256","typ":"JWT","kid":"hs1"}"#, payload: String) -> String {
        let input = b64(header) + "." + b64(payload)
        return input + "." + sign(input)
    }

    /// JSON text of `value` (a string or array), for splicing into raw JSON.
    static func json(_ value: Any) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: [value]), as: UTF8.self).dropFirst().dropLast().description
    }

    static var inTenMinutes: String { String(Int(Date().timeIntervalSince1970) + 600) }

    /// Claims for `orders-api`: `exp` as raw JSON text (a sane one by default), plus `extra` members.
    static func claims(exp: String? = nil, aud: String = #""orders-api""#, _ extra: String = "") -> String {
        #"{"sub":"alice","aud":"# + aud + #","exp":"# + (exp ?? inTenMinutes) + (extra.isEmpty ? "" : "," + extra) + "}"
    }
}

/// Upstream `app`, a jwt route `/orders` (policy `bearer`, HS256, audience orders-api) and an
/// open route `/open`; `bearer` takes its keys from `keys` (`jwks_file: …` or `jwks_url: …`).
func jwtGatewayYAML(
    upstreamPort: Int, keys: String = "jwks_file: jwks.json", extraRoutes: String = "", extraPolicies: String = ""
) -> String {
    """
    upstreams:
      app: { targets: ["http://127.0.0.1:\(upstreamPort)"], timeout: 5s }
    routes:
      - name: orders
        match: { path: /orders }
        upstream: app
        policies: [bearer]
      - name: open
        match: { path: /open }
        upstream: app
    \(extraRoutes)
    policies:
      bearer: { type: jwt, \(keys), algorithms: [HS256], audience: orders-api }
    \(extraPolicies)
    """
}

/// Sends a request with a client-side deadline of `timeout`: an answer that does not come in time
/// is a failure of the test (thrown), not a measured duration.
func sendWithin(_ timeout: TimeAmount, _ url: String, headers: [(String, String)] = []) async throws -> TimedReply {
    var req = HTTPClientRequest(url: url)
    for (k, v) in headers { req.headers.add(name: k, value: v) }
    let resp = try await HTTPClient.shared.execute(req, timeout: timeout)
    let buf = try await resp.body.collect(upTo: 1 << 20)
    return TimedReply(status: Int(resp.status.code), body: String(buffer: buf))
}

struct TimedReply {
    var status: Int
    var body: String
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:] }
}

/// A TCP listener on 127.0.0.1 that accepts connections (the kernel completes the handshake) and
/// never reads or answers: a JWKS server that hangs.
final class BlackholeListener: @unchecked Sendable {
    let fd: Int32
    let port: Int
    init() throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
        guard rc == 0, listen(s, 1024) == 0 else { close(s); throw HarnessError("blackhole: bind/listen failed") }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        fd = s
        port = Int(UInt16(bigEndian: addr.sin_port))
    }
    deinit { close(fd) }
}

/// Bytes that act on a terminal or break a line: C0 except HTAB, DEL, and C1 (as UTF-8 C2 80-9F).
func controlBytes(in bytes: [UInt8], allowingLineBreaks: Bool = false) -> [UInt8] {
    var found: [UInt8] = []
    for (i, b) in bytes.enumerated() {
        if b == 0x09 { continue }
        if allowingLineBreaks && (b == 0x0A) { continue }
        if b < 0x20 || b == 0x7F { found.append(b) }
        if b == 0xC2, i + 1 < bytes.count, (0x80...0x9F).contains(bytes[i + 1]) { found.append(bytes[i + 1]) }
    }
    return found
}

/// Runs `gatehouse ARGS` with `input` on standard input (`consumers set-password`).
func gatehouseWithInput(_ args: [String], input: String) throws -> (status: Int32, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: Binary.path)
    p.arguments = args
    let inp = Pipe(), out = Pipe(), err = Pipe()
    p.standardInput = inp
    p.standardOutput = out
    p.standardError = err
    try p.run()
    inp.fileHandleForWriting.write(Data(input.utf8))
    try inp.fileHandleForWriting.close()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

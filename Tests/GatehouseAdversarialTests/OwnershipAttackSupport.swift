import Crypto
import Foundation
import GatehouseTestSupport

/// HS256 tokens for the ownership and rate-limit findings (S3, S9, S21): claims given as raw JSON
/// text, so a test controls exactly how a number is written, signed with the key `own1`.
enum OwnerTokens {
    static let secret = Array("ownership-findings-hs256-key-32-bytes!!".utf8)

    static func b64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static var jwks: String { #"{"keys":[{"kty":"oct","kid":"own1","alg":"HS256","k":""# + b64(secret) + #""}]}"# }

    static var exp: String { String(Int(Date().timeIntervalSince1970) + 900) }

    /// A token whose payload is `{` + `members` + `, "exp": …}` exactly.
    static func raw(_ members: String) -> String {
        let input =
            b64(Array(#"{"alg":"HS256","typ":"JWT","kid":"own1"}"#.utf8)) + "." + b64(Array(("{" + members + #","exp":"# + exp + "}").utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: secret))
        return input + "." + b64(Array(mac))
    }

    /// A token for subject `sub` (a string), from issuer `iss` unless nil, with `jti` unless nil.
    static func token(sub: String, iss: String? = "https://issuer.example", jti: String? = nil) -> String {
        var members = #""sub":""# + sub + #"""#
        if let iss { members += #","iss":""# + iss + #"""# }
        if let jti { members += #","jti":""# + jti + #"""# }
        return raw(members)
    }

    static func bearer(_ token: String) -> (String, String) { ("Authorization", "Bearer " + token) }
}

/// Starts a gateway whose directory holds the `own1` key set as `jwks.json`.
func ownershipGateway(_ yaml: String) throws -> GatewayProcess {
    let dir = try TempDir()
    _ = try dir.write("jwks.json", OwnerTokens.jwks)
    return try GatewayProcess(yaml: yaml, dir: dir)
}

/// Sends `bytes` exactly (any byte values) to 127.0.0.1:port and returns what was read until the
/// server closed (or 5 s passed).
func exchangeBytes(port: Int, _ bytes: [UInt8]) throws -> RawReply {
    let socket = try RawSocket(port: port)
    socket.send(bytes)
    return RawReply(String(decoding: socket.readUntilClose(seconds: 5).bytes, as: UTF8.self))
}

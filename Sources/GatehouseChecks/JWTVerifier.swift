import Crypto
import Foundation
import GatehouseCore
import JWTKit

/// A JWT split into its parts and decoded, not yet verified.
public struct DecodedToken: Sendable {
    public var header: [String: JSONValue]
    public var claims: [String: JSONValue]
    /// `header.payload`, the bytes the signature covers.
    public var signingInput: [UInt8]
    public var signature: [UInt8]
    /// First 8 hex characters of SHA-256 of the whole token: how logs and denials name it.
    public var fingerprint: String

    public var alg: String? { header["alg"]?.scalarString }
    public var kid: String? { header["kid"]?.scalarString }
    public var jti: String? { claims["jti"]?.scalarString }

    /// The kid, alg and jti as denials, trace notes and the call log show them: the header is
    /// read before any signature check, so these are attacker-chosen text, bounded and with
    /// control characters escaped (see `DisplayText`).
    public var kidText: String? { kid.map { DisplayText.untrusted($0) } }
    public var algText: String { DisplayText.untrusted(alg ?? "?", limit: 32) }
    public var jtiText: String? { jti.map { DisplayText.untrusted($0) } }

    /// How denials name the token: its kid, jti and fingerprint, never the token.
    public var label: String {
        var parts: [String] = []
        if let kidText { parts.append("kid \(kidText)") }
        if let jtiText { parts.append("jti \(jtiText)") }
        parts.append("fingerprint \(fingerprint)")
        return parts.joined(separator: ", ")
    }
}

/// The rules a token must meet: pinned algorithms, issuer, audience, leeway, claim mapping.
public struct JWTRules: Sendable {
    /// Allowed `alg` values. `none` is refused even if listed.
    public var algorithms: [String]
    /// Accepted issuers (any of); empty means not checked.
    public var issuers: [String]
    /// Accepted audiences (the token must name at least one); empty means not checked.
    public var audiences: [String]
    /// Seconds of clock skew tolerated on exp, nbf and iat.
    public var leeway: Double
    /// Claim path holding scopes, besides `scope` and `scp`.
    public var scopeClaim: String?
    /// Claim path holding roles (e.g. `realm_access.roles`).
    public var rolesClaim: String?
    /// Claim path holding the tenant.
    public var tenantClaim: String?
    /// Whether a token without `exp` is refused.
    public var requireExpiry: Bool

    public init(
        algorithms: [String], issuers: [String] = [], audiences: [String] = [], leeway: Double = 60,
        scopeClaim: String? = nil, rolesClaim: String? = nil, tenantClaim: String? = nil, requireExpiry: Bool = true
    ) {
        self.algorithms = algorithms
        self.issuers = issuers
        self.audiences = audiences
        self.leeway = leeway
        self.scopeClaim = scopeClaim
        self.rolesClaim = rolesClaim
        self.tenantClaim = tenantClaim
        self.requireExpiry = requireExpiry
    }
}

/// Why a token was refused: the reason code and a detail naming required against presented.
public struct TokenFailure: Error, Sendable, Equatable {
    public var code: ReasonCode
    public var detail: String
    public var required: [String]
    public var presented: [String]
    /// Short text for the RFC 6750 `error_description`.
    public var summary: String
}

/// A token that passed every check, with what it grants.
public struct VerifiedToken: Sendable {
    public var token: DecodedToken
    public var subject: String?
    public var scopes: [String]
    public var roles: [String]
    public var tenant: String?
    public var expiresAt: Double?
}

/// Decodes and verifies JWTs: the one implementation behind the `jwt` check and `gatehouse token inspect`.
public enum JWTVerifier {
    /// The longest token decoded (bytes). Real tokens are a few kilobytes; anything longer is
    /// refused before any base64 or JSON work.
    public static let maxTokenLength = 16 * 1024

    /// NumericDate claims (`exp`, `nbf`, `iat`) must lie in years 1 to 9999 (RFC 7519 §2: a JSON
    /// number of seconds since 1970). Anything else is refused as malformed, never converted.
    public static let numericDateRange: ClosedRange<Double> = TimeText.earliest...TimeText.latest

    /// Splits and decodes a compact JWS.
    public static func decode(_ token: String) -> Result<DecodedToken, TokenFailure> {
        let fp = fingerprint(token)
        func malformed(_ why: String) -> Result<DecodedToken, TokenFailure> {
            .failure(
                TokenFailure(
                    code: .tokenMalformed, detail: "the bearer token (fingerprint \(fp)) is not a well-formed JWT: \(why)",
                    required: ["a JWT: three base64url parts separated by dots"], presented: ["token fingerprint \(fp)"],
                    summary: "malformed token: \(why)"))
        }
        guard token.utf8.count <= maxTokenLength else {
            return malformed("it is \(token.utf8.count) bytes long; the limit is \(maxTokenLength)")
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return malformed("it has \(parts.count) part\(parts.count == 1 ? "" : "s"), not 3 (truncated?)") }
        // Strict base64url (no padding, no stray characters, unused bits zero): one token has
        // exactly one spelling, so its fingerprint and cache entry are unique.
        guard let headerBytes = Base64URL.decode(parts[0]) else { return malformed("the header is not canonical base64url") }
        guard let payloadBytes = Base64URL.decode(parts[1]) else { return malformed("the payload is not canonical base64url") }
        guard let signature = Base64URL.decode(parts[2]) else { return malformed("the signature is not canonical base64url") }
        // One reading only, checked before decoding (one pass over at most 16 KiB): a member
        // named twice, at any depth, is the first to JSONDecoder and the last to Python, Node and
        // PyJWT, so an upstream that reads the token again could see another `sub` or `roles`.
        // Anything else that is not strict JSON (RFC 8259) is refused on the same grounds.
        if let why = strictJSONProblem(headerBytes) { return malformed("the header \(why)") }
        if let why = strictJSONProblem(payloadBytes) { return malformed("the payload \(why)") }
        let decoder = JSONDecoder()
        guard let header = try? decoder.decode([String: JSONValue].self, from: Data(headerBytes)) else {
            return malformed("the header is not a JSON object")
        }
        guard let claims = try? decoder.decode([String: JSONValue].self, from: Data(payloadBytes)) else {
            return malformed("the payload is not a JSON object (truncated?)")
        }
        guard header["alg"]?.scalarString != nil else { return malformed("the header has no alg") }
        let input = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        return .success(DecodedToken(header: header, claims: claims, signingInput: input, signature: signature, fingerprint: fp))
    }

    /// What a claim value is when it is not a string, for a detail; nil for a string.
    static func notAString(_ v: JSONValue) -> String? {
        switch v {
        case .string: return nil
        case .number: return "the number \(v.scalarString ?? "?")"
        case .bool(let b): return "the boolean \(b)"
        case .null: return "null"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Why `bytes` is not strict JSON with each member name once per object (at any depth), in
    /// words for a `token_malformed` detail; nil when it is. Nothing is kept while reading.
    static func strictJSONProblem(_ bytes: [UInt8]) -> String? {
        do {
            _ = try StrictJSON.values(at: [], in: bytes)
            return nil
        } catch let e as StrictJSONError {
            if e.kind == .duplicateKey {
                return
                    "names a member twice (\(DisplayText.untrusted(e.description, limit: 200))); JSON readers disagree on which one counts (Foundation keeps the first, Python, Node and PyJWT the last)"
            }
            return "is not strict JSON: \(DisplayText.untrusted(e.description, limit: 200))"
        } catch {
            return "is not strict JSON"
        }
    }

    /// First 8 hex characters of SHA-256 of the token.
    public static func fingerprint(_ token: String) -> String {
        let digest = SHA256.hash(data: Array(token.utf8))
        return digest.prefix(4).map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined()
    }

    /// Verifies `token` against `keys` and `rules` at time `now` (seconds since 1970).
    public static func verify(
        _ token: String, keys: [String: VerificationKey], rules: JWTRules, now: Double
    ) -> Result<VerifiedToken, TokenFailure> {
        let decoded: DecodedToken
        switch decode(token) {
        case .failure(let f): return .failure(f)
        case .success(let d): decoded = d
        }
        return verify(decoded, keys: keys, rules: rules, now: now)
    }

    /// - Parameter signatureVerified: the exact token's signature was already verified with this key
    ///   set (a cache hit): every other rule is still applied, so expiry and the rest are re-checked.
    public static func verify(
        _ t: DecodedToken, keys: [String: VerificationKey], rules: JWTRules, now: Double,
        signatureVerified: Bool = false
    ) -> Result<VerifiedToken, TokenFailure> {
        let alg = t.alg ?? ""
        let algText = t.algText
        // RFC 7515 §4.1.11: a token whose `crit` names an extension the recipient does not
        // understand must be refused. The gateway understands none (not even `b64`, RFC 7797).
        if let crit = t.header["crit"] {
            let names: [String]
            if case .array(let a) = crit {
                names = a.map { DisplayText.untrusted($0.scalarString ?? "?", limit: 64) }
            } else {
                names = ["(not a list)"]
            }
            let list = names.isEmpty ? "an empty list" : names.prefix(8).joined(separator: ", ")
            return .failure(
                TokenFailure(
                    code: .tokenMalformed,
                    detail:
                        "the token (\(t.label)) marks header extensions as critical (crit: \(list)); the gateway understands none of them, so it must refuse the token",
                    required: ["no crit header"], presented: ["crit \(list)"], summary: "unsupported critical header extension"))
        }
        if let b64 = t.header["b64"], b64 != .bool(true) {
            return .failure(
                TokenFailure(
                    code: .tokenMalformed,
                    detail: "the token (\(t.label)) has an unencoded payload (b64: false, RFC 7797), which the gateway does not accept",
                    required: ["a base64url-encoded payload"], presented: ["b64 false"], summary: "unencoded payload not supported"))
        }
        let allowed = rules.algorithms.filter { $0.lowercased() != "none" }
        guard alg.lowercased() != "none", allowed.contains(alg) else {
            let why = alg.lowercased() == "none" ? "alg \"none\" (an unsigned token) is never accepted" : "alg \(algText) is not allowed"
            return .failure(
                TokenFailure(
                    code: .tokenAlgorithmNotAllowed,
                    detail: "the token (\(t.label)) is signed with \(algText): \(why); allowed: \(allowed.joined(separator: ", "))",
                    required: allowed.map { "alg \($0)" }, presented: ["alg \(algText)"], summary: "algorithm \(algText) not allowed"))
        }
        // Find the key: by kid, or the only key that can verify this alg when the token names none.
        let key: VerificationKey
        if let kid = t.kid {
            guard let k = keys[kid] else {
                let kidText = t.kidText ?? ""
                let known = keys.keys.sorted()
                let knownText =
                    known.prefix(10).map { $0.isEmpty ? "(no kid)" : DisplayText.untrusted($0, limit: 64) }.joined(separator: ", ")
                    + (known.count > 10 ? " and \(known.count - 10) more" : "")
                return .failure(
                    TokenFailure(
                        code: .tokenUnknownKey,
                        detail: "the token names key \(kidText), which is not in the trusted key set (known: \(knownText))",
                        required: ["kid in " + knownText], presented: ["kid \(kidText)"], summary: "unknown key \(kidText)"))
            }
            key = k
        } else {
            let candidates = keys.values.filter { $0.verifiers[alg] != nil }
            guard candidates.count == 1, let k = candidates.first else {
                return .failure(
                    TokenFailure(
                        code: .tokenUnknownKey,
                        detail: "the token (\(t.label)) names no kid and \(candidates.count) trusted keys can verify \(alg)",
                        required: ["a kid naming a trusted key"], presented: ["no kid"], summary: "token names no key"))
            }
            key = k
        }
        guard let verifier = key.verifiers[alg] else {
            let keyText = DisplayText.untrusted(key.kid)
            return .failure(
                TokenFailure(
                    code: .tokenAlgorithmNotAllowed,
                    detail:
                        "the token claims alg \(algText) but key \(keyText) is a \(key.keyType) key that verifies only \(key.verifiers.keys.sorted().joined(separator: ", ")) (algorithm confusion refused)",
                    required: key.verifiers.keys.sorted().map { "alg \($0)" }, presented: ["alg \(algText)", "kid \(keyText)"],
                    summary: "algorithm \(algText) does not match the key"))
        }
        let ok = signatureVerified || ((try? verifier.verify(t.signature, signs: t.signingInput)) ?? false)
        guard ok else {
            let keyText = DisplayText.untrusted(key.kid)
            return .failure(
                TokenFailure(
                    code: .tokenSignatureInvalid,
                    detail:
                        "the token's \(alg) signature does not verify with key \(key.kid.isEmpty ? "(no kid)" : keyText) (\(t.label)): it was altered or signed by another key",
                    required: ["a valid \(alg) signature by key \(keyText)"], presented: ["token \(t.label)"], summary: "signature invalid")
            )
        }
        // Time claims: finite JSON numbers within years 1-9999, or the token is malformed.
        let leewayText = "leeway \(wholeSeconds(rules.leeway)) s"
        var times: [String: Double] = [:]
        for name in ["exp", "nbf", "iat"] {
            guard let v = t.claims[name] else { continue }
            guard let n = numericDate(v) else {
                let shown: String
                switch v {
                case .string(let s): shown = "the string \"\(DisplayText.untrusted(s, limit: 32))\""
                case .number(let n): shown = "\(n)"
                case .bool, .null: shown = v.scalarString ?? "null"
                case .array: shown = "an array"
                case .object: shown = "an object"
                }
                return .failure(
                    TokenFailure(
                        code: .tokenMalformed,
                        detail:
                            "the token (\(t.label)) has \(name) \(shown), which is not a NumericDate (a JSON number of seconds since 1970, within years 1-9999)",
                        required: ["\(name) as a JSON number of seconds since 1970"], presented: ["\(name) \(shown)"],
                        summary: "\(name) is not a NumericDate"))
            }
            times[name] = n
        }
        // `sub` is a StringOrURI (RFC 7519 §4.1.2): a string. Any other value would name no
        // subject, so each token would be a caller of its own (a fresh rate-limit bucket per token).
        if let sub = t.claims["sub"], let shown = notAString(sub) {
            return .failure(
                TokenFailure(
                    code: .tokenMalformed,
                    detail: "the token (\(t.label)) has sub \(shown); sub must be a string (a StringOrURI, RFC 7519 §4.1.2)",
                    required: ["sub as a JSON string"], presented: ["sub \(shown)"], summary: "sub is not a string"))
        }
        let exp = times["exp"]
        if let exp {
            if now > exp + rules.leeway {
                return .failure(
                    TokenFailure(
                        code: .tokenExpired,
                        detail: "the token (\(t.label)) expired \(TimeText.iso(exp)), \(TimeText.duration(now - exp)) ago; \(leewayText)",
                        required: ["exp after \(TimeText.iso(now - rules.leeway))"], presented: ["exp \(TimeText.iso(exp))"],
                        summary: "expired \(TimeText.iso(exp))"))
            }
        } else if rules.requireExpiry {
            return .failure(
                TokenFailure(
                    code: .tokenMalformed, detail: "the token (\(t.label)) has no exp claim; this API requires expiring tokens",
                    required: ["an exp claim"], presented: ["no exp"], summary: "no exp claim"))
        }
        if let nbf = times["nbf"], nbf > now + rules.leeway {
            return .failure(
                TokenFailure(
                    code: .tokenNotYetValid,
                    detail:
                        "the token (\(t.label)) is not valid before \(TimeText.iso(nbf)), \(TimeText.duration(nbf - now)) from now; \(leewayText)",
                    required: ["nbf before \(TimeText.iso(now + rules.leeway))"], presented: ["nbf \(TimeText.iso(nbf))"],
                    summary: "not valid before \(TimeText.iso(nbf))"))
        }
        if let iat = times["iat"], iat > now + rules.leeway {
            return .failure(
                TokenFailure(
                    code: .tokenNotYetValid,
                    detail:
                        "the token (\(t.label)) was issued at \(TimeText.iso(iat)), \(TimeText.duration(iat - now)) in the future (clock skew?); \(leewayText)",
                    required: ["iat before \(TimeText.iso(now + rules.leeway))"], presented: ["iat \(TimeText.iso(iat))"],
                    summary: "issued in the future"))
        }
        if !rules.issuers.isEmpty {
            let iss = t.claims["iss"]?.scalarString
            guard let iss, rules.issuers.contains(iss) else {
                let issText = iss.map { DisplayText.untrusted($0) }
                return .failure(
                    TokenFailure(
                        code: .tokenIssuerMismatch,
                        detail:
                            "the token's issuer is \(issText.map { "\"\($0)\"" } ?? "missing"); expected \(rules.issuers.map { "\"\($0)\"" }.joined(separator: " or "))",
                        required: rules.issuers.map { "iss \($0)" }, presented: [issText.map { "iss \($0)" } ?? "no iss"],
                        summary: "issuer not trusted"))
            }
        }
        if !rules.audiences.isEmpty {
            let aud = audiences(t.claims["aud"])
            guard aud.contains(where: { rules.audiences.contains($0) }) else {
                let audText = aud.prefix(10).map { DisplayText.untrusted($0) }
                return .failure(
                    TokenFailure(
                        code: .tokenAudienceMismatch,
                        detail:
                            "the token's audience is \(audText.isEmpty ? "missing" : audText.map { "\"\($0)\"" }.joined(separator: ", ")); this API accepts \(rules.audiences.joined(separator: " or "))",
                        required: rules.audiences.map { "aud \($0)" },
                        presented: audText.isEmpty ? ["no aud"] : audText.map { "aud \($0)" }, summary: "audience mismatch"))
            }
        }
        return .success(
            VerifiedToken(
                token: t, subject: t.claims["sub"]?.scalarString, scopes: scopes(t.claims, rules: rules),
                roles: rules.rolesClaim.map { strings(ClaimPath.lookup($0, in: t.claims)) } ?? [],
                tenant: rules.tenantClaim.flatMap { ClaimPath.lookup($0, in: t.claims)?.scalarString }, expiresAt: exp))
    }

    /// Scopes from `scope` (space-separated), `scp` (array or string) and the configured claim.
    public static func scopes(_ claims: [String: JSONValue], rules: JWTRules) -> [String] {
        var out: [String] = []
        for v in [claims["scope"], claims["scp"], rules.scopeClaim.flatMap { ClaimPath.lookup($0, in: claims) }] {
            for s in strings(v) where !out.contains(s) { out.append(s) }
        }
        return out
    }

    /// A NumericDate (RFC 7519 §2): a finite JSON number within `numericDateRange`. Strings
    /// ("1700000000", "nan", "inf") and out-of-range numbers are not.
    static func numericDate(_ v: JSONValue) -> Double? {
        guard case .number(let n) = v, n.isFinite, numericDateRange.contains(n) else { return nil }
        return n
    }

    /// Whole seconds for display, clamped: never traps whatever the Double.
    static func wholeSeconds(_ s: Double) -> Int64 {
        guard s.isFinite else { return s.isNaN ? 0 : (s > 0 ? Int64.max : Int64.min) }
        return Int64(min(max(s, -9.0e18), 9.0e18))
    }

    /// `aud` (RFC 7519 §4.1.3): a string is ONE audience, spaces and all; an array lists several.
    static func audiences(_ v: JSONValue?) -> [String] {
        switch v {
        case .string(let s): return [s]
        case .array(let a): return a.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
        default: return []
        }
    }

    /// A string claim split on spaces, or an array of strings.
    static func strings(_ v: JSONValue?) -> [String] {
        switch v {
        case .string(let s): return s.split(separator: " ").map(String.init)
        case .array(let a): return a.compactMap(\.scalarString)
        default: return []
        }
    }
}

/// Resolves dotted claim paths such as `realm_access.roles`.
///
/// A key that itself contains dots (`https://example.com/roles`) is matched whole before the path
/// is split, so a dotted key name is never mistaken for nesting.
public enum ClaimPath {
    public static func lookup(_ path: String, in claims: [String: JSONValue]) -> JSONValue? {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        return lookup(parts[...], in: .object(claims))
    }

    static func lookup(_ parts: ArraySlice<String>, in value: JSONValue) -> JSONValue? {
        guard case .object(let obj) = value, !parts.isEmpty else { return nil }
        // Longest key first: "a.b" as one key wins over a → b.
        for end in stride(from: parts.endIndex, to: parts.startIndex, by: -1) {
            let key = parts[parts.startIndex..<end].joined(separator: ".")
            guard let v = obj[key] else { continue }
            if end == parts.endIndex { return v }
            if let found = lookup(parts[end...], in: v) { return found }
        }
        return nil
    }
}

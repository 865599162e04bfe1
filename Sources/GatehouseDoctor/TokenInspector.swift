import AsyncHTTPClient
import Foundation
import GatehouseCore
import JWTKit
import NIOCore
import NIOHTTP1

/// One thing the token inspector found, with the cause it implies when it would deny the token.
public struct TokenFinding: Codable, Sendable, Equatable {
    /// `problem` would make a server deny the token; `warning` is risky; `ok` passed.
    public enum Severity: String, Codable, Sendable { case problem, warning, ok }
    public var severity: Severity
    public var check: String
    public var message: String
    public var cause: DenialCause?
}

/// What `doctor token` learned about a JWT: its decoded parts, each check, and the verdict.
public struct TokenReport: Codable, Sendable {
    public var fingerprint: String
    public var header: [String: JSONValue]
    public var claims: [String: JSONValue]
    public var findings: [TokenFinding]
    /// The cause a server would most likely deny with, or nil when every check passed.
    public var cause: DenialCause?

    public var problems: [TokenFinding] { findings.filter { $0.severity == .problem } }
}

extension JSONValue {
    var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    var numberValue: Double? { if case .number(let n) = self { n } else { nil } }
}

/// Why a token could not be inspected at all.
public struct TokenError: Error, CustomStringConvertible {
    public var description: String
}

/// Decodes and checks JWTs; verification uses JWTKit, so `gatehouse token inspect` can reuse it.
public struct TokenInspector: Sendable {
    /// Options for what to check.
    public struct Options: Sendable {
        public var secret: String?
        public var jwksJSON: String?
        public var requiredScopes: [String] = []
        public var audience: String?
        public var issuer: String?
        public var now: Date = Date()
        /// Clock skew tolerated on exp/nbf, as most servers do.
        public var leeway: TimeInterval = 60
        public init() {}
    }

    public init() {}

    /// Fetches a JWKS document over HTTP(S).
    public static func fetchJWKS(_ url: String) async throws -> String {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 20)
            try await client.shutdown()
            guard response.status.code == 200 else {
                throw TokenError(description: "fetching JWKS \(url) returned HTTP \(response.status.code), expected 200")
            }
            return String(buffer: body)
        } catch let e as TokenError {
            throw e
        } catch {
            try? await client.shutdown()
            throw TokenError(description: "fetching JWKS \(url) failed: \(error)")
        }
    }

    /// The claims type for signature-only verification: claim checks are done here, one finding each.
    struct AnyClaims: JWTPayload {
        func verify(using algorithm: some JWTAlgorithm) async throws {}
        init(from decoder: any Decoder) throws {}
        func encode(to encoder: any Encoder) throws {}
    }

    public func inspect(_ rawToken: String, options: Options) async throws -> TokenReport {
        let token = rawToken.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "Bearer ", with: "")
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw TokenError(
                description:
                    "not a JWT: expected three base64url parts separated by '.', found \(parts.count) (an opaque token cannot be decoded; ask its issuer's introspection endpoint)"
            )
        }
        let header = try decodePart(parts[0], name: "header")
        let claims = try decodePart(parts[1], name: "payload")
        // FNV-1a: enough to tell tokens apart in a report without printing them (not a security hash;
        // the module's dependencies carry no digest API of their own).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in token.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let digest = String(hash, radix: 16)
        var findings: [TokenFinding] = []
        func add(_ s: TokenFinding.Severity, _ check: String, _ message: String, _ cause: DenialCause? = nil) {
            findings.append(TokenFinding(severity: s, check: check, message: message, cause: cause))
        }

        let alg = header["alg"]?.stringValue ?? ""
        if alg.lowercased() == "none" || alg.isEmpty {
            add(
                .problem, "alg", "alg is '\(alg.isEmpty ? "(missing)" : alg)': the token is unsigned; servers must reject it",
                .invalidCredentials)
        } else if alg.hasPrefix("HS"), options.jwksJSON != nil {
            add(
                .warning, "alg",
                "alg \(alg) is symmetric but a JWKS (public keys) was given: a server that accepts this is open to key confusion; expect an asymmetric alg (RS256, ES256, EdDSA)",
                .invalidCredentials)
        } else {
            add(.ok, "alg", "signed with \(alg)")
        }
        if parts[2].isEmpty, alg.lowercased() != "none" {
            add(.problem, "signature", "the signature part is empty", .invalidCredentials)
        }

        let now = options.now.timeIntervalSince1970
        if let exp = claims["exp"]?.numberValue {
            let when = Self.describe(exp, now: now)
            if now > exp + options.leeway {
                add(.problem, "exp", "expired \(when) (exp \(Int(exp)))", .expiredCredentials)
            } else {
                add(.ok, "exp", "expires \(when)")
            }
        } else if claims["exp"] != nil {
            add(.problem, "exp", "exp is not a number of seconds since 1970", .invalidCredentials)
        } else {
            add(.warning, "exp", "no exp claim: the token never expires, which many servers refuse")
        }
        if let nbf = claims["nbf"]?.numberValue, nbf > now + options.leeway {
            add(.problem, "nbf", "not valid yet: nbf is \(Self.describe(nbf, now: now)) (check the clocks)", .invalidCredentials)
        }
        if let iat = claims["iat"]?.numberValue, iat > now + options.leeway {
            add(.warning, "iat", "issued in the future (\(Self.describe(iat, now: now))): the issuer's or this machine's clock is off")
        }
        if let wanted = options.audience {
            let aud: [String]
            switch claims["aud"] {
            case .string(let s): aud = [s]
            case .array(let a): aud = a.compactMap(\.stringValue)
            default: aud = []
            }
            if aud.contains(wanted) {
                add(.ok, "aud", "audience includes \(wanted)")
            } else {
                add(.problem, "aud", "audience is [\(aud.joined(separator: ", "))], the server expects \(wanted)", .invalidCredentials)
            }
        }
        if let wanted = options.issuer {
            let iss = claims["iss"]?.stringValue ?? "(none)"
            if iss == wanted || iss == wanted + "/" || iss + "/" == wanted {
                add(.ok, "iss", "issuer is \(iss)")
            } else {
                add(.problem, "iss", "issuer is \(iss), the server expects \(wanted)", .invalidCredentials)
            }
        }
        if !options.requiredScopes.isEmpty {
            let granted = Self.scopes(claims)
            let missing = options.requiredScopes.filter { !granted.contains($0) }
            if missing.isEmpty {
                add(.ok, "scope", "grants \(options.requiredScopes.joined(separator: " "))")
            } else {
                add(
                    .problem, "scope", "lacks scope \(missing.joined(separator: " ")); it grants [\(granted.joined(separator: " "))]",
                    .insufficientScope)
            }
        }

        if let secret = options.secret, alg.hasPrefix("HS"), secret.utf8.count * 8 < (Int(alg.dropFirst(2)) ?? 256) {
            add(
                .warning, "secret",
                "the secret has \(secret.utf8.count * 8) bits, less than the \(alg.dropFirst(2)) RFC 7518 asks for \(alg): it can be brute-forced"
            )
        }
        if options.secret != nil || options.jwksJSON != nil {
            findings.append(await verifySignature(token, alg: alg, kid: header["kid"]?.stringValue, options: options))
        } else {
            add(.warning, "signature", "not verified: pass --secret (HS*) or --jwks (RS*/ES*/EdDSA) to check it")
        }
        let cause = findings.first { $0.severity == .problem }?.cause
        return TokenReport(fingerprint: "fnv1a:" + digest, header: header, claims: claims, findings: findings, cause: cause)
    }

    func verifySignature(_ token: String, alg: String, kid: String?, options: Options) async -> TokenFinding {
        let keys = JWTKeyCollection()
        do {
            if let secret = options.secret {
                let digest: DigestAlgorithm = alg == "HS384" ? .sha384 : alg == "HS512" ? .sha512 : .sha256
                guard alg.hasPrefix("HS") else {
                    return TokenFinding(
                        severity: .problem, check: "signature",
                        message: "a secret was given but the token uses \(alg), which needs a public key (--jwks)",
                        cause: .invalidCredentials)
                }
                // HMAC zero-pads any key shorter than its block size (RFC 2104), so padding a short
                // secret to the hash size gives the same MAC while meeting JWTKit's key-size assertion.
                let size = alg == "HS384" ? 48 : alg == "HS512" ? 64 : 32
                var bytes = Array(secret.utf8)
                if bytes.count < size { bytes += [UInt8](repeating: 0, count: size - bytes.count) }
                await keys.add(hmac: HMACKey(from: bytes), digestAlgorithm: digest)
            }
            if let jwks = options.jwksJSON {
                // JWTKit falls back to a default key when the kid is unknown; a server matching by kid
                // would not, so the mismatch is reported first.
                let kids = ((try? JSONSerialization.jsonObject(with: Data(jwks.utf8)) as? [String: Any])?["keys"] as? [[String: Any]] ?? [])
                    .compactMap { $0["kid"] as? String }
                if let kid, !kids.isEmpty, !kids.contains(kid) {
                    return TokenFinding(
                        severity: .problem, check: "signature",
                        message:
                            "no key with kid '\(kid)' in the JWKS (it has \(kids.joined(separator: ", "))): the issuer rotated keys or the token comes from another issuer",
                        cause: .invalidCredentials)
                }
                try await keys.add(jwksJSON: jwks)
            }
        } catch {
            return TokenFinding(
                severity: .problem, check: "signature", message: "the key material could not be loaded: \(error)", cause: nil)
        }
        do {
            _ = try await keys.verify(token, as: AnyClaims.self)
            return TokenFinding(
                severity: .ok, check: "signature", message: "signature verifies\(kid.map { " with key \($0)" } ?? "")", cause: nil)
        } catch let error as JWTError {
            let text: String
            switch error.errorType {
            case .unknownKID:
                text = "no key with kid '\(kid ?? "")' in the JWKS: the issuer rotated keys or the token comes from another issuer"
            case .missingKIDHeader: text = "the token has no kid header and the JWKS holds several keys"
            case .signatureVerificationFailed:
                text = "the signature does not verify with the given key: wrong secret/key, or the token was altered"
            case .unsupportedAlgorithm, .signingAlgorithmFailure: text = "algorithm \(alg) is not supported by the key given"
            default: text = "verification failed: \(error.reason ?? "\(error.errorType)")"
            }
            return TokenFinding(severity: .problem, check: "signature", message: text, cause: .invalidCredentials)
        } catch {
            return TokenFinding(
                severity: .problem, check: "signature", message: "verification failed: \(error)", cause: .invalidCredentials)
        }
    }

    func decodePart(_ part: Substring, name: String) throws -> [String: JSONValue] {
        var b64 = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64) else { throw TokenError(description: "the JWT \(name) is not valid base64url") }
        do { return try JSONDecoder().decode([String: JSONValue].self, from: data) } catch {
            throw TokenError(description: "the JWT \(name) is not a JSON object")
        }
    }

    /// Scopes from `scope` (space-separated), `scp`, `scopes`, `permissions` or `roles`.
    static func scopes(_ claims: [String: JSONValue]) -> [String] {
        var out: [String] = []
        for key in ["scope", "scp", "scopes", "permissions", "roles"] {
            switch claims[key] {
            case .string(let s): out += s.split(separator: " ").map(String.init)
            case .array(let a): out += a.compactMap(\.stringValue)
            default: break
            }
        }
        return out
    }

    static func describe(_ epoch: Double, now: Double) -> String {
        let date = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: epoch))
        let delta = Int(epoch - now)
        let span = abs(delta)
        let human = span < 120 ? "\(span)s" : span < 7200 ? "\(span / 60)m" : span < 172800 ? "\(span / 3600)h" : "\(span / 86400)d"
        return "\(date) (\(delta < 0 ? "\(human) ago" : "in \(human)"))"
    }
}

extension TokenReport {
    /// The person-readable explanation.
    public func render() -> String {
        var out = ["Token \(fingerprint) (the token itself is not printed)"]
        out.append("Header: " + header.keys.sorted().map { "\($0)=\(header[$0]!)" }.joined(separator: ", "))
        out.append("Claims:")
        let meaning = [
            "iss": "issuer", "sub": "subject", "aud": "audience", "exp": "expires", "nbf": "not before", "iat": "issued at",
            "jti": "token id", "scope": "scopes", "scp": "scopes", "azp": "authorized party", "client_id": "client",
        ]
        for k in claims.keys.sorted() {
            var v = claims[k]!.displayText
            if ["exp", "nbf", "iat"].contains(k), let n = claims[k]!.numberValue {
                v += " = " + TokenInspector.describe(n, now: Date().timeIntervalSince1970)
            }
            out.append("  \(k)\(meaning[k].map { " (\($0))" } ?? ""): \(v)")
        }
        out.append("Checks:")
        for f in findings {
            let mark = f.severity == .problem ? "FAIL" : f.severity == .warning ? "WARN" : " ok "
            out.append("  [\(mark)] \(f.check): \(f.message)")
        }
        if let c = cause {
            out.append("Verdict: a server would deny this token: \(c.rawValue) — \(c.explanation)")
            out.append("What to do:")
            let fix = ResponseClassifier.defaultFix(c).filter { !$0.contains("gatehouse doctor token") }
            out += fix.enumerated().map { "  \($0.offset + 1). \($0.element)" }
        } else {
            out.append(
                "Verdict: no check failed\(findings.contains { $0.check == "signature" && $0.severity == .ok } ? "" : " (signature not verified)")."
            )
        }
        return out.joined(separator: "\n")
    }
}

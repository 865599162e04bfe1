import GatehouseCore
import Synchronization

/// `jwt`: authenticates the caller by a signed JWT from `Authorization: Bearer` or a cookie.
public struct JWTCheck: PolicyCheck {
    public let id: String
    public var type: String { "jwt" }
    public let keys: JWTKeySet
    public let rules: JWTRules
    /// Cookie to read the token from when there is no Authorization header.
    public let cookie: String?
    public let realm: String
    /// Tokens whose signature verified, so a client reusing its token skips decoding and the
    /// signature check (the expensive part: ≈ 50 µs for RS256). Claims are re-checked every time.
    let cache: VerifiedTokenCache

    public init(id: String, keys: JWTKeySet, rules: JWTRules, cookie: String? = nil, realm: String = "gatehouse", cacheSize: Int = 10_000) {
        self.id = id
        self.keys = keys
        self.rules = rules
        self.cookie = cookie
        self.realm = realm
        self.cache = VerifiedTokenCache(capacity: cacheSize)
    }

    func challenge(_ params: String? = nil) -> HeaderField {
        HeaderField("WWW-Authenticate", "Bearer realm=\"\(realm)\"" + (params.map { ", " + $0 } ?? ""))
    }

    /// RFC 6750 quoted-string: no quotes or backslashes inside.
    static func quoted(_ s: String) -> String {
        "\"" + String(s.map { $0 == "\"" ? "'" : $0 }.filter { $0 != "\\" }) + "\""
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        var token: String?
        if let auth = request.headers["authorization"] {
            let t = auth.trimmingSpaces
            if t.count > 7, t.prefix(7).lowercased() == "bearer " {
                token = String(t.dropFirst(7).trimmingSpaces)
            } else {
                let scheme = t.split(separator: " ").first.map(String.init) ?? ""
                return .deny(
                    Denial(
                        code: .missingCredentials,
                        detail: "\(request.summary) requires a bearer token; the Authorization header uses the \(scheme) scheme instead",
                        required: ["Authorization: Bearer <JWT>"], presented: ["Authorization scheme \(scheme)"],
                        hint: "Send the token as Authorization: Bearer <token>.", headers: [challenge()]))
            }
        }
        if token == nil, let cookie, let v = request.cookie(cookie), !v.isEmpty { token = v }
        guard let token, !token.isEmpty else {
            let whereText = cookie.map { "an Authorization: Bearer header or cookie \($0)" } ?? "an Authorization: Bearer header"
            return .deny(
                Denial(
                    code: .missingCredentials, detail: "\(request.summary) requires a bearer token in \(whereText); none was sent",
                    required: ["bearer token in \(whereText)"], presented: [],
                    hint: "Obtain a token from the issuer and send it as Authorization: Bearer <token>.", headers: [challenge()]))
        }
        // Nothing here waits: the key set is read as it is, and any load runs in the background.
        let current = keys.snapshot()
        let cached = current.loaded ? cache.get(token, generation: current.generation) : nil
        let decoded: DecodedToken
        if let cached {
            decoded = cached
        } else {
            // A token that is not even a JWT is refused before the key set is touched.
            switch JWTVerifier.decode(token) {
            case .failure(let f): return .deny(denial(f))
            case .success(let d): decoded = d
            }
        }
        keys.maintain(now: request.now, after: current)
        guard current.loaded else { return .deny(unavailable(current, decoded)) }
        let result = JWTVerifier.verify(decoded, keys: current.keys, rules: rules, now: request.now, signatureVerified: cached != nil)
        if cached == nil, case .success = result { cache.put(token, decoded, generation: current.generation) }
        switch result {
        case .failure(let f):
            if f.code == .tokenUnknownKey {
                // The issuer may have rotated keys: look again, at a bounded rate and in the
                // background, for the next request.
                let started = keys.requestRefresh(now: request.now)
                var d = denial(f)
                if let kid = decoded.kid, let why = current.skipped[kid] {
                    d.detail += "; the key set lists key \(decoded.kidText ?? "") but skipped it: \(why)"
                }
                d.detail += started ? "; the key set is being refreshed" : "; the key set was refreshed recently"
                return .deny(d)
            }
            return .deny(denial(f))
        case .success(let v):
            // One caller per issuer and subject; the key is the token's own identity, never the kid.
            let iss = decoded.claims["iss"]?.exactText, sub = decoded.claims["sub"]?.exactText
            var principal = Principal(
                method: "jwt", consumerID: Principal.jwtConsumerID(issuer: iss, subject: sub, policy: id, fingerprint: decoded.fingerprint),
                consumerName: sub,
                keyID: Principal.jwtKeyID(
                    jti: decoded.claims["jti"]?.exactText, issuer: iss, subject: sub, policy: id, fingerprint: decoded.fingerprint),
                subject: v.subject, scopes: v.scopes, roles: v.roles,
                // Exact text only: a numeric tenant beyond 2^53 names no tenant.
                tenant: rules.tenantClaim.flatMap { ClaimPath.lookup($0, in: decoded.claims)?.exactText }, claims: decoded.claims)
            if let existing = request.principal {
                var merged = existing
                merged.merge(principal)
                principal = merged
            }
            request.principal = principal
            var note = "token \(decoded.label) verified (\(decoded.algText)), sub \(v.subject.map { DisplayText.untrusted($0) } ?? "none")"
            if let exp = v.expiresAt { note += ", expires \(TimeText.iso(exp))" }
            note += ", scopes: \(v.scopes.isEmpty ? "none" : DisplayText.untrusted(v.scopes.joined(separator: " "), limit: 512))"
            if !v.roles.isEmpty { note += ", roles: \(DisplayText.untrusted(v.roles.joined(separator: " "), limit: 512))" }
            return .allow(note: note)
        }
    }

    /// 503 `check_unavailable` while the key set has never loaded: which key set, since when,
    /// the last error. Answered at once; the load runs in the background.
    func unavailable(_ current: KeySetSnapshot, _ decoded: DecodedToken) -> Denial {
        var why = "no signing keys have loaded from \(keys.source) since \(TimeText.iso(current.since))"
        if let e = current.lastError {
            why += "; last error\(current.lastErrorAt.map { " at \(TimeText.iso($0))" } ?? ""): \(DisplayText.untrusted(e, limit: 300))"
        } else {
            why += "; the first load is still running"
        }
        return Denial(
            code: .checkUnavailable,
            detail: "\(why); the keys load in the background, so token \(decoded.fingerprint) cannot be verified yet",
            presented: ["token \(decoded.label)"], hint: "Retry shortly; operators should check the JWKS source.")
    }

    func denial(_ f: TokenFailure) -> Denial {
        Denial(
            code: f.code, status: 401, detail: f.detail, required: f.required, presented: f.presented,
            headers: [challenge("error=\"invalid_token\", error_description=\(JWTCheck.quoted(f.summary))")])
    }
}

/// A bounded map from token text to its decoded form, for tokens whose signature verified with key
/// set generation `generation`. A reload of the key set (new generation) makes every entry a miss.
/// When full, it is emptied: simple, bounded, and a cold miss costs one verification.
final class VerifiedTokenCache: Sendable {
    struct Entry: Sendable {
        var decoded: DecodedToken
        var generation: Int
    }
    let capacity: Int
    let entries = Mutex<[String: Entry]>([:])

    init(capacity: Int) { self.capacity = capacity }

    func get(_ token: String, generation: Int) -> DecodedToken? {
        guard capacity > 0 else { return nil }
        return entries.withLock { e in
            guard let hit = e[token], hit.generation == generation else { return nil }
            return hit.decoded
        }
    }

    func put(_ token: String, _ decoded: DecodedToken, generation: Int) {
        guard capacity > 0 else { return }
        entries.withLock { e in
            if e.count >= capacity { e.removeAll(keepingCapacity: true) }
            e[token] = Entry(decoded: decoded, generation: generation)
        }
    }

    var count: Int { entries.withLock { $0.count } }
}

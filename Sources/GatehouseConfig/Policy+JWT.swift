import Foundation
import GatehouseChecks
import GatehouseCore

extension PolicyTypes {
    /// `jwt`: `{ type: jwt, jwks_file: keys.json | jwks_url: https://…, algorithms: [RS256], issuer, audience,
    /// leeway: 60s, cookie, scope_claim, roles_claim, tenant_claim, refresh_interval: 10s, max_age: 10m }`.
    static let jwt = PolicyType(
        name: "jwt",
        keys: [
            "jwks_file", "jwks_url", "algorithms", "issuer", "audience", "leeway", "cookie", "scope_claim", "roles_claim",
            "tenant_claim", "realm", "refresh_interval", "max_age", "require_exp",
        ],
        required: ["algorithms"]
    ) { id, node, f, r in
        let file = f["jwks_file"].flatMap(r.string)
        let url = f["jwks_url"].flatMap(r.string)
        if file == nil, url == nil { r.error(node, "a jwt policy needs jwks_file or jwks_url (where the signing keys come from)") }
        if file != nil, url != nil, let at = f["jwks_url"] { r.error(at, "give jwks_file or jwks_url, not both") }
        if let url, let at = f["jwks_url"], !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
            r.error(at, "\"\(url)\" is not an http(s) URL")
        }
        let known = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
        var algorithms: [String] = []
        if let an = f["algorithms"] {
            for item in r.list(an) {
                guard let a = r.string(item) else { continue }
                if a.lowercased() == "none" {
                    r.error(item, "alg none (unsigned tokens) can never be allowed")
                } else if !known.contains(a) {
                    let hint = DidYouMean.suggest(a, from: known).map { "; did you mean \"\($0)\"?" } ?? ""
                    r.error(item, "unknown algorithm \"\(a)\" (expected one of: \(known.joined(separator: ", ")))\(hint)")
                } else {
                    algorithms.append(a)
                }
            }
            if algorithms.isEmpty, r.issues.isEmpty { r.error(an, "list at least one algorithm") }
        }
        let rules = JWTRules(
            algorithms: algorithms,
            issuers: f["issuer"].map(r.strings) ?? [],
            audiences: f["audience"].map(r.strings) ?? [],
            leeway: f["leeway"].flatMap(r.duration) ?? 60,
            scopeClaim: f["scope_claim"].flatMap(r.string),
            rolesClaim: f["roles_claim"].flatMap(r.string),
            tenantClaim: f["tenant_claim"].flatMap(r.string),
            requireExpiry: f["require_exp"].flatMap(r.bool) ?? true)
        let cookie = f["cookie"].flatMap(r.string)
        let realm = f["realm"].flatMap(r.string) ?? "gatehouse"
        let refresh = f["refresh_interval"].flatMap(r.duration) ?? 10
        let maxAge = f["max_age"].flatMap(r.duration) ?? 600
        // One key cache per policy, shared by every route that lists it.
        let cache = KeySetCache()
        return { ctx in
            let keys = cache.get {
                let source: JWKSSource
                if let file {
                    source = .file(file.hasPrefix("/") ? file : (ctx.baseDirectory as NSString).appendingPathComponent(file))
                } else {
                    source = .url(url ?? "")
                }
                let set = JWTKeySet(source: source, minRefreshInterval: refresh, maxAge: maxAge, refresher: ctx.jwksRefresher)
                // Start loading now (the configuration is being provisioned to serve) so the first
                // request rarely waits.
                set.requestRefresh(now: Date().timeIntervalSince1970, force: true)
                return set
            }
            return JWTCheck(id: id, keys: keys, rules: rules, cookie: cookie, realm: realm)
        }
    }
}

/// Builds a policy's key set once, however many routes use the policy.
final class KeySetCache: @unchecked Sendable {
    // @unchecked: `value` is only touched under `lock`.
    private let lock = NSLock()
    private var value: JWTKeySet?
    func get(_ make: () -> JWTKeySet) -> JWTKeySet {
        lock.lock()
        defer { lock.unlock() }
        if let value { return value }
        let v = make()
        value = v
        return v
    }
}

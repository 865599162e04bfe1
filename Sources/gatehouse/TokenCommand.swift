import ArgumentParser
import Foundation
import GatehouseChecks
import GatehouseCore

/// `gatehouse token`: offline tools for bearer tokens.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Inspect bearer tokens offline.",
        subcommands: [Inspect.self]
    )

    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode a JWT, verify it with a JWKS, and explain each claim.",
            discussion:
                "Uses the same verification as the gateway's jwt check. Without --jwks the signature is not verified. The token itself is never printed, only its fingerprint."
        )

        @Argument(help: "The JWT (or - to read it from standard input).") var token: String
        @Option(help: "JWKS file to verify the signature with.") var jwks: String?
        @Option(name: .customLong("require-scope"), help: "A scope the token must grant (repeatable).") var requireScope: [String] = []
        @Option(help: "Allowed algorithms, comma-separated (default: the key set's algorithms, never none).") var algorithms: String?
        @Option(help: "Expected issuer.") var issuer: String?
        @Option(help: "Expected audience.") var audience: String?
        @Option(help: "Clock leeway, e.g. 60s.") var leeway: String = "60s"
        @Option(name: .customLong("scope-claim"), help: "Extra claim path holding scopes.") var scopeClaim: String?
        @Option(name: .customLong("roles-claim"), help: "Claim path holding roles, e.g. realm_access.roles.") var rolesClaim: String?

        func run() async throws {
            var text = token
            if text == "-" { text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) }
            text = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.lowercased().hasPrefix("bearer ") { text = String(text.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            guard let leewaySeconds = TimeText.parseDuration(leeway) else {
                throw ValidationError("--leeway \"\(leeway)\" is not a duration (e.g. 60s)")
            }
            let now = Date().timeIntervalSince1970
            var lines: [String] = []
            var ok = true

            let decoded: DecodedToken
            switch JWTVerifier.decode(text) {
            case .failure(let f):
                print("Token: INVALID (\(f.code))")
                print("  \(DisplayText.escaped(f.detail))")
                throw ExitCode(1)
            case .success(let d): decoded = d
            }
            lines.append("Token fingerprint \(decoded.fingerprint) (first 8 hex of SHA-256)")
            lines.append("Header:")
            lines.append("  alg  \(decoded.alg ?? "missing")\(decoded.alg?.lowercased() == "none" ? "  (unsigned: never accepted)" : "")")
            if let kid = decoded.kid { lines.append("  kid  \(kid)") }
            if let typ = decoded.header["typ"]?.scalarString { lines.append("  typ  \(typ)") }

            lines.append("Claims:")
            let c = decoded.claims
            func time(_ name: String, _ label: String) {
                guard let v = c[name] else { return }
                guard case .number(let t) = v, t.isFinite, JWTVerifier.numericDateRange.contains(t) else {
                    lines.append(
                        "  \(name.padding(toLength: 4, withPad: " ", startingAt: 0)) \(v.displayText) (not a NumericDate: the gateway refuses this token as token_malformed)"
                    )
                    ok = false
                    return
                }
                let rel = t < now ? "\(TimeText.duration(now - t)) ago" : "in \(TimeText.duration(t - now))"
                lines.append("  \(name.padding(toLength: 4, withPad: " ", startingAt: 0)) \(TimeText.iso(t)) (\(label) \(rel))")
            }
            if let iss = c["iss"]?.scalarString { lines.append("  iss  \(iss) (issuer)") }
            if let sub = c["sub"]?.scalarString { lines.append("  sub  \(sub) (subject)") }
            if let aud = c["aud"] {
                let list =
                    aud.scalarString.map { [$0] }
                    ?? {
                        if case .array(let a) = aud { return a.compactMap(\.scalarString) }; return []
                    }()
                lines.append("  aud  \(list.joined(separator: ", ")) (audience)")
            }
            time("iat", "issued")
            time("nbf", "valid from")
            time("exp", "expires")
            if let jti = decoded.jti { lines.append("  jti  \(jti)") }
            let rules = JWTRules(
                algorithms: [], issuers: issuer.map { [$0] } ?? [], audiences: audience.map { [$0] } ?? [],
                leeway: leewaySeconds, scopeClaim: scopeClaim, rolesClaim: rolesClaim)
            let scopes = JWTVerifier.scopes(c, rules: rules)
            lines.append("  scopes  \(scopes.isEmpty ? "(none)" : scopes.joined(separator: " "))")
            if let rolesClaim {
                let roles = ClaimPath.lookup(rolesClaim, in: c)
                lines.append("  roles (\(rolesClaim))  \(roles.map(\.displayText) ?? "(claim not present)")")
            }
            let shown: Set<String> = ["iss", "sub", "aud", "iat", "nbf", "exp", "jti", "scope", "scp"]
            for key in c.keys.sorted() where !shown.contains(key) {
                lines.append("  \(key)  \(c[key]!.displayText)")
            }

            lines.append("Verification:")
            if let jwks {
                let keySet = JWTKeySet(source: .file(jwks), report: { _ in })
                await keySet.refreshNow()
                let current = keySet.snapshot()
                for w in current.warnings { lines.append("  warning: \(w)") }
                if !current.loaded {
                    lines.append("  could not load \(jwks): \(current.lastError ?? "unknown error")")
                    ok = false
                } else {
                    var r = rules
                    r.algorithms = algorithms.map { split($0) } ?? Array(Set(current.keys.values.flatMap { $0.verifiers.keys })).sorted()
                    switch JWTVerifier.verify(decoded, keys: current.keys, rules: r, now: now) {
                    case .success(let v):
                        lines.append(
                            "  VALID: \(decoded.alg ?? "?") signature by key \(decoded.kid ?? "(no kid)") verifies; time claims within leeway \(Int64(min(leewaySeconds, 1e15))) s"
                                + (issuer != nil ? "; issuer matches" : "") + (audience != nil ? "; audience matches" : ""))
                        if let exp = v.expiresAt { lines.append("  expires \(TimeText.iso(exp)), in \(TimeText.duration(exp - now))") }
                    case .failure(let f):
                        lines.append("  INVALID (\(f.code)): \(f.detail)")
                        if let hint = ReasonCatalogue.entry(f.code)?.fix { lines.append("  fix: \(hint)") }
                        ok = false
                    }
                }
            } else {
                lines.append("  signature NOT verified (pass --jwks FILE to verify)")
                if let exp = c["exp"], case .number(let t) = exp, t.isFinite, now > t + leewaySeconds {
                    lines.append(
                        "  token_expired: expired \(TimeText.iso(t)), \(TimeText.duration(now - t)) ago; leeway \(Int64(min(leewaySeconds, 1e15))) s"
                    )
                    ok = false
                }
            }
            if !requireScope.isEmpty {
                let missing = requireScope.filter { !scopes.contains($0) }
                if missing.isEmpty {
                    lines.append("  scopes: grants every required scope (\(requireScope.joined(separator: " ")))")
                } else {
                    lines.append(
                        "  insufficient_scope: requires \(requireScope.joined(separator: " ")); the token grants \(scopes.isEmpty ? "no scopes" : scopes.joined(separator: " ")); missing \(missing.joined(separator: " "))"
                    )
                    ok = false
                }
            }
            // Header and claims are the token's text: control characters are escaped, line by line.
            print(lines.map(DisplayText.escaped).joined(separator: "\n"))
            if !ok { throw ExitCode(1) }
        }
    }
}

import Foundation
import GatehouseCore
import JWTKit
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A verifying key from a JWKS: its id, family and one jwt-kit verifier per algorithm it may sign.
public struct VerificationKey: Sendable {
    /// The key's `kid` ("" when the JWKS entry has none).
    public var kid: String
    /// The JWK `kty`: RSA, EC, OKP or oct.
    public var keyType: String
    /// jwt-kit algorithms by JWS `alg` name. An RSA key never has an HS entry and an `oct` key never
    /// an RS/ES one, which is what stops algorithm-confusion attacks at the key level.
    public var verifiers: [String: any JWTAlgorithm]
}

/// Where a JWKS comes from.
public enum JWKSSource: Sendable, CustomStringConvertible {
    case file(String)
    case url(String)
    /// Inline JSON (tests, `token inspect` with a literal).
    case json(String)

    public var description: String {
        switch self {
        case .file(let p): return "JWKS file \(p)"
        case .url(let u): return "JWKS URL \(u)"
        case .json: return "inline JWKS"
        }
    }
}

/// The key cache behind the `jwt` check: the last good key set from a JWKS file or URL.
///
/// Loading uses jwt-kit's `JWTKeyCollection` (an actor) to turn each JWK into a verifier; the
/// verifiers it returns are synchronous, so the request path checks signatures without a task hop.
/// An unknown `kid` asks for a refresh, at most once per `minRefreshInterval`; the request that
/// saw it is denied with `token_unknown_key` and the refresh serves the next one. A failed refresh
/// keeps the last good keys. Before the very first load completes, a request waits up to
/// `firstLoadWait` for it; with no keys at all the check fails closed (`check_unavailable`).
public final class JWTKeySet: Sendable {
    struct State {
        var keys: [String: VerificationKey] = [:]
        var loaded = false
        var loadedAt: Double = 0
        /// Bumped by every successful load: verified-token caches key their entries by it.
        var generation = 0
        var lastError: String?
        var lastAttempt: Double = -.infinity
        var refreshing = false
    }

    public let source: JWKSSource
    /// Least time between two refreshes triggered by unknown key ids.
    public let minRefreshInterval: Double
    /// Keys older than this are refreshed in the background (URL sources).
    public let maxAge: Double
    public let firstLoadWait: Double
    let state = Mutex(State())
    let loadedSignal = NSCondition()

    public init(source: JWKSSource, minRefreshInterval: Double = 10, maxAge: Double = 600, firstLoadWait: Double = 2) {
        self.source = source
        self.minRefreshInterval = minRefreshInterval
        self.maxAge = maxAge
        self.firstLoadWait = firstLoadWait
    }

    /// The current keys, waiting briefly for the first load if none has completed yet.
    public func currentKeys(now: Double) -> (keys: [String: VerificationKey], loaded: Bool, lastError: String?, generation: Int) {
        var snap = state.withLock { ($0.keys, $0.loaded, $0.lastError, $0.loadedAt, $0.generation) }
        if !snap.1 {
            requestRefresh(now: now, force: true)
            let deadline = Date().addingTimeInterval(firstLoadWait)
            loadedSignal.lock()
            while !state.withLock({ $0.loaded || (!$0.refreshing && $0.lastError != nil) }), Date() < deadline {
                _ = loadedSignal.wait(until: deadline)
            }
            loadedSignal.unlock()
            snap = state.withLock { ($0.keys, $0.loaded, $0.lastError, $0.loadedAt, $0.generation) }
        } else if case .url = source, now - snap.3 > maxAge {
            requestRefresh(now: now, force: false)
        }
        return (snap.0, snap.1, snap.2, snap.4)
    }

    /// Asks for a background refresh, unless one ran within `minRefreshInterval` (`force` skips the
    /// rate bound but never starts a second concurrent refresh). Returns whether one was started.
    @discardableResult
    public func requestRefresh(now: Double, force: Bool = false) -> Bool {
        let start = state.withLock { s -> Bool in
            guard !s.refreshing else { return false }
            if !force {
                // The bound applies to refreshes asked for by requests (unknown kid, stale keys).
                if now - s.lastAttempt < minRefreshInterval { return false }
                s.lastAttempt = now
            }
            s.refreshing = true
            return true
        }
        guard start else { return false }
        Task.detached { [self] in await self.performRefresh() }
        return true
    }

    /// Loads the key set now and waits for it (startup, tests, `token inspect`).
    public func refreshNow() async {
        let start = state.withLock { s -> Bool in
            guard !s.refreshing else { return false }
            s.refreshing = true
            return true
        }
        if start {
            await performRefresh()
        } else {
            while state.withLock({ $0.refreshing }) { try? await Task.sleep(for: .milliseconds(5)) }
        }
    }

    func performRefresh() async {
        let result: Result<[String: VerificationKey], JWKSError>
        do {
            let text = try await fetch()
            result = .success(try await JWTKeySet.parse(jwks: text))
        } catch let e as JWKSError {
            result = .failure(e)
        } catch {
            result = .failure(JWKSError("\(source): \(error)"))
        }
        state.withLock { s in
            s.refreshing = false
            switch result {
            case .success(let keys):
                s.keys = keys
                s.loaded = true
                s.generation += 1
                s.loadedAt = Date().timeIntervalSince1970
                s.lastError = nil
            case .failure(let e):
                // The last good keys stay in use.
                s.lastError = e.description
            }
        }
        signalLoaded()
    }

    /// Wakes requests waiting for the first load (synchronous: NSCondition is not for async code).
    func signalLoaded() {
        loadedSignal.lock()
        loadedSignal.broadcast()
        loadedSignal.unlock()
    }

    func fetch() async throws -> String {
        switch source {
        case .json(let s): return s
        case .file(let path):
            do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw JWKSError("cannot read JWKS file \(path): \(error.localizedDescription)")
            }
        case .url(let u):
            guard let url = URL(string: u) else { throw JWKSError("\(u) is not a URL") }
            var req = URLRequest(url: url)
            req.timeoutInterval = 5
            let (data, response) = try await URLSession.shared.data(for: req)
            if let http = response as? HTTPURLResponse, http.statusCode != 200 {
                throw JWKSError("JWKS URL \(u) answered HTTP \(http.statusCode)")
            }
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// Algorithms a key of each family may verify, when the JWK does not name its `alg`.
    static func algorithms(kty: String, crv: String?) -> [String] {
        switch kty {
        case "RSA": return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
        case "EC":
            switch crv {
            case "P-384": return ["ES384"]
            case "P-521": return ["ES512"]
            default: return ["ES256"]
            }
        case "OKP": return ["EdDSA"]
        case "oct": return ["HS256", "HS384", "HS512"]
        default: return []
        }
    }

    /// Parses a JWKS document into verifiers. Symmetric (`oct`) keys are read here because jwt-kit's
    /// JWK type covers only RSA, EC and OKP; every signature check still runs in jwt-kit.
    public static func parse(jwks text: String) async throws -> [String: VerificationKey] {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let list = obj["keys"] as? [[String: Any]] else {
            throw JWKSError("the JWKS is not a JSON object with a \"keys\" array")
        }
        var out: [String: VerificationKey] = [:]
        for (i, entry) in list.enumerated() {
            guard let kty = entry["kty"] as? String else { throw JWKSError("JWKS key #\(i + 1) has no kty") }
            if let use = entry["use"] as? String, use != "sig" { continue }
            let kid = entry["kid"] as? String ?? ""
            let algs = (entry["alg"] as? String).map { [$0] } ?? algorithms(kty: kty, crv: entry["crv"] as? String)
            let collection = JWTKeyCollection()
            let jwkKid = JWKIdentifier(string: kid.isEmpty ? "_" : kid)
            var verifiers: [String: any JWTAlgorithm] = [:]
            do {
                if kty == "oct" {
                    guard let k = entry["k"] as? String, let secret = Base64URL.decode(k), !secret.isEmpty else {
                        throw JWKSError("JWKS key \(kid) (oct) has no usable k")
                    }
                    for alg in algs {
                        let digest: DigestAlgorithm
                        let minBytes: Int
                        switch alg {
                        case "HS256": digest = .sha256; minBytes = 32
                        case "HS384": digest = .sha384; minBytes = 48
                        case "HS512": digest = .sha512; minBytes = 64
                        default: continue
                        }
                        // RFC 7518 §3.2: the key must be at least as long as the hash output.
                        guard secret.count >= minBytes else { continue }
                        let c = JWTKeyCollection()
                        await c.add(hmac: HMACKey(from: secret), digestAlgorithm: digest, kid: jwkKid)
                        verifiers[alg] = try await c.getKey(for: jwkKid)
                    }
                } else {
                    var fixed = entry
                    fixed["kid"] = jwkKid.string
                    fixed.removeValue(forKey: "alg")
                    let data = try JSONSerialization.data(withJSONObject: fixed)
                    let jwk = try JWK(json: String(decoding: data, as: UTF8.self))
                    try await collection.add(jwk: jwk)
                    for alg in algs {
                        if let v = try? await collection.getKey(for: jwkKid, alg: alg), v.name == alg { verifiers[alg] = v }
                    }
                }
            } catch let e as JWKSError {
                throw e
            } catch {
                throw JWKSError("JWKS key \(kid.isEmpty ? "#\(i + 1)" : kid) (\(kty)) could not be loaded: \(error)")
            }
            guard !verifiers.isEmpty else {
                let why = kty == "oct" ? " (HS256 needs a key of at least 32 bytes)" : ""
                throw JWKSError("JWKS key \(kid.isEmpty ? "#\(i + 1)" : kid) (\(kty)) supports none of \(algs.joined(separator: ", "))\(why)")
            }
            out[kid] = VerificationKey(kid: kid, keyType: kty, verifiers: verifiers)
        }
        return out
    }
}

/// Why a JWKS could not be loaded.
public struct JWKSError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// base64url without padding (RFC 7515 §2). Hand-written: Foundation's decoder takes only the
/// standard alphabet with padding, and the hot path should not allocate a Data.
public enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let table: [Int8] = {
        var t = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = Int8(i) }
        return t
    }()

    public static func decode<S: StringProtocol>(_ s: S) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in s.utf8 {
            if c == UInt8(ascii: "=") { break }
            let v = table[Int(c)]
            guard v >= 0 else { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        // A lone trailing character (6 bits) cannot encode a byte.
        if bits >= 6 { return nil }
        return out
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i + 2 < bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out += [alphabet[Int(v >> 18 & 63)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)], alphabet[Int(v & 63)]]
            i += 3
        }
        if bytes.count - i == 1 {
            let v = UInt32(bytes[i]) << 16
            out += [alphabet[Int(v >> 18 & 63)], alphabet[Int(v >> 12 & 63)]]
        } else if bytes.count - i == 2 {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(v >> 18 & 63)], alphabet[Int(v >> 12 & 63)], alphabet[Int(v >> 6 & 63)]]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

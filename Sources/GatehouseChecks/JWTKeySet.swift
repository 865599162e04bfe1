import AsyncHTTPClient
import Foundation
import GatehouseCore
import JWTKit
import NIOCore
import NIOHTTP1
import Synchronization

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

    /// Identifies the source across key sets of one process.
    var cacheKey: String {
        switch self {
        case .json(let text): return "json " + text
        default: return description
        }
    }
}

/// What a key set holds at one moment: what a request sees, without waiting for anything.
public struct KeySetSnapshot: Sendable {
    public var keys: [String: VerificationKey]
    /// Whether any load has ever succeeded (the keys are the last good ones).
    public var loaded: Bool
    /// Why the last load failed, if it did.
    public var lastError: String?
    /// When the last load failed (seconds since 1970).
    public var lastErrorAt: Double?
    /// Bumped by every successful load: verified-token caches key their entries by it.
    public var generation: Int
    /// Keys of the JWKS that were skipped (kid, or `#n` without one) and why.
    public var skipped: [String: String]
    /// What the last successful load skipped or ignored, for operators.
    public var warnings: [String]
    /// When the key set was created: with `loaded` false, how long it has been without keys.
    public var since: Double
    /// When the keys last loaded (seconds since 1970; 0 before the first load).
    public var loadedAt: Double
}

/// The key cache behind the `jwt` check: the last good key set from a JWKS file or URL.
///
/// Loading runs in the background only, never on the caller's thread: a request that finds no key
/// set yet is answered at once (the `jwt` check fails closed with `check_unavailable`) and may
/// start a load, at most once per `retryInterval` and never two at a time. A load runs on the
/// `JWKSRefresher` service given at `init` (the gateway's), else as a task of its own. An unknown
/// `kid` asks for a refresh at most once per `minRefreshInterval`; the request that saw it is denied with
/// `token_unknown_key` and the refresh serves the next one. A failed refresh keeps the last good
/// keys. URLs are fetched with AsyncHTTPClient under a deadline, and the document is capped at
/// `maxDocumentBytes` and `maxKeys` keys. A key that cannot be used (an unsupported `kty` or
/// curve, a short HMAC secret) is skipped with a warning; the others load.
public final class JWTKeySet: Sendable {
    struct State {
        var keys: [String: VerificationKey] = [:]
        var skipped: [String: String] = [:]
        var warnings: [String] = []
        var loaded = false
        var loadedAt: Double = 0
        var generation = 0
        var lastError: String?
        var lastErrorAt: Double?
        var lastAttempt: Double = -.infinity
        var refreshing = false
        /// The warnings last reported, so each set of warnings is reported once.
        var reportedWarnings: [String] = []
    }

    /// The largest JWKS document read (bytes); a larger one is a failed load.
    public static let maxDocumentBytes = 1 << 20
    /// The most keys taken from one JWKS; the rest are ignored with a warning.
    public static let maxKeys = 1_000
    /// The most time a URL fetch may take, connection included (seconds).
    public static let fetchTimeout: Int64 = 10

    public let source: JWKSSource
    /// Least time between two refreshes triggered by unknown key ids.
    public let minRefreshInterval: Double
    /// Keys older than this are refreshed in the background (URL sources).
    public let maxAge: Double
    /// While no key set has loaded, requests start a new attempt at most this often.
    public let retryInterval: Double
    /// When the key set was created (seconds since 1970).
    public let createdAt: Double
    /// Where warnings go (skipped keys): standard error by default, like the gateway's log.
    let report: @Sendable (String) -> Void
    /// Runs the loads this key set starts; nil: each load is a task of its own.
    let refresher: JWKSRefresher?
    let state = Mutex(State())

    public init(
        source: JWKSSource, minRefreshInterval: Double = 10, maxAge: Double = 600, retryInterval: Double? = nil,
        refresher: JWKSRefresher? = nil, report: (@Sendable (String) -> Void)? = nil
    ) {
        self.source = source
        self.refresher = refresher
        self.minRefreshInterval = minRefreshInterval
        self.maxAge = maxAge
        self.retryInterval = retryInterval ?? min(minRefreshInterval, 2)
        self.createdAt = Date().timeIntervalSince1970
        self.report = report ?? JWTKeySet.logToStandardError
        // A configuration reload builds a new key set for the same source: it starts from the last
        // good keys this process loaded from it, so requests never see a gap while it refreshes.
        if let seed = JWTKeySet.lastGood.withLock({ $0[source.cacheKey] }) {
            state.withLock { s in
                s.keys = seed.keys
                s.skipped = seed.skipped
                s.warnings = seed.warnings
                s.reportedWarnings = seed.warnings
                s.loaded = true
                s.loadedAt = seed.loadedAt
                s.generation = 1
            }
        }
    }

    /// The last good load of each source in this process (see `init`).
    struct Seed {
        var keys: [String: VerificationKey]
        var skipped: [String: String]
        var warnings: [String]
        var loadedAt: Double
    }
    static let lastGood = Mutex<[String: Seed]>([:])

    @Sendable static func logToStandardError(_ message: String) {
        let line = "\(TimeText.iso(Date().timeIntervalSince1970)) warning gatehouse : \(DisplayText.escaped(message))\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// The keys as they are now. Never waits and starts nothing.
    public func snapshot() -> KeySetSnapshot {
        state.withLock { s in
            KeySetSnapshot(
                keys: s.keys, loaded: s.loaded, lastError: s.lastError, lastErrorAt: s.lastErrorAt, generation: s.generation,
                skipped: s.skipped, warnings: s.warnings, since: createdAt, loadedAt: s.loadedAt)
        }
    }

    /// Starts a background load when the set has none yet (at most once per `retryInterval`) or
    /// when a URL set is older than `maxAge` (at most once per `minRefreshInterval`). Never waits.
    public func maintain(now: Double) {
        let (loaded, loadedAt) = state.withLock { ($0.loaded, $0.loadedAt) }
        maintain(now: now, loaded: loaded, loadedAt: loadedAt)
    }

    /// `maintain(now:)` for a snapshot just taken: no lock unless a load is due.
    public func maintain(now: Double, after snapshot: KeySetSnapshot) {
        maintain(now: now, loaded: snapshot.loaded, loadedAt: snapshot.loadedAt)
    }

    func maintain(now: Double, loaded: Bool, loadedAt: Double) {
        if !loaded {
            startRefresh(now: now, minGap: retryInterval)
        } else if case .url = source, now - loadedAt > maxAge {
            startRefresh(now: now, minGap: minRefreshInterval)
        }
    }

    /// `snapshot()` after `maintain(now:)`: the current keys, never waiting for a load.
    public func currentKeys(now: Double) -> KeySetSnapshot {
        maintain(now: now)
        return snapshot()
    }

    /// Asks for a background refresh, unless one ran within `minRefreshInterval` (`force` skips the
    /// rate bound but never starts a second concurrent refresh). Returns whether one was started.
    @discardableResult
    public func requestRefresh(now: Double, force: Bool = false) -> Bool {
        startRefresh(now: now, minGap: force ? nil : minRefreshInterval)
    }

    @discardableResult
    func startRefresh(now: Double, minGap: Double?) -> Bool {
        let start = state.withLock { s -> Bool in
            guard !s.refreshing else { return false }
            // The bounds apply to refreshes asked for by requests (unknown kid, stale or missing keys).
            if let minGap {
                if now - s.lastAttempt < minGap { return false }
                s.lastAttempt = now
            }
            s.refreshing = true
            return true
        }
        guard start else { return false }
        guard let refresher else {
            // No refresher owns the loads (a library caller, a unit test, a command that only
            // validates the configuration): the load is a task of its own, bounded by `fetchTimeout`.
            Task.detached { [self] in await self.performRefresh() }
            return true
        }
        guard refresher.submit(self) else {
            // The refresher has stopped: the process is shutting down.
            abandonRefresh()
            return false
        }
        return true
    }

    /// A load that was queued but will never run (its refresher stopped): another may start.
    func abandonRefresh() {
        state.withLock { $0.refreshing = false }
    }

    /// Loads the key set now and waits for it (startup, tests, `token inspect`). Async: never
    /// called on an event loop.
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
        let result: Result<ParsedJWKS, JWKSError>
        do {
            let text = try await fetch()
            result = .success(try await JWTKeySet.load(jwks: text))
        } catch let e as JWKSError {
            result = .failure(e)
        } catch {
            result = .failure(JWKSError("\(source): \(error)"))
        }
        let now = Date().timeIntervalSince1970
        let newWarnings = state.withLock { s -> [String]? in
            s.refreshing = false
            switch result {
            case .success(let parsed):
                s.keys = parsed.keys
                s.skipped = parsed.skipped
                s.warnings = parsed.warnings
                s.loaded = true
                s.generation += 1
                s.loadedAt = now
                s.lastError = nil
                s.lastErrorAt = nil
                JWTKeySet.lastGood.withLock {
                    $0[source.cacheKey] = Seed(keys: parsed.keys, skipped: parsed.skipped, warnings: parsed.warnings, loadedAt: now)
                }
                guard parsed.warnings != s.reportedWarnings else { return nil }
                s.reportedWarnings = parsed.warnings
                return parsed.warnings
            case .failure(let e):
                // The last good keys stay in use.
                s.lastError = e.description
                s.lastErrorAt = now
                return nil
            }
        }
        for w in newWarnings ?? [] { report("\(source): \(w)") }
    }

    func fetch() async throws -> String {
        switch source {
        case .json(let s): return s
        case .file(let path):
            // Only a regular file: opening a FIFO or reading a device could block this task (and
            // the thread under it) for good.
            let attributes: [FileAttributeKey: Any]
            do { attributes = try FileManager.default.attributesOfItem(atPath: path) } catch {
                throw JWKSError("cannot read JWKS file \(path): \(error.localizedDescription)")
            }
            // attributesOfItem does not follow a final symlink: resolve it for the type.
            var type = attributes[.type] as? FileAttributeType
            if type == .typeSymbolicLink {
                type =
                    (try? FileManager.default.attributesOfItem(atPath: (path as NSString).resolvingSymlinksInPath))?[.type]
                    as? FileAttributeType
            }
            guard type == .typeRegular else { throw JWKSError("JWKS file \(path) is not a regular file") }
            guard let h = FileHandle(forReadingAtPath: path) else {
                throw JWKSError("cannot read JWKS file \(path): it does not exist or is not readable")
            }
            defer { try? h.close() }
            let data: Data
            do { data = try h.read(upToCount: Self.maxDocumentBytes + 1) ?? Data() } catch {
                throw JWKSError("cannot read JWKS file \(path): \(error.localizedDescription)")
            }
            guard data.count <= Self.maxDocumentBytes else {
                throw JWKSError("JWKS file \(path) is larger than \(Self.maxDocumentBytes) bytes")
            }
            return String(decoding: data, as: UTF8.self)
        case .url(let u):
            var req = HTTPClientRequest(url: u)
            req.headers.add(name: "Accept", value: "application/jwk-set+json, application/json")
            let response: HTTPClientResponse
            do {
                response = try await HTTPClient.shared.execute(req, deadline: .now() + .seconds(Self.fetchTimeout))
            } catch {
                throw JWKSError("JWKS URL \(u) could not be fetched: \(error)")
            }
            guard response.status.code == 200 else {
                throw JWKSError("JWKS URL \(u) answered HTTP \(response.status.code)")
            }
            if let length = response.headers.first(name: "content-length").flatMap({ Int($0) }), length > Self.maxDocumentBytes {
                throw JWKSError("JWKS URL \(u) sent \(length) bytes; the limit is \(Self.maxDocumentBytes)")
            }
            do {
                let body = try await response.body.collect(upTo: Self.maxDocumentBytes)
                return String(decoding: body.readableBytesView, as: UTF8.self)
            } catch is NIOTooManyBytesError {
                throw JWKSError("JWKS URL \(u) sent more than \(Self.maxDocumentBytes) bytes")
            } catch {
                throw JWKSError("JWKS URL \(u) could not be read: \(error)")
            }
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

    /// A JWKS document read into verifiers, with what was skipped and why.
    public struct ParsedJWKS: Sendable {
        public var keys: [String: VerificationKey]
        /// Skipped keys by kid (`#n`, 1-based, for a key without one): why each was skipped.
        public var skipped: [String: String]
        /// One line per skipped or ignored key.
        public var warnings: [String]
    }

    /// Parses a JWKS document into verifiers (see `load(jwks:)`).
    public static func parse(jwks text: String) async throws -> [String: VerificationKey] {
        try await load(jwks: text).keys
    }

    /// Parses a JWKS document into verifiers. Symmetric (`oct`) keys are read here because jwt-kit's
    /// JWK type covers only RSA, EC and OKP; every signature check still runs in jwt-kit.
    ///
    /// A key that cannot be used (unknown `kty` such as AKP/ML-DSA, a curve such as secp256k1, a
    /// short HMAC secret, a malformed entry) is skipped with a warning and the others load; the
    /// document fails only when it is not a JWKS at all or no key in it is usable.
    public static func load(jwks text: String) async throws -> ParsedJWKS {
        guard text.utf8.count <= maxDocumentBytes else { throw JWKSError("the JWKS is larger than \(maxDocumentBytes) bytes") }
        guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let list = obj["keys"] as? [Any]
        else {
            throw JWKSError("the JWKS is not a JSON object with a \"keys\" array")
        }
        var out: [String: VerificationKey] = [:]
        var skipped: [String: String] = [:]
        var warnings: [String] = []
        if list.count > maxKeys {
            warnings.append("the JWKS holds \(list.count) keys; only the first \(maxKeys) are used")
        }
        for (i, item) in list.prefix(maxKeys).enumerated() {
            guard let entry = item as? [String: Any] else {
                skipped["#\(i + 1)"] = "not a JSON object"
                warnings.append("JWKS key #\(i + 1) skipped: not a JSON object")
                continue
            }
            let kid = entry["kid"] as? String ?? ""
            let name = kid.isEmpty ? "#\(i + 1)" : DisplayText.untrusted(kid, limit: 64)
            func skip(_ why: String) {
                skipped[kid.isEmpty ? "#\(i + 1)" : kid] = why
                warnings.append("JWKS key \(name) skipped: \(why)")
            }
            guard let kty = entry["kty"] as? String else { skip("it has no kty"); continue }
            let ktyText = DisplayText.untrusted(kty, limit: 32)
            if let use = entry["use"] as? String, use != "sig" { continue }
            guard ["RSA", "EC", "OKP", "oct"].contains(kty) else {
                skip("key type \(ktyText) is not supported (supported: RSA, EC P-256/P-384/P-521, OKP Ed25519, oct)")
                continue
            }
            if kty == "EC", let crv = entry["crv"] as? String, !["P-256", "P-384", "P-521"].contains(crv) {
                skip("EC curve \(DisplayText.untrusted(crv, limit: 32)) is not supported (supported: P-256, P-384, P-521)")
                continue
            }
            if kty == "OKP", let crv = entry["crv"] as? String, crv != "Ed25519" {
                skip("OKP curve \(DisplayText.untrusted(crv, limit: 32)) is not supported (supported: Ed25519)")
                continue
            }
            let algs = (entry["alg"] as? String).map { [$0] } ?? algorithms(kty: kty, crv: entry["crv"] as? String)
            let collection = JWTKeyCollection()
            let jwkKid = JWKIdentifier(string: kid.isEmpty ? "_" : kid)
            var verifiers: [String: any JWTAlgorithm] = [:]
            do {
                if kty == "oct" {
                    // Padding is tolerated here (a key, not a token); the rest is strict base64url.
                    guard var k = entry["k"] as? String else { skip("oct key has no k"); continue }
                    while k.hasSuffix("=") { k.removeLast() }
                    guard let secret = Base64URL.decode(k), !secret.isEmpty else { skip("oct key has no usable k"); continue }
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
            } catch {
                skip("it could not be loaded (\(DisplayText.untrusted("\(error)", limit: 200)))")
                continue
            }
            guard !verifiers.isEmpty else {
                let why = kty == "oct" ? " (HS256 needs a key of at least 32 bytes)" : ""
                skip("\(ktyText) key supports none of \(algs.map { DisplayText.untrusted($0, limit: 32) }.joined(separator: ", "))\(why)")
                continue
            }
            if out[kid] != nil { warnings.append("JWKS key \(name) appears more than once; the last one is used") }
            out[kid] = VerificationKey(kid: kid, keyType: kty, verifiers: verifiers)
        }
        guard !out.isEmpty else {
            let why = warnings.isEmpty ? "it lists no signing keys" : warnings.prefix(5).joined(separator: "; ")
            throw JWKSError("the JWKS holds no usable key: \(why)")
        }
        return ParsedJWKS(keys: out, skipped: skipped, warnings: warnings)
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

    /// Strict decoding: only the base64url alphabet, no padding, and the unused low bits of the
    /// last character zero, so each byte string has exactly one encoding. Anything else is nil.
    public static func decode<S: StringProtocol>(_ s: S) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in s.utf8 {
            let v = table[Int(c)]
            guard v >= 0 else { return nil }
            acc = (acc << 6 | UInt32(v)) & 0xFFFF
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
            }
        }
        // A lone trailing character (6 bits) cannot encode a byte.
        if bits >= 6 { return nil }
        // Non-canonical: the bits left over after the last byte must be zero.
        if bits > 0, acc & ((1 << UInt32(bits)) - 1) != 0 { return nil }
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

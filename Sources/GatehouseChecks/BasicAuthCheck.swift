import Crypto
import Foundation
import GatehouseCore
import GatehouseIdentity
import HummingbirdBcrypt
import Synchronization

/// `basic`: HTTP Basic authentication (RFC 7617) against consumers' bcrypt password hashes.
///
/// bcrypt is deliberately slow (tens of milliseconds), too slow to run on every request of a
/// keep-alive client, so a successful verification is remembered by SHA-256 of (user, password,
/// stored hash): changing the password changes the stored hash and invalidates the entry.
///
/// An unknown user (or one without a password) costs a bcrypt verification too, against a fixed
/// dummy hash of the same cost as the last real hash seen, so the answer's timing does not tell
/// which user names exist.
public final class BasicAuthCheck: PolicyCheck, Sendable {
    public let id: String
    public var type: String { "basic" }
    public let realm: String
    public let directory: any CredentialDirectory
    /// Verifies a password against a bcrypt hash (injectable so tests can count verifications).
    let verifyPassword: @Sendable (_ password: String, _ hash: String) -> Bool
    let verified = Mutex<Set<[UInt8]>>([])
    static let cacheLimit = 10_000
    /// Cost of the dummy hash: the cost of the last real hash this check saw, starting from the
    /// last one any basic check in this process saw (so it survives configuration reloads), and
    /// `hashPassword`'s default before that.
    let dummyCost: Mutex<UInt8>
    static let lastCostSeen = Mutex<UInt8>(12)
    /// One dummy hash per cost, made on first use from a random password nobody knows.
    static let dummyHashes = Mutex<[UInt8: String]>([:])

    public init(
        id: String, realm: String = "gatehouse", directory: any CredentialDirectory,
        verifyPassword: (@Sendable (_ password: String, _ hash: String) -> Bool)? = nil
    ) {
        self.id = id
        self.realm = realm
        self.directory = directory
        self.verifyPassword = verifyPassword ?? BasicAuthCheck.verifyBcrypt
        let cost = BasicAuthCheck.lastCostSeen.withLock { $0 }
        dummyCost = Mutex(cost)
        // Make the dummy hash now, off the request path, so the first unknown user does not pay
        // for making it.
        Task.detached { _ = BasicAuthCheck.dummyHash(cost: cost) }
    }

    /// The cost field of a bcrypt hash (`$2b$12$…` → 12).
    static func cost(of hash: String) -> UInt8? {
        let parts = hash.split(separator: "$", omittingEmptySubsequences: true)
        guard parts.count >= 2, let c = UInt8(parts[1]), (4...31).contains(c) else { return nil }
        return c
    }

    /// The default password verifier: bcrypt.
    @Sendable public static func verifyBcrypt(_ password: String, _ hash: String) -> Bool {
        Bcrypt.verify(password, hash: hash)
    }

    /// The dummy hash for `cost`, made once per process and cost from a random password.
    public static func dummyHash(cost: UInt8) -> String {
        if let h = dummyHashes.withLock({ $0[cost] }) { return h }
        let secret = (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 36) }.joined()
        let h = Bcrypt.hash(secret, cost: cost)
        return dummyHashes.withLock { d in
            if let existing = d[cost] { return existing }
            d[cost] = h
            return h
        }
    }

    /// The bcrypt hash the store keeps for a password (what `consumers set-password` writes).
    public static func hashPassword(_ password: String, cost: UInt8 = 12) -> String {
        Bcrypt.hash(password, cost: cost)
    }

    var challenge: HeaderField { HeaderField("WWW-Authenticate", "Basic realm=\"\(realm)\", charset=\"UTF-8\"") }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        guard let auth = request.headers["authorization"], !auth.trimmingSpaces.isEmpty else {
            return .deny(
                Denial(
                    code: .missingCredentials, detail: "\(request.summary) requires a user name and password (HTTP Basic); none was sent",
                    required: ["Authorization: Basic"], presented: [], hint: "Send Authorization: Basic base64(user:password).",
                    headers: [challenge]))
        }
        let t = auth.trimmingSpaces
        guard t.count > 6, t.prefix(6).lowercased() == "basic " else {
            let scheme = t.split(separator: " ").first.map(String.init) ?? ""
            return .deny(
                Denial(
                    code: .missingCredentials,
                    detail: "\(request.summary) requires HTTP Basic credentials; the Authorization header uses the \(scheme) scheme",
                    required: ["Authorization: Basic"], presented: ["Authorization scheme \(scheme)"], headers: [challenge]))
        }
        guard let raw = Data(base64Encoded: String(t.dropFirst(6).trimmingSpaces)), let text = String(data: raw, encoding: .utf8),
            let colon = text.firstIndex(of: ":")
        else {
            return .deny(
                Denial(
                    code: .malformedCredentials, detail: "the Basic credentials are not base64 of user:password",
                    required: ["base64(user:password)"], presented: ["undecodable credentials"], headers: [challenge]))
        }
        let user = String(text[..<colon])
        let password = String(text[text.index(after: colon)...])
        // The user name is the caller's text: bounded and escaped wherever it is shown or stored.
        let userText = DisplayText.untrusted(user)
        guard directory.isAvailable else {
            return .deny(
                Denial(
                    code: .checkUnavailable, detail: "the credential store could not be read, so user \(userText) cannot be verified",
                    presented: ["user \(userText)"], hint: "Retry shortly."))
        }
        let invalid = Denial(
            code: .invalidCredentials, detail: "user \(userText): unknown user or wrong password",
            required: ["a user name and password set with gatehouse consumers set-password"], presented: ["user \(userText)"],
            headers: [challenge])
        guard let consumer = directory.consumer(named: user), let hash = consumer.passwordHash else {
            // Same cost as a known user with a wrong password: one bcrypt verification that fails.
            _ = verifyPassword(password, Self.dummyHash(cost: dummyCost.withLock { $0 }))
            return .deny(invalid)
        }
        if let c = Self.cost(of: hash) {
            dummyCost.withLock { $0 = c }
            Self.lastCostSeen.withLock { $0 = c }
        }
        let cacheKey = Array(SHA256.hash(data: Array((user + "\u{0}" + password + "\u{0}" + hash).utf8)))
        if !verified.withLock({ $0.contains(cacheKey) }) {
            guard verifyPassword(password, hash) else { return .deny(invalid) }
            verified.withLock { set in
                if set.count >= Self.cacheLimit { set.removeAll() }
                set.insert(cacheKey)
            }
        }
        if consumer.status != "active" {
            return .deny(
                Denial(
                    code: .consumerSuspended, detail: "consumer \(consumer.name) is \(consumer.status)",
                    required: ["an active consumer"], presented: ["consumer \(consumer.name)"]))
        }
        var principal = Principal(
            method: "basic", consumerID: consumer.id, consumerName: consumer.name, subject: consumer.name,
            scopes: consumer.scopes, roles: consumer.roles, tenant: consumer.tenant)
        if let existing = request.principal {
            var merged = existing
            merged.merge(principal)
            principal = merged
        }
        request.principal = principal
        return .allow(note: "user \(consumer.name) authenticated by password")
    }
}

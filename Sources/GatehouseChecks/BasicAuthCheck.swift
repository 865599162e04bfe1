import Crypto
import Foundation
import GatehouseCore
import HummingbirdBcrypt
import Synchronization

/// `basic`: HTTP Basic authentication (RFC 7617) against consumers' bcrypt password hashes.
///
/// bcrypt is deliberately slow (tens of milliseconds), too slow to run on every request of a
/// keep-alive client, so a successful verification is remembered by SHA-256 of (user, password,
/// stored hash): changing the password changes the stored hash and invalidates the entry.
public final class BasicAuthCheck: PolicyCheck, Sendable {
    public let id: String
    public var type: String { "basic" }
    public let realm: String
    public let directory: any CredentialDirectory
    let verified = Mutex<Set<[UInt8]>>([])
    static let cacheLimit = 10_000

    public init(id: String, realm: String = "gatehouse", directory: any CredentialDirectory) {
        self.id = id
        self.realm = realm
        self.directory = directory
    }

    /// The bcrypt hash the store keeps for a password (what `consumers set-password` writes).
    public static func hashPassword(_ password: String, cost: UInt8 = 12) -> String {
        Bcrypt.hash(password, cost: cost)
    }

    var challenge: HeaderField { HeaderField("WWW-Authenticate", "Basic realm=\"\(realm)\", charset=\"UTF-8\"") }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        guard let auth = request.headers["authorization"], !auth.trimmingSpaces.isEmpty else {
            return .deny(Denial(code: .missingCredentials, detail: "\(request.summary) requires a user name and password (HTTP Basic); none was sent",
                                required: ["Authorization: Basic"], presented: [], hint: "Send Authorization: Basic base64(user:password).",
                                headers: [challenge]))
        }
        let t = auth.trimmingSpaces
        guard t.count > 6, t.prefix(6).lowercased() == "basic " else {
            let scheme = t.split(separator: " ").first.map(String.init) ?? ""
            return .deny(Denial(code: .missingCredentials, detail: "\(request.summary) requires HTTP Basic credentials; the Authorization header uses the \(scheme) scheme",
                                required: ["Authorization: Basic"], presented: ["Authorization scheme \(scheme)"], headers: [challenge]))
        }
        guard let raw = Data(base64Encoded: String(t.dropFirst(6).trimmingSpaces)), let text = String(data: raw, encoding: .utf8),
              let colon = text.firstIndex(of: ":") else {
            return .deny(Denial(code: .malformedCredentials, detail: "the Basic credentials are not base64 of user:password",
                                required: ["base64(user:password)"], presented: ["undecodable credentials"], headers: [challenge]))
        }
        let user = String(text[..<colon])
        let password = String(text[text.index(after: colon)...])
        guard directory.isAvailable else {
            return .deny(Denial(code: .checkUnavailable, detail: "the credential store could not be read, so user \(user) cannot be verified",
                                presented: ["user \(user)"], hint: "Retry shortly."))
        }
        let invalid = Denial(code: .invalidCredentials, detail: "user \(user): unknown user or wrong password",
                             required: ["a user name and password set with gatehouse consumers set-password"], presented: ["user \(user)"],
                             headers: [challenge])
        guard let consumer = directory.consumer(named: user), let hash = consumer.passwordHash else { return .deny(invalid) }
        let cacheKey = Array(SHA256.hash(data: Array((user + "\u{0}" + password + "\u{0}" + hash).utf8)))
        if !verified.withLock({ $0.contains(cacheKey) }) {
            guard Bcrypt.verify(password, hash: hash) else { return .deny(invalid) }
            verified.withLock { set in
                if set.count >= Self.cacheLimit { set.removeAll() }
                set.insert(cacheKey)
            }
        }
        if consumer.status != "active" {
            return .deny(Denial(code: .consumerSuspended, detail: "consumer \(consumer.name) is \(consumer.status)",
                                required: ["an active consumer"], presented: ["consumer \(consumer.name)"]))
        }
        var principal = Principal(method: "basic", consumerID: consumer.id, consumerName: consumer.name, subject: consumer.name,
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

import Foundation
import GatehouseChecks
import GatehouseCore
import HTTPTypes
import Hummingbird

/// Sign-in attempts counted with the project's `rate_limit` check (`RateLimitCheck` over an
/// `InProcessRateLimitStore`), before any password is checked. Three counts, each a minute long:
///
/// - per client address (`sign_in_per_address`, 20 by default);
/// - per user name *from that address* (`sign_in_per_name_and_address`, 5): guessing one
///   account's password is slow, and a stranger guessing from elsewhere does not lock its owner out;
/// - per user name from every address (`sign_in_per_name`, six times the above, 30): a ceiling on a
///   guessing spread over many addresses.
///
/// Names are lowercased and counted whether or not they exist, so the limit says nothing of which
/// names do; a name longer than `maxNameBytes` is refused before it is counted, so the counters'
/// keys stay small. A refusal is 429 `rate_limited` with `Retry-After`.
///
/// The console's sign-in form and the admin API's Basic authentication share one limiter (the
/// same names, the same passwords); the portal's developers are counted in their own `scope`.
public struct SignInLimiter: Sendable {
    let addressCheck: RateLimitCheck
    let pairCheck: RateLimitCheck
    let nameCheck: RateLimitCheck

    /// The longest user name counted (admin and developer names are far shorter).
    public static let maxNameBytes = 128

    /// `perName` attempts a minute per name and address, `perAddress` per address, and
    /// `perNameAllAddresses` (six times `perName` by default) per name.
    public init(
        perName: Int = 5, perAddress: Int = 20, perNameAllAddresses: Int? = nil,
        store: any RateLimitStore = InProcessRateLimitStore(maxKeys: 200_000)
    ) {
        addressCheck = RateLimitCheck(
            id: "sign_in_per_address", keyParts: [.ip],
            rule: RateLimitRule(windows: [RateWindow(count: perAddress, period: 60, name: "sign-in.per-address")]), store: store,
            headersOnAllowed: false, countsNearLimit: false)
        pairCheck = RateLimitCheck(
            id: "sign_in_per_name_and_address", keyParts: [.consumer, .ip],
            rule: RateLimitRule(windows: [RateWindow(count: perName, period: 60, name: "sign-in.per-name-and-address")]), store: store,
            headersOnAllowed: false, countsNearLimit: false)
        nameCheck = RateLimitCheck(
            id: "sign_in_per_name", keyParts: [.consumer],
            rule: RateLimitRule(windows: [RateWindow(count: perNameAllAddresses ?? perName * 6, period: 60, name: "sign-in.per-name")]),
            store: store, headersOnAllowed: false, countsNearLimit: false)
    }

    /// Counts an attempt by `name` from `address`; throws the refusal when a limit is spent, or
    /// 400 `admin_invalid_request` (uncounted) when the name is longer than `maxNameBytes`.
    /// `scope` keeps kinds of account apart (`admin`, `developer`); `path` is the form's or the
    /// API's (the refusal's detail names it).
    /// The client's address for sign-in counts and the audit log: the connection's peer, or, when
    /// the peer is one of `trusted` (the configuration's `trusted_proxies`, e.g. the TLS proxy the
    /// docs put in front of these listeners), the client its X-Forwarded-For names, resolved as the
    /// data plane does. Without it, every client behind the proxy would share one count.
    public static func clientAddress(_ request: Request, peer: String, trusted: [CIDRBlock]) -> String {
        guard !trusted.isEmpty, let p = IPAddress(peer), trusted.contains(where: { $0.contains(p) }) else { return peer }
        let forwarded = request.headers[values: HTTPField.Name("X-Forwarded-For")!]
        return ClientAddressResolver.resolve(peer: p, forwardedFor: forwarded, trusted: trusted).map { "\($0)" } ?? peer
    }

    public func attempt(
        name: String, address: String, scope: String = "admin", path: String = "/console/sign-in",
        now: Double = Date().timeIntervalSince1970
    ) throws {
        guard name.utf8.count <= Self.maxNameBytes else {
            throw WebRefusal(
                Denial(
                    code: .adminInvalidRequest,
                    detail: "the user name is longer than \(Self.maxNameBytes) bytes; no account has such a name",
                    required: ["a user name of at most \(Self.maxNameBytes) bytes"], presented: ["a name of \(name.utf8.count) bytes"]),
                check: "sign_in")
        }
        let folded = name.lowercased()
        var request = PolicyRequest(
            method: "POST", path: path, clientAddress: IPAddress(address),
            principal: Principal(
                method: "password", consumerID: "sign-in \(scope) " + folded, consumerName: DisplayText.untrusted(folded, limit: 64)),
            routeName: "console_sign_in", now: now)
        for check in [addressCheck, pairCheck, nameCheck] {
            if case .deny(var denial) = check.evaluate(&request) {
                denial.hint =
                    "Wait until the time in Retry-After, then sign in again."
                throw WebRefusal(denial, check: check.id)
            }
        }
    }
}

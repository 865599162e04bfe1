import Foundation
import GatehouseChecks
import GatehouseCore

/// Sign-in attempts counted with the project's `rate_limit` check (`RateLimitCheck` over an
/// `InProcessRateLimitStore`): per client address and per user name (the name lowercased, whether
/// or not it exists, so the limit says nothing of which names do). A refusal is 429
/// `rate_limited` with `Retry-After`, before any password is checked.
public struct SignInLimiter: Sendable {
    let addressCheck: RateLimitCheck
    let nameCheck: RateLimitCheck

    /// `perName` and `perAddress` attempts a minute (5 and 20 by default).
    public init(perName: Int = 5, perAddress: Int = 20, store: any RateLimitStore = InProcessRateLimitStore(maxKeys: 10_000)) {
        addressCheck = RateLimitCheck(
            id: "sign_in_per_address", keyParts: [.ip],
            rule: RateLimitRule(windows: [RateWindow(count: perAddress, period: 60, name: "sign-in.per-address")]), store: store,
            headersOnAllowed: false, countsNearLimit: false)
        nameCheck = RateLimitCheck(
            id: "sign_in_per_name", keyParts: [.consumer],
            rule: RateLimitRule(windows: [RateWindow(count: perName, period: 60, name: "sign-in.per-name")]), store: store,
            headersOnAllowed: false, countsNearLimit: false)
    }

    /// Counts an attempt by `name` from `address`; throws the refusal when either limit is spent.
    /// `path`: the sign-in form's (the refusal's detail names it).
    public func attempt(name: String, address: String, path: String = "/console/sign-in", now: Double = Date().timeIntervalSince1970) throws {
        let folded = name.lowercased()
        var request = PolicyRequest(
            method: "POST", path: path, clientAddress: IPAddress(address),
            principal: Principal(
                method: "password", consumerID: "sign-in " + folded, consumerName: DisplayText.untrusted(folded, limit: 64)),
            routeName: "console_sign_in", now: now)
        for check in [addressCheck, nameCheck] {
            if case .deny(var denial) = check.evaluate(&request) {
                denial.hint =
                    "Wait until the time in Retry-After, then sign in again; an administrator can also reset a forgotten password."
                throw WebRefusal(denial, check: check.id)
            }
        }
    }
}

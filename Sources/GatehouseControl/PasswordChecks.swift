import Dispatch
import GatehouseCore
import Synchronization

/// Password checks and hashes (bcrypt, about 0.3 s each at cost 12) run one at a time on a queue
/// of their own, with at most `limit` waiting: a flood of Basic attempts then costs one core and is
/// answered 503 beyond the queue, while token requests, the other handlers and the data plane's
/// snapshot refresh keep their threads.
public final class PasswordChecks: Sendable {
    /// The admin API's: Basic authentication and the hashes of passwords it sets.
    public static let shared = PasswordChecks(limit: 8)
    /// The console's sign-in form: a budget of its own, so that a flood of Basic attempts on the
    /// API never makes a browser sign-in wait or fail busy.
    public static let webSignIn = PasswordChecks(limit: 8, label: "gatehouse.web.sign-in-checks")
    /// The developer portal's sign-in form: apart from the console's, so that the public portal's
    /// sign-ins never make an operator's console sign-in wait or fail busy.
    public static let portalSignIn = PasswordChecks(limit: 8, label: "gatehouse.portal.sign-in-checks")

    let limit: Int
    private let queue: DispatchQueue
    private let waiting = Mutex(0)

    public init(limit: Int, label: String = "gatehouse.admin.password-checks") {
        self.limit = limit
        queue = DispatchQueue(label: label)
    }

    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        let admitted = waiting.withLock { n -> Bool in
            guard n < limit else { return false }
            n += 1
            return true
        }
        guard admitted else {
            throw ControlError(
                Denial(
                    code: .gatewayBusy, status: 503,
                    detail: "\(limit) password checks are already waiting; this one was not queued",
                    required: ["fewer concurrent Basic authentications"], presented: ["more than \(limit) waiting"],
                    hint: "Retry shortly, or authenticate with an admin token (Bearer), which costs no password check.",
                    headers: [HeaderField("Retry-After", "1")]))
        }
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                let result = Result { try work() }
                self.waiting.withLock { $0 -= 1 }
                continuation.resume(with: result)
            }
        }
    }
}

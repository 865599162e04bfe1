import Dispatch
import GatehouseCore
import Synchronization

/// Password checks and hashes (bcrypt, about 0.3 s each at cost 12) run one at a time on a queue
/// of their own, with at most `limit` waiting: a flood of Basic attempts then costs one core and is
/// answered 503 beyond the queue, while token requests, the other handlers and the data plane's
/// snapshot refresh keep their threads.
public final class PasswordChecks: Sendable {
    public static let shared = PasswordChecks(limit: 8)

    let limit: Int
    private let queue = DispatchQueue(label: "gatehouse.admin.password-checks")
    private let waiting = Mutex(0)

    public init(limit: Int) { self.limit = limit }

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

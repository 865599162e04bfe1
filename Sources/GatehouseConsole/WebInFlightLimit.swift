import GatehouseCore
import Hummingbird
import Synchronization

/// A bound on the console's (or the portal's) requests handled at once (each can hold a thread for as long as the
/// store takes, as the admin API's do): beyond it, 503 `gateway_busy` with `Retry-After`, at once.
public struct WebInFlightLimit<Context: RequestContext>: RouterMiddleware {
    final class Count: Sendable {
        let value = Atomic<Int>(0)
    }

    let limit: Int
    /// What the refusal calls the interface (`console`, `portal`); also its `check`.
    let name: String
    let count = Count()

    public init(limit: Int, name: String = "console") {
        self.limit = limit
        self.name = name
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard count.value.add(1, ordering: .relaxed).newValue <= limit else {
            count.value.subtract(1, ordering: .relaxed)
            throw WebRefusal(
                Denial(
                    code: .gatewayBusy, status: 503, detail: "the \(name) is handling as many requests as it allows at once (\(limit))",
                    required: ["fewer concurrent \(name) requests"], presented: ["more than \(limit) at once"], hint: "Retry shortly.",
                    headers: [HeaderField("Retry-After", "1")]),
                check: name)
        }
        defer { count.value.subtract(1, ordering: .relaxed) }
        return try await next(request, context)
    }
}

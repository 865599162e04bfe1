import ServiceLifecycle
import Synchronization

/// Runs the JWKS loads of the `jwt` key sets made with it, as child tasks of one task group that
/// this service owns.
///
/// A key set never loads on the caller's task: each load it starts (first load, unknown `kid`,
/// keys older than `max_age`) is queued here, also before `run()` starts (the configuration is
/// built, and its first loads asked for, before the service group runs). `run()` takes the loads
/// until graceful shutdown or cancellation, then cancels those still running (a fetch under
/// AsyncHTTPClient stops at once; the key set keeps its last good keys) and returns when they have
/// ended. A load asked for after that is not run. `waitForQueuedLoads(upTo:)` lets a server
/// start serving once the first loads are in.
///
/// A key set made without a refresher (a library caller, the `check` and `keys` commands, unit
/// tests) runs each load as a task of its own; the gateway always passes one.
public final class JWKSRefresher: Service, Sendable {
    let loads: AsyncStream<JWTKeySet>
    let continuation: AsyncStream<JWTKeySet>.Continuation
    /// Loads queued or running.
    let outstanding = Mutex(0)

    public init() {
        (loads, continuation) = AsyncStream.makeStream(of: JWTKeySet.self)
    }

    /// Queues a load; false once `run()` has ended.
    func submit(_ keySet: JWTKeySet) -> Bool {
        outstanding.withLock { $0 += 1 }
        if case .enqueued = continuation.yield(keySet) { return true }
        outstanding.withLock { $0 -= 1 }
        return false
    }

    /// Waits until no load is queued or running, at most `limit`; whether they all ended. Needs
    /// `run()` to be running (in the same service group).
    public func waitForQueuedLoads(upTo limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while outstanding.withLock({ $0 }) > 0 {
            guard ContinuousClock.now < deadline, !Task.isCancelled else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    public func run() async throws {
        let loads = self.loads
        await withDiscardingTaskGroup { group in
            for await keySet in loads.cancelOnGracefulShutdown() {
                group.addTask {
                    await keySet.performRefresh()
                    self.outstanding.withLock { $0 -= 1 }
                }
            }
            group.cancelAll()
        }
        continuation.finish()
        // Loads queued as the loop ended never ran: their key sets may start others.
        for await keySet in loads {
            keySet.abandonRefresh()
            outstanding.withLock { $0 -= 1 }
        }
    }
}

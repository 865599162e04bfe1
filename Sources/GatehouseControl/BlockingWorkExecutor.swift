// Hand-written: swift-nio's thread pool is not a task executor, and Swift's only executor for
// blocking work is the cooperative pool itself. A task executor is a few lines over Dispatch.
import Dispatch

/// A task executor whose jobs run on Dispatch's worker threads: async code that must block (the
/// control plane waiting on SQLite or on PostgreSQL) runs there under
/// `withTaskExecutorPreference`, so a slow store holds Dispatch threads (which Dispatch adds to,
/// up to its limit) instead of the cooperative pool's few threads, which the gateway's other
/// services (JWKS loads, the credential refresh, `/healthz`) need.
public final class BlockingWorkExecutor: TaskExecutor, Sendable {
    let queue: DispatchQueue

    /// The admin listener's: the admin API's and the console's handlers.
    public static let admin = BlockingWorkExecutor(label: "gatehouse.admin")

    public init(label: String) {
        queue = DispatchQueue(label: label, attributes: .concurrent)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}

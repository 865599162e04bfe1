import Logging
import ServiceLifecycle

/// Keeps a `StoreDirectory`'s snapshot current: every `interval` it asks the directory to reload,
/// which re-reads consumers, keys, services and subscriptions only when the store's revision changed.
///
/// A `Service`: `run()` loops until graceful shutdown or cancellation and then returns, so the
/// refresh has an owner and ends with it (no thread or task is left behind). A reload is one
/// short SQLite read of the revision, so it runs on the task itself.
public struct CredentialRefresher: Service, CustomStringConvertible {
    public let directory: StoreDirectory
    /// Time between two polls of the store's revision.
    public let interval: Duration

    /// Polls every `directory.refreshInterval` seconds unless `interval` is given.
    public init(directory: StoreDirectory, interval: Duration? = nil) {
        self.directory = directory
        self.interval = interval ?? .milliseconds(Int64((max(directory.refreshInterval, 0.001) * 1000).rounded()))
    }

    public var description: String { "CredentialRefresher" }

    public func run() async throws {
        let directory = self.directory
        let interval = self.interval
        // Graceful shutdown cancels the loop; its CancellationError is the normal way out.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                directory.refresh()
            }
        }
    }
}

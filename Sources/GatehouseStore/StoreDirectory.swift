import Foundation

import GatehouseCore
import GatehouseIdentity
import Logging
import Synchronization

/// The request path's view of consumers and keys: an in-memory snapshot of the store, reloaded when
/// the store's revision changes (polled every `refreshInterval` by a `CredentialRefresher`), so
/// `gatehouse keys create` or `revoke` on a running gateway takes effect within about a second
/// without a lookup per request.
public final class StoreDirectory: CredentialDirectory, Sendable {
    struct Snapshot {
        var revision: Int64 = -1
        var keys: [String: KeyRecord] = [:]
        var consumers: [String: ConsumerRecord] = [:]
        var consumersByName: [String: ConsumerRecord] = [:]
        var loaded = false
    }

    let store: SQLiteStore
    let state = Mutex(Snapshot())
    /// How often a `CredentialRefresher` polls the store's revision (seconds).
    public let refreshInterval: Double
    let logger: Logger
    let lastMissRefresh = Mutex<ContinuousClock.Instant?>(nil)
    let missRefreshInterval = Duration.milliseconds(200)

    public init(store: SQLiteStore, refreshInterval: Double = 1.0, logger: Logger = Logger(label: "gatehouse.store")) {
        self.store = store
        self.refreshInterval = refreshInterval
        self.logger = logger
        refresh()
    }

    /// Reloads the snapshot if the store changed. A failed reload keeps the last good snapshot.
    public func refresh() {
        do {
            let current = state.withLock { $0.revision }
            let rev = try store.revision()
            guard rev != current else { return }
            let snap = try store.credentialSnapshot()
            var next = Snapshot(revision: snap.revision, loaded: true)
            for k in snap.keys { next.keys[k.keyID] = k }
            for c in snap.consumers {
                next.consumers[c.id] = c
                next.consumersByName[c.name] = c
            }
            state.withLock { $0 = next }
        } catch {
            logger.error("credential snapshot reload failed; keeping the last one", metadata: ["error": "\(error)"])
        }
    }

    /// The key with this id. A miss re-reads the store first (at most every `missRefreshInterval`):
    /// a key created a moment ago by `gatehouse keys create` works on its first use instead of
    /// after the next poll, while a stream of unknown ids costs at most a few store reads a second.
    public func key(id: String) -> KeyRecord? {
        if let k = state.withLock({ $0.keys[id] }) { return k }
        let now = ContinuousClock.now
        let due = lastMissRefresh.withLock { last -> Bool in
            if let l = last, now - l < missRefreshInterval { return false }
            last = now
            return true
        }
        guard due else { return nil }
        refresh()
        return state.withLock { $0.keys[id] }
    }
    public func consumer(id: String) -> ConsumerRecord? { state.withLock { $0.consumers[id] } }
    public func consumer(named name: String) -> ConsumerRecord? { state.withLock { $0.consumersByName[name] } }
    public var isAvailable: Bool { state.withLock { $0.loaded } }
}

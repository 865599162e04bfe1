import Foundation

import GatehouseCore
import GatehouseIdentity
import Logging
import Synchronization

/// The request path's view of consumers, keys, services and subscriptions: an in-memory snapshot of the store, reloaded when
/// the store's revision changes (polled every `refreshInterval` by a `CredentialRefresher`), so
/// `gatehouse keys create` or `revoke` on a running gateway takes effect within about a second
/// without a lookup per request.
public final class StoreDirectory: CredentialDirectory, SubscriptionDirectory, Sendable {
    struct Snapshot {
        var revision: Int64 = -1
        var keys: [String: KeyRecord] = [:]
        var consumers: [String: ConsumerRecord] = [:]
        var consumersByName: [String: ConsumerRecord] = [:]
        var services: [String: ServiceRecord] = [:]
        /// By application id, then service name.
        var subscriptions: [String: [String: SubscriptionRecord]] = [:]
        /// A JWT principal's consumer id (`jwt <iss>|<sub>`) → the application it acts as.
        var applicationsByIdentity: [String: String] = [:]
        var loaded = false
    }

    /// Set at init or later by `attach` (the gateway builds its checks, which hold the directory,
    /// before it knows from the same configuration where the store is).
    let storeBox = Mutex<SQLiteStore?>(nil)
    let state = Mutex(Snapshot())
    /// How often a `CredentialRefresher` polls the store's revision (seconds).
    public let refreshInterval: Double
    let logger: Logger
    let lastMissRefresh = Mutex<ContinuousClock.Instant?>(nil)
    let missRefreshInterval = Duration.milliseconds(200)

    /// Without a store the directory is empty and unavailable (`isAvailable` false: checks that
    /// need it answer `check_unavailable`) until `attach`.
    public init(store: SQLiteStore? = nil, refreshInterval: Double = 1.0, logger: Logger = Logger(label: "gatehouse.store")) {
        storeBox.withLock { $0 = store }
        self.refreshInterval = refreshInterval
        self.logger = logger
        refresh()
    }

    /// Gives the directory its store and loads the snapshot.
    public func attach(_ store: SQLiteStore) {
        storeBox.withLock { $0 = store }
        refresh()
    }

    /// Reloads the snapshot if the store changed. A failed reload keeps the last good snapshot.
    public func refresh() {
        guard let store = storeBox.withLock({ $0 }) else { return }
        do {
            let current = state.withLock { $0.revision }
            let rev = try store.revision()
            guard rev != current else { return }
            let snap = try store.snapshot()
            var next = Snapshot(revision: snap.revision, loaded: true)
            for k in snap.keys { next.keys[k.keyID] = k }
            for c in snap.consumers {
                next.consumers[c.id] = c
                next.consumersByName[c.name] = c
            }
            for v in snap.services { next.services[v.name] = v }
            for s in snap.subscriptions { next.subscriptions[s.applicationID, default: [:]][s.service] = s }
            for j in snap.jwtSubjects {
                next.applicationsByIdentity[Principal.jwtConsumerID(issuer: j.issuer, subject: j.subject, policy: "", fingerprint: "")] =
                    j.applicationID
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
    public func service(named name: String) -> ServiceRecord? { state.withLock { $0.services[name] } }
    public func application(identity: String) -> String? { state.withLock { $0.applicationsByIdentity[identity] } }
    public func subscription(application applicationID: String, service: String) -> SubscriptionRecord? {
        state.withLock { $0.subscriptions[applicationID]?[service] }
    }
}

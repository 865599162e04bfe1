import Foundation
import GatehouseStore
import Logging
import Metrics
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// One gateway node of a cluster: keeps its local copy of what the data plane reads in step with
/// the cluster store, delivers its call log there, and reports itself.
///
/// The request path never waits on PostgreSQL. It reads the node's local SQLite file, as a
/// standalone gateway does; this service, on a thread of its own, copies the replicated tables
/// into that file whenever the cluster store's revision moves (told by `NOTIFY
/// gatehouse_changes`, checked every `interval` as well), then reloads the data plane's snapshot.
/// While PostgreSQL is unreachable the node keeps enforcing the last copy it made (revoked stays
/// revoked, valid stays valid), says how old it is (`/status`, `gatehouse_snapshot_age_seconds`,
/// a log line when the store goes and comes back), spools its call log on local disk, and
/// delivers the spool when the store returns: each record once (the cluster store is keyed by
/// node, request id and time, and the node advances its mark only after a delivery commits).
public final class ClusterNode: Service, Sendable, CustomStringConvertible {
    public struct Settings: Sendable {
        public var nodeID: String
        public var address: String?
        public var version: String
        /// Time between two revision checks, spool deliveries and heartbeats.
        public var interval: Double = 1
        /// The cluster call log's retention: day partitions wholly older are dropped.
        public var retention: Double?

        public init(nodeID: String, address: String?, version: String, interval: Double = 1, retention: Double? = nil) {
            self.nodeID = nodeID
            self.address = address
            self.version = version
            self.interval = interval
            self.retention = retention
        }
    }

    /// What the node knows of its cluster store, for `/status`.
    public struct Status: Sendable, Codable, Equatable {
        public var node: String
        public var storeReachable: Bool
        /// The cluster store's revision the local copy is at (nil before the first copy).
        public var revision: Int64?
        /// Seconds since the local copy was last confirmed current.
        public var snapshotAge: Double?
        /// Call-log records on local disk not yet delivered.
        public var spooled: Int
        /// Seconds from a change's commit to this node's copy of it (the last one seen).
        public var propagationLag: Double?
        /// Why the store is unreachable, when it is.
        public var lastError: String?
    }

    public let settings: Settings
    public let store: PGStore
    public let local: SQLiteStore
    let directory: StoreDirectory
    let logger: Logger
    let state: Mutex<Status>
    let startedAt = Date().timeIntervalSince1970
    let wake = DispatchSemaphore(value: 0)
    let stopping = Atomic<Bool>(false)
    let listener = Mutex<PostgresConnection?>(nil)
    /// The commit time (seconds since 1970) of the newest change notified and not yet copied.
    let notifiedAt = Mutex<Double?>(nil)
    let lastMaintenance = Mutex<Double>(0)
    let gauges: Gauges

    struct Gauges: Sendable {
        let reachable = Gauge(label: "gatehouse_store_reachable")
        let snapshotAge = Gauge(label: "gatehouse_snapshot_age_seconds")
        let propagationLag = Gauge(label: "gatehouse_propagation_lag_seconds")
        let spooled = Gauge(label: "gatehouse_calllog_spooled_records")
    }

    let undeliverable = Counter(label: "gatehouse_calllog_undeliverable_total")

    public var description: String { "ClusterNode(\(settings.nodeID))" }

    deinit {
        if let c = listener.withLock({ $0 }) { PGDatabase.close(c) }
    }

    public init(settings: Settings, store: PGStore, local: SQLiteStore, directory: StoreDirectory, logger: Logger) throws {
        self.settings = settings
        self.store = store
        self.local = local
        self.directory = directory
        self.logger = logger
        let replica = try local.replicaState()
        state = Mutex(
            Status(
                node: settings.nodeID, storeReachable: false, revision: replica?.revision,
                snapshotAge: replica.map { max(0, Date().timeIntervalSince1970 - $0.confirmedAt) }, spooled: 0, propagationLag: nil,
                lastError: nil))
        gauges = Gauges()
        try local.startSpool()
    }

    public var status: Status {
        var s = state.withLock { $0 }
        if let r = try? local.replicaState() { s.snapshotAge = max(0, Date().timeIntervalSince1970 - r.confirmedAt) }
        return s
    }

    /// Prepares the node before it serves: applies the cluster store's migrations and copies the
    /// replicated tables. With the store unreachable, a node that has a local copy starts from it
    /// (and says so); one without refuses to start, since it could only deny or guess.
    public func prepare() throws {
        do {
            let applied = try store.migrate()
            if !applied.isEmpty { logger.info("cluster store migrated", metadata: ["applied": "\(applied.joined(separator: ", "))"]) }
            try sync(force: true)
        } catch let e as SQLError {
            guard case .unavailable = e, let replica = try local.replicaState() else {
                if case .unavailable = e {
                    throw SQLError.unavailable(
                        "\(e); this node has no local snapshot yet (\(local.path)), so it cannot start until the cluster store is reachable"
                    )
                }
                throw e
            }
            let age = Date().timeIntervalSince1970 - replica.confirmedAt
            logger.error(
                "cluster store unreachable at start: serving from the local snapshot (revision \(replica.revision), \(Self.duration(age)) old) until it returns",
                metadata: ["error": "\(e)", "snapshot": "\(local.path)"])
            markUnreachable(e)
            directory.refresh()
        }
    }

    public func run() async throws {
        let done = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            loop()
            done.signal()
        }
        thread.name = "gatehouse-cluster"
        thread.start()
        await withGracefulShutdownHandler {
            while !stopping.load(ordering: .relaxed) && !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
            }
        } onGracefulShutdown: { [self] in
            stopping.store(true, ordering: .relaxed)
            wake.signal()
        }
        stopping.store(true, ordering: .relaxed)
        wake.signal()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                done.wait()
                c.resume()
            }
        }
        listener.withLock { c in
            if let c { PGDatabase.close(c) }
            c = nil
        }
        store.database.closeConnections()
    }

    /// Stops the loop (tests; `run()` does it at shutdown).
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        wake.signal()
    }

    func loop() {
        while !stopping.load(ordering: .relaxed) {
            step()
            _ = wake.wait(timeout: .now() + .milliseconds(Int(settings.interval * 1000)))
            // Several notifications in a burst are one copy.
            while wake.wait(timeout: .now()) == .success {}
        }
        // At shutdown: one last delivery of what the writer flushed.
        try? deliverSpool()
    }

    /// One round: listen, copy if the revision moved, deliver the spool, heartbeat, maintain.
    public func step() {
        // Each phase on its own: a copy that fails does not stop the call log's delivery, nor
        // the other way round; the node reports itself whatever failed.
        var failure: (any Error)?
        do {
            try ensureListening()
            // A notification means a change: copy whatever the revision says.
            try sync(force: notifiedAt.withLock { $0 != nil })
        } catch {
            failure = error
        }
        do { try deliverSpool() } catch { failure = failure ?? error }
        // Retention and partitions: a failure is logged and retried later, not an outage.
        do { try maintain() } catch {
            lastMaintenance.withLock { $0 = Date().timeIntervalSince1970 - 3600 + 300 }
            logger.error("cluster call-log maintenance failed; retrying in 5 min", metadata: ["error": "\(error)"])
        }
        if let failure { markUnreachable(failure) } else { markReachable() }
        try? heartbeat()
        let s = status
        gauges.reachable.record(s.storeReachable ? 1 : 0)
        gauges.snapshotAge.record(s.snapshotAge ?? 0)
        gauges.spooled.record(s.spooled)
        if let lag = s.propagationLag { gauges.propagationLag.record(lag) }
    }

    func ensureListening() throws {
        if let c = listener.withLock({ $0 }), !c.isClosed { return }
        let c = try store.database.connect()
        // Weak: the connection outlives neither the node nor its database (a strong reference
        // would keep both alive from the connection's own event loop).
        c.addListener(channel: "gatehouse_changes") { [weak self] _, message in
            guard let self else { return }
            // Payload: "REVISION COMMIT_TIME", or "epoch N" from `gatehouse cluster resync`.
            let parts = message.payload.split(separator: " ")
            let t = parts.first == "epoch" ? Date().timeIntervalSince1970 : parts.count == 2 ? Double(parts[1]) : nil
            if let t { notifiedAt.withLock { $0 = max($0 ?? 0, t) } }
            wake.signal()
        }
        listener.withLock { $0 = c }
    }

    /// Copies the replicated tables when the cluster store's revision differs from the copy's
    /// (or always, with `force`), then reloads the data plane's snapshot.
    func sync(force: Bool) throws {
        let now = Date().timeIntervalSince1970
        let remote = try store.version()
        let replica = try local.replicaState()
        // The epoch tells a restored or failed-over store apart from the one the copy was made
        // of, even at the same revision number.
        if !force, let replica, remote.revision == replica.revision, remote.epoch == replica.epoch {
            try local.confirmReplica(at: now)
            state.withLock { $0.revision = remote.revision }
            return
        }
        let rows = try store.replicaRows()
        try local.replaceReplica(rows.tables, revision: rows.revision, epoch: rows.epoch, at: Date().timeIntervalSince1970)
        directory.refresh()
        let applied = Date().timeIntervalSince1970
        let lag = notifiedAt.withLock { t -> Double? in
            defer { t = nil }
            return t.map { max(0, applied - $0) }
        }
        state.withLock {
            $0.revision = rows.revision
            if let lag { $0.propagationLag = lag }
        }
        logger.debug("cluster snapshot copied", metadata: ["revision": "\(rows.revision)"])
    }

    /// Delivers undelivered call-log records, a thousand at a time, until none are left.
    func deliverSpool() throws {
        while true {
            let rows = try local.spooledCalls(limit: 1000)
            guard let last = rows.last else { break }
            try deliver(rows)
            try local.setShippedRow(last["rid"])
            if rows.count < 1000 { break }
        }
        let n = try local.spooledCount()
        state.withLock { $0.spooled = n }
    }

    /// Delivers `rows`. A failure that is not the store being away (a day partition another
    /// node's retention dropped) is retried once with the partitions looked up again. When the
    /// store refuses the data itself (a data exception, SQLSTATE 22/23/54000), the batch is
    /// narrowed down by halves: the records it accepts are delivered, and one it refuses is
    /// logged and left in the local log only (counted in `gatehouse_calllog_undeliverable_total`),
    /// so that one bad record cannot stop the node's delivery for good. Any other failure (the
    /// store away, full, read-only) leaves the batch for the next round.
    func deliver(_ rows: [SQLRow]) throws {
        do {
            try store.deliverCalls(node: settings.nodeID, rows)
            return
        } catch let e as SQLError where !e.isUnavailable {
            store.forgetPartitions()
            do {
                try store.deliverCalls(node: settings.nodeID, rows)
                return
            } catch SQLError.rejectedData(let e) {
                guard rows.count > 1 else {
                    undeliverable.increment()
                    logger.error(
                        "a call-log record cannot be stored in the cluster store; it stays in this node's local log",
                        metadata: ["request_id": "\((rows.first?["request_id"] as String?) ?? "?")", "error": "\(e)"])
                    return
                }
                try deliver(Array(rows[..<(rows.count / 2)]))
                try deliver(Array(rows[(rows.count / 2)...]))
            }
        }
    }

    func heartbeat() throws {
        let s = status
        try store.heartbeat(
            NodeStatus(
                id: settings.nodeID, address: settings.address, version: settings.version, revision: s.revision, snapshotAge: s.snapshotAge,
                spooled: Int64(s.spooled), startedAt: startedAt, heartbeatAt: Date().timeIntervalSince1970))
    }

    /// Hourly: the next days' partitions, and retention.
    func maintain() throws {
        let now = Date().timeIntervalSince1970
        guard now - lastMaintenance.withLock({ $0 }) > 3600 else { return }
        let today = PGStore.day(now)
        try store.ensurePartitions([today, today + 1])
        if let retention = settings.retention {
            let dropped = try store.dropPartitions(before: now - retention)
            if !dropped.isEmpty { logger.info("cluster call log retention dropped \(dropped.joined(separator: ", "))") }
        }
        lastMaintenance.withLock { $0 = now }
    }

    func markReachable() {
        let was = state.withLock { s -> Status in
            defer {
                s.storeReachable = true
                s.lastError = nil
            }
            return s
        }
        if !was.storeReachable && was.lastError != nil {
            logger.notice(
                "cluster store reachable again: the local snapshot is current and the spooled call log delivered",
                metadata: ["revision": "\(state.withLock { $0.revision ?? 0 })"])
        }
    }

    func markUnreachable(_ error: any Error) {
        // `/status` is unauthenticated: it says what kind of failure, the log says the rest.
        let text = (error as? SQLError)?.isUnavailable == true ? "unreachable" : "error (see the gateway log)"
        let wasReachable = state.withLock { s -> Bool in
            defer {
                s.storeReachable = false
                s.lastError = text
            }
            return s.storeReachable || s.lastError == nil
        }
        // A listener on a dead connection is replaced at the next round.
        listener.withLock { c in
            if let conn = c, conn.isClosed {
                PGDatabase.close(conn)
                c = nil
            }
        }
        if wasReachable {
            let age = status.snapshotAge.map(Self.duration) ?? "unknown"
            logger.error(
                "cluster store unreachable: enforcing from the local snapshot (\(age) old); the call log is spooled on local disk until it returns",
                metadata: ["error": "\(error)", "snapshot": "\(local.path)"])
        }
    }

    static func duration(_ s: Double) -> String {
        s < 120 ? String(format: "%.0f s", s) : s < 7200 ? String(format: "%.0f min", s / 60) : String(format: "%.1f h", s / 3600)
    }
}

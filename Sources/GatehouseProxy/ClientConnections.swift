import GatehouseHTTP1
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Every open client connection, per event loop: the connection cap, the client time limits and
/// the shutdown deadline act on them.
///
/// The time limits are enforced by one sweep per event loop (every `sweepInterval`), not by a timer
/// per connection: a request then schedules and cancels nothing for them, and a timeout fires at
/// most one interval late.
package final class ClientConnections: @unchecked Sendable {
    // @unchecked: `loops`, `open` and `refused` are guarded by `lock`; each LoopConnections is then
    // used only on its own event loop.
    private let lock = NIOLock()
    private var loops: [ObjectIdentifier: LoopConnections] = [:]
    private var open = 0
    private var refusedCount = 0
    private var lastRefusalWarning: UInt64 = 0
    private var buffered = 0
    package static let sweepInterval = TimeAmount.milliseconds(250)
    /// Run on each event loop at the end of its sweep (the metrics' buffered durations).
    private let afterSweep: @Sendable () -> Void

    package init(afterSweep: @escaping @Sendable () -> Void = {}) {
        self.afterSweep = afterSweep
    }

    package func loop(for eventLoop: any EventLoop) -> LoopConnections {
        lock.withLock {
            let id = ObjectIdentifier(eventLoop)
            if let l = loops[id] { return l }
            let l = LoopConnections(eventLoop: eventLoop, afterSweep: afterSweep)
            loops[id] = l
            return l
        }
    }

    package func all() -> [LoopConnections] { lock.withLock { Array(loops.values) } }

    /// Counts a new connection; returns the number now open (this one included).
    package func opened() -> Int {
        lock.withLock {
            open += 1; return open
        }
    }
    package func closed() { lock.withLock { open -= 1 } }
    package func refused() { lock.withLock { refusedCount += 1 } }
    package var openCount: Int { lock.withLock { open } }

    /// Takes `n` bytes of the process-wide budget for buffered request bodies; false when it would
    /// pass `limit` (the caller answers 503 instead of buffering).
    func reserveBuffered(_ n: Int, limit: Int) -> Bool {
        lock.withLock {
            guard buffered + n <= limit else { return false }
            buffered += n
            return true
        }
    }
    func releaseBuffered(_ n: Int) { if n > 0 { lock.withLock { buffered -= n } } }

    /// Appends `piece` to the exchange's buffered body when the budget allows; false otherwise.
    func buffer(_ piece: ByteBuffer, for ex: Exchange, limit: Int) -> Bool {
        guard reserveBuffered(piece.readableBytes, limit: limit) else { return false }
        ex.reservedBytes += piece.readableBytes
        var b = piece
        ex.bufferedBody?.writeBuffer(&b)
        return true
    }

    /// Gives back the budget an exchange holds.
    func releaseBuffered(of ex: Exchange) {
        releaseBuffered(ex.reservedBytes)
        ex.reservedBytes = 0
    }
    package var bufferedBytes: Int { lock.withLock { buffered } }

    /// At most one refusal warning every 10 s.
    package func shouldWarnRefusal() -> Bool {
        let now = NIODeadline.now().uptimeNanoseconds
        return lock.withLock {
            guard lastRefusalWarning == 0 || now &- lastRefusalWarning > 10_000_000_000 else { return false }
            lastRefusalWarning = now
            return true
        }
    }
    package var refusedTotal: Int { lock.withLock { refusedCount } }

    /// The default connection cap: half the descriptors the process may open (each proxied client
    /// connection can hold an upstream connection too), less a reserve for the store and listeners.
    package static func defaultMaxConnections() -> Int {
        var lim = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0 else { return 4096 }
        let soft = Int(min(lim.rlim_cur, 1 << 20))
        return max(16, (soft - 64) / 2)
    }

    /// Raises the soft descriptor limit to the hard one (at most 1,048,576), as servers commonly do
    /// at start: systemd's default soft limit of 1,024 is far below what a proxy needs.
    package static func raiseDescriptorLimit() {
        var lim = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim) == 0 else { return }
        let want = min(lim.rlim_max, 1 << 20)
        guard lim.rlim_cur < want else { return }
        lim.rlim_cur = want
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lim)
    }
}

/// The client connections of one event loop. Used only on that loop.
package final class LoopConnections: @unchecked Sendable {
    // @unchecked: touched only on `eventLoop` (handlers register, sweep and unregister there).
    package let eventLoop: any EventLoop
    private var handlers: [ObjectIdentifier: GatewayHandler] = [:]
    private var sweep: RepeatedTask?
    private var stopped = false
    /// A coarse clock (uptime ns), set at each sweep and when a connection arrives: for the
    /// client-limit stamps taken on the hot path, which need no more than the sweep's resolution.
    private(set) var now: UInt64 = NIODeadline.now().uptimeNanoseconds

    private let afterSweep: @Sendable () -> Void

    init(eventLoop: any EventLoop, afterSweep: @escaping @Sendable () -> Void) {
        self.eventLoop = eventLoop
        self.afterSweep = afterSweep
    }

    func add(_ handler: GatewayHandler) {
        now = NIODeadline.now().uptimeNanoseconds
        handlers[ObjectIdentifier(handler)] = handler
        if sweep == nil, !stopped {
            sweep = eventLoop.scheduleRepeatedTask(initialDelay: ClientConnections.sweepInterval, delay: ClientConnections.sweepInterval) {
                [self] _ in
                tick()
            }
        }
    }

    func remove(_ handler: GatewayHandler) {
        handlers.removeValue(forKey: ObjectIdentifier(handler))
    }

    private func tick() {
        now = NIODeadline.now().uptimeNanoseconds
        defer { afterSweep() }
        guard !handlers.isEmpty else { return }
        for h in Array(handlers.values) { h.checkClientLimits(now: now) }
    }

    /// Closes the connection a new client may take the place of, in this order: the one that has
    /// waited longest for a request head (idle keep-alive, or a head still arriving); one that is
    /// only draining the body of a request already answered; the one whose request body has been
    /// arriving longest (at least a second). Returns whether one was closed.
    package func evictLongestWaiting(now: UInt64 = NIODeadline.now().uptimeNanoseconds) -> Bool {
        var best: (handler: GatewayHandler, rank: Int, since: UInt64)?
        for h in handlers.values {
            guard let (rank, since) = h.evictionRank(now: now) else { continue }
            if let b = best, (b.rank, b.since) <= (rank, since) { continue }
            best = (h, rank, since)
        }
        guard let best else { return false }
        best.handler.evict()
        return true
    }

    /// At the shutdown deadline: every request still running is answered (503) or cut, logged, and
    /// its connection closed. Idle connections close.
    package func closeAll() {
        for h in Array(handlers.values) { h.shutdownNow() }
    }

    /// No more sweeps (before the event loop stops).
    package func stop() {
        stopped = true
        sweep?.cancel()
        sweep = nil
    }
}

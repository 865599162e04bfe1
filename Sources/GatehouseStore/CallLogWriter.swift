import Foundation
import GatehouseCore
import Logging
import Metrics
import ServiceLifecycle

/// Batches call-log records into the store off the request path.
///
/// `submit` caps every field of the record (`CallLogLimits`) and never blocks beyond a short lock:
/// when the bounded queue is full, by record count (`capacity`) or by an estimate of its bytes
/// (`capacityBytes`), the record is dropped and counted (metric `gatehouse_calllog_dropped_total`,
/// and a warning in the gateway's log), so a slow disk degrades logging, never serving.
/// `close()` drains the queue before returning.
///
/// As a `Service`, `run()` waits for graceful shutdown (or cancellation), then stops accepting,
/// drains the queue and returns only once the writer thread has finished (the thread's last act
/// is to say so, after the checkpoint, then it returns): the thread stays dedicated
/// (the writes are off the cooperative pool and measured on the hot path), but its lifetime is
/// owned by whoever runs the service. In a `ServiceGroup`, place it before the services that
/// submit records, so it shuts down after them.
///
/// Retention is by age (`retention`) and by size (`maxBytes`: when the database's pages in use
/// exceed it, the oldest records are deleted).
public final class CallLogWriter: Service, @unchecked Sendable {
    // @unchecked: all mutable state is guarded by `cond`.
    private let cond = NSCondition()
    private var queue: [CallRecord] = []
    /// The estimated bytes of the records in `queue` (`CallRecord.capFields`).
    private var queueBytes = 0
    /// Records the writer has taken from `queue` and not yet written, and their estimated bytes;
    /// they count against `capacity` and `capacityBytes`.
    private var taken = 0
    private var takenBytes = 0
    private var closing = false
    private var finished = false
    private var droppedTotal = 0
    private var droppedSinceReport = 0
    private var writtenTotal = 0
    /// Waiting in `closeAndWait()` for the writer thread to end.
    private var finishWaiters: [CheckedContinuation<Void, Never>] = []
    /// Records accepted by `submit`, and those written or lost since (settled): `flush()` waits
    /// for the second to reach what the first was when it was called.
    private var acceptedTotal = 0
    private var settledTotal = 0
    private var flushWaiters: [(upTo: Int, waiter: CheckedContinuation<Void, Never>)] = []
    /// A `flush()` waits: the writer takes the queue now instead of at its next interval.
    private var flushRequested = false

    let store: SQLiteStore
    let capacity: Int
    let capacityBytes: Int
    let batchSize: Int
    /// Longest a record waits in the queue before it is written.
    let flushInterval = 0.05
    let retention: Double?
    let maxBytes: Int?
    let logger: Logger
    let droppedCounter = Counter(label: "gatehouse_calllog_dropped_total")
    let writtenCounter = Counter(label: "gatehouse_calllog_written_total")
    private var thread: Thread?

    public static let defaultCapacityBytes = 64 << 20
    public static let defaultMaxBytes = 1 << 30

    public init(
        store: SQLiteStore, capacity: Int = 50_000, capacityBytes: Int = CallLogWriter.defaultCapacityBytes, batchSize: Int = 512,
        retention: Double? = 7 * 86400, maxBytes: Int? = CallLogWriter.defaultMaxBytes,
        logger: Logger = Logger(label: "gatehouse.calllog")
    ) {
        self.store = store
        self.capacity = capacity
        self.capacityBytes = capacityBytes
        self.batchSize = batchSize
        self.retention = retention
        self.maxBytes = maxBytes
        self.logger = logger
        queue.reserveCapacity(min(capacity, 4096))
        let t = Thread { [unowned self] in
            // Named from inside: on Linux, Foundation applies a name set before start() to nothing,
            // and the kernel keeps 15 characters. Unnamed, the thread kept its creator's name
            // ("com.apple.root.default-qos" when the gateway starts from a dispatch worker), so
            // per-thread CPU figures showed the writer as a dispatch thread.
            Thread.current.name = "calllog-writer"
            #if os(Linux)
                // Foundation names the thread only when it takes the thread for the current one, which
                // it does not always at this point; the kernel's own file for the name always works.
                try? "calllog-writer".write(toFile: "/proc/thread-self/comm", atomically: false, encoding: .utf8)
            #endif
            self.run()
        }
        thread = t
        t.start()
    }

    /// Caps the record's fields and queues it; drops and counts it when the queue is full.
    public func submit(_ record: consuming CallRecord) {
        // Measuring is a few length reads; only an oversized field is copied (cut).
        let bytes = record.capFields()
        cond.lock()
        if queue.count + taken >= capacity || queueBytes + takenBytes + bytes > capacityBytes || closing {
            droppedTotal += 1
            droppedSinceReport += 1
            cond.unlock()
            droppedCounter.increment()
            return
        }
        queue.append(record)
        queueBytes += bytes
        acceptedTotal += 1
        // Wake the writer only for a full batch; otherwise it wakes on its own every `flushInterval`,
        // so a busy gateway writes a few large transactions a second instead of one per record.
        if queue.count == batchSize { cond.signal() }
        cond.unlock()
    }

    public var dropped: Int { cond.lock(); defer { cond.unlock() }; return droppedTotal }
    /// Records waiting to be written (queued, or taken by the writer and not yet written) and
    /// their estimated bytes: what counts against `capacity` and `capacityBytes`.
    public var queued: (records: Int, bytes: Int) {
        cond.lock(); defer { cond.unlock() }
        return (queue.count + taken, queueBytes + takenBytes)
    }
    public var written: Int { cond.lock(); defer { cond.unlock() }; return writtenTotal }

    /// Stops accepting, writes everything queued, and waits for the writer to finish (blocking the
    /// calling thread: not for a task; see `closeAndWait()`).
    public func close() {
        cond.lock()
        closing = true
        cond.broadcast()  // wake the writer now rather than at its next interval
        while !finished { cond.wait() }
        cond.unlock()
    }

    /// Suspends until every record submitted before the call has been written (or counted as
    /// lost): the writer takes the queue at once rather than at its next interval. For readers of
    /// the store that must see a record the gateway has just answered (tests, `explain` right
    /// after a request), without polling.
    public func flush() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            cond.lock()
            if settledTotal >= acceptedTotal || finished {
                cond.unlock()
                waiter.resume()
                return
            }
            flushWaiters.append((acceptedTotal, waiter))
            flushRequested = true
            cond.broadcast()
            cond.unlock()
        }
    }

    private func resumeFlushWaiters() {
        cond.lock()
        guard !flushWaiters.isEmpty else { return cond.unlock() }
        let ready = flushWaiters.filter { $0.upTo <= settledTotal }
        flushWaiters.removeAll { $0.upTo <= settledTotal }
        cond.unlock()
        for f in ready { f.waiter.resume() }
    }

    /// `close()` for a task: suspends, without holding a thread, until the writer thread has
    /// written everything queued and ended.
    public func closeAndWait() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            cond.lock()
            closing = true
            cond.broadcast()
            if finished {
                cond.unlock()
                waiter.resume()
            } else {
                finishWaiters.append(waiter)
                cond.unlock()
            }
        }
    }

    /// Runs until graceful shutdown or cancellation, then drains the queue and returns once the
    /// writer thread has finished. Records submitted before it returns are written, or counted as
    /// dropped once the queue has started closing.
    public func run() async throws {
        // Either way out ends in the drain: the records already queued are never lost.
        try? await gracefulShutdown()
        await closeAndWait()
        logger.info("call log closed", metadata: ["calls_logged": "\(written)", "calls_dropped": "\(dropped)"])
    }

    private func run() {
        var lastPurge = 0.0
        var lastReport = Date().timeIntervalSince1970
        var lastTrimReport = 0.0
        var trimmedSinceReport = 0
        var sizeChecked = false
        // The writer takes the whole queue by swapping it with this (empty) array, so the lock is
        // held for O(1) and no record is copied; the two arrays keep their capacity between rounds.
        var taking: [CallRecord] = []
        taking.reserveCapacity(min(capacity, 4096))
        while true {
            cond.lock()
            if queue.count < batchSize && !closing && !flushRequested {
                _ = cond.wait(until: Date(timeIntervalSinceNow: flushInterval))
            }
            flushRequested = false
            swap(&queue, &taking)
            taken = taking.count
            takenBytes = queueBytes
            queueBytes = 0
            // `submit` refuses records once closing, so nothing is left after this round.
            let done = closing
            let droppedNow = droppedSinceReport
            cond.unlock()

            // One transaction per `batchSize` records, as before.
            var start = 0
            while start < taking.count {
                let end = min(start + batchSize, taking.count)
                write(&taking, start..<end)
                start = end
            }
            let wrote = !taking.isEmpty
            if wrote {
                taking.removeAll(keepingCapacity: true)
                cond.lock(); taken = 0; takenBytes = 0; cond.unlock()
            }
            resumeFlushWaiters()
            let now = Date().timeIntervalSince1970
            if droppedNow > 0, now - lastReport >= 5 || done {
                cond.lock(); droppedSinceReport -= droppedNow; let total = droppedTotal; cond.unlock()
                logger.warning(
                    "call log fell behind: dropped \(droppedNow) records (\(total) since start); the queue holds at most \(capacity) records and about \(capacityBytes) bytes"
                )
                lastReport = now
            }
            // After every round that wrote (and once at start, for a store that a lower limit now
            // finds too large).
            if let maxBytes, wrote || !sizeChecked {
                sizeChecked = true
                do {
                    let (n, used) = try store.trimCalls(toBytes: maxBytes)
                    trimmedSinceReport += n
                    if trimmedSinceReport > 0, now - lastTrimReport >= 60 || done {
                        // A warning: a flood of requests can push older records out.
                        logger.warning(
                            "call log size limit: removed \(trimmedSinceReport) oldest records; the store now uses \(used) bytes (max_bytes \(maxBytes))"
                        )
                        trimmedSinceReport = 0
                        lastTrimReport = now
                    }
                } catch {
                    logger.error("call log size retention failed", metadata: ["error": "\(error)"])
                }
            }
            if let retention, now - lastPurge > 60 {
                lastPurge = now
                do {
                    let n = try store.purgeCalls(before: now - retention)
                    if n > 0 { logger.info("call log retention removed \(n) records older than \(TimeText.duration(retention))") }
                } catch {
                    logger.error("call log retention failed", metadata: ["error": "\(error)"])
                }
            }
            if done { break }
        }
        // Everything is written: leave the store as one file of its real size, not a large WAL.
        do { try store.checkpoint() } catch { logger.debug("call log checkpoint at close failed", metadata: ["error": "\(error)"]) }
        cond.lock()
        finished = true
        cond.broadcast()
        let waiters = finishWaiters
        finishWaiters = []
        let flushing = flushWaiters
        flushWaiters = []
        cond.unlock()
        for waiter in waiters { waiter.resume() }
        for f in flushing { f.waiter.resume() }
    }

    private func write(_ records: inout [CallRecord], _ batch: Range<Int>) {
        // A failed batch is retried once; if it fails again it is counted as dropped and reported.
        for attempt in 1...2 {
            do {
                let renamed = try store.insertCalls(&records, batch)
                for (from, to) in renamed.prefix(8) {
                    logger.warning("call log: request id \(from) is already in the log; this record is stored as \(to)")
                }
                if renamed.count > 8 {
                    logger.warning("call log: \(renamed.count - 8) more repeated request ids stored with a suffix in this batch")
                }
                cond.lock(); writtenTotal += batch.count; settledTotal += batch.count; cond.unlock()
                writtenCounter.increment(by: batch.count)
                return
            } catch {
                if attempt == 2 {
                    cond.lock(); droppedTotal += batch.count; droppedSinceReport += batch.count; settledTotal += batch.count; cond.unlock()
                    droppedCounter.increment(by: batch.count)
                    logger.error("call log write failed; \(batch.count) records lost", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}

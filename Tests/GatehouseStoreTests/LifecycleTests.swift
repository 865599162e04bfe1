import Foundation
import GatehouseCore
import GatehouseStore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// The store's services under swift-service-lifecycle: what they have done by the time `run()`
/// returns after a graceful shutdown (or a cancellation).
@Suite struct StoreLifecycleTests {
    @Test func theCallLogServiceWritesEverySubmittedRecordBeforeItReturns() async throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = CallLogWriter(store: store, capacity: 10_000, batchSize: 64, retention: nil)
        let now = Date().timeIntervalSince1970
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await writer.run() }
                for i in 0..<1000 { writer.submit(record("g\(i)", time: now)) }
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        // run() has returned: the queue is drained into the store and the writer accepts no more.
        #expect(try store.callCount() == 1000)
        #expect(writer.written == 1000)
        #expect(writer.dropped == 0)
        writer.submit(record("late", time: now))
        #expect(writer.dropped == 1)
        #expect(try store.call(requestID: "late") == nil)
    }

    @Test func flushReturnsOnceEveryRecordSubmittedBeforeItIsWritten() async throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A batch far larger than what is submitted: without the flush the writer would wait for
        // its interval; the records are in the store when flush() returns, not later.
        let writer = CallLogWriter(store: store, capacity: 10_000, batchSize: 4096, retention: nil)
        let now = Date().timeIntervalSince1970
        for round in 0..<20 {
            for i in 0..<(round + 1) { writer.submit(record("f\(round)-\(i)", time: now)) }
            await writer.flush()
            #expect(try store.callCount() == (round + 1) * (round + 2) / 2)
        }
        // Nothing queued: it returns at once.
        await writer.flush()
        await writer.closeAndWait()
        // Closed: it does not wait for a writer that has ended.
        await writer.flush()
    }

    @Test func theCallLogServiceDrainsAlsoWhenCancelled() async throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let writer = CallLogWriter(store: store, capacity: 10_000, batchSize: 64, retention: nil)
        let now = Date().timeIntervalSince1970
        let running = Task { try await writer.run() }
        for i in 0..<500 { writer.submit(record("c\(i)", time: now)) }
        running.cancel()
        try await running.value
        #expect(try store.callCount() == 500)
        #expect(writer.dropped == 0)
    }

    @Test func theCredentialRefresherBringsInChangesAndReturnsOnGracefulShutdown() async throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let directory = StoreDirectory(store: store)
        let refresher = CredentialRefresher(directory: directory, interval: .milliseconds(20))
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await refresher.run() }
                // A consumer lookup never re-reads the store itself: only the refresher brings it in.
                try store.createConsumer(name: "acme")
                for _ in 0..<500 where directory.consumer(named: "acme") == nil { try await Task.sleep(for: .milliseconds(10)) }
                #expect(directory.consumer(named: "acme") != nil)
                trigger.triggerGracefulShutdown()
                // The group's wait ends only when run() has returned.
                try await group.waitForAll()
            }
        }
    }

    @Test func theCredentialRefresherReturnsWhenCancelled() async throws {
        let (store, dir) = try tempStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let refresher = CredentialRefresher(directory: StoreDirectory(store: store), interval: .seconds(3600))
        let running = Task { try await refresher.run() }
        running.cancel()
        try await running.value
    }
}

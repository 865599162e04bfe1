import Benchmark
import CallLogFixtures
import GatehouseStore

/// A temporary store and the record source, kept across the framework's calls of the closure so
/// every batch has fresh request ids.
final class WriterState: @unchecked Sendable {
    let temp: TempStore
    var factory = CallRecordFactory()
    init() { temp = try! TempStore() }
}

/// The call-log writer's cost per record: `SQLiteStore.insertCalls` with 512-record batches (what
/// the writer thread does with a full queue) into a temporary store, realistic records (see
/// `CallRecordFactory`). One iteration is one batch; the custom metric divides the process CPU
/// time (user + system, all threads) of the batch by its 512 records.
let benchmarks: @Sendable () -> Void = {
    let perRecord = BenchmarkMetric.custom("CPU ns per record", polarity: .prefersSmaller, useScalingFactor: false)
    Benchmark.defaultConfiguration = .init(
        metrics: [perRecord, .wallClock, .mallocCountTotal],
        warmupIterations: 20,
        maxDuration: .seconds(5),
        maxIterations: 1000)

    let batchSize = 512
    let state = WriterState()
    // The framework calls the closure once per iteration; the batch is built before the measured
    // region (the event loops build records, the writer only writes them).
    Benchmark("insertCalls, 512-record batch") { benchmark in
        let batch = state.factory.batch(batchSize)
        benchmark.startMeasurement()
        let before = ProcessCPU.now()
        try! state.temp.store.insertCalls(batch)
        let used = ProcessCPU.now() - before
        benchmark.stopMeasurement()
        benchmark.measurement(perRecord, Int(used.total * 1000 / Double(batchSize)))
    } teardown: {
        state.temp.remove()
    }
}

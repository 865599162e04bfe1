import CallLogFixtures
import Foundation
import GatehouseStore

// Standalone CPU-per-record measurement of the call-log writer (no benchmark framework):
//   .build/release/CallLogCPU [--batches 200] [--rounds 5] [--mode insert|writer] [--pause-ms 10] [--batch-size 512] [--keys 1]
// insert: `SQLiteStore.insertCalls` with 512-record batches (--batch-size), as the writer thread calls it.
//   (--pause-ms N: pause N ms after each batch; default none in this mode)
// writer: the whole `CallLogWriter` (submit from this thread, writer thread, close), default settings;
//   records are submitted 512 at a time with a pause between bursts (10 ms: ~50k records/s, about
//   the gateway's rate under load), so the writer sees what it sees behind a busy gateway.
// --keys N: records spread over N (route, application) pairs, so that each batch upserts up to N
//   per-minute rollup rows (the fixture's records otherwise share one).
// Prints process CPU time (getrusage, all threads, user + system) per record for each round; in
// writer mode also split into the submitting thread (CLOCK_THREAD_CPUTIME_ID) and the rest (the
// writer thread: what bench/load reports for the "calllog-writer" thread).

var batches = 200
var rounds = 5
var mode = "insert"
var pauseMillis = 10
var insertPause = 0
var batchSize = 512
var keys = 1
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--batches": batches = Int(args.next()!)!
    case "--rounds": rounds = Int(args.next()!)!
    case "--mode": mode = args.next()!
    case "--batch-size": batchSize = Int(args.next()!)!
    case "--keys": keys = Int(args.next()!)!
    case "--pause-ms": pauseMillis = Int(args.next()!)!; insertPause = pauseMillis
    default: fatalError("unknown argument \(a)")
    }
}

var factory = CallRecordFactory()
var keyed = 0
/// A batch from the factory, its records spread over `keys` routes and applications.
@MainActor func nextBatch() -> [CallRecord] {
    var b = factory.batch(batchSize)
    if keys > 1 {
        for i in b.indices {
            keyed += 1
            b[i].route = "route-\(keyed % keys)"
            b[i].applicationID = "c_app\(keyed % keys)"
        }
    }
    return b
}
let temp = try TempStore()
defer { temp.remove() }
// Warm-up: the statement cache, the page cache and a WAL that has been checkpointed a few times.
for _ in 0..<50 { try temp.store.insertCalls(nextBatch()) }

print("mode \(mode), \(batches) batches of \(batchSize) records per round, process CPU per record (µs):")
var totals: [Double] = []
var submitShare = 0.0

/// CPU time of the calling thread, µs.
func threadCPU() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) * 1e6 + Double(ts.tv_nsec) / 1000
}
for round in 1...rounds {
    var data = (0..<batches).map { _ in nextBatch() }
    let recordCount = Double(batches * batchSize)
    let before = ProcessCPU.now()
    switch mode {
    case "insert":
        // Each batch is handed over (popped, so insertCalls gets the only reference), as the
        // writer thread hands over its own.
        data.reverse()
        while let b = data.popLast() {
            try temp.store.insertCalls(b)
            if insertPause > 0 { usleep(UInt32(insertPause * 1000)) }
        }
    case "writer":
        let writer = CallLogWriter(store: temp.store, capacity: batches * batchSize + 1, batchSize: batchSize, retention: nil)
        let t0 = threadCPU()
        // Records are handed over as the gateway hands them over: submitted, and the submitter's
        // own copy gone, so the queue holds the only reference.
        data.reverse()
        while var b = data.popLast() {
            b.reverse()
            while let r = b.popLast() { writer.submit(r) }
            if pauseMillis > 0 { usleep(UInt32(pauseMillis * 1000)) }
        }
        writer.close()
        precondition(writer.dropped == 0 && writer.written == batches * batchSize)
        // This thread did the submitting (the event loops' share); the rest is the writer thread's.
        submitShare = (threadCPU() - t0) / Double(batches * batchSize)
    default: fatalError("unknown mode \(mode)")
    }
    let used = ProcessCPU.now() - before
    totals.append(used.total / recordCount)
    print(
        String(
            format: "round %d: total %.2f  user %.2f  system %.2f", round, used.total / recordCount, used.user / recordCount,
            used.system / recordCount)
            + (mode == "writer"
                ? String(format: "  = submitting thread %.2f + writer thread %.2f", submitShare, used.total / recordCount - submitShare)
                : ""))
}
let count = try temp.store.callCount()
print(
    String(
        format: "median total %.2f µs/record; %d records, %.0f bytes on disk per record", totals.sorted()[totals.count / 2], count,
        Double(temp.bytesOnDisk) / Double(count)))

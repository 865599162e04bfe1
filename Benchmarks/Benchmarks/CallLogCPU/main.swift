import CallLogFixtures
import Foundation
import GatehouseStore

// Standalone CPU-per-record measurement of the call-log writer (no benchmark framework):
//   .build/release/CallLogCPU [--batches 200] [--rounds 5] [--mode insert|writer]
// insert: `SQLiteStore.insertCalls` with 512-record batches, as the writer thread calls it.
// writer: the whole `CallLogWriter` (submit from this thread, writer thread, close), default settings.
// Prints process CPU time (getrusage, all threads, user + system) per record for each round.

var batches = 200
var rounds = 5
var mode = "insert"
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--batches": batches = Int(args.next()!)!
    case "--rounds": rounds = Int(args.next()!)!
    case "--mode": mode = args.next()!
    default: fatalError("unknown argument \(a)")
    }
}

var factory = CallRecordFactory()
let temp = try TempStore()
defer { temp.remove() }
// Warm-up: the statement cache, the page cache and a WAL that has been checkpointed a few times.
for _ in 0..<50 { try temp.store.insertCalls(factory.batch()) }

print("mode \(mode), \(batches) batches of 512 records per round, process CPU per record (µs):")
var totals: [Double] = []
for round in 1...rounds {
    let data = (0..<batches).map { _ in factory.batch() }
    let recordCount = Double(batches * 512)
    let before = ProcessCPU.now()
    switch mode {
    case "insert":
        for b in data { try temp.store.insertCalls(b) }
    case "writer":
        let writer = CallLogWriter(store: temp.store, capacity: batches * 512 + 1, retention: nil)
        for b in data { for r in b { writer.submit(r) } }
        writer.close()
        precondition(writer.dropped == 0 && writer.written == batches * 512)
    default: fatalError("unknown mode \(mode)")
    }
    let used = ProcessCPU.now() - before
    totals.append(used.total / recordCount)
    print(String(format: "round %d: total %.2f  user %.2f  system %.2f", round, used.total / recordCount, used.user / recordCount,
                 used.system / recordCount))
}
let count = try temp.store.callCount()
print(String(format: "median total %.2f µs/record; %d records, %.0f bytes on disk per record", totals.sorted()[totals.count / 2], count,
             Double(temp.bytesOnDisk) / Double(count)))

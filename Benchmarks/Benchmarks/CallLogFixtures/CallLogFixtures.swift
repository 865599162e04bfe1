import Foundation
import GatehouseCore
import GatehouseStore

/// Call-log records as the gateway writes them under `bench/load`'s default scenario
/// (`ip + api_key + request`, every request allowed): a 3-entry trace, consumer, key id, client,
/// host, path, upstream target and the request facts (plain HTTP, none of the kept fields). Ids
/// are time-ordered 16-hex strings like the gateway's; times advance by 1/28,000 s per record.
public struct CallRecordFactory {
    let start: Double
    var n = 0

    /// Records arrive at `rate` per second from `startTime` on (the load benchmark's 28k/s).
    let rate: Double

    public init(startTime: Double = Date().timeIntervalSince1970, rate: Double = 28_000) {
        start = startTime
        self.rate = rate
    }

    public mutating func next() -> CallRecord {
        n += 1
        let time = start + Double(n) / rate
        // As RequestIDGenerator: 42 bits of milliseconds, 6 process bits, a 16-bit counter.
        let ms = UInt64(time * 1000)
        let z = (ms & ((1 << 42) - 1)) << 22 | 17 << 16 | (UInt64(n) & 0xFFFF)
        let hex = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<16 { out[i] = hex[Int((z >> (UInt64(15 - i) * 4)) & 0xF)] }
        let id = String(decoding: out, as: UTF8.self)
        let orderID = 1 + n % 997
        return CallRecord(
            requestID: id, time: time, route: "orders", consumer: "bench", keyID: "k3j9x0c2m7qa", client: "127.0.0.1",
            method: "GET", path: "/orders/\(orderID)", host: "127.0.0.1:18080", status: 200, upstreamMillis: 0.214 + Double(n % 7) / 100,
            totalMillis: 0.391 + Double(n % 11) / 100, decidingCheck: nil, reason: nil, detail: nil, hint: nil, required: [], presented: [],
            trace: DecisionTrace(entries: [
                TraceEntry(
                    check: "office-ip", type: "ip", mode: .enforce, outcome: .allow,
                    note: "127.0.0.1 in 127.0.0.0/8 (allow list office-ip)", micros: 1),
                TraceEntry(
                    check: "api-key", type: "api_key", mode: .enforce, outcome: .allow,
                    note: "key k3j9x0c2m7qa of consumer bench", micros: 2),
                TraceEntry(
                    check: "shape", type: "request", mode: .enforce, outcome: .allow,
                    note: "method GET allowed; body streamed <= 1048576; headers 87 bytes within limit", micros: 1),
            ]),
            upstreamTarget: "127.0.0.1:18081", facts: RequestFacts(tls: false))
    }

    public mutating func batch(_ count: Int = 512) -> [CallRecord] { (0..<count).map { _ in next() } }
}

/// Process CPU time (all threads, user and system) in microseconds.
public struct ProcessCPU {
    public var user: Double
    public var system: Double
    public var total: Double { user + system }

    public static func now() -> ProcessCPU {
        var u = rusage()
        #if os(Linux)
            getrusage(RUSAGE_SELF.rawValue, &u)
        #else
            getrusage(RUSAGE_SELF, &u)
        #endif
        return ProcessCPU(
            user: Double(u.ru_utime.tv_sec) * 1e6 + Double(u.ru_utime.tv_usec),
            system: Double(u.ru_stime.tv_sec) * 1e6 + Double(u.ru_stime.tv_usec))
    }

    public static func - (a: ProcessCPU, b: ProcessCPU) -> ProcessCPU { ProcessCPU(user: a.user - b.user, system: a.system - b.system) }
}

/// A fresh store in a temporary directory; `remove()` deletes it.
public struct TempStore {
    public let store: SQLiteStore
    public let dir: String

    public init() throws {
        dir = NSTemporaryDirectory() + "gh-calllog-bench-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        store = try SQLiteStore(path: dir + "/bench.db")
    }

    /// Bytes of the database file plus its WAL.
    public var bytesOnDisk: Int {
        let fm = FileManager.default
        return [store.path, store.path + "-wal"].reduce(0) { sum, p in
            sum + ((try? fm.attributesOfItem(atPath: p)[.size] as? Int) ?? 0)
        }
    }

    public func remove() { try? FileManager.default.removeItem(atPath: dir) }
}

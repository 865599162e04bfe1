import GatehouseConfig
import GatehouseCore
import GatehouseStore
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a request needs from the running gateway; replaced whole on reload.
final class RuntimeState: Sendable {
    let config: GatewayConfig
    let renderer: ProblemRenderer
    let generation: Int

    init(config: GatewayConfig, generation: Int) {
        self.config = config
        self.renderer = ProblemRenderer(typeBase: config.problemTypeBase)
        self.generation = generation
    }
}

/// Monotonic microseconds for trace timings.
struct NIOMicroClock: MicroClock {
    func micros() -> UInt64 { NIODeadline.now().uptimeNanoseconds / 1000 }
}

/// Seconds since 1970 from the real-time clock.
@inline(__always)
func wallClock() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Request ids: 16 hex characters, time-ordered — 42 bits of milliseconds since 1970, 6 bits
/// chosen at random per process, 16 bits of a per-process counter. Time order keeps the call
/// log's request-id index append-only (cheap inserts), and `explain` ids sort by time.
/// Minting one costs no system call and no lock.
struct RequestIDGenerator {
    static let processBits = UInt64.random(in: 0..<64)
    static let counter = ManagedCounter()

    init() {}

    mutating func next() -> String {
        let ms = UInt64(wallClock() * 1000) & ((1 << 42) - 1)
        let seq = RequestIDGenerator.counter.next() & 0xFFFF
        let z = ms << 22 | RequestIDGenerator.processBits << 16 | seq
        let hex: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: 16) { out in
            for i in 0..<16 { out[i] = hex.utf8Start[Int((z >> (UInt64(15 - i) * 4)) & 0xF)] }
            return 16
        }
    }

    /// Whether an incoming id from a trusted proxy is safe to keep (short, token characters only).
    static func isAcceptable(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128 && id.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F || b == 0x2E
        }
    }
}

/// A process-wide counter (relaxed atomic increments).
final class ManagedCounter: Sendable {
    private let value = Atomic<UInt64>(0)
    func next() -> UInt64 { value.wrappingAdd(1, ordering: .relaxed).newValue }
}

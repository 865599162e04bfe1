import GatehouseConfig
import GatehouseCore
import GatehouseHTTP1
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
package final class RuntimeState: Sendable {
    package let config: GatewayConfig
    package let renderer: ProblemRenderer
    package let generation: Int
    /// With tracing on, what an untrusted peer's request loses: the `untrusted_headers` and the
    /// trace-context fields, which the gateway writes itself (derived here, once per configuration).
    let untrustedAndTraceFields: HeaderNameSet

    package init(config: GatewayConfig, generation: Int) {
        self.config = config
        self.untrustedAndTraceFields = HeaderNameSet(config.untrustedHeaders.names.union(TraceFields.names.names))
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
package func wallClock() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Request ids: 27 hex characters, time-ordered and unpredictable — 44 bits of milliseconds since
/// 1970, then 64 bits of SipHash-2-4 of a per-process counter under a 128-bit key drawn from the
/// system CSPRNG when the process starts. Without the key the 64 bits cannot be told from random
/// ones, so an id cannot be guessed from earlier ones; the counter keeps them distinct within the
/// process. Time order keeps the call log's request-id index nearly append-only (cheap inserts),
/// and `explain` ids sort by time. Minting one costs no system call, no lock and no allocation
/// beyond the string.
struct RequestIDGenerator {
    static let key: (UInt64, UInt64) = {
        var g = SystemRandomNumberGenerator()
        return (g.next(), g.next())
    }()
    static let counter = ManagedCounter()
    /// Incoming ids (from trusted proxies) seen lately, so that a repeated one gets a suffix.
    static let recent = RecentRequestIDs(capacity: 8192)
    static let length = 27

    init() {}

    mutating func next() -> String {
        let ms = UInt64(wallClock() * 1000) & ((1 << 44) - 1)
        let r = RequestIDGenerator.sipHash(RequestIDGenerator.counter.next(), key: RequestIDGenerator.key)
        return String(unsafeUninitializedCapacity: Self.length) { out in
            for i in 0..<11 { out[i] = ASCIIDigits.hex(Int(truncatingIfNeeded: ms >> (UInt64(10 - i) * 4))) }
            for i in 0..<16 { out[11 + i] = ASCIIDigits.hex(Int(truncatingIfNeeded: r >> (UInt64(15 - i) * 4))) }
            return Self.length
        }
    }

    /// SipHash-2-4 of one 8-byte message (Aumasson and Bernstein): a pseudorandom function of
    /// `m` under `key`.
    static func sipHash(_ m: UInt64, key: (UInt64, UInt64)) -> UInt64 {
        var v0 = key.0 ^ 0x736f_6d65_7073_6575, v1 = key.1 ^ 0x646f_7261_6e64_6f6d
        var v2 = key.0 ^ 0x6c79_6765_6e65_7261, v3 = key.1 ^ 0x7465_6462_7974_6573
        @inline(__always) func round() {
            v0 &+= v1; v1 = v1 << 13 | v1 >> 51; v1 ^= v0; v0 = v0 << 32 | v0 >> 32
            v2 &+= v3; v3 = v3 << 16 | v3 >> 48; v3 ^= v2
            v0 &+= v3; v3 = v3 << 21 | v3 >> 43; v3 ^= v0
            v2 &+= v1; v1 = v1 << 17 | v1 >> 47; v1 ^= v2; v2 = v2 << 32 | v2 >> 32
        }
        v3 ^= m; round(); round(); v0 ^= m
        let last: UInt64 = 8 << 56  // the message length in the final block
        v3 ^= last; round(); round(); v0 ^= last
        v2 ^= 0xff; round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }

    /// Whether an incoming id from a trusted proxy is safe to keep (short, token characters only:
    /// no control characters, no `~`, which marks a repeat's suffix).
    static func isAcceptable(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128
            && id.utf8.allSatisfy { b in
                (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F || b == 0x2E
            }
    }

    /// The id to use for an acceptable incoming id: itself the first time this process sees it,
    /// `ID~N` for its N-th repeat, so that the response's `X-Request-Id` and the call-log record
    /// agree and neither record hides the other. A repeat the process no longer remembers (or one
    /// of an id logged before a restart) is suffixed by the call-log writer instead, which logs it.
    static func claim(_ incoming: String) -> String {
        recent.claim(incoming)
    }
}

/// The incoming request ids seen lately and how many times each: two generations of at most
/// `capacity` ids, the older one dropped when the newer fills.
final class RecentRequestIDs: Sendable {
    private struct State {
        var current: [String: Int] = [:]
        var previous: [String: Int] = [:]
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func claim(_ id: String) -> String {
        let n = state.withLock { s -> Int in
            if let n = s.current[id] {
                s.current[id] = n + 1
                return n + 1
            }
            let n = (s.previous[id] ?? 0) + 1
            if s.current.count >= capacity {
                s.previous = s.current
                s.current = [:]
            }
            s.current[id] = n
            return n
        }
        return n == 1 ? id : id + "~\(n)"
    }
}

/// A process-wide counter (relaxed atomic increments).
final class ManagedCounter: Sendable {
    private let value = Atomic<UInt64>(0)
    func next() -> UInt64 { value.wrappingAdd(1, ordering: .relaxed).newValue }
}

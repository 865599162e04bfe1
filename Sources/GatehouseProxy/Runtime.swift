import GatehouseConfig
import GatehouseCore
import GatehouseStore
import NIOConcurrencyHelpers
import NIOCore

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

/// Request ids: 16 hex characters from a per-connection SplitMix64 stream seeded from the system
/// generator, so minting an id costs no system call.
struct RequestIDGenerator {
    private var state: UInt64

    init() {
        var rng = SystemRandomNumberGenerator()
        state = rng.next()
    }

    mutating func next() -> String {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let hex = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<16 { out[i] = hex[Int((z >> (UInt64(15 - i) * 4)) & 0xF)] }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether an incoming id from a trusted proxy is safe to keep (short, token characters only).
    static func isAcceptable(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 128 && id.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F || b == 0x2E
        }
    }
}

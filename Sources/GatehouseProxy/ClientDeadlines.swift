import GatehouseConfig
import GatehouseCore
import GatehouseHTTP1

/// The time limits of one client connection (`limits:` in the configuration), decided from what
/// the connection knows at a moment: no channel, no clock, tested alone (`ClientDeadlinesTests`).
/// The event loop's sweep (`ClientConnections`, every 250 ms) asks it about every connection and
/// the handler carries out the verdict.
struct ClientDeadlines {
    /// What the connection is doing, in uptime nanoseconds (0 or nil: not in that state).
    struct Connection {
        /// Since when the connection is to close once its last bytes are written.
        var closingSince: UInt64 = 0
        /// Reading has ended (a parse error, a close under way): nothing more is timed.
        var broken = false
        /// Since when a request head is awaited (nil while a request runs).
        var waitingForHeadSince: UInt64?
        /// Bytes of the awaited head have arrived (the header timeout applies, not keep-alive's).
        var headStarted = false
        var requestsServed = 0
        /// Reading from the client is paused by the gateway (its silence is not the client's).
        var readOff = false
        var lastClientRead: UInt64 = 0
        /// Since when the client has not been reading what is written to it.
        var unwritableSince: UInt64 = 0
        var clientWritable = true
    }

    /// The request in progress whose body is still arriving.
    struct Request {
        var requestEnded: Bool
        /// When the gateway answered while the body was still arriving.
        var answeredAt: UInt64
        var startNanos: UInt64
        /// Whether the upstream takes the body now; nil when nothing is being forwarded.
        var upstreamWritable: Bool?
        /// Since when the upstream has not been taking the body (kept by the caller).
        var upstreamBlockedSince: UInt64
        /// The upstream's read timeout, seconds.
        var upstreamReadTimeout: Double
    }

    enum Verdict: Equatable {
        case none
        /// Closing, and the client has not taken the last bytes within the send timeout: close.
        case closeNow
        /// An idle keep-alive connection (or one that never sent a byte) past its timeout: close quietly.
        case closeIdle
        /// A head began and did not complete within the header timeout: 408.
        case headTimedOut
        /// Answered while the body still arrived; the moment of reading and discarding is over: close.
        case lingerOver
        /// The body stalled or the whole request took too long (why): 408, or cut when the
        /// response has started.
        case bodyTimedOut(String)
        /// The upstream took none of the body for its read timeout: 504.
        case upstreamStoppedReading
        /// The client stopped reading its response for the send timeout: cut.
        case clientStoppedReading
    }

    /// How long a connection answered mid-body keeps reading (and discarding) before it closes.
    static let lingerNanos: UInt64 = 2_000_000_000

    static func nanos(_ seconds: Double) -> UInt64 { UInt64(max(0, min(seconds, 1e9)) * 1e9) }

    let limits: ClientLimits

    /// The verdict at `now`. `request.upstreamBlockedSince` is updated (the caller keeps it).
    func check(now: UInt64, connection c: Connection, request: inout Request?) -> Verdict {
        if c.closingSince != 0 {
            // Closing once the last bytes are written: a client that does not read them does not
            // hold the connection past the send timeout.
            return now &- c.closingSince > Self.nanos(limits.sendTimeout) + Self.lingerNanos ? .closeNow : .none
        }
        guard !c.broken else { return .none }
        if request == nil, let since = c.waitingForHeadSince {
            let limit = c.headStarted || c.requestsServed == 0 ? limits.headerTimeout : limits.keepAliveTimeout
            guard now &- since > Self.nanos(limit) else { return .none }
            return c.headStarted ? .headTimedOut : .closeIdle
        }
        if var r = request, !r.requestEnded {
            defer { request = r }
            if r.answeredAt != 0 {
                return now &- r.answeredAt > Self.lingerNanos ? .lingerOver : .none
            }
            if !c.readOff, now &- c.lastClientRead > Self.nanos(limits.bodyTimeout) {
                return .bodyTimedOut("nothing for \(TimeText.duration(limits.bodyTimeout)) (limits.body_timeout)")
            }
            if now &- r.startNanos > Self.nanos(limits.requestTimeout) {
                return .bodyTimedOut(
                    "the whole request did not arrive within \(TimeText.duration(limits.requestTimeout)) (limits.request_timeout)")
            }
            if let writable = r.upstreamWritable {
                // An upstream that stops taking the body is as silent as one that does not answer.
                if writable {
                    r.upstreamBlockedSince = 0
                } else if r.upstreamBlockedSince == 0 {
                    r.upstreamBlockedSince = now
                } else if now &- r.upstreamBlockedSince > Self.nanos(r.upstreamReadTimeout) {
                    return .upstreamStoppedReading
                }
            }
        }
        if c.unwritableSince != 0, !c.clientWritable, now &- c.unwritableSince > Self.nanos(limits.sendTimeout) {
            return .clientStoppedReading
        }
        return .none
    }
}

import GatehouseConfig
import GatehouseCore
import GatehouseHTTP1
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// What the connection's own rules (`ExchangeStateMachine.Failure`) say to the caller: the denial
/// the problem response renders and the call log records. Pure: the words only.
extension ExchangeStateMachine.Failure {
    /// The names the wording needs: the route, the upstream and its target.
    struct Context {
        var route: String?
        var upstream: String?
        var target: String?
        /// The upstream's read timeout, seconds.
        var readTimeout: Double = 0
        var limits: ClientLimits
    }

    /// The denial and the check it is attributed to (nil: the gateway itself).
    func denial(_ c: Context) -> (Denial, check: String?) {
        let upstream = c.upstream ?? "?"
        let target = c.target ?? "?"
        switch self {
        case .badRequest(let why):
            return (Denial(code: .badRequest, detail: "the request is not valid HTTP/1.1: \(why)", presented: []), nil)
        case .headTooLarge(let why):
            return (
                Denial(
                    code: .headersTooLarge, detail: "\(why); the gateway reads request heads up to \(HTTP1Parse.maxHeadBytes) bytes",
                    required: ["head <= \(HTTP1Parse.maxHeadBytes) bytes"], presented: ["a larger head"]), nil
            )
        case .headTimedOut(let received):
            let limit = TimeText.duration(c.limits.headerTimeout)
            return (
                Denial(
                    code: .requestTimeout,
                    detail: "the request head did not arrive within \(limit) (limits.header_timeout); \(received) bytes of it had",
                    required: ["a whole request head within \(limit)"], presented: ["\(received) bytes of a head"]), nil
            )
        case .bodyTimedOut(let why, let bytes):
            return (
                Denial(
                    code: .requestTimeout,
                    detail: "the request body did not arrive in time: \(why), after \(bytes) bytes",
                    required: [
                        "body progress at least every \(TimeText.duration(c.limits.bodyTimeout)), the whole request within \(TimeText.duration(c.limits.requestTimeout))"
                    ],
                    presented: ["\(bytes) bytes"]), nil
            )
        case .streamedBodyTooLarge(let limit):
            return (
                Denial(
                    code: .bodyTooLarge,
                    detail:
                        "the request body passed \(limit.bytes) bytes, the limit of \(limit.check), while it was streaming; nothing more of it was forwarded",
                    required: ["body <= \(limit.bytes) bytes"], presented: ["more than \(limit.bytes) bytes (chunked)"]), limit.check
            )
        case .bufferedBodyTooLarge(let max):
            return (
                Denial(
                    code: .bodyTooLarge,
                    detail: "route \(c.route ?? "?") inspects bodies up to \(max) bytes; this one is larger",
                    required: ["body <= \(max) bytes"], presented: ["more than \(max) bytes"]), nil
            )
        case .buffersFull(let bytes):
            return (
                Denial(
                    code: .gatewayBusy,
                    detail:
                        "the gateway holds its maximum of \(c.limits.maxBufferedBodies) bytes of request bodies buffered for inspection (limits.max_buffered_bodies)",
                    presented: ["\(bytes) bytes of this body"]), nil
            )
        case .upstreamStoppedReading:
            return (
                Denial(
                    code: .upstreamTimeout,
                    detail:
                        "upstream \(upstream) (\(target)) stopped reading the request body for \(TimeText.duration(c.readTimeout))",
                    presented: ["upstream \(upstream)"]), nil
            )
        case .upstreamSilent:
            return (
                Denial(
                    code: .upstreamTimeout,
                    detail: "upstream \(upstream) (\(target)) did not answer within \(TimeText.duration(c.readTimeout))",
                    presented: ["upstream \(upstream)"]), nil
            )
        case .upstreamUnreachable(let why, let timedOut):
            return (
                Denial(
                    code: timedOut ? .upstreamTimeout : .upstreamUnavailable,
                    detail: timedOut
                        ? "connecting to upstream \(upstream) (\(target)) \(why)" : "upstream \(upstream) is unavailable: \(why)",
                    presented: ["upstream \(upstream)", "target \(target)"]), nil
            )
        case .upstreamBroken(let what):
            return (
                Denial(code: .upstreamUnavailable, detail: "upstream \(upstream) (\(target)) \(what)", presented: ["upstream \(upstream)"]),
                nil
            )
        case .upstreamOutOfStep(let named, let expected):
            return (
                Denial(
                    code: .upstreamUnavailable,
                    detail:
                        "upstream \(upstream) (\(target)): the upstream's response names request \(named), not \(expected): the connection is out of step (it was closed)",
                    presented: ["upstream \(upstream)", "X-Request-Id \(named)"]), nil
            )
        case .noUpstreamTargets:
            return (Denial(code: .upstreamUnavailable, detail: "route \(c.route ?? "?") has no upstream targets"), nil)
        case .shuttingDown:
            return (
                Denial(
                    code: .gatewayShuttingDown,
                    detail: "the gateway was shutting down and this request was still running when the grace period ended",
                    presented: [c.upstream.map { "waiting for upstream \($0)" } ?? "in progress"]), nil
            )
        }
    }
}

extension ExchangeStateMachine.Failure {
    /// Bytes the request parser refused.
    init(parsing error: any Error) {
        if let e = error as? HTTP1Error, e.kind == .headTooLarge {
            self = .headTooLarge(e.description)
        } else {
            self = .badRequest("\(error)")
        }
    }

    /// A failure of the upstream exchange (it ends the upstream span and times the upstream).
    var isUpstream: Bool {
        switch self {
        case .upstreamStoppedReading, .upstreamSilent, .upstreamUnreachable, .upstreamBroken, .upstreamOutOfStep, .noUpstreamTargets:
            true
        case .badRequest, .headTooLarge, .headTimedOut, .bodyTimedOut, .streamedBodyTooLarge, .bufferedBodyTooLarge, .buffersFull,
            .shuttingDown:
            false
        }
    }

    /// A connection error in words an operator reads.
    static func describe(_ error: any Error) -> String {
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED: return "connection refused"
            case EHOSTUNREACH, ENETUNREACH: return "host unreachable"
            case ECONNRESET: return "connection reset"
            default: return "\(io)"
            }
        }
        if let c = error as? NIOConnectionError {
            if c.dnsAAAAError != nil || c.dnsAError != nil, c.connectionErrors.isEmpty { return "the host name did not resolve" }
            if let first = c.connectionErrors.first { return describe(first.error) }
        }
        if case ChannelError.connectTimeout = error { return "connect timed out" }
        return "\(error)"
    }
}

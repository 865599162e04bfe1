import GatehouseConfig
import GatehouseCore
import GatehouseHTTP1
import GatehouseStore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Tracing

/// Shared, thread-safe services every connection handler uses.
final class GatewayServices: Sendable {
    let runtime: NIOLockedValueBox<RuntimeState>
    let pools: LoopPools
    let callLog: CallLogWriter
    let logger: Logger
    let metrics = GatewayMetrics()
    /// Request tracing; nil (the default) creates no spans.
    let tracing: GatewayTracing?
    /// Open client connections per event loop (cap, time limits, shutdown).
    let connections = ClientConnections()

    init(runtime: RuntimeState, callLog: CallLogWriter, logger: Logger, tracing: GatewayTracing? = nil) {
        self.runtime = NIOLockedValueBox(runtime)
        self.tracing = tracing
        self.pools = LoopPools()
        self.callLog = callLog
        self.logger = logger
    }

    var current: RuntimeState { runtime.withLockedValue { $0 } }
}

/// One request's record and resources, from head to log record: what the call log, the metrics
/// and the trace report (route, decision, status, timings) and what the handler holds for it
/// (buffered body, upstream connection, spans). Its control state (phases, keep-alive, time
/// limits) is `ExchangeStateMachine.Request`.
final class Exchange {
    let requestID: String
    let startNanos: UInt64
    let wallTime: Double
    let head: RequestHead
    let state: RuntimeState
    var route: CompiledRoute?
    /// The peer is one of `trusted_proxies` (decided once, when the head is parsed).
    var peerTrusted = false
    var policyRequest: PolicyRequest?
    var trace = DecisionTrace()
    var denial: Denial?
    var decidingCheck: String?
    var status = 0
    var bufferedBody: ByteBuffer?
    /// Body pieces held while the upstream connection is made.
    var pending: [ByteBuffer] = []
    var upstream: UpstreamConnection?
    var upstreamSpec: UpstreamSpec?
    /// The response head, held back until the first body piece so that a small response goes out
    /// in one write.
    var heldHead: ByteBuffer?
    /// The request body is chunked towards the upstream (re-framed from the client's chunks).
    var chunkedUp = false
    var upstreamTarget: HostPort?
    /// The target as text, from the connection (computed once per connection, not per request).
    var upstreamTargetText: String?
    var upstreamStartNanos: UInt64 = 0
    var upstreamNanos: UInt64?
    /// How long a new upstream connection took to open (nil when a pooled one was reused).
    var upstreamConnectNanos: UInt64?
    var connectAttempts = 0
    var targetStart = 0
    /// The request's server span (tracing on only), ended when the call-log record is written.
    var span: (any Span)?
    /// The current upstream exchange's client span (tracing on only).
    var upstreamSpan: (any Span)?
    /// The result of the checks that ran before the body was buffered (see `PolicyChain.evaluateHead`).
    var headResult: ChainResult?
    /// Bytes of the process-wide buffered-body budget this exchange holds (released when it ends).
    var reservedBytes = 0

    init(
        requestID: String, head: RequestHead, state: RuntimeState,
        startNanos: UInt64 = NIODeadline.now().uptimeNanoseconds, wallTime: Double = wallClock()
    ) {
        self.requestID = requestID
        self.startNanos = startNanos
        self.wallTime = wallTime
        self.head = head
        self.state = state
    }
}

extension GatewayServices {
    /// Reports a finished exchange: the call-log record, the request metrics (`counts`, the event
    /// loop's), and the end of its spans.
    func record(_ ex: Exchange, peer: IPAddress?, peerText: String, counts: GatewayMetrics.RequestCounts?) {
        let now = NIODeadline.now().uptimeNanoseconds
        let record = CallRecord(ex, peer: peer, peerText: peerText, totalNanos: now - ex.startNanos)
        counts?.record(
            GatewayMetrics.RequestSample(
                route: ex.route?.name, status: ex.status, reason: ex.denial?.code, check: ex.denial == nil ? nil : ex.decidingCheck,
                totalNanos: now - ex.startNanos, upstreamNanos: ex.upstreamNanos, connectNanos: ex.upstreamConnectNanos))
        callLog.submit(record)
        if let span = ex.span {
            // An upstream span still open here was cut short (the client left, a timeout).
            if let up = ex.upstreamSpan {
                ex.upstreamSpan = nil
                GatewayTracing.endUpstreamSpan(up, status: 0, failure: "abandoned")
            }
            ex.span = nil
            GatewayTracing.endRequestSpan(span, ex)
        }
    }
}

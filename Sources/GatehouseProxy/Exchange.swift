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

/// One proxied request from head to log record.
final class Exchange {
    let requestID: String
    let startNanos: UInt64
    let wallTime: Double
    let head: RequestHead
    let state: RuntimeState
    var route: CompiledRoute?
    /// The peer is one of `trusted_proxies` (decided once, in `onHead`).
    var peerTrusted = false
    var policyRequest: PolicyRequest?
    var trace = DecisionTrace()
    var denial: Denial?
    var decidingCheck: String?
    var status = 0
    var requestEnded = false
    var responseEnded = false
    var responseStarted = false
    var keepAlive: Bool
    var bufferedBody: ByteBuffer?
    var pending: [ByteBuffer] = []
    var pendingBytes = 0
    var upstream: UpstreamConnection?
    var upstreamSpec: UpstreamSpec?
    /// The response head, held back until the first body piece so that a small response goes out
    /// in one write.
    var heldHead: ByteBuffer?
    /// The response is chunked towards the client (re-framed from the upstream's chunks).
    var chunkedOut = false
    /// The request body is chunked towards the upstream (re-framed from the client's chunks).
    var chunkedUp = false
    /// endResponse arranged for the connection to close after the response.
    var closeScheduled = false
    var upstreamTarget: HostPort?
    /// The target as text, from the connection (computed once per connection, not per request).
    var upstreamTargetText: String?
    var upstreamStartNanos: UInt64 = 0
    var upstreamNanos: UInt64?
    /// How long a new upstream connection took to open (nil when a pooled one was reused).
    var upstreamConnectNanos: UInt64?
    var connectAttempts = 0
    var targetStart = 0
    var retriedStale = false
    /// The request's server span (tracing on only), ended when the call-log record is written.
    var span: (any Span)?
    /// The current upstream exchange's client span (tracing on only).
    var upstreamSpan: (any Span)?
    /// Whether the read timeout applies (from request sent until the response ends).
    var awaitingUpstream = false
    /// Last time the upstream sent anything (uptime ns); the read timeout counts from here.
    var lastUpstreamActivity: UInt64 = 0
    var bodyBytesSeen = 0
    /// The result of the checks that ran before the body was buffered (see `PolicyChain.evaluateHead`).
    var headResult: ChainResult?
    /// A body-size limit counted on the bytes as they stream (a `request` check's `max_body` on a chunked body).
    var streamLimit: StreamedBodyLimit?
    /// When the gateway answered while the request body was still arriving (uptime ns), 0 otherwise.
    var answeredAt: UInt64 = 0
    /// Bytes of the process-wide buffered-body budget this exchange holds (released when it ends).
    var reservedBytes = 0
    /// Since when the upstream has not been taking the request body (uptime ns), 0 when it is.
    var upstreamBlockedSince: UInt64 = 0
    var hasBody: Bool { head.hasBody }
    var expectContinue: Bool { head.expectContinue }

    init(
        requestID: String, head: RequestHead, state: RuntimeState,
        startNanos: UInt64 = NIODeadline.now().uptimeNanoseconds, wallTime: Double = wallClock()
    ) {
        self.requestID = requestID
        self.startNanos = startNanos
        self.wallTime = wallTime
        self.head = head
        self.state = state
        self.keepAlive = head.keepAlive
        // A request without a body has ended with its head.
        self.requestEnded = !head.hasBody
    }
}

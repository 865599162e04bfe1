import GatehouseChecks
import GatehouseConfig
import GatehouseCore
import GatehouseHTTP1
import GatehouseStore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Tracing

/// The verified (or refused, with why) client certificate of one TLS connection. Written on the
/// connection's loop when the handshake's verification finishes, read by the HTTP handler there.
package final class PeerIdentityBox: @unchecked Sendable {
    // @unchecked: touched only on the channel's event loop.
    package var value: PeerIdentity?
    package init() {}
}

/// Shared, thread-safe services every connection handler uses.
package final class GatewayServices: Sendable {
    package let runtime: NIOLockedValueBox<RuntimeState>
    package let pools: LoopPools
    package let callLog: CallLogWriter
    package let logger: Logger
    package let metrics: GatewayMetrics
    /// Request tracing; nil (the default) creates no spans.
    package let tracing: GatewayTracing?
    /// Open client connections per event loop (cap, time limits, shutdown).
    package let connections: ClientConnections

    package init(runtime: RuntimeState, callLog: CallLogWriter, logger: Logger, tracing: GatewayTracing? = nil) {
        self.runtime = NIOLockedValueBox(runtime)
        let metrics = GatewayMetrics()
        self.metrics = metrics
        connections = ClientConnections(afterSweep: { metrics.flushCurrentLoop() })
        self.tracing = tracing
        self.pools = LoopPools()
        self.callLog = callLog
        self.logger = logger
    }

    package var current: RuntimeState { runtime.withLockedValue { $0 } }
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

extension Exchange {
    /// The record for a request that never got a valid head (`failure`): a head that did not
    /// arrive in time gets a new id; bytes that are not HTTP cut short the running exchange
    /// (`previous`), whose id, head and route the record keeps.
    static func unparsed(
        _ failure: ExchangeStateMachine.Failure, previous: Exchange?, ids: inout RequestIDGenerator, peer: IPAddress?, state: RuntimeState
    ) -> Exchange {
        if case .headTimedOut = failure {
            let ex = Exchange(requestID: ids.next(), head: RequestHead.unparsed, state: state)
            ex.policyRequest = PolicyRequest(
                requestID: ex.requestID, method: "-", path: "-", clientAddress: peer, peerAddress: peer, now: ex.wallTime)
            return ex
        }
        let head = previous?.head ?? RequestHead.unparsed
        let ex = Exchange(requestID: previous?.requestID ?? ids.next(), head: head, state: state)
        ex.route = previous?.route
        // The cut-short exchange's spans end with the record that replaces it.
        ex.span = previous?.span
        ex.upstreamSpan = previous?.upstreamSpan
        ex.policyRequest = PolicyRequest(
            requestID: ex.requestID, method: head.method, path: head.uri, clientAddress: peer, now: ex.wallTime)
        return ex
    }

    /// The names a failure's wording needs (`ExchangeFailure`).
    func failureContext(limits: ClientLimits) -> ExchangeStateMachine.Failure.Context {
        ExchangeStateMachine.Failure.Context(
            route: route?.name, upstream: upstreamSpec?.name, target: upstreamTarget?.description,
            readTimeout: upstreamSpec?.readTimeout ?? 0, limits: limits)
    }

    /// Records the denial (or failure) and renders its problem response.
    func refused(_ denial: Denial, check: String?) -> RenderedProblem {
        self.denial = denial
        decidingCheck = check
        // A denial during the body keeps the trace of the checks that ran on the head.
        if trace.entries.isEmpty, let before = headResult { trace = before.trace }
        return state.renderer.render(
            denial, requestID: requestID, instance: policyRequest?.path ?? head.uri, exposure: route?.exposure ?? .detailed,
            checkID: check, revealOperatorDetail: route?.explicitDetailed ?? false)
    }

    /// The upstream exchange failed with `reason`: its span ends, its time is recorded.
    func upstreamFailed(reason: ReasonCode, now: UInt64) {
        if let span = upstreamSpan {
            upstreamSpan = nil
            GatewayTracing.endUpstreamSpan(span, status: 0, failure: reason.rawValue)
        }
        upstreamNanos = upstreamStartNanos == 0 ? nil : now - upstreamStartNanos
    }
}

extension GatewayServices {
    /// A new request's id and server span: a trusted proxy's `X-Request-Id` and trace context are
    /// taken over, anyone else's are not.
    func identify(_ head: RequestHead, trusted: Bool, ids: inout RequestIDGenerator) -> (String, (any Span)?) {
        var span: (any Span)?
        if let tracing {
            let incoming = trusted ? TraceFields(traceparent: head.first("traceparent"), tracestate: head.first("tracestate")) : nil
            span = tracing.startRequestSpan(method: head.method, incoming: incoming)
        }
        if trusted, let incoming = head.first("x-request-id"), RequestIDGenerator.isAcceptable(incoming) {
            return (RequestIDGenerator.claim(incoming), span)
        }
        return (ids.next(), span)
    }

    /// Counts what shadow-mode checks would have denied, once the decision is final (the body's
    /// result carries the head's).
    func reportShadowDenials(_ denials: [(check: String, denial: Denial)], route: CompiledRoute?, requestID: String) {
        guard let route else { return }
        for (check, d) in denials {
            metrics.countShadowDenial(route: route.name, check: check, reason: d.code)
            logger.debug("shadow would deny", metadata: ["request_id": "\(requestID)", "check": "\(check)", "reason": "\(d.code)"])
        }
    }
}

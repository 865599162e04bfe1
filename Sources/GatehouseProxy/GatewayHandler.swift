import GatehouseConfig
import GatehouseCore
import GatehouseHTTP1
import GatehouseStore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Tracing

#if canImport(Glibc)
    import Glibc
#endif

/// Handles one downstream connection: route, evaluate the chain, deny or proxy, log.
final class GatewayHandler: ChannelInboundHandler, UpstreamResponseSink {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase {
        case idle
        /// Collecting the body for checks that inspect it.
        case buffering
        /// Allowed; waiting for an upstream connection.
        case connecting
        /// Streaming to and from the upstream.
        case forwarding
        /// Answered (denied or failed); dropping the rest of the request body.
        case answered
    }

    let services: GatewayServices
    let isTLS: Bool
    var context: ChannelHandlerContext?
    var pool: LoopPool?
    var requestCounts: GatewayMetrics.RequestCounts?
    var phase = Phase.idle
    var exchange: Exchange?
    var ids = RequestIDGenerator()
    var peer: IPAddress?
    /// `peer` as text, computed once per connection (forwarding header, call log).
    var peerText = "unknown"
    let clock = NIOMicroClock()
    /// Bytes read but not yet parsed: the rest of a request, or pipelined requests waiting for the
    /// current response to end.
    var inbound: ByteBuffer?
    /// The current request's body reader; idle between requests (a head is parsed next).
    var body = BodyDecoder(strict: true)
    var parsing = false
    /// A parse error ended reading on this connection.
    var broken = false
    /// Whether reading from the client is paused (autoRead off); see `updateReading`.
    var readOff = false
    static let noBytes = ByteBufferAllocator().buffer(capacity: 0)
    /// Pipelined bytes beyond this pause reading until the queue drains.
    static let pipelineLimit = 1 << 20
    /// Set by a graceful shutdown: no new requests on this connection.
    var quiescing = false
    /// The connection's read-timeout timer and when it is due (uptime ns).
    var timer: Scheduled<Void>?
    var timerDue: UInt64 = 0
    /// Bodies of denied requests larger than this are not drained: the connection is closed instead.
    static let drainLimit = 1 << 20
    /// How long a connection closed mid-request keeps reading (and discarding) before it closes.
    static let lingerTime = TimeAmount.seconds(2)

    /// The TLS client certificate's identity, when the listener is TLS.
    let peerIdentity: PeerIdentityBox?

    // Client time limits (see ClientConnections: one sweep per event loop checks them).
    var registry: LoopConnections?
    var limits = ClientLimits()
    /// Since when the connection waits for a request head (uptime ns); nil while a request runs.
    var waitingForHeadSince: UInt64?
    /// Whether bytes of the awaited head have arrived (the header timeout applies, not keep-alive's).
    var headStarted = false
    var requestsServed = 0
    /// When the client last sent anything (uptime ns): a body must keep arriving.
    var lastClientRead: UInt64 = 0
    /// Since when the client has not been reading what is written to it (uptime ns), 0 when it is.
    var unwritableSince: UInt64 = 0
    /// Since when the connection is to close once its last bytes are written (uptime ns), 0 when
    /// it is not: a client that never reads them cannot keep it open past the send timeout.
    var closingSince: UInt64 = 0

    init(services: GatewayServices, isTLS: Bool = false, peerIdentity: PeerIdentityBox? = nil) {
        self.services = services
        self.isTLS = isTLS
        self.peerIdentity = peerIdentity
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        pool = services.pools.pool(for: context.eventLoop)
        requestCounts = services.metrics.requestCounts(for: context.eventLoop)
        if let addr = context.channel.remoteAddress?.ipAddress { peer = IPAddress(addr) }
        if let peer { peerText = peer.description }
        limits = services.current.config.limits
        let now = NIODeadline.now().uptimeNanoseconds
        waitingForHeadSince = now
        lastClientRead = now
        let registry = services.connections.loop(for: context.eventLoop)
        registry.add(self)
        self.registry = registry
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        registry?.remove(self)
        registry = nil
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buf = unwrapInboundIn(data)
        if broken { return }
        // The loop's coarse clock (set by each sweep): the client limits have the sweep's resolution
        // anyway, and a clock reading per read is measurable on the hot path.
        let now = registry?.now ?? NIODeadline.now().uptimeNanoseconds
        lastClientRead = now
        if exchange == nil, !headStarted {
            // The first bytes of a head: from now on the header timeout applies (keep-alive's until now).
            headStarted = true
            if requestsServed > 0 { waitingForHeadSince = now }
        }
        inbound.accumulate(buf)
        parseInbound()
    }

    /// Parses what has arrived, feeding heads and body pieces to the exchange. Stops at the end of
    /// a request whose response is still running: a pipelined request waits its turn in `inbound`
    /// (reading stays enabled, so no epoll re-registration per request, until `pipelineLimit`).
    private func parseInbound() {
        guard !parsing, !broken, context != nil else { return }
        parsing = true
        defer { parsing = false }
        while context != nil, !broken {
            if body.isIdle {
                guard var buf = inbound, buf.readableBytes > 0 else { break }
                // Between requests: the next head, unless the current exchange still runs or the
                // client is not reading what was already answered.
                if exchange != nil { break }
                if unwritableSince != 0 { break }
                if quiescing { inbound = nil; break }
                // RFC 9112 §2.2: ignore empty lines before a request line.
                while let c = buf.getInteger(at: buf.readerIndex, as: UInt8.self), c == 0x0D || c == 0x0A {
                    buf.moveReaderIndex(forwardBy: 1)
                }
                let len: Int? = buf.withUnsafeReadableBytes { HTTP1Parse.headLength($0) }
                guard let len, len <= HTTP1Parse.maxHeadBytes else {
                    inbound = buf
                    if buf.readableBytes > HTTP1Parse.maxHeadBytes {
                        parseFailed(
                            HTTP1Error(kind: .headTooLarge, description: "the request head exceeds \(HTTP1Parse.maxHeadBytes) bytes"))
                    }
                    break
                }
                let head: RequestHead
                do {
                    head = try buf.withUnsafeReadableBytes { try HTTP1Parse.request($0, length: len) }
                } catch {
                    inbound = nil
                    parseFailed(error)
                    break
                }
                buf.moveReaderIndex(forwardBy: len)
                inbound = buf
                // A request without a body ends with its head (the exchange knows it from the head).
                if head.hasBody { body.start(head.framing) }
                onHead(head)
                continue
            }
            // A body can end without more bytes (its last piece was the rest of a Content-Length).
            var buf = inbound ?? Self.noBytes
            let event: BodyDecoder.Event?
            do {
                event = try body.next(&buf)
            } catch {
                inbound = nil
                parseFailed(error)
                break
            }
            inbound = buf
            guard let event else { break }
            switch event {
            case .data(let piece): onBody(piece)
            case .end: onEnd()
            }
        }
        if let b = inbound, b.readableBytes == 0 { inbound = nil }
        updateReading()
    }

    /// Turns reading from the client off while it would only pile up data (pipelined requests
    /// beyond `pipelineLimit`, a body while the upstream connection is being made, an upstream
    /// that cannot take more), and on again when that clears. Only a change costs a channel call.
    private func updateReading() {
        guard let context else { return }
        var want = (inbound?.readableBytes ?? 0) <= Self.pipelineLimit
        // A client that does not read its answers gets no more of its requests read (pipelined
        // requests would otherwise pile answers up in memory).
        if unwritableSince != 0 { want = false }
        if let ex = exchange {
            if phase == .connecting, ex.pendingBytes > 1 << 20 { want = false }
            if phase == .forwarding, let up = ex.upstream, !up.isWritable { want = false }
        }
        if want == readOff {
            readOff = !want
            // While reading is paused the client's silence is the gateway's doing: the body timeout
            // counts again from when reading resumes.
            if want { lastClientRead = NIODeadline.now().uptimeNanoseconds }
            _ = context.channel.setOption(ChannelOptions.autoRead, value: want)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Graceful shutdown: close idle connections now, busy ones after their current response.
            quiescing = true
            if let ex = exchange {
                ex.keepAlive = false
            } else {
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if phase == .forwarding, let up = exchange?.upstream { up.channel?.flush() }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        if writable {
            unwritableSince = 0
        } else if unwritableSince == 0 {
            unwritableSince = NIODeadline.now().uptimeNanoseconds
        }
        exchange?.upstream?.setAutoRead(writable)
        if writable, exchange == nil, !broken {
            // Answers were held back while the client did not read: the next pipelined request.
            parseInbound()
        } else {
            updateReading()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let ex = exchange {
            if !ex.responseEnded {
                // The client went away mid-exchange: stop the upstream, log as 499 (client closed request).
                ex.awaitingUpstream = false
                ex.upstream?.sink = nil
                ex.upstream?.close()
                ex.upstream = nil
                if ex.status == 0 { ex.status = 499 }
                ex.responseEnded = true
            }
            // Also an exchange answered before its request body ended (a denial draining the
            // body): the connection is gone, so it is logged now.
            finish(ex, closeAfter: false)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// The client sent something that is not HTTP/1.x: answer 400 (or 431 for an oversized head)
    /// with a request id, log it, and close.
    private func parseFailed(_ error: any Error) {
        broken = true
        inbound = nil
        guard exchange?.responseStarted != true else {
            context?.close(promise: nil)
            return
        }
        if let running = exchange {
            // Mid-body: the exchange in progress ends here.
            running.upstream?.sink = nil
            running.upstream?.close()
            running.upstream = nil
            running.awaitingUpstream = false
        }
        let head = exchange?.head ?? RequestHead.unparsed
        let ex = Exchange(requestID: exchange?.requestID ?? ids.next(), head: head, state: services.current)
        ex.route = exchange?.route
        ex.keepAlive = false
        ex.requestEnded = true
        exchange = ex
        phase = .answered
        ex.policyRequest = PolicyRequest(
            requestID: ex.requestID, method: head.method, path: head.uri, clientAddress: peer, now: ex.wallTime)
        if let e = error as? HTTP1Error, e.kind == .headTooLarge {
            deny(
                ex,
                Denial(
                    code: .headersTooLarge,
                    detail: "\(e.description); the gateway reads request heads up to \(HTTP1Parse.maxHeadBytes) bytes",
                    required: ["head <= \(HTTP1Parse.maxHeadBytes) bytes"], presented: ["a larger head"]), check: nil)
        } else {
            deny(ex, Denial(code: .badRequest, detail: "the request is not valid HTTP/1.1: \(error)", presented: []), check: nil)
        }
    }

    private func onHead(_ head: RequestHead) {
        waitingForHeadSince = nil
        headStarted = false
        requestsServed += 1
        // The configuration is read through `state` (a class), never copied whole per request.
        let state = services.current
        let peerTrusted = isPeerTrusted(state.config.trustedProxies)
        var span: (any Span)?
        if let tracing = services.tracing {
            let incoming = peerTrusted ? TraceFields(traceparent: head.first("traceparent"), tracestate: head.first("tracestate")) : nil
            span = tracing.startRequestSpan(method: head.method, incoming: incoming)
        }
        var requestID: String
        if peerTrusted, let incoming = head.first("x-request-id"), RequestIDGenerator.isAcceptable(incoming) {
            requestID = RequestIDGenerator.claim(incoming)
        } else {
            requestID = ids.next()
        }
        // The decision (Gatekeeper.swift), then acting on it. The exchange's head carries the
        // canonical target from here on; a refused target stays as received (logged).
        let startNanos = NIODeadline.now().uptimeNanoseconds
        let now = wallClock()
        let connection = Gatekeeper.Connection(peer: peer, peerTrusted: peerTrusted, isTLS: isTLS, identity: peerIdentity?.value)
        let decision = Gatekeeper(state: state, clock: clock).decide(head, requestID: requestID, connection: connection, now: now)
        var exchangeHead = head
        if let target = decision.target { exchangeHead.uri = target }
        let ex = Exchange(requestID: requestID, head: exchangeHead, state: state, startNanos: startNanos, wallTime: now)
        ex.peerTrusted = peerTrusted
        ex.span = span
        if quiescing { ex.keepAlive = false }
        exchange = ex
        act(ex, decision)
    }

    private func onBody(_ buf: ByteBuffer) {
        guard let ex = exchange else { return }
        ex.bodyBytesSeen += buf.readableBytes
        if let limit = ex.streamLimit, ex.bodyBytesSeen > limit.bytes, phase != .answered, phase != .idle {
            bodyOverLimit(ex, limit)
            return
        }
        switch phase {
        case .buffering:
            guard let route = ex.route else { return }
            if ex.bodyBytesSeen > route.maxBufferedBody {
                ex.bufferedBody = nil
                deny(
                    ex,
                    Denial(
                        code: .bodyTooLarge,
                        detail: "route \(route.name) inspects bodies up to \(route.maxBufferedBody) bytes; this one is larger",
                        required: ["body <= \(route.maxBufferedBody) bytes"], presented: ["more than \(route.maxBufferedBody) bytes"]),
                    check: nil)
                return
            }
            guard services.connections.reserveBuffered(buf.readableBytes, limit: limits.maxBufferedBodies) else {
                ex.bufferedBody = nil
                deny(
                    ex,
                    Denial(
                        code: .gatewayBusy,
                        detail:
                            "the gateway holds its maximum of \(limits.maxBufferedBodies) bytes of request bodies buffered for inspection (limits.max_buffered_bodies)",
                        presented: ["\(ex.bodyBytesSeen) bytes of this body"]), check: nil)
                return
            }
            ex.reservedBytes += buf.readableBytes
            var b = buf
            ex.bufferedBody?.writeBuffer(&b)
        case .connecting:
            ex.pending.append(buf)
            ex.pendingBytes += buf.readableBytes
            if ex.pendingBytes > 1 << 20 { updateReading() }
        case .forwarding:
            guard let up = ex.upstream else { return }
            writeBodyUpstream(ex, up, buf)
            if !up.isWritable {
                // Stop reading first: flushing may make the upstream writable again at once, and its
                // writability event must find reading off to turn it back on.
                updateReading()
                up.flush()
            }
        case .answered, .idle:
            if ex.bodyBytesSeen > Self.drainLimit, !ex.responseEnded {
                ex.keepAlive = false
            } else if ex.bodyBytesSeen > Self.drainLimit {
                context?.close(promise: nil)
            }
        }
    }

    private func onEnd() {
        guard let ex = exchange else { return }
        ex.requestEnded = true
        switch phase {
        case .buffering:
            guard var request = ex.policyRequest, let route = ex.route, let before = ex.headResult else { return }
            ex.policyRequest = nil
            if let body = ex.bufferedBody { request.body = Array(body.readableBytesView) }
            act(ex, Gatekeeper(state: ex.state, clock: clock).decideBody(request, route: route, after: before, target: ex.head.uri))
        case .connecting:
            break
        case .forwarding:
            if let up = ex.upstream { endBodyUpstream(ex, up) }
            if !ex.responseStarted, let spec = ex.upstreamSpec { armTimeout(ex, spec: spec) }
        case .answered, .idle:
            if ex.responseEnded { completeIfDone(ex) }
        }
    }

    // MARK: Policy

    /// Acts on a decision (`Gatekeeper`): refuse, answer, read the body first, or forward.
    private func act(_ ex: Exchange, _ decision: consuming Gatekeeper.Decision) {
        ex.route = decision.route
        ex.trace = decision.trace
        let action = decision.action
        if case .bufferBody = action {
            ex.headResult = decision.headResult
        } else if !decision.shadowDenials.isEmpty, let route = decision.route {
            // Counted once, when the decision is final (the body's result carries the head's).
            for (check, d) in decision.shadowDenials {
                services.metrics.countShadowDenial(route: route.name, check: check, reason: d.code)
                services.logger.debug(
                    "shadow would deny", metadata: ["request_id": "\(ex.requestID)", "check": "\(check)", "reason": "\(d.code)"])
            }
        }
        let decidingCheck = decision.decidingCheck
        ex.policyRequest = decision.request
        switch action {
        case .deny(let denial):
            deny(ex, denial, check: decidingCheck)
        case .answer(let answer):
            ex.decidingCheck = decidingCheck
            phase = .answered
            writeSimpleResponse(ex, status: answer.status, headers: answer.headers, body: answer.body)
        case .bufferBody:
            ex.streamLimit = ex.policyRequest?.streamedBodyLimit
            phase = .buffering
            // Grown as bytes arrive, not sized from what the client declares.
            ex.bufferedBody = context?.channel.allocator.buffer(capacity: min(ex.head.contentLength ?? 4096, 16384))
            if ex.expectContinue { sendContinue() }
        case .forward(_, let streamLimit):
            ex.streamLimit = streamLimit
            startUpstream(ex)
        }
    }

    // MARK: Client limits

    /// Stops talking to the exchange's upstream (its connection is closed, never pooled).
    private func dropUpstream(_ ex: Exchange) {
        ex.awaitingUpstream = false
        ex.upstream?.sink = nil
        ex.upstream?.close()
        ex.upstream = nil
    }

    /// A streamed body passed a `max_body` limit: nothing more is forwarded; 413 when no response
    /// has started, otherwise the connection is cut.
    private func bodyOverLimit(_ ex: Exchange, _ limit: StreamedBodyLimit) {
        guard !abandon(ex) else { return }
        deny(
            ex,
            Denial(
                code: .bodyTooLarge,
                detail:
                    "the request body passed \(limit.bytes) bytes, the limit of \(limit.check), while it was streaming; nothing more of it was forwarded",
                required: ["body <= \(limit.bytes) bytes"], presented: ["more than \(limit.bytes) bytes (chunked)"]), check: limit.check)
    }

    /// Gives up on an exchange that is still running: its upstream is dropped, nothing more of
    /// the body is forwarded, the connection will close. When the response has started nothing
    /// valid can be sent any more, so the connection is cut and true is returned; otherwise the
    /// caller answers (408, 413, 503, 504).
    private func abandon(_ ex: Exchange) -> Bool {
        dropUpstream(ex)
        pendingDrop(ex)
        ex.keepAlive = false
        if ex.responseStarted {
            ex.responseEnded = true
            finish(ex, closeAfter: true)
            return true
        }
        ex.bufferedBody = nil
        return false
    }

    private func pendingDrop(_ ex: Exchange) {
        ex.pending.removeAll()
        ex.pendingBytes = 0
    }

    /// Called by the event loop's sweep: carries out `ClientDeadlines`' verdict.
    func checkClientLimits(now: UInt64) {
        guard let context else { return }
        let connection = ClientDeadlines.Connection(
            closingSince: closingSince, broken: broken, waitingForHeadSince: waitingForHeadSince, headStarted: headStarted,
            requestsServed: requestsServed, readOff: readOff, lastClientRead: lastClientRead, unwritableSince: unwritableSince,
            clientWritable: context.channel.isWritable)
        var request = exchange.map { ex in
            ClientDeadlines.Request(
                requestEnded: ex.requestEnded, answeredAt: ex.answeredAt, startNanos: ex.startNanos,
                upstreamWritable: phase == .forwarding && ex.upstreamSpec != nil ? ex.upstream?.isWritable : nil,
                upstreamBlockedSince: ex.upstreamBlockedSince, upstreamReadTimeout: ex.upstreamSpec?.readTimeout ?? 0)
        }
        let verdict = ClientDeadlines(limits: limits).check(now: now, connection: connection, request: &request)
        if let ex = exchange, let r = request { ex.upstreamBlockedSince = r.upstreamBlockedSince }
        switch verdict {
        case .none:
            break
        case .closeNow:
            context.close(promise: nil)
        case .closeIdle:
            broken = true
            inbound = nil
            context.close(promise: nil)
        case .headTimedOut:
            headTimedOut()
        case .lingerOver:
            guard let ex = exchange else { return }
            ex.keepAlive = false
            finish(ex, closeAfter: true)
        case .bodyTimedOut(let why):
            if let ex = exchange { bodyTimedOut(ex, why: why) }
        case .upstreamStoppedReading:
            if let ex = exchange, let spec = ex.upstreamSpec { upstreamStoppedReading(ex, spec: spec) }
        case .clientStoppedReading:
            if let ex = exchange {
                dropUpstream(ex)
                if ex.status == 0 { ex.status = 499 }
                ex.responseEnded = true
                ex.keepAlive = false
                finish(ex, closeAfter: true)
            } else {
                broken = true
                context.close(promise: nil)
            }
        }
    }

    /// The upstream did not take any of the request body for its read timeout: 504, both sides closed.
    private func upstreamStoppedReading(_ ex: Exchange, spec: UpstreamSpec) {
        guard !abandon(ex) else { return }
        failUpstream(
            ex,
            Denial(
                code: .upstreamTimeout,
                detail:
                    "upstream \(spec.name) (\(ex.upstreamTarget?.description ?? "?")) stopped reading the request body for \(TimeText.duration(spec.readTimeout))",
                presented: ["upstream \(spec.name)"]))
    }

    /// The head did not arrive within the header timeout: 408, logged, closed.
    private func headTimedOut() {
        let received = inbound?.readableBytes ?? 0
        broken = true
        inbound = nil
        waitingForHeadSince = nil
        let ex = Exchange(requestID: ids.next(), head: RequestHead.unparsed, state: services.current)
        ex.keepAlive = false
        ex.requestEnded = true
        exchange = ex
        phase = .answered
        ex.policyRequest = PolicyRequest(
            requestID: ex.requestID, method: "-", path: "-", clientAddress: peer, peerAddress: peer, now: ex.wallTime)
        deny(
            ex,
            Denial(
                code: .requestTimeout,
                detail:
                    "the request head did not arrive within \(TimeText.duration(limits.headerTimeout)) (limits.header_timeout); \(received) bytes of it had",
                required: ["a whole request head within \(TimeText.duration(limits.headerTimeout))"],
                presented: ["\(received) bytes of a head"]), check: nil)
    }

    /// The body stopped arriving, or took too long: 408 if nothing was answered yet, otherwise the
    /// connection is cut.
    private func bodyTimedOut(_ ex: Exchange, why: String) {
        guard !abandon(ex) else { return }
        deny(
            ex,
            Denial(
                code: .requestTimeout,
                detail: "the request body did not arrive in time: \(why), after \(ex.bodyBytesSeen) bytes",
                required: [
                    "body progress at least every \(TimeText.duration(limits.bodyTimeout)), the whole request within \(TimeText.duration(limits.requestTimeout))"
                ],
                presented: ["\(ex.bodyBytesSeen) bytes"]), check: nil)
    }

    /// How readily this connection gives its place to a new client at the connection cap (lower
    /// first) and since when it has been in that state; nil when it is serving a request normally.
    func evictionRank(now: UInt64) -> (Int, UInt64)? {
        guard context != nil, !broken else { return nil }
        guard let ex = exchange else { return waitingForHeadSince.map { (0, $0) } }
        guard !ex.requestEnded else { return nil }
        if ex.answeredAt != 0 { return (1, ex.answeredAt) }
        if !ex.responseStarted, now &- ex.startNanos > 1_000_000_000 { return (2, ex.startNanos) }
        return nil
    }

    /// The connection cap was reached and this connection gives its place (see `evictionRank`).
    func evict() {
        guard let context else { return }
        guard let ex = exchange else {
            broken = true
            inbound = nil
            context.close(promise: nil)
            return
        }
        if ex.answeredAt != 0 || ex.responseStarted {
            ex.keepAlive = false
            finish(ex, closeAfter: true)
        } else {
            bodyTimedOut(
                ex,
                why: "the gateway reached its connection cap (limits.max_connections) and this request's body had been arriving the longest"
            )
        }
    }

    /// The shutdown's grace period ended: a request still running is answered 503 (or cut when its
    /// response has started) and logged; the connection closes.
    func shutdownNow() {
        guard let context else { return }
        quiescing = true
        guard let ex = exchange else {
            broken = true
            context.close(promise: nil)
            return
        }
        guard !abandon(ex) else { return }
        deny(
            ex,
            Denial(
                code: .gatewayShuttingDown,
                detail: "the gateway was shutting down and this request was still running when the grace period ended",
                presented: [ex.upstreamSpec.map { "waiting for upstream \($0.name)" } ?? "in progress"]), check: nil)
    }

    private func deny(_ ex: Exchange, _ denial: Denial, check: String?) {
        ex.denial = denial
        ex.decidingCheck = check
        // A denial during the body keeps the trace of the checks that ran on the head.
        if ex.trace.entries.isEmpty, let before = ex.headResult { ex.trace = before.trace }
        if !ex.requestEnded { ex.answeredAt = NIODeadline.now().uptimeNanoseconds }
        phase = .answered
        if ex.expectContinue && !ex.requestEnded { ex.keepAlive = false }
        if let cl = ex.policyRequest?.contentLength, cl > Self.drainLimit, !ex.requestEnded { ex.keepAlive = false }
        let route = ex.route
        let rendered = ex.state.renderer.render(
            denial, requestID: ex.requestID, instance: ex.policyRequest?.path ?? ex.head.uri,
            exposure: route?.exposure ?? .detailed, checkID: check, revealOperatorDetail: route?.explicitDetailed ?? false)
        writeSimpleResponse(ex, status: rendered.status, headers: rendered.headers, body: rendered.body)
    }

    private func sendContinue() {
        // An HTTP/1.0 client cannot read an interim response: its expectation is ignored (RFC 9110
        // §10.1.1) and it sends its body anyway.
        guard let context, let ex = exchange, ex.head.minor == 1 else { return }
        var buf = context.channel.allocator.buffer(capacity: 32)
        buf.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
        context.writeAndFlush(wrapOutboundOut(buf), promise: nil)
    }

    /// Writes a complete response the gateway itself answers (a denial, a failure, a preflight) in one buffer.
    private func writeSimpleResponse(_ ex: Exchange, status: Int, headers: [HeaderField], body: [UInt8]) {
        guard let context else { return }
        let extra = ex.policyRequest?.responseHeaders ?? []
        var buf = context.channel.allocator.buffer(capacity: 192 + body.count + 64 * (headers.count + extra.count))
        buf.writeStatusLine(minor: ex.head.minor, status: status)
        for f in headers { buf.writeCheckedField(f.name, f.value) }
        for f in extra { buf.writeCheckedField(f.name, f.value) }
        buf.writeField("X-Request-Id", ex.requestID)
        buf.writeStaticString("Content-Length: ")
        buf.writeDecimal(body.count)
        buf.writeStaticString("\r\n")
        if !ex.keepAlive { buf.writeStaticString("Connection: close\r\n") }
        buf.writeStaticString("\r\n")
        buf.writeBytes(body)
        ex.status = status
        ex.responseStarted = true
        ex.responseEnded = true
        endResponse(ex, context: context, last: buf)
    }

    /// Writes the response's last bytes and flushes; closes the connection once they are written
    /// when keep-alive is off.
    private func endResponse(_ ex: Exchange, context: ChannelHandlerContext, last: ByteBuffer?) {
        if !ex.keepAlive {
            ex.closeScheduled = true
            closingSince = NIODeadline.now().uptimeNanoseconds
            let written = context.writeAndFlush(wrapOutboundOut(last ?? context.channel.allocator.buffer(capacity: 0)))
            if ex.requestEnded {
                written.whenComplete { _ in context.close(promise: nil) }
            } else {
                // Lingering close: the client is still sending its body. Closing now, with its bytes
                // unread, would reset the connection and could destroy the answer before the client
                // reads it; so the gateway stops writing, reads and discards for a moment, then closes.
                if readOff {
                    readOff = false
                    _ = context.channel.setOption(ChannelOptions.autoRead, value: true)
                }
                let channel = context.channel
                written.whenComplete { _ in
                    channel.close(mode: .output, promise: nil)
                    channel.eventLoop.scheduleTask(in: Self.lingerTime) { channel.close(promise: nil) }
                }
            }
            finish(ex, closeAfter: false)
        } else {
            if let last { context.write(wrapOutboundOut(last), promise: nil) }
            context.flush()
            completeIfDone(ex)
        }
    }

    // MARK: Upstream

    private func startUpstream(_ ex: Exchange) {
        guard let route = ex.route, let spec = ex.state.config.upstreams[route.upstream], !spec.targets.isEmpty, let pool else {
            failUpstream(ex, Denial(code: .upstreamUnavailable, detail: "route \(ex.route?.name ?? "?") has no upstream targets"))
            return
        }
        ex.upstreamSpec = spec
        phase = .connecting
        if ex.expectContinue && !ex.requestEnded { sendContinue() }
        connect(ex, spec: spec, pool: pool)
    }

    private func connect(_ ex: Exchange, spec: UpstreamSpec, pool: LoopPool) {
        if ex.connectAttempts == 0 { ex.targetStart = pool.nextStart(spec) }
        let target = spec.targets[(ex.targetStart + ex.connectAttempts) % spec.targets.count]
        ex.connectAttempts += 1
        ex.upstreamTarget = target
        // The first attempt: the request's start time serves as "now" (for a body read first it
        // is older; the pool then counts fewer connections as settled, which is harmless).
        if let idle = pool.takeIdle(target, now: ex.connectAttempts == 1 ? ex.startNanos : nil) {
            sendUpstream(ex, conn: idle, spec: spec)
            return
        }
        let connectStart = NIODeadline.now().uptimeNanoseconds
        pool.connect(target, connectTimeout: spec.connectTimeout).whenComplete { [self] result in
            guard exchange === ex, phase == .connecting else {
                if case .success(let conn) = result { pool.release(conn, maxIdle: spec.maxIdle) }
                return
            }
            switch result {
            case .success(let conn):
                ex.upstreamConnectNanos = NIODeadline.now().uptimeNanoseconds - connectStart
                sendUpstream(ex, conn: conn, spec: spec)
            case .failure(let error):
                if ex.connectAttempts < spec.targets.count {
                    services.logger.warning(
                        "upstream target failed, trying the next", metadata: ["target": "\(target)", "error": "\(error)"])
                    connect(ex, spec: spec, pool: pool)
                    return
                }
                if case ChannelError.connectTimeout = error {
                    failUpstream(
                        ex,
                        Denial(
                            code: .upstreamTimeout,
                            detail:
                                "connecting to upstream \(spec.name) (\(target)) timed out after \(TimeText.duration(spec.connectTimeout))",
                            presented: ["upstream \(spec.name)", "target \(target)"]))
                } else {
                    failUpstream(
                        ex,
                        Denial(
                            code: .upstreamUnavailable,
                            detail:
                                "upstream \(spec.name) is unavailable: \(spec.targets.count == 1 ? "" : "all \(spec.targets.count) targets failed; last ")\(target): \(Self.describe(error))",
                            presented: ["upstream \(spec.name)", "target \(target)"]))
                }
            }
        }
    }

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

    private func isPeerTrusted(_ trustedProxies: [CIDRBlock]) -> Bool {
        guard let p = peer, !trustedProxies.isEmpty else { return false }
        return trustedProxies.contains { $0.contains(p) }
    }

    /// Serialises the request head for the upstream: hop-by-hop fields removed, X-Forwarded-* and
    /// X-Request-Id set, the body's framing re-derived; a buffered body follows in the same buffer.
    private func sendUpstream(_ ex: Exchange, conn: UpstreamConnection, spec: UpstreamSpec) {
        guard let route = ex.route, let context else { return }
        phase = .forwarding
        ex.upstream = conn
        ex.upstreamTargetText = conn.key
        conn.begin(sink: self, headRequest: ex.head.method == "HEAD")
        ex.upstreamStartNanos = NIODeadline.now().uptimeNanoseconds

        let head = ex.head
        var untrustedHeaders = ex.peerTrusted ? nil : ex.state.config.untrustedHeaders
        var traceFields: TraceFields?
        if let tracing = services.tracing, let parent = ex.span {
            let (span, fields) = tracing.startUpstreamSpan(parent: parent, method: head.method, target: ex.upstreamTarget)
            ex.upstreamSpan = span
            traceFields = fields
            // The request's own trace-context fields are replaced by the span's (not forwarded beside them).
            untrustedHeaders = ex.peerTrusted ? TraceFields.names : ex.state.untrustedAndTraceFields
        }
        var out = context.channel.allocator.buffer(
            capacity: 512 + head.uri.utf8.count + 64 * head.headers.count
                + min(ex.bufferedBody?.readableBytes ?? 0, 16384))
        ForwardedHead.write(
            head, path: ex.policyRequest?.path ?? "/", query: ex.policyRequest?.query, route: route,
            requestID: ex.requestID, peerTrusted: ex.peerTrusted, peerText: peerText, isTLS: isTLS,
            untrustedHeaders: untrustedHeaders, traceFields: traceFields,
            into: &out)
        if let body = ex.bufferedBody {
            out.writeStaticString("Content-Length: ")
            out.writeDecimal(body.readableBytes)
            out.writeStaticString("\r\n\r\n")
            if body.readableBytes <= 16384 {
                var b = body
                out.writeBuffer(&b)
                conn.write(out, flush: false)
            } else {
                conn.write(out, flush: false)
                conn.write(body, flush: false)
            }
        } else {
            switch head.framing {
            case .length(let n):
                out.writeStaticString("Content-Length: ")
                out.writeDecimal(n)
                out.writeStaticString("\r\n")
            case .chunked:
                out.writeStaticString("Transfer-Encoding: chunked\r\n")
                ex.chunkedUp = true
            case .none, .untilClose:
                break
            }
            out.writeStaticString("\r\n")
            conn.write(out, flush: false)
        }
        for part in ex.pending { writeBodyUpstream(ex, conn, part) }
        ex.pending.removeAll()
        ex.pendingBytes = 0
        if ex.requestEnded {
            endBodyUpstream(ex, conn)
            armTimeout(ex, spec: spec, now: ex.upstreamStartNanos)
        } else {
            conn.flush()
            updateReading()
        }
    }

    /// Writes a piece of the request body to the upstream, as a chunk when the body is chunked.
    private func writeBodyUpstream(_ ex: Exchange, _ conn: UpstreamConnection, _ piece: ByteBuffer) {
        guard ex.chunkedUp else {
            conn.write(piece, flush: false)
            return
        }
        var h = context!.channel.allocator.buffer(capacity: 20 + (piece.readableBytes <= 4096 ? piece.readableBytes : 0))
        h.writeChunkHeader(piece.readableBytes)
        if piece.readableBytes <= 4096 {
            var p = piece
            h.writeBuffer(&p)
            h.writeStaticString("\r\n")
            conn.write(h, flush: false)
        } else {
            conn.write(h, flush: false)
            conn.write(piece, flush: false)
            var crlf = context!.channel.allocator.buffer(capacity: 2)
            crlf.writeStaticString("\r\n")
            conn.write(crlf, flush: false)
        }
    }

    /// Ends the request body towards the upstream and flushes.
    private func endBodyUpstream(_ ex: Exchange, _ conn: UpstreamConnection) {
        if ex.chunkedUp, let context {
            var last = context.channel.allocator.buffer(capacity: 5)
            last.writeStaticString("0\r\n\r\n")
            conn.write(last, flush: true)
        } else {
            conn.flush()
        }
    }

    /// Arms the read timeout: the upstream must send something at least every `readTimeout`.
    ///
    /// One timer per connection, not per request: it is scheduled when a wait starts and no timer is
    /// pending, and when it fires it re-checks the current exchange's last upstream activity. Most
    /// requests therefore schedule and cancel nothing.
    private func armTimeout(_ ex: Exchange, spec: UpstreamSpec, now: UInt64 = NIODeadline.now().uptimeNanoseconds) {
        ex.lastUpstreamActivity = now
        ex.awaitingUpstream = true
        let due = now + ClientDeadlines.nanos(spec.readTimeout)
        if timer == nil || timerDue > due {
            timer?.cancel()
            scheduleTimer(at: due)
        }
    }

    private func scheduleTimer(at due: UInt64) {
        guard let loop = context?.eventLoop else { return }
        timerDue = due
        timer = loop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(due)) { [self] in
            timer = nil
            timerFired()
        }
    }

    private func timerFired() {
        guard let ex = exchange, ex.awaitingUpstream, !ex.responseEnded, let spec = ex.upstreamSpec else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        let limit = ClientDeadlines.nanos(spec.readTimeout)
        if context?.channel.isWritable == false {
            // Reading from the upstream is paused because the client reads slowly: that is not the
            // upstream's silence. The wait starts again once the client catches up.
            ex.lastUpstreamActivity = now
        }
        if now - ex.lastUpstreamActivity < limit {
            scheduleTimer(at: ex.lastUpstreamActivity + limit)
            return
        }
        ex.awaitingUpstream = false
        let up = ex.upstream
        ex.upstream = nil
        up?.sink = nil
        up?.close()
        if ex.responseStarted {
            // Mid-body: nothing valid can be sent any more; cut the connection.
            ex.responseEnded = true
            ex.keepAlive = false
            finish(ex, closeAfter: true)
        } else {
            failUpstream(
                ex,
                Denial(
                    code: .upstreamTimeout,
                    detail:
                        "upstream \(spec.name) (\(ex.upstreamTarget?.description ?? "?")) did not answer within \(TimeText.duration(spec.readTimeout))",
                    presented: ["upstream \(spec.name)"]))
        }
    }

    private func failUpstream(_ ex: Exchange, _ denial: Denial) {
        if let span = ex.upstreamSpan {
            ex.upstreamSpan = nil
            GatewayTracing.endUpstreamSpan(span, status: 0, failure: denial.code.rawValue)
        }
        ex.awaitingUpstream = false
        ex.upstreamNanos = ex.upstreamStartNanos == 0 ? nil : NIODeadline.now().uptimeNanoseconds - ex.upstreamStartNanos
        if !ex.requestEnded { ex.keepAlive = false }
        deny(ex, denial, check: nil)
    }

    // MARK: UpstreamResponseSink

    /// Builds the client's response head from the upstream's: its status line and fields copied as
    /// bytes, hop-by-hop fields dropped, the checks' response fields and X-Request-Id added. It is
    /// held until the first body piece so that a small response leaves in one write.
    func upstreamHead(_ up: ResponseHead) {
        guard let ex = exchange, let context, let spec = ex.upstreamSpec else { return }
        if let conn = ex.upstream, let named = conn.foreignRequestID(in: up, sent: ex.requestID) {
            // The upstream, which echoed the gateway's ids on this connection, answers another
            // request here: it is a response behind (or answered one twice), and this response is
            // not this client's. 502, and the connection is closed, never pooled.
            dropUpstream(ex)
            failUpstream(
                ex,
                Denial(
                    code: .upstreamUnavailable,
                    detail:
                        "upstream \(spec.name) (\(conn.key)): the upstream's response names request \(named), not \(ex.requestID): the connection is out of step (it was closed)",
                    presented: ["upstream \(spec.name)", "X-Request-Id \(named)"]))
            return
        }
        armTimeout(ex, spec: spec)
        ex.status = up.status
        ex.responseStarted = true
        let extra = ex.policyRequest?.responseHeaders ?? []
        switch up.framing {
        case .chunked, .untilClose:
            // Re-framed as chunks for an HTTP/1.1 client; an HTTP/1.0 client reads to the close.
            if ex.head.minor == 1 { ex.chunkedOut = true } else { ex.keepAlive = false }
        case .none, .length:
            break
        }
        // Room for the fields added and a small body (sent in the same write, see upstreamBody).
        var out = context.channel.allocator.buffer(capacity: up.bytes.readableBytes + 1024 + 64 * extra.count)
        ClientResponseHead.write(
            up, minor: ex.head.minor, extraFields: extra, requestID: ex.requestID,
            chunked: ex.chunkedOut, keepAlive: ex.keepAlive, into: &out)
        ex.heldHead = out
    }

    func upstreamBody(_ buffer: ByteBuffer) {
        guard let ex = exchange, let context else { return }
        ex.lastUpstreamActivity = NIODeadline.now().uptimeNanoseconds
        let n = buffer.readableBytes
        if var held = ex.heldHead, n <= 16384 {
            // The usual small response: head, body (and chunk framing) in one buffer.
            ex.heldHead = nil
            if ex.chunkedOut { held.writeChunkHeader(n) }
            var b = buffer
            held.writeBuffer(&b)
            if ex.chunkedOut { held.writeStaticString("\r\n") }
            context.write(wrapOutboundOut(held), promise: nil)
        } else {
            if let held = ex.heldHead {
                ex.heldHead = nil
                context.write(wrapOutboundOut(held), promise: nil)
            }
            if ex.chunkedOut {
                var h = context.channel.allocator.buffer(capacity: 20)
                h.writeChunkHeader(n)
                context.write(wrapOutboundOut(h), promise: nil)
                context.write(wrapOutboundOut(buffer), promise: nil)
                var crlf = context.channel.allocator.buffer(capacity: 2)
                crlf.writeStaticString("\r\n")
                context.write(wrapOutboundOut(crlf), promise: nil)
            } else {
                context.write(wrapOutboundOut(buffer), promise: nil)
            }
        }
        if !context.channel.isWritable {
            ex.upstream?.setAutoRead(false)
            context.flush()
        }
    }

    func upstreamReadComplete() {
        guard let context else { return }
        if let ex = exchange, let held = ex.heldHead {
            ex.heldHead = nil
            context.write(wrapOutboundOut(held), promise: nil)
        }
        context.flush()
    }

    func upstreamEnd(reusable: Bool) {
        guard let ex = exchange, let context else { return }
        ex.awaitingUpstream = false
        let now = NIODeadline.now().uptimeNanoseconds
        ex.upstreamNanos = now - ex.upstreamStartNanos
        let conn = ex.upstream
        ex.upstream = nil
        if let span = ex.upstreamSpan {
            ex.upstreamSpan = nil
            GatewayTracing.endUpstreamSpan(span, status: ex.status, failure: nil)
        }
        if let conn {
            if reusable && ex.requestEnded, let spec = ex.upstreamSpec {
                pool?.release(conn, maxIdle: spec.maxIdle, now: now)
            } else {
                conn.close()
            }
        }
        ex.responseEnded = true
        phase = .answered
        if !ex.requestEnded, ex.hasBody { ex.keepAlive = false }
        var last = ex.heldHead
        ex.heldHead = nil
        if ex.chunkedOut {
            if last == nil { last = context.channel.allocator.buffer(capacity: 5) }
            last!.writeStaticString("0\r\n\r\n")
        }
        endResponse(ex, context: context, last: last)
    }

    func upstreamFailed(_ error: any Error, receivedHead: Bool) {
        guard let ex = exchange else { return }
        let conn = ex.upstream
        ex.upstream = nil
        if let span = ex.upstreamSpan {
            ex.upstreamSpan = nil
            GatewayTracing.endUpstreamSpan(
                span, status: receivedHead ? ex.status : 0,
                failure: receivedHead ? "response_incomplete" : "no_response")
        }
        if !receivedHead {
            // A pooled keep-alive connection the upstream closed just as it was reused (RFC 9112
            // §9.3.1): retried once on a new one, but only when the upstream cannot have acted on
            // the request: it came from the pool, closed without sending a byte (not a malformed
            // answer, not a 1xx), and the method is idempotent (RFC 9110 §9.2.2), so a POST that the
            // upstream ran before dying is never sent twice.
            if !ex.retriedStale, !ex.hasBody, ex.requestEnded, let conn, conn.uses > 1, !conn.receivedAny,
                !(error is HTTP1Error), Self.idempotent.contains(ex.head.method), let spec = ex.upstreamSpec, let pool
            {
                ex.retriedStale = true
                ex.connectAttempts = 0
                ex.targetStart += 1
                phase = .connecting
                connect(ex, spec: spec, pool: pool)
                return
            }
            let what =
                (error as? HTTP1Error).map { "sent a response that is not valid HTTP/1.1: \($0.description)" }
                ?? "closed the connection before answering"
            failUpstream(
                ex,
                Denial(
                    code: .upstreamUnavailable,
                    detail: "upstream \(ex.upstreamSpec?.name ?? "?") (\(ex.upstreamTarget?.description ?? "?")) \(what)",
                    presented: ["upstream \(ex.upstreamSpec?.name ?? "?")"]))
        } else {
            ex.awaitingUpstream = false
            ex.responseEnded = true
            ex.keepAlive = false
            finish(ex, closeAfter: true)
        }
    }

    /// Methods a client may repeat with the same effect (RFC 9110 §9.2.2).
    static let idempotent: Set<String> = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]

    func upstreamWritabilityChanged(writable: Bool) {
        updateReading()
    }

    // MARK: Completion

    private func completeIfDone(_ ex: Exchange) {
        guard ex.responseEnded else { return }
        // Answered before the request body ended (a denial): keep reading to drain it; onEnd finishes.
        if ex.requestEnded { finish(ex, closeAfter: false) }
    }

    private func finish(_ ex: Exchange, closeAfter: Bool) {
        guard exchange === ex else { return }
        exchange = nil
        if ex.reservedBytes > 0 {
            services.connections.releaseBuffered(ex.reservedBytes)
            ex.reservedBytes = 0
        }
        phase = .idle
        log(ex)
        if closeAfter {
            broken = true
            inbound = nil
            context?.close(promise: nil)
        } else if !ex.keepAlive || quiescing {
            // The connection closes once the response is written; nothing more is read. When the
            // response ended while keep-alive was still on (a denial that then drained the body
            // during a shutdown), the close is arranged here, after what is still being written.
            broken = true
            inbound = nil
            if closingSince == 0 { closingSince = NIODeadline.now().uptimeNanoseconds }
            if !ex.closeScheduled, let context {
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                    context.close(promise: nil)
                }
            }
        } else {
            // Waiting for the next request: keep-alive's idle timeout applies until a head starts.
            waitingForHeadSince = registry?.now ?? NIODeadline.now().uptimeNanoseconds
            headStarted = (inbound?.readableBytes ?? 0) > 0
            // The next pipelined request, if one is waiting.
            parseInbound()
        }
    }

    private func log(_ ex: Exchange) {
        let now = NIODeadline.now().uptimeNanoseconds
        let record = CallRecord(ex, peer: peer, peerText: peerText, totalNanos: now - ex.startNanos)
        requestCounts?.record(
            GatewayMetrics.RequestSample(
                route: ex.route?.name, status: ex.status, reason: ex.denial?.code, check: ex.denial == nil ? nil : ex.decidingCheck,
                totalNanos: now - ex.startNanos, upstreamNanos: ex.upstreamNanos, connectNanos: ex.upstreamConnectNanos))
        services.callLog.submit(record)
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

import GatehouseConfig
import GatehouseCore
import GatehouseHTTP1
import Logging
import NIOCore
import Tracing

/// One client connection's I/O. It parses requests (GatehouseHTTP1), asks `Gatekeeper` what to do
/// with each, feeds `ExchangeStateMachine` the events (a head, a body piece, the upstream's
/// answer, a timer) and carries out the actions both return: socket work only. Where a request
/// is decided: `Gatekeeper`; when a connection waits, times out or closes: `ExchangeStateMachine`.
package final class GatewayHandler: ChannelInboundHandler {
    package typealias InboundIn = ByteBuffer
    package typealias OutboundOut = ByteBuffer
    typealias Machine = ExchangeStateMachine

    let services: GatewayServices
    let isTLS: Bool
    /// The TLS client certificate's identity, when the listener is TLS.
    let peerIdentity: PeerIdentityBox?
    var context: ChannelHandlerContext?
    /// The upstream half of the exchanges (connections, request, response relay).
    var upstream: UpstreamLeg?
    var requestCounts: GatewayMetrics.RequestCounts?
    /// The event loop's open connections (its sweep runs `checkClientLimits`).
    var registry: LoopConnections?
    var machine = Machine(limits: ClientLimits(), now: 0)
    /// The running exchange's record and resources.
    var exchange: Exchange?
    var ids = RequestIDGenerator()
    var peer: IPAddress?
    /// `peer` as text, computed once per connection (forwarding header, call log).
    var peerText = "unknown"
    let clock = NIOMicroClock()
    /// Bytes read and not yet parsed: the rest of a request, or pipelined requests waiting for the
    /// current response to end.
    var reader = RequestReader()
    var parsing = false
    /// The upstream read timer (`ExchangeStateMachine.readTimerFired`).
    var timer: Scheduled<Void>?
    static let noBytes = ByteBufferAllocator().buffer(capacity: 0)
    static let lingerTime = TimeAmount.nanoseconds(Int64(ClientDeadlines.lingerNanos))

    package init(services: GatewayServices, isTLS: Bool = false, peerIdentity: PeerIdentityBox? = nil) {
        self.services = services
        self.isTLS = isTLS
        self.peerIdentity = peerIdentity
    }

    private var now: UInt64 { NIODeadline.now().uptimeNanoseconds }

    package func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        upstream = UpstreamLeg(client: self, pool: services.pools.pool(for: context.eventLoop))
        requestCounts = services.metrics.requestCounts(for: context.eventLoop)
        if let addr = context.channel.remoteAddress?.ipAddress { peer = IPAddress(addr) }
        if let peer { peerText = peer.description }
        machine = Machine(limits: services.current.config.limits, now: now)
        let registry = services.connections.loop(for: context.eventLoop)
        registry.add(self)
        self.registry = registry
    }

    package func handlerRemoved(context: ChannelHandlerContext) {
        // Removed mid-exchange (without going inactive first): abandoned, logged, budget returned.
        if exchange != nil { run(machine.clientClosed()) }
        timer?.cancel()
        timer = nil
        registry?.remove(self)
        registry = nil
        self.context = nil
    }

    // MARK: Reading

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The loop's coarse clock (set by each sweep): the client limits have the sweep's resolution
        // anyway, and a clock reading per read is measurable on the hot path.
        guard machine.bytesArrived(now: registry?.now ?? now) else { return }
        reader.append(unwrapInboundIn(data))
        parseInbound()
    }

    /// Parses what has arrived, feeding heads and body pieces to the exchange. Stops at the end of
    /// a request whose response is still running: a pipelined request waits its turn in `reader`
    /// (reading stays enabled, so no epoll re-registration per request, until the machine's limit).
    private func parseInbound() {
        guard !parsing, !machine.broken, context != nil else { return }
        parsing = true
        defer { parsing = false }
        reading: while context != nil, !machine.broken {
            if reader.atHead {
                switch machine.nextHead {
                case .parse: break
                case .wait: break reading
                case .drop:
                    reader.discard()
                    break reading
                }
            }
            do {
                switch try reader.next() {
                case nil: break reading
                case .head(let head): onHead(head)
                case .body(let piece): onBody(piece)
                case .end: onEnd()
                }
            } catch {
                // Not HTTP/1.x: 400 (431 for an oversized head), logged, closed.
                reader.discard()
                run(machine.parseFailed(Machine.Failure(parsing: error)))
                break
            }
        }
        updateReading()
    }

    /// Reading from the client on or off, as the machine says (only a change costs a channel call).
    func updateReading() {
        guard let context else { return }
        let upstreamWritable = machine.phase == .forwarding ? exchange?.upstream?.isWritable : nil
        if let on = machine.reading(inboundBytes: reader.bufferedBytes, upstreamWritable: upstreamWritable, now: now) {
            _ = context.channel.setOption(ChannelOptions.autoRead, value: on)
        }
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Graceful shutdown: idle connections close now, busy ones after their current response.
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        run(machine.quiesce())
    }

    package func channelReadComplete(context: ChannelHandlerContext) {
        if machine.phase == .forwarding, let up = exchange?.upstream { up.channel?.flush() }
        context.fireChannelReadComplete()
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        let resume = machine.clientWritabilityChanged(writable, now: now)
        exchange?.upstream?.setAutoRead(writable)
        // Answers were held back while the client did not read: the next pipelined request.
        if resume { parseInbound() } else { updateReading() }
        context.fireChannelWritabilityChanged()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        run(machine.clientClosed())
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    // MARK: The exchange

    private func onHead(_ head: RequestHead) {
        // The configuration is read through `state` (a class), never copied whole per request.
        let state = services.current
        let trusted = peer.map { p in state.config.trustedProxies.contains { $0.contains(p) } } ?? false
        let (requestID, span) = services.identify(head, trusted: trusted, ids: &ids)
        let start = now
        machine.headParsed(
            Machine.Head(
                keepAlive: head.keepAlive, hasBody: head.hasBody, expectContinue: head.expectContinue, http11: head.minor == 1,
                declaredLength: head.contentLength), now: start)
        // The decision (Gatekeeper.swift), then acting on it. The exchange's head carries the
        // canonical target from here on; a refused target stays as received (logged).
        let wall = wallClock()
        let connection = Gatekeeper.Connection(peer: peer, peerTrusted: trusted, isTLS: isTLS, identity: peerIdentity?.value)
        let decision = Gatekeeper(state: state, clock: clock).decide(head, requestID: requestID, connection: connection, now: wall)
        var exchangeHead = head
        if let target = decision.target { exchangeHead.uri = target }
        let ex = Exchange(requestID: requestID, head: exchangeHead, state: state, startNanos: start, wallTime: wall)
        ex.peerTrusted = trusted
        ex.span = span
        exchange = ex
        act(ex, decision)
    }

    /// Carries out a decision (`Gatekeeper`): refuse, answer, read the body first, or forward.
    private func act(_ ex: Exchange, _ decision: consuming Gatekeeper.Decision) {
        ex.route = decision.route
        ex.trace = decision.trace
        let action = decision.action
        if case .bufferBody = action {
            ex.headResult = decision.headResult
        } else if !decision.shadowDenials.isEmpty {
            services.reportShadowDenials(decision.shadowDenials, route: decision.route, requestID: ex.requestID)
        }
        let decidingCheck = decision.decidingCheck
        ex.policyRequest = decision.request
        switch action {
        case .deny(let denial):
            _ = machine.decided(.deny, now: now)
            respond(ex, denial, check: decidingCheck)
        case .answer(let answer):
            ex.decidingCheck = decidingCheck
            _ = machine.decided(.answer, now: now)
            writeLocalResponse(ex, status: answer.status, headers: answer.headers, body: answer.body)
        case .bufferBody:
            let limit = ex.route?.maxBufferedBody ?? 0
            // Grown as bytes arrive, not sized from what the client declares.
            ex.bufferedBody = context?.channel.allocator.buffer(capacity: min(ex.head.contentLength ?? 4096, 16384))
            let action = machine.decided(.bufferBody(maxBytes: limit, streamLimit: ex.policyRequest?.streamedBodyLimit), now: now)
            if action == .startBuffering(sendContinue: true) { sendContinue(ex) }
        case .forward(_, let streamLimit):
            guard case .connect(let sendContinue) = machine.decided(.forward(streamLimit: streamLimit), now: now) else { return }
            upstream?.start(ex, sendContinue: sendContinue)
        }
    }

    private func onBody(_ piece: ByteBuffer) {
        guard let ex = exchange else { return }
        switch machine.bodyPart(bytes: piece.readableBytes, now: now) {
        case .buffer:
            guard services.connections.buffer(piece, for: ex, limit: machine.limits.maxBufferedBodies) else {
                return run(machine.bufferBudgetSpent(now: now))
            }
        case .hold(let pauseReading):
            ex.pending.append(piece)
            if pauseReading { updateReading() }
        case .forward:
            guard let up = ex.upstream else { return }
            upstream?.writeBody(ex, piece)
            if !up.isWritable {
                // Stop reading first: flushing may make the upstream writable again at once, and its
                // writability event must find reading off to turn it back on.
                updateReading()
                up.flush()
            }
        case .discard:
            break
        case .action(let action):
            run(action)
        }
    }

    private func onEnd() {
        guard let ex = exchange else { return }
        switch machine.bodyEnded(now: now) {
        case .none:
            break
        case .decideBody:
            guard var request = ex.policyRequest, let route = ex.route, let before = ex.headResult else { return }
            ex.policyRequest = nil
            if let body = ex.bufferedBody { request.body = Array(body.readableBytesView) }
            act(ex, Gatekeeper(state: ex.state, clock: clock).decideBody(request, route: route, after: before, target: ex.head.uri))
        case .endUpstreamBody(let timer):
            upstream?.endBody(ex)
            if let timer { schedule(at: timer) }
        case .finish:
            finish(ex, closeAfter: false)
        }
    }

    /// Carries out what the machine says beyond the request's own path.
    func run(_ action: Machine.Action) {
        switch action {
        case .none, .answer, .startBuffering, .connect:
            break
        case .close:
            reader.discard()
            context?.close(promise: nil)
        case .fail(let failure):
            guard let ex = exchange else { return }
            upstream?.drop(ex)
            ex.pending.removeAll()
            ex.bufferedBody = nil
            let (denial, check) = failure.denial(ex.failureContext(limits: machine.limits))
            if failure.isUpstream { ex.upstreamFailed(reason: denial.code, now: now) }
            respond(ex, denial, check: check)
        case .abandon(let close):
            guard let ex = exchange else { return }
            upstream?.drop(ex)
            if ex.status == 0 { ex.status = 499 }
            finish(ex, closeAfter: close)
        case .failUnparsed(let failure):
            // A request that never got a valid head: a record of its own (a running exchange, cut
            // short by bad bytes mid-body, gives it its id and route).
            let previous = exchange
            if let previous {
                upstream?.drop(previous)
                services.connections.releaseBuffered(of: previous)
            }
            reader.discard()
            let ex = Exchange.unparsed(failure, previous: previous, ids: &ids, peer: peer, state: services.current)
            exchange = ex
            let (denial, check) = failure.denial(ex.failureContext(limits: machine.limits))
            respond(ex, denial, check: check)
        case .retryConnect:
            guard let ex = exchange, let spec = ex.upstreamSpec else { return }
            upstream?.connect(ex, spec: spec)
        }
    }

    // MARK: Client limits (the event loop's sweep, `ClientConnections`)

    func checkClientLimits(now: UInt64) {
        guard let context else { return }
        run(
            machine.tick(
                now: now, clientWritable: context.channel.isWritable, upstreamWritable: exchange?.upstream?.isWritable,
                inboundBytes: reader.bufferedBytes))
    }

    func evictionRank(now: UInt64) -> (Int, UInt64)? {
        context == nil ? nil : machine.evictionRank(now: now)
    }

    func evict() {
        if context != nil { run(machine.evict(now: now)) }
    }

    func shutdownNow() {
        if context != nil { run(machine.shutdownDeadline(now: now)) }
    }

    // MARK: Responses

    private func respond(_ ex: Exchange, _ denial: Denial, check: String?) {
        let rendered = ex.refused(denial, check: check)
        writeLocalResponse(ex, status: rendered.status, headers: rendered.headers, body: rendered.body)
    }

    /// `100 Continue`, to an HTTP/1.1 client only (an HTTP/1.0 client cannot read an interim
    /// response: its expectation is ignored, RFC 9110 §10.1.1, and it sends its body anyway).
    func sendContinue(_ ex: Exchange) {
        guard let context, ex.head.minor == 1 else { return }
        context.writeAndFlush(wrapOutboundOut(LocalResponse.continue(context.channel.allocator)), promise: nil)
    }

    private func writeLocalResponse(_ ex: Exchange, status: Int, headers: [HeaderField], body: [UInt8]) {
        guard let context else { return }
        let buf = LocalResponse.write(
            minor: ex.head.minor, status: status, headers: headers, extraFields: ex.policyRequest?.responseHeaders ?? [],
            requestID: ex.requestID, body: body, keepAlive: machine.request?.keepAlive ?? false, allocator: context.channel.allocator)
        ex.status = status
        endResponse(ex, machine.localResponseWritten(now: now), last: buf)
    }

    /// Writes the response's last bytes and ends the exchange as the machine says. The exchange
    /// is logged before the bytes leave: a client that has its answer finds the record queued.
    func endResponse(_ ex: Exchange, _ end: Machine.ResponseEnd, last: ByteBuffer?) {
        guard let context else { return }
        switch end {
        case .keepOpen(let finishNow):
            if let last { context.write(wrapOutboundOut(last), promise: nil) }
            // Answered before the request body ended (a denial): reading drains it; its end finishes.
            if finishNow { finish(ex, closeAfter: false) }
            context.flush()
        case .closeWhenWritten:
            finish(ex, closeAfter: false)
            context.writeAndFlush(wrapOutboundOut(last ?? Self.noBytes)).whenComplete { _ in context.close(promise: nil) }
        case .linger(let resumeReading):
            // Lingering close: the client is still sending its body. Closing now, with its bytes
            // unread, would reset the connection and could destroy the answer before the client
            // reads it; so the gateway stops writing, reads and discards for a moment, then closes.
            if resumeReading { _ = context.channel.setOption(ChannelOptions.autoRead, value: true) }
            finish(ex, closeAfter: false)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(last ?? Self.noBytes)).whenComplete { _ in
                channel.close(mode: .output, promise: nil)
                channel.eventLoop.scheduleTask(in: Self.lingerTime) { channel.close(promise: nil) }
            }
        }
    }

    private func finish(_ ex: Exchange, closeAfter: Bool) {
        guard exchange === ex else { return }
        exchange = nil
        services.connections.releaseBuffered(of: ex)
        services.record(ex, peer: peer, peerText: peerText, counts: requestCounts)
        switch machine.finished(closeAfter: closeAfter, inboundBytes: reader.bufferedBytes, now: registry?.now ?? now) {
        case .closeNow:
            reader.discard()
            context?.close(promise: nil)
        case .closeWhenWritten(let flushFirst):
            reader.discard()
            if flushFirst, let context {
                context.writeAndFlush(wrapOutboundOut(Self.noBytes)).whenComplete { _ in context.close(promise: nil) }
            }
        case .next:
            parseInbound()
        }
    }

    /// Schedules the upstream read timer (one per connection; the machine says when).
    func schedule(at due: UInt64) {
        guard let loop = context?.eventLoop else { return }
        timer?.cancel()
        timer = loop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(due)) { [self] in
            timer = nil
            let (action, again) = machine.readTimerFired(now: now, clientWritable: context?.channel.isWritable ?? true)
            if let again { schedule(at: again) }
            run(action)
        }
    }
}

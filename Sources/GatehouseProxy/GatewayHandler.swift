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
final class GatewayHandler: ChannelInboundHandler, UpstreamResponseSink {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    typealias Machine = ExchangeStateMachine

    let services: GatewayServices
    let isTLS: Bool
    /// The TLS client certificate's identity, when the listener is TLS.
    let peerIdentity: PeerIdentityBox?
    var context: ChannelHandlerContext?
    var pool: LoopPool?
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
    /// Bytes read but not yet parsed: the rest of a request, or pipelined requests waiting for the
    /// current response to end.
    var inbound: ByteBuffer?
    /// The current request's body reader; idle between requests (a head is parsed next).
    var body = BodyDecoder(strict: true)
    var parsing = false
    /// The upstream read timer (`ExchangeStateMachine.readTimerFired`).
    var timer: Scheduled<Void>?
    static let noBytes = ByteBufferAllocator().buffer(capacity: 0)
    static let lingerTime = TimeAmount.nanoseconds(Int64(ClientDeadlines.lingerNanos))

    init(services: GatewayServices, isTLS: Bool = false, peerIdentity: PeerIdentityBox? = nil) {
        self.services = services
        self.isTLS = isTLS
        self.peerIdentity = peerIdentity
    }

    private var now: UInt64 { NIODeadline.now().uptimeNanoseconds }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        pool = services.pools.pool(for: context.eventLoop)
        requestCounts = services.metrics.requestCounts(for: context.eventLoop)
        if let addr = context.channel.remoteAddress?.ipAddress { peer = IPAddress(addr) }
        if let peer { peerText = peer.description }
        machine = Machine(limits: services.current.config.limits, now: now)
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

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The loop's coarse clock (set by each sweep): the client limits have the sweep's resolution
        // anyway, and a clock reading per read is measurable on the hot path.
        guard machine.bytesArrived(now: registry?.now ?? now) else { return }
        inbound.accumulate(unwrapInboundIn(data))
        parseInbound()
    }

    /// Parses what has arrived, feeding heads and body pieces to the exchange. Stops at the end of
    /// a request whose response is still running: a pipelined request waits its turn in `inbound`
    /// (reading stays enabled, so no epoll re-registration per request, until the machine's limit).
    private func parseInbound() {
        guard !parsing, !machine.broken, context != nil else { return }
        parsing = true
        defer { parsing = false }
        reading: while context != nil, !machine.broken {
            if body.isIdle {
                guard var buf = inbound, buf.readableBytes > 0 else { break }
                switch machine.nextHead {
                case .wait: break reading
                case .drop:
                    inbound = nil
                    break reading
                case .parse: break
                }
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

    /// Reading from the client on or off, as the machine says (only a change costs a channel call).
    private func updateReading() {
        guard let context else { return }
        let upstreamWritable = machine.phase == .forwarding ? exchange?.upstream?.isWritable : nil
        if let on = machine.reading(inboundBytes: inbound?.readableBytes ?? 0, upstreamWritable: upstreamWritable, now: now) {
            _ = context.channel.setOption(ChannelOptions.autoRead, value: on)
        }
    }

    /// The client sent something that is not HTTP/1.x: 400 (431 for an oversized head), logged,
    /// closed.
    private func parseFailed(_ error: any Error) {
        inbound = nil
        if let e = error as? HTTP1Error, e.kind == .headTooLarge {
            run(machine.parseFailed(.headTooLarge(e.description)))
        } else {
            run(machine.parseFailed(.badRequest("\(error)")))
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Graceful shutdown: idle connections close now, busy ones after their current response.
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        run(machine.quiesce())
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if machine.phase == .forwarding, let up = exchange?.upstream { up.channel?.flush() }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        let resume = machine.clientWritabilityChanged(writable, now: now)
        exchange?.upstream?.setAutoRead(writable)
        // Answers were held back while the client did not read: the next pipelined request.
        if resume { parseInbound() } else { updateReading() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        run(machine.clientClosed())
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: The exchange

    private func onHead(_ head: RequestHead) {
        // The configuration is read through `state` (a class), never copied whole per request.
        let state = services.current
        let trusted = peer.map { p in state.config.trustedProxies.contains { $0.contains(p) } } ?? false
        var span: (any Span)?
        if let tracing = services.tracing {
            let incoming = trusted ? TraceFields(traceparent: head.first("traceparent"), tracestate: head.first("tracestate")) : nil
            span = tracing.startRequestSpan(method: head.method, incoming: incoming)
        }
        var requestID: String
        if trusted, let incoming = head.first("x-request-id"), RequestIDGenerator.isAcceptable(incoming) {
            requestID = RequestIDGenerator.claim(incoming)
        } else {
            requestID = ids.next()
        }
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
            if machine.decided(.bufferBody(maxBytes: limit, streamLimit: ex.policyRequest?.streamedBodyLimit), now: now)
                == .startBuffering(sendContinue: true)
            {
                sendContinue(ex)
            }
        case .forward(_, let streamLimit):
            guard case .connect(let sendContinue) = machine.decided(.forward(streamLimit: streamLimit), now: now) else { return }
            guard let route = ex.route, let spec = ex.state.config.upstreams[route.upstream], !spec.targets.isEmpty, let pool else {
                return run(machine.noUpstreamTargets(now: now))
            }
            ex.upstreamSpec = spec
            machine.upstreamChosen(readTimeout: spec.readTimeout)
            if sendContinue { self.sendContinue(ex) }
            connect(ex, spec: spec, pool: pool)
        }
    }

    private func onBody(_ piece: ByteBuffer) {
        guard let ex = exchange else { return }
        switch machine.bodyPart(bytes: piece.readableBytes, now: now) {
        case .buffer:
            guard services.connections.reserveBuffered(piece.readableBytes, limit: machine.limits.maxBufferedBodies) else {
                return run(machine.bufferBudgetSpent(now: now))
            }
            ex.reservedBytes += piece.readableBytes
            var b = piece
            ex.bufferedBody?.writeBuffer(&b)
        case .hold(let pauseReading):
            ex.pending.append(piece)
            if pauseReading { updateReading() }
        case .forward:
            guard let up = ex.upstream else { return }
            writeBodyUpstream(ex, up, piece)
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
            if let up = ex.upstream { endBodyUpstream(ex, up) }
            if let timer { schedule(at: timer) }
        case .finish:
            finish(ex, closeAfter: false)
        }
    }

    /// Carries out what the machine says beyond the request's own path.
    private func run(_ action: Machine.Action) {
        switch action {
        case .none, .answer, .startBuffering, .connect:
            break
        case .close:
            inbound = nil
            context?.close(promise: nil)
        case .fail(let failure):
            guard let ex = exchange else { return }
            dropUpstream(ex)
            ex.pending.removeAll()
            ex.bufferedBody = nil
            if failure.isUpstream {
                if let span = ex.upstreamSpan {
                    ex.upstreamSpan = nil
                    GatewayTracing.endUpstreamSpan(span, status: 0, failure: failure.denial(failureContext(ex)).0.code.rawValue)
                }
                ex.upstreamNanos = ex.upstreamStartNanos == 0 ? nil : now - ex.upstreamStartNanos
            }
            let (denial, check) = failure.denial(failureContext(ex))
            respond(ex, denial, check: check)
        case .cut:
            guard let ex = exchange else { return }
            dropUpstream(ex)
            if ex.status == 0 { ex.status = 499 }
            finish(ex, closeAfter: true)
        case .finishAbandoned(let dropUpstream):
            guard let ex = exchange else { return }
            if dropUpstream {
                self.dropUpstream(ex)
                if ex.status == 0 { ex.status = 499 }
            }
            finish(ex, closeAfter: false)
        case .failUnparsed(let failure):
            // A request that never got a valid head: a record of its own (a running exchange, cut
            // short by bad bytes mid-body, gives it its id and route).
            let previous = exchange
            if let previous {
                dropUpstream(previous)
                services.connections.releaseBuffered(previous.reservedBytes)
            }
            inbound = nil
            let ex: Exchange
            if case .headTimedOut = failure {
                ex = Exchange(requestID: ids.next(), head: RequestHead.unparsed, state: services.current)
                ex.policyRequest = PolicyRequest(
                    requestID: ex.requestID, method: "-", path: "-", clientAddress: peer, peerAddress: peer, now: ex.wallTime)
            } else {
                let head = previous?.head ?? RequestHead.unparsed
                ex = Exchange(requestID: previous?.requestID ?? ids.next(), head: head, state: services.current)
                ex.route = previous?.route
                ex.policyRequest = PolicyRequest(
                    requestID: ex.requestID, method: head.method, path: head.uri, clientAddress: peer, now: ex.wallTime)
            }
            exchange = ex
            let (denial, check) = failure.denial(failureContext(ex))
            respond(ex, denial, check: check)
        case .retryConnect:
            guard let ex = exchange, let spec = ex.upstreamSpec, let pool else { return }
            connect(ex, spec: spec, pool: pool)
        }
    }

    private func failureContext(_ ex: Exchange) -> Machine.Failure.Context {
        Machine.Failure.Context(
            route: ex.route?.name, upstream: ex.upstreamSpec?.name, target: ex.upstreamTarget?.description,
            readTimeout: ex.upstreamSpec?.readTimeout ?? 0, limits: machine.limits)
    }

    // MARK: Client limits (the event loop's sweep, `ClientConnections`)

    func checkClientLimits(now: UInt64) {
        guard let context else { return }
        run(
            machine.tick(
                now: now, clientWritable: context.channel.isWritable, upstreamWritable: exchange?.upstream?.isWritable,
                inboundBytes: inbound?.readableBytes ?? 0))
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
        ex.denial = denial
        ex.decidingCheck = check
        // A denial during the body keeps the trace of the checks that ran on the head.
        if ex.trace.entries.isEmpty, let before = ex.headResult { ex.trace = before.trace }
        let route = ex.route
        let rendered = ex.state.renderer.render(
            denial, requestID: ex.requestID, instance: ex.policyRequest?.path ?? ex.head.uri,
            exposure: route?.exposure ?? .detailed, checkID: check, revealOperatorDetail: route?.explicitDetailed ?? false)
        writeLocalResponse(ex, status: rendered.status, headers: rendered.headers, body: rendered.body)
    }

    private func sendContinue(_ ex: Exchange) {
        // An HTTP/1.0 client cannot read an interim response: its expectation is ignored (RFC 9110
        // §10.1.1) and it sends its body anyway.
        guard let context, ex.head.minor == 1 else { return }
        var buf = context.channel.allocator.buffer(capacity: 32)
        buf.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
        context.writeAndFlush(wrapOutboundOut(buf), promise: nil)
    }

    private func writeLocalResponse(_ ex: Exchange, status: Int, headers: [HeaderField], body: [UInt8]) {
        guard let context else { return }
        let buf = LocalResponse.write(
            minor: ex.head.minor, status: status, headers: headers, extraFields: ex.policyRequest?.responseHeaders ?? [],
            requestID: ex.requestID, body: body, keepAlive: machine.request?.keepAlive ?? false, allocator: context.channel.allocator)
        ex.status = status
        endResponse(ex, machine.localResponseWritten(now: now), last: buf)
    }

    /// Writes the response's last bytes and ends the exchange as the machine says.
    private func endResponse(_ ex: Exchange, _ end: Machine.ResponseEnd, last: ByteBuffer?) {
        guard let context else { return }
        switch end {
        case .keepOpen(let finishNow):
            if let last { context.write(wrapOutboundOut(last), promise: nil) }
            context.flush()
            // Answered before the request body ended (a denial): reading drains it; its end finishes.
            if finishNow { finish(ex, closeAfter: false) }
        case .closeWhenWritten:
            context.writeAndFlush(wrapOutboundOut(last ?? Self.noBytes)).whenComplete { _ in context.close(promise: nil) }
            finish(ex, closeAfter: false)
        case .linger(let resumeReading):
            // Lingering close: the client is still sending its body. Closing now, with its bytes
            // unread, would reset the connection and could destroy the answer before the client
            // reads it; so the gateway stops writing, reads and discards for a moment, then closes.
            if resumeReading { _ = context.channel.setOption(ChannelOptions.autoRead, value: true) }
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(last ?? Self.noBytes)).whenComplete { _ in
                channel.close(mode: .output, promise: nil)
                channel.eventLoop.scheduleTask(in: Self.lingerTime) { channel.close(promise: nil) }
            }
            finish(ex, closeAfter: false)
        }
    }

    private func finish(_ ex: Exchange, closeAfter: Bool) {
        guard exchange === ex else { return }
        exchange = nil
        if ex.reservedBytes > 0 {
            services.connections.releaseBuffered(ex.reservedBytes)
            ex.reservedBytes = 0
        }
        services.record(ex, peer: peer, peerText: peerText, counts: requestCounts)
        switch machine.finished(closeAfter: closeAfter, inboundBytes: inbound?.readableBytes ?? 0, now: registry?.now ?? now) {
        case .closeNow:
            inbound = nil
            context?.close(promise: nil)
        case .closeWhenWritten(let flushFirst):
            inbound = nil
            if flushFirst, let context {
                context.writeAndFlush(wrapOutboundOut(Self.noBytes)).whenComplete { _ in context.close(promise: nil) }
            }
        case .next:
            parseInbound()
        }
    }

    // MARK: Upstream

    private func connect(_ ex: Exchange, spec: UpstreamSpec, pool: LoopPool) {
        if ex.connectAttempts == 0 { ex.targetStart = pool.nextStart(spec) }
        let target = spec.targets[(ex.targetStart + ex.connectAttempts) % spec.targets.count]
        ex.connectAttempts += 1
        ex.upstreamTarget = target
        // The first attempt: the request's start time serves as "now" (for a body read first it
        // is older; the pool then counts fewer connections as settled, which is harmless).
        if let idle = pool.takeIdle(target, now: ex.connectAttempts == 1 ? ex.startNanos : nil) {
            return sendUpstream(ex, conn: idle, spec: spec)
        }
        let connectStart = now
        pool.connect(target, connectTimeout: spec.connectTimeout).whenComplete { [self] result in
            guard exchange === ex, machine.phase == .connecting else {
                if case .success(let conn) = result { pool.release(conn, maxIdle: spec.maxIdle) }
                return
            }
            switch result {
            case .success(let conn):
                ex.upstreamConnectNanos = now - connectStart
                sendUpstream(ex, conn: conn, spec: spec)
            case .failure(let error):
                var timedOut = false
                if case ChannelError.connectTimeout = error { timedOut = true }
                let why =
                    timedOut
                    ? "timed out after \(TimeText.duration(spec.connectTimeout))"
                    : "\(spec.targets.count == 1 ? "" : "all \(spec.targets.count) targets failed; last ")\(target): \(Machine.Failure.describe(error))"
                let action = machine.upstreamConnectFailed(
                    attempts: ex.connectAttempts, targets: spec.targets.count, error: why, timedOut: timedOut, now: now)
                if action == .retryConnect {
                    services.logger.warning(
                        "upstream target failed, trying the next", metadata: ["target": "\(target)", "error": "\(error)"])
                }
                run(action)
            }
        }
    }

    /// Sends the request head (`ForwardedHead`) and whatever body is at hand to the upstream.
    private func sendUpstream(_ ex: Exchange, conn: UpstreamConnection, spec: UpstreamSpec) {
        guard let route = ex.route, let context else { return }
        ex.upstream = conn
        ex.upstreamTargetText = conn.key
        conn.begin(sink: self, headRequest: ex.head.method == "HEAD")
        ex.upstreamStartNanos = now
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
        let buffered = ex.bufferedBody
        var out = context.channel.allocator.buffer(
            capacity: 512 + head.uri.utf8.count + 64 * head.headers.count + min(buffered?.readableBytes ?? 0, 16384))
        ForwardedHead.write(
            head, path: ex.policyRequest?.path ?? "/", query: ex.policyRequest?.query, route: route, requestID: ex.requestID,
            peerTrusted: ex.peerTrusted, peerText: peerText, isTLS: isTLS, untrustedHeaders: untrustedHeaders, traceFields: traceFields,
            into: &out)
        ex.chunkedUp = ForwardedHead.writeFraming(head.framing, bufferedLength: buffered?.readableBytes, into: &out)
        if let buffered {
            ChunkFraming.emit(buffered, after: out, chunked: false, inlineLimit: 16384, allocator: context.channel.allocator) {
                conn.write($0, flush: false)
            }
        } else {
            conn.write(out, flush: false)
        }
        for part in ex.pending { writeBodyUpstream(ex, conn, part) }
        ex.pending.removeAll()
        let (sent, timer) = machine.requestSent(now: ex.upstreamStartNanos)
        if sent {
            endBodyUpstream(ex, conn)
            if let timer { schedule(at: timer) }
        } else {
            conn.flush()
            updateReading()
        }
    }

    private func writeBodyUpstream(_ ex: Exchange, _ conn: UpstreamConnection, _ piece: ByteBuffer) {
        guard let context else { return }
        ChunkFraming.emit(piece, after: nil, chunked: ex.chunkedUp, inlineLimit: 4096, allocator: context.channel.allocator) {
            conn.write($0, flush: false)
        }
    }

    private func endBodyUpstream(_ ex: Exchange, _ conn: UpstreamConnection) {
        guard ex.chunkedUp, let context else { return conn.flush() }
        var last = context.channel.allocator.buffer(capacity: 5)
        last.writeStaticString(ChunkFraming.lastChunk)
        conn.write(last, flush: true)
    }

    private func dropUpstream(_ ex: Exchange) {
        ex.upstream?.sink = nil
        ex.upstream?.close()
        ex.upstream = nil
    }

    /// Schedules the upstream read timer (one per connection; the machine says when).
    private func schedule(at due: UInt64) {
        guard let loop = context?.eventLoop else { return }
        timer?.cancel()
        timer = loop.scheduleTask(deadline: NIODeadline.uptimeNanoseconds(due)) { [self] in
            timer = nil
            let (action, again) = machine.readTimerFired(now: now, clientWritable: context?.channel.isWritable ?? true)
            if let again { schedule(at: again) }
            run(action)
        }
    }

    // MARK: UpstreamResponseSink

    /// Builds the client's response head from the upstream's (`ClientResponseHead`), held until
    /// the first body piece so that a small response leaves in one write.
    func upstreamHead(_ up: ResponseHead) {
        guard let ex = exchange, let context, ex.upstreamSpec != nil else { return }
        if let conn = ex.upstream, let named = conn.foreignRequestID(in: up, sent: ex.requestID) {
            // The upstream, which echoed the gateway's ids on this connection, answers another
            // request here: it is a response behind (or answered one twice), and this response is
            // not this client's. 502, and the connection is closed, never pooled.
            return run(machine.upstreamOutOfStep(named, expected: ex.requestID, now: now))
        }
        var chunked = false
        if case .chunked = up.framing { chunked = true } else if case .untilClose = up.framing { chunked = true }
        if let timer = machine.upstreamResponseHead(chunked: chunked, now: now) { schedule(at: timer) }
        ex.status = up.status
        let extra = ex.policyRequest?.responseHeaders ?? []
        // Room for the fields added and a small body (sent in the same write, see upstreamBody).
        var out = context.channel.allocator.buffer(capacity: up.bytes.readableBytes + 1024 + 64 * extra.count)
        ClientResponseHead.write(
            up, minor: ex.head.minor, extraFields: extra, requestID: ex.requestID, chunked: machine.request?.chunkedOut ?? false,
            keepAlive: machine.request?.keepAlive ?? false, into: &out)
        ex.heldHead = out
    }

    func upstreamBody(_ buffer: ByteBuffer) {
        guard let ex = exchange, let context else { return }
        machine.upstreamSent(now: now)
        let held = ex.heldHead
        ex.heldHead = nil
        ChunkFraming.emit(
            buffer, after: held, chunked: machine.request?.chunkedOut ?? false, inlineLimit: 16384, allocator: context.channel.allocator
        ) { context.write(wrapOutboundOut($0), promise: nil) }
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
        let now = self.now
        ex.upstreamNanos = now - ex.upstreamStartNanos
        let conn = ex.upstream
        ex.upstream = nil
        if let span = ex.upstreamSpan {
            ex.upstreamSpan = nil
            GatewayTracing.endUpstreamSpan(span, status: ex.status, failure: nil)
        }
        let pooled = machine.upstreamResponseEnded(reusable: reusable)
        if let conn {
            if pooled, let spec = ex.upstreamSpec { pool?.release(conn, maxIdle: spec.maxIdle, now: now) } else { conn.close() }
        }
        var last = ex.heldHead
        ex.heldHead = nil
        if machine.request?.chunkedOut == true {
            if last == nil { last = context.channel.allocator.buffer(capacity: 5) }
            last!.writeStaticString(ChunkFraming.lastChunk)
        }
        endResponse(ex, machine.responseWritten(now: now), last: last)
    }

    func upstreamFailed(_ error: any Error, receivedHead: Bool) {
        guard let ex = exchange else { return }
        let conn = ex.upstream
        ex.upstream = nil
        if let span = ex.upstreamSpan {
            ex.upstreamSpan = nil
            GatewayTracing.endUpstreamSpan(
                span, status: receivedHead ? ex.status : 0, failure: receivedHead ? "response_incomplete" : "no_response")
        }
        // A pooled keep-alive connection the upstream closed just as it was reused (RFC 9112
        // §9.3.1) may be retried once on a new one, but only when the upstream cannot have acted on
        // the request: it came from the pool, closed without sending a byte (not a malformed
        // answer, not a 1xx), and the method is idempotent (RFC 9110 §9.2.2), so a POST that the
        // upstream ran before dying is never sent twice.
        let stale = conn.map { $0.uses > 1 && !$0.receivedAny } ?? false
        let retryable = stale && !(error is HTTP1Error) && Self.idempotent.contains(ex.head.method) && pool != nil
        let what =
            (error as? HTTP1Error).map { "sent a response that is not valid HTTP/1.1: \($0.description)" }
            ?? "closed the connection before answering"
        let action = machine.upstreamFailed(receivedHead: receivedHead, retryable: retryable, error: what, now: now)
        if action == .retryConnect {
            ex.connectAttempts = 0
            ex.targetStart += 1
        }
        run(action)
    }

    /// Methods a client may repeat with the same effect (RFC 9110 §9.2.2).
    static let idempotent: Set<String> = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]

    func upstreamWritabilityChanged(writable: Bool) {
        updateReading()
    }
}

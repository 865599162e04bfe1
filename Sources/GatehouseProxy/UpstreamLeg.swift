import GatehouseConfig
import GatehouseCore
import GatehouseHTTP1
import Logging
import NIOCore

/// The upstream half of a client connection's exchanges: picks a target and gets a connection
/// (pooled or new, the next target when one fails), sends the request head (`ForwardedHead`) and
/// body, and relays the upstream's response to the client (`ClientResponseHead`, `ChunkFraming`).
/// What each event means for the exchange (a timer, a failure, whether the connection goes back
/// to the pool) the connection's `ExchangeStateMachine` decides; `GatewayHandler` owns both and
/// the client socket.
final class UpstreamLeg: UpstreamResponseSink {
    typealias Machine = ExchangeStateMachine
    /// The connection this leg serves (it owns the leg, and nothing else may hold the leg strongly:
    /// `UpstreamConnection.sink` is weak). Closures that outlive a callback capture it strongly
    /// (see `connect`).
    unowned let client: GatewayHandler
    let pool: LoopPool

    init(client: GatewayHandler, pool: LoopPool) {
        self.client = client
        self.pool = pool
    }

    private var now: UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// Methods a client may repeat with the same effect (RFC 9110 §9.2.2).
    static let idempotent: Set<String> = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]

    // MARK: Request

    /// Starts forwarding: the route's upstream, `100 Continue` when the client waits for it, then
    /// a connection.
    func start(_ ex: Exchange, sendContinue: Bool) {
        let client = client  // one strong load of the unowned reference per event
        guard let route = ex.route, let spec = ex.state.config.upstreams[route.upstream], !spec.targets.isEmpty else {
            return client.run(client.machine.noUpstreamTargets(now: now))
        }
        ex.upstreamSpec = spec
        client.machine.upstreamChosen(readTimeout: spec.readTimeout)
        if sendContinue { client.sendContinue(ex) }
        connect(ex, spec: spec)
    }

    /// Takes a pooled connection to the exchange's next target or opens one; on failure the
    /// machine says whether the next target is tried.
    func connect(_ ex: Exchange, spec: UpstreamSpec) {
        if ex.connectAttempts == 0 { ex.targetStart = pool.nextStart(spec) }
        let target = spec.targets[(ex.targetStart + ex.connectAttempts) % spec.targets.count]
        ex.connectAttempts += 1
        ex.upstreamTarget = target
        // The first attempt: the request's start time serves as "now" (for a body read first it
        // is older; the pool then counts fewer connections as settled, which is harmless).
        if let idle = pool.takeIdle(target, now: ex.connectAttempts == 1 ? ex.startNanos : nil) {
            return send(ex, conn: idle, spec: spec)
        }
        let connectStart = now
        let pool = pool
        // The closure holds the handler (and so this leg) until the connection attempt ends: a
        // client that leaves first must not leave it reading a released handler.
        let client = client
        pool.connect(target, connectTimeout: spec.connectTimeout).whenComplete { [self, client] result in
            guard client.exchange === ex, client.machine.upstreamConnectionWanted() else {
                if case .success(let conn) = result { pool.release(conn, maxIdle: spec.maxIdle) }
                return
            }
            switch result {
            case .success(let conn):
                ex.upstreamConnectNanos = now - connectStart
                send(ex, conn: conn, spec: spec)
            case .failure(let error):
                var timedOut = false
                if case ChannelError.connectTimeout = error { timedOut = true }
                let why =
                    timedOut
                    ? "timed out after \(TimeText.duration(spec.connectTimeout))"
                    : "\(spec.targets.count == 1 ? "" : "all \(spec.targets.count) targets failed; last ")\(target): \(Machine.Failure.describe(error))"
                let action = client.machine.upstreamConnectFailed(
                    attempts: ex.connectAttempts, targets: spec.targets.count, error: why, timedOut: timedOut,
                    now: NIODeadline.now().uptimeNanoseconds)
                if action == .retryConnect {
                    client.services.logger.warning(
                        "upstream target failed, trying the next", metadata: ["target": "\(target)", "error": "\(error)"])
                }
                client.run(action)
            }
        }
    }

    /// Sends the request head and whatever body is at hand.
    private func send(_ ex: Exchange, conn: UpstreamConnection, spec: UpstreamSpec) {
        let client = client  // one strong load of the unowned reference per event
        guard let route = ex.route, let allocator = client.context?.channel.allocator else {
            // The client's connection is gone: the upstream connection is not used.
            conn.close()
            return
        }
        ex.upstream = conn
        ex.upstreamTargetText = conn.key
        conn.begin(sink: self, headRequest: ex.head.method == "HEAD")
        ex.upstreamStartNanos = now
        let head = ex.head
        var untrustedHeaders = ex.peerTrusted ? nil : ex.state.config.untrustedHeaders
        var traceFields: TraceFields?
        if let tracing = client.services.tracing, let parent = ex.span {
            let (span, fields) = tracing.startUpstreamSpan(parent: parent, method: head.method, target: ex.upstreamTarget)
            ex.upstreamSpan = span
            traceFields = fields
            // The request's own trace-context fields are replaced by the span's (not forwarded beside them).
            untrustedHeaders = ex.peerTrusted ? TraceFields.names : ex.state.untrustedAndTraceFields
        }
        let buffered = ex.bufferedBody
        var out = allocator.buffer(capacity: 512 + head.uri.utf8.count + 64 * head.headers.count + min(buffered?.readableBytes ?? 0, 16384))
        ForwardedHead.write(
            head, path: ex.policyRequest?.path ?? "/", query: ex.policyRequest?.query, route: route, requestID: ex.requestID,
            peerTrusted: ex.peerTrusted, peerText: client.peerText, isTLS: client.isTLS, untrustedHeaders: untrustedHeaders,
            traceFields: traceFields, into: &out)
        ex.chunkedUp = ForwardedHead.writeFraming(head.framing, bufferedLength: buffered?.readableBytes, into: &out)
        if let buffered {
            var head: ByteBuffer? = consume out
            ChunkFraming.emit(buffered, after: &head, chunked: false, inlineLimit: 16384, allocator: allocator) {
                conn.write($0, flush: false)
            }
            // Handed to the channel: the body no longer counts against the buffered-body budget
            // while the response runs (a slow reader would otherwise hold it).
            ex.bufferedBody = nil
            client.services.connections.releaseBuffered(of: ex)
        } else {
            conn.write(out, flush: false)
        }
        for part in ex.pending { writeBody(ex, part) }
        ex.pending.removeAll()
        let (sent, timer) = client.machine.requestSent(now: ex.upstreamStartNanos)
        if sent {
            endBody(ex)
            if let timer { client.schedule(at: timer) }
        } else {
            conn.flush()
            client.updateReading()
        }
    }

    /// A piece of the request body, as a chunk when the body is chunked.
    func writeBody(_ ex: Exchange, _ piece: ByteBuffer) {
        let client = client  // one strong load of the unowned reference per event
        guard let conn = ex.upstream, let allocator = client.context?.channel.allocator else { return }
        ChunkFraming.emit(piece, chunked: ex.chunkedUp, inlineLimit: 4096, allocator: allocator) {
            conn.write($0, flush: false)
        }
    }

    /// Ends the request body and flushes.
    func endBody(_ ex: Exchange) {
        let client = client  // one strong load of the unowned reference per event
        guard let conn = ex.upstream else { return }
        guard ex.chunkedUp, let allocator = client.context?.channel.allocator else { return conn.flush() }
        var last = allocator.buffer(capacity: 5)
        last.writeStaticString(ChunkFraming.lastChunk)
        conn.write(last, flush: true)
    }

    /// Stops talking to the exchange's upstream (its connection is closed, never pooled).
    func drop(_ ex: Exchange) {
        ex.upstream?.sink = nil
        ex.upstream?.close()
        ex.upstream = nil
    }

    // MARK: Response (UpstreamResponseSink)

    /// Builds the client's response head from the upstream's, held until the first body piece so
    /// that a small response leaves in one write.
    func upstreamHead(_ up: ResponseHead) {
        let client = client  // one strong load of the unowned reference per event
        guard let ex = client.exchange, let context = client.context, ex.upstreamSpec != nil else { return }
        if let conn = ex.upstream, let named = conn.foreignRequestID(in: up, sent: ex.requestID) {
            // The upstream, which echoed the gateway's ids on this connection, answers another
            // request here: it is a response behind (or answered one twice), and this response is
            // not this client's. 502, and the connection is closed, never pooled.
            return client.run(client.machine.upstreamOutOfStep(named, expected: ex.requestID, now: now))
        }
        var chunked = false
        if case .chunked = up.framing { chunked = true } else if case .untilClose = up.framing { chunked = true }
        if let timer = client.machine.upstreamResponseHead(chunked: chunked, now: now) { client.schedule(at: timer) }
        ex.status = up.status
        let extra = ex.policyRequest?.responseHeaders ?? []
        // Room for the fields added and a small body (sent in the same write, see upstreamBody).
        var out = context.channel.allocator.buffer(capacity: up.bytes.readableBytes + 1024 + 64 * extra.count)
        let request = client.machine.request
        ClientResponseHead.write(
            up, minor: ex.head.minor, extraFields: extra, requestID: ex.requestID, chunked: request?.chunkedOut ?? false,
            keepAlive: request?.keepAlive ?? false, into: &out)
        ex.heldHead = out
    }

    func upstreamBody(_ buffer: ByteBuffer) {
        let client = client  // one strong load of the unowned reference per event
        guard let ex = client.exchange, let context = client.context else { return }
        client.machine.upstreamSent(now: now)
        let chunked = client.machine.request?.chunkedOut ?? false
        ChunkFraming.emit(buffer, after: &ex.heldHead, chunked: chunked, inlineLimit: 16384, allocator: context.channel.allocator) {
            context.write(NIOAny($0), promise: nil)
        }
        if !context.channel.isWritable {
            ex.upstream?.setAutoRead(false)
            context.flush()
        }
    }

    func upstreamReadComplete() {
        let client = client  // one strong load of the unowned reference per event
        guard let context = client.context else { return }
        if let ex = client.exchange, let held = ex.heldHead {
            ex.heldHead = nil
            context.write(NIOAny(held), promise: nil)
        }
        context.flush()
    }

    func upstreamEnd(reusable: Bool) {
        let client = client  // one strong load of the unowned reference per event
        guard let ex = client.exchange, let context = client.context else { return }
        let now = self.now
        ex.upstreamNanos = now - ex.upstreamStartNanos
        let conn = ex.upstream
        ex.upstream = nil
        if let span = ex.upstreamSpan {
            ex.upstreamSpan = nil
            GatewayTracing.endUpstreamSpan(span, status: ex.status, failure: nil)
        }
        let pooled = client.machine.upstreamResponseEnded(reusable: reusable)
        if let conn {
            if pooled, let spec = ex.upstreamSpec { pool.release(conn, maxIdle: spec.maxIdle, now: now) } else { conn.close() }
        }
        var last = ex.heldHead
        ex.heldHead = nil
        if client.machine.request?.chunkedOut == true {
            if last == nil { last = context.channel.allocator.buffer(capacity: 5) }
            last!.writeStaticString(ChunkFraming.lastChunk)
        }
        client.endResponse(ex, client.machine.responseWritten(now: now), last: last)
    }

    func upstreamFailed(_ error: any Error, receivedHead: Bool) {
        let client = client  // one strong load of the unowned reference per event
        guard let ex = client.exchange else { return }
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
        let retryable = stale && !(error is HTTP1Error) && Self.idempotent.contains(ex.head.method)
        let what =
            (error as? HTTP1Error).map { "sent a response that is not valid HTTP/1.1: \($0.description)" }
            ?? "closed the connection before answering"
        let action = client.machine.upstreamFailed(receivedHead: receivedHead, retryable: retryable, error: what, now: now)
        if action == .retryConnect {
            ex.connectAttempts = 0
            ex.targetStart += 1
        }
        client.run(action)
    }

    func upstreamWritabilityChanged(writable: Bool) {
        client.updateReading()
    }
}

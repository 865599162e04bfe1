import GatehouseConfig
import GatehouseCore
import GatehouseStore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Shared, thread-safe services every connection handler uses.
final class GatewayServices: Sendable {
    let runtime: NIOLockedValueBox<RuntimeState>
    let pools: LoopPools
    let callLog: CallLogWriter
    let logger: Logger
    let metrics = GatewayMetrics()

    init(runtime: RuntimeState, callLog: CallLogWriter, logger: Logger) {
        self.runtime = NIOLockedValueBox(runtime)
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
    let head: HTTPRequestHead
    let state: RuntimeState
    var route: CompiledRoute?
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
    var upstreamTarget: HostPort?
    /// The target as text, from the connection (computed once per connection, not per request).
    var upstreamTargetText: String?
    var upstreamStartNanos: UInt64 = 0
    var upstreamNanos: UInt64?
    var connectAttempts = 0
    var targetStart = 0
    var retriedStale = false
    /// Whether the read timeout applies (from request sent until the response ends).
    var awaitingUpstream = false
    /// Last time the upstream sent anything (uptime ns); the read timeout counts from here.
    var lastUpstreamActivity: UInt64 = 0
    var bodyBytesSeen = 0
    var hasBody: Bool
    var expectContinue: Bool

    init(requestID: String, head: HTTPRequestHead, state: RuntimeState) {
        self.requestID = requestID
        self.startNanos = NIODeadline.now().uptimeNanoseconds
        self.wallTime = wallClock()
        self.head = head
        self.state = state
        self.keepAlive = head.isKeepAlive
        let cl = head.headers.first(name: "content-length").flatMap(Int.init)
        self.hasBody = (cl ?? 0) > 0 || head.headers.contains(name: "transfer-encoding")
        self.expectContinue = head.headers.first(name: "expect")?.lowercased() == "100-continue"
    }
}

/// Handles one downstream connection: route, evaluate the chain, deny or proxy, log.
final class GatewayHandler: ChannelInboundHandler, UpstreamResponseSink {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

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
    var phase = Phase.idle
    var exchange: Exchange?
    var ids = RequestIDGenerator()
    var peer: IPAddress?
    let clock = NIOMicroClock()
    /// Parts of pipelined requests that arrived before the current response ended.
    var queued: [HTTPServerRequestPart] = []
    var draining = false
    /// Set by a graceful shutdown: no new requests on this connection.
    var quiescing = false
    /// The connection's read-timeout timer and when it is due (uptime ns).
    var timer: Scheduled<Void>?
    var timerDue: UInt64 = 0
    /// Bodies of denied requests larger than this are not drained: the connection is closed instead.
    static let drainLimit = 1 << 20

    /// The TLS client certificate's identity, when the listener is TLS.
    let peerIdentity: PeerIdentityBox?

    init(services: GatewayServices, isTLS: Bool = false, peerIdentity: PeerIdentityBox? = nil) {
        self.services = services
        self.isTLS = isTLS
        self.peerIdentity = peerIdentity
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        pool = services.pools.pool(for: context.eventLoop)
        if let addr = context.channel.remoteAddress?.ipAddress { peer = IPAddress(addr) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        // A pipelined request (its head arrives before the current response ended) waits its turn.
        // Queueing here instead of in NIO's HTTPServerPipelineHandler keeps reading enabled between
        // requests: that handler withholds read() while a response is pending, which costs two
        // epoll_ctl calls per request.
        if !queued.isEmpty || exchange?.requestEnded == true {
            queued.append(part)
            if queued.count > 256 { _ = context.channel.setOption(ChannelOptions.autoRead, value: false) }
            return
        }
        process(part)
    }

    private func process(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head): onHead(head)
        case .body(let buf): onBody(buf)
        case .end: onEnd()
        }
    }

    /// Processes queued pipelined parts until one of them starts an exchange that is still running.
    private func drainQueued() {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while !queued.isEmpty, exchange?.requestEnded != true, context != nil {
            process(queued.removeFirst())
        }
        if queued.count <= 256 { _ = context?.channel.setOption(ChannelOptions.autoRead, value: true) }
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
        exchange?.upstream?.setAutoRead(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let ex = exchange, !ex.responseEnded {
            // The client went away mid-exchange: stop the upstream, log as 499 (client closed request).
            ex.awaitingUpstream = false
            ex.upstream?.sink = nil
            ex.upstream?.close()
            ex.upstream = nil
            if ex.status == 0 { ex.status = 499 }
            ex.responseEnded = true
            finish(ex, closeAfter: false)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError, exchange?.responseStarted != true else {
            context.close(promise: nil)
            return
        }
        // Unparseable HTTP: answer 400 with a request id and close; the call log records it too.
        let head = exchange?.head ?? HTTPRequestHead(version: .http1_1, method: .GET, uri: "-")
        let ex = Exchange(requestID: exchange?.requestID ?? ids.next(), head: head, state: services.current)
        ex.keepAlive = false
        ex.requestEnded = true
        exchange = ex
        phase = .answered
        ex.policyRequest = PolicyRequest(requestID: ex.requestID, method: head.method.rawValue, path: "-", clientAddress: peer, now: ex.wallTime)
        deny(ex, Denial(code: .badRequest, detail: "the request is not valid HTTP/1.1 (\(error))", presented: []), check: nil)
    }

    private func onHead(_ head: HTTPRequestHead) {
        let state = services.current
        let config = state.config
        let peerTrusted = peer.map { p in config.trustedProxies.contains { $0.contains(p) } } ?? false
        var requestID: String
        if peerTrusted, let incoming = head.headers.first(name: "x-request-id"), RequestIDGenerator.isAcceptable(incoming) {
            requestID = incoming
        } else {
            requestID = ids.next()
        }
        let ex = Exchange(requestID: requestID, head: head, state: state)
        if quiescing { ex.keepAlive = false }
        exchange = ex

        let uri = head.uri
        let pathPart: Substring
        let query: String?
        if let q = uri.firstIndex(of: "?") {
            pathPart = uri[..<q]
            query = String(uri[uri.index(after: q)...])
        } else {
            pathPart = Substring(uri)
            query = nil
        }
        var host = head.headers.first(name: "host") ?? ""
        if host.hasPrefix("[") {
            if let close = host.firstIndex(of: "]") { host = String(host[host.index(after: host.startIndex)..<close]) }
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        host = host.lowercased()
        let method = head.method.rawValue
        let client = ClientAddressResolver.resolve(peer: peer, forwardedFor: head.headers["x-forwarded-for"], trusted: config.trustedProxies)

        var request = PolicyRequest(
            requestID: requestID, method: method, path: String(pathPart), query: query,
            headers: HeaderList(head.headers.map { HeaderField($0.name, $0.value) }), host: host,
            clientAddress: client, peerAddress: peer, isTLS: isTLS, peerIdentity: peerIdentity?.value,
            contentLength: head.headers.first(name: "content-length").flatMap(Int.init), routeName: "", now: ex.wallTime)

        // A CORS preflight is routed as the request it announces, so that route's CORS policy answers it.
        var routeMethod = method
        if head.method == .OPTIONS, head.headers.contains(name: "origin"),
           let announced = head.headers.first(name: "access-control-request-method"), !announced.isEmpty {
            routeMethod = announced.uppercased()
        }
        switch config.router.route(host: host, method: routeMethod, path: pathPart) {
        case .notFound:
            ex.policyRequest = request
            deny(ex, Denial(code: .routeNotFound, detail: "no route matches \(method) \(pathPart) on host \(host.isEmpty ? "(none)" : host)",
                            presented: ["\(method) \(pathPart)", "host \(host)"]), check: nil)
        case .methodNotAllowed(let allowed, let candidates):
            ex.policyRequest = request
            let allow = allowed.joined(separator: ", ")
            deny(ex, Denial(code: .methodNotAllowed,
                            detail: "\(method) is not allowed on \(pathPart); route\(candidates.count > 1 ? "s" : "") \(candidates.joined(separator: ", ")) accept\(candidates.count > 1 ? "" : "s") \(allow)",
                            required: allowed, presented: [method], headers: [HeaderField("Allow", allow)]), check: nil)
        case .matched(let route, let params):
            ex.route = route
            request.routeName = route.name
            request.pathParams = params
            ex.policyRequest = request
            if route.chain.needsBody && ex.hasBody {
                if let cl = request.contentLength, cl > route.maxBufferedBody {
                    deny(ex, Denial(code: .bodyTooLarge, detail: "route \(route.name) inspects bodies up to \(route.maxBufferedBody) bytes; this one is \(cl)",
                                    required: ["body <= \(route.maxBufferedBody) bytes"], presented: ["\(cl) bytes"]), check: nil)
                    return
                }
                phase = .buffering
                ex.bufferedBody = context?.channel.allocator.buffer(capacity: min(request.contentLength ?? 16384, route.maxBufferedBody))
                if ex.expectContinue { sendContinue() }
            } else {
                evaluate(ex)
            }
        }
    }

    private func onBody(_ buf: ByteBuffer) {
        guard let ex = exchange else { return }
        ex.bodyBytesSeen += buf.readableBytes
        switch phase {
        case .buffering:
            guard let route = ex.route else { return }
            if ex.bodyBytesSeen > route.maxBufferedBody {
                ex.bufferedBody = nil
                deny(ex, Denial(code: .bodyTooLarge, detail: "route \(route.name) inspects bodies up to \(route.maxBufferedBody) bytes; this one is larger",
                                required: ["body <= \(route.maxBufferedBody) bytes"], presented: ["more than \(route.maxBufferedBody) bytes"]), check: nil)
                return
            }
            var b = buf
            ex.bufferedBody?.writeBuffer(&b)
        case .connecting:
            ex.pending.append(buf)
            ex.pendingBytes += buf.readableBytes
            if ex.pendingBytes > 1 << 20 { _ = context?.channel.setOption(ChannelOptions.autoRead, value: false) }
        case .forwarding:
            guard let up = ex.upstream else { return }
            up.write(.body(.byteBuffer(buf)), flush: false)
            if !up.isWritable {
                // Stop reading first: flushing may make the upstream writable again at once, and its
                // writability event must find reading off to turn it back on.
                _ = context?.channel.setOption(ChannelOptions.autoRead, value: false)
                up.channel?.flush()
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
            if let body = ex.bufferedBody {
                ex.policyRequest?.body = Array(body.readableBytesView)
            }
            evaluate(ex)
        case .connecting:
            break
        case .forwarding:
            ex.upstream?.write(.end(nil), flush: true)
            if !ex.responseStarted, let spec = ex.upstreamSpec { armTimeout(ex, spec: spec) }
        case .answered, .idle:
            if ex.responseEnded { completeIfDone(ex) }
        }
    }

    // MARK: Policy

    private func evaluate(_ ex: Exchange) {
        guard var request = ex.policyRequest, let route = ex.route else { return }
        let result = route.chain.evaluate(&request, clock: clock)
        ex.policyRequest = request
        ex.trace = result.trace
        if !result.shadowDenials.isEmpty {
            for (check, d) in result.shadowDenials {
                services.metrics.countShadowDenial(route: route.name, check: check, reason: d.code)
                services.logger.debug("shadow would deny", metadata: ["request_id": "\(ex.requestID)", "check": "\(check)", "reason": "\(d.code)"])
            }
        }
        if let d = result.denial {
            deny(ex, d, check: result.decidingCheck)
            return
        }
        if let answer = request.localAnswer {
            ex.decidingCheck = result.decidingCheck
            phase = .answered
            writeSimpleResponse(ex, status: answer.status, headers: answer.headers, body: answer.body)
            return
        }
        startUpstream(ex)
    }

    private func deny(_ ex: Exchange, _ denial: Denial, check: String?) {
        ex.denial = denial
        ex.decidingCheck = check
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
        guard let context else { return }
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: exchange?.head.version ?? .http1_1, status: .continue))), promise: nil)
    }

    private func writeSimpleResponse(_ ex: Exchange, status: Int, headers: [HeaderField], body: [UInt8]) {
        guard let context else { return }
        var h = HTTPHeaders()
        h.reserveCapacity(headers.count + 4)
        for f in headers { h.add(name: f.name, value: f.value) }
        if let extra = ex.policyRequest?.responseHeaders { for f in extra { h.add(name: f.name, value: f.value) } }
        h.add(name: "X-Request-Id", value: ex.requestID)
        h.add(name: "Content-Length", value: String(body.count))
        if !ex.keepAlive { h.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: ex.head.version, status: HTTPResponseStatus(statusCode: status), headers: h)
        ex.status = status
        ex.responseStarted = true
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        var buf = context.channel.allocator.buffer(capacity: body.count)
        buf.writeBytes(body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
        ex.responseEnded = true
        endResponse(ex, context: context)
    }

    /// Writes the response end; closes the connection once it is written when keep-alive is off.
    private func endResponse(_ ex: Exchange, context: ChannelHandlerContext) {
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !ex.keepAlive {
            written.whenComplete { _ in context.close(promise: nil) }
            finish(ex, closeAfter: false)
        } else {
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
        pool.acquire(target, connectTimeout: spec.connectTimeout).whenComplete { [self] result in
            guard exchange === ex, phase == .connecting else {
                if case .success(let conn) = result { pool.release(conn, maxIdle: spec.maxIdle) }
                return
            }
            switch result {
            case .success(let conn):
                sendUpstream(ex, conn: conn, spec: spec)
            case .failure(let error):
                if ex.connectAttempts < spec.targets.count {
                    services.logger.warning("upstream target failed, trying the next", metadata: ["target": "\(target)", "error": "\(error)"])
                    connect(ex, spec: spec, pool: pool)
                    return
                }
                if case ChannelError.connectTimeout = error {
                    failUpstream(ex, Denial(code: .upstreamTimeout,
                                            detail: "connecting to upstream \(spec.name) (\(target)) timed out after \(TimeText.duration(spec.connectTimeout))",
                                            presented: ["upstream \(spec.name)", "target \(target)"]))
                } else {
                    failUpstream(ex, Denial(code: .upstreamUnavailable,
                                            detail: "upstream \(spec.name) is unavailable: \(spec.targets.count == 1 ? "" : "all \(spec.targets.count) targets failed; last ")\(target): \(Self.describe(error))",
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

    private func sendUpstream(_ ex: Exchange, conn: UpstreamConnection, spec: UpstreamSpec) {
        guard let route = ex.route else { return }
        phase = .forwarding
        ex.upstream = conn
        ex.upstreamTargetText = conn.key
        conn.begin(sink: self)
        ex.upstreamStartNanos = NIODeadline.now().uptimeNanoseconds

        var headers = ex.head.headers
        // Hop-by-hop headers (RFC 9110 §7.6.1), including any named by Connection.
        if let conn = headers.first(name: "connection") {
            for name in conn.split(separator: ",") { headers.remove(name: String(name.trimmingSpaces)) }
        }
        for name in ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "expect"] { headers.remove(name: name) }
        let config = ex.state.config
        let peerText = peer?.description ?? "unknown"
        let peerTrusted = peer.map { p in config.trustedProxies.contains { $0.contains(p) } } ?? false
        if peerTrusted, let existing = ex.head.headers.first(name: "x-forwarded-for") {
            headers.replaceOrAdd(name: "X-Forwarded-For", value: existing + ", " + peerText)
        } else {
            headers.replaceOrAdd(name: "X-Forwarded-For", value: peerText)
        }
        if !(peerTrusted && headers.contains(name: "x-forwarded-proto")) {
            headers.replaceOrAdd(name: "X-Forwarded-Proto", value: isTLS ? "https" : "http")
        }
        if !(peerTrusted && headers.contains(name: "x-forwarded-host")), let host = ex.head.headers.first(name: "host") {
            headers.replaceOrAdd(name: "X-Forwarded-Host", value: host)
        }
        headers.replaceOrAdd(name: "X-Request-Id", value: ex.requestID)
        var uri = ex.head.uri
        if let strip = route.stripPrefix, uri.hasPrefix(strip) {
            uri = String(uri.dropFirst(strip.count))
            if !uri.hasPrefix("/") { uri = "/" + uri }
        }
        let head = HTTPRequestHead(version: .http1_1, method: ex.head.method, uri: uri, headers: headers)
        conn.write(.head(head), flush: false)
        if let body = ex.bufferedBody, body.readableBytes > 0 {
            conn.write(.body(.byteBuffer(body)), flush: false)
        }
        for part in ex.pending { conn.write(.body(.byteBuffer(part)), flush: false) }
        ex.pending.removeAll()
        ex.pendingBytes = 0
        if ex.requestEnded {
            conn.write(.end(nil), flush: true)
            armTimeout(ex, spec: spec)
        } else {
            conn.channel?.flush()
            _ = context?.channel.setOption(ChannelOptions.autoRead, value: true)
        }
    }

    /// Arms the read timeout: the upstream must send something at least every `readTimeout`.
    ///
    /// One timer per connection, not per request: it is scheduled when a wait starts and no timer is
    /// pending, and when it fires it re-checks the current exchange's last upstream activity. Most
    /// requests therefore schedule and cancel nothing.
    private func armTimeout(_ ex: Exchange, spec: UpstreamSpec) {
        let now = NIODeadline.now().uptimeNanoseconds
        ex.lastUpstreamActivity = now
        ex.awaitingUpstream = true
        let due = now + UInt64(spec.readTimeout * 1e9)
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
        let limit = UInt64(spec.readTimeout * 1e9)
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
            failUpstream(ex, Denial(code: .upstreamTimeout,
                                    detail: "upstream \(spec.name) (\(ex.upstreamTarget?.description ?? "?")) did not answer within \(TimeText.duration(spec.readTimeout))",
                                    presented: ["upstream \(spec.name)"]))
        }
    }

    private func failUpstream(_ ex: Exchange, _ denial: Denial) {
        ex.awaitingUpstream = false
        ex.upstreamNanos = ex.upstreamStartNanos == 0 ? nil : NIODeadline.now().uptimeNanoseconds - ex.upstreamStartNanos
        if !ex.requestEnded { ex.keepAlive = false }
        deny(ex, denial, check: nil)
    }

    // MARK: UpstreamResponseSink

    func upstreamHead(_ upHead: HTTPResponseHead) {
        guard let ex = exchange, let context, let spec = ex.upstreamSpec else { return }
        armTimeout(ex, spec: spec)
        var headers = upHead.headers
        if let conn = headers.first(name: "connection") {
            for name in conn.split(separator: ",") { headers.remove(name: String(name.trimmingSpaces)) }
        }
        for name in ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"] { headers.remove(name: name) }
        if let extra = ex.policyRequest?.responseHeaders {
            for f in extra {
                // Vary lists accumulate (the upstream's `Accept-Encoding` and a check's `Origin`);
                // every other field a check sets replaces the upstream's.
                if HeaderList.sameName(f.name, "vary"), let existing = headers.first(name: "vary") {
                    headers.replaceOrAdd(name: "Vary", value: existing + ", " + f.value)
                } else {
                    headers.replaceOrAdd(name: f.name, value: f.value)
                }
            }
        }
        headers.replaceOrAdd(name: "X-Request-Id", value: ex.requestID)
        if !ex.keepAlive { headers.add(name: "Connection", value: "close") }
        ex.status = Int(upHead.status.code)
        ex.responseStarted = true
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: ex.head.version, status: upHead.status, headers: headers))), promise: nil)
    }

    func upstreamBody(_ buffer: ByteBuffer) {
        guard let ex = exchange, let context else { return }
        ex.lastUpstreamActivity = NIODeadline.now().uptimeNanoseconds
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        if !context.channel.isWritable {
            ex.upstream?.setAutoRead(false)
            context.flush()
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamEnd(reusable: Bool) {
        guard let ex = exchange, let context else { return }
        ex.awaitingUpstream = false
        ex.upstreamNanos = NIODeadline.now().uptimeNanoseconds - ex.upstreamStartNanos
        let conn = ex.upstream
        ex.upstream = nil
        if let conn {
            if reusable && ex.requestEnded, let spec = ex.upstreamSpec {
                pool?.release(conn, maxIdle: spec.maxIdle)
            } else {
                conn.close()
            }
        }
        ex.responseEnded = true
        phase = .answered
        if !ex.requestEnded, ex.hasBody { ex.keepAlive = false }
        endResponse(ex, context: context)
    }

    func upstreamFailed(_ error: any Error, receivedHead: Bool) {
        guard let ex = exchange else { return }
        ex.upstream = nil
        if !receivedHead {
            if !ex.retriedStale, !ex.hasBody, ex.requestEnded, let spec = ex.upstreamSpec, let pool {
                // A pooled keep-alive connection the upstream closed just as we used it: retry once on a new one.
                ex.retriedStale = true
                ex.connectAttempts = 0
                ex.targetStart += 1
                phase = .connecting
                connect(ex, spec: spec, pool: pool)
                return
            }
            failUpstream(ex, Denial(code: .upstreamUnavailable,
                                    detail: "upstream \(ex.upstreamSpec?.name ?? "?") (\(ex.upstreamTarget?.description ?? "?")) closed the connection before answering",
                                    presented: ["upstream \(ex.upstreamSpec?.name ?? "?")"]))
        } else {
            ex.awaitingUpstream = false
            ex.responseEnded = true
            ex.keepAlive = false
            finish(ex, closeAfter: true)
        }
    }

    func upstreamWritabilityChanged(writable: Bool) {
        if writable { _ = context?.channel.setOption(ChannelOptions.autoRead, value: true) }
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
        phase = .idle
        log(ex)
        if closeAfter {
            queued.removeAll()
            context?.close(promise: nil)
        } else if !ex.keepAlive || quiescing {
            // The connection closes once the response is written (endResponse); nothing more is read.
            queued.removeAll()
        } else if !queued.isEmpty {
            drainQueued()
        }
    }

    private func log(_ ex: Exchange) {
        let now = NIODeadline.now().uptimeNanoseconds
        let req = ex.policyRequest
        let principal = req?.principal
        var path = ex.head.uri
        if path.count > 2048 { path = String(path.prefix(2048)) + "…" }
        path = CallLogRedaction.redact(uri: path, configured: ex.route?.chain.secretQueryParameters ?? [])
        let record = CallRecord(
            requestID: ex.requestID, time: ex.wallTime, route: ex.route?.name, consumer: principal?.consumerName ?? principal?.subject,
            keyID: principal?.keyID, client: req?.clientAddress?.description ?? peer?.description, method: ex.head.method.rawValue, path: path,
            host: req?.host, status: ex.status, upstreamMillis: ex.upstreamNanos.map { Double($0) / 1e6 },
            totalMillis: Double(now - ex.startNanos) / 1e6, decidingCheck: ex.decidingCheck, reason: ex.denial?.code.rawValue,
            detail: ex.denial.map { d in d.operatorDetail.map { d.detail + " (" + $0 + ")" } ?? d.detail }, hint: ex.denial?.hint,
            required: ex.denial?.required ?? [], presented: ex.denial?.presented ?? [], trace: ex.trace,
            upstreamTarget: ex.upstreamTargetText ?? ex.upstreamTarget?.description)
        services.metrics.countRequest(route: ex.route?.name, status: ex.status, reason: ex.denial?.code)
        services.callLog.submit(record)
    }
}

/// Removes credentials from what the call log stores.
enum CallLogRedaction {
    /// Query parameters that commonly carry secrets; their values are replaced by "[redacted]",
    /// as are those of parameters a check of the route reads credentials from (`configured`).
    static let secretParameters: Set<String> = ["api_key", "apikey", "key", "access_token", "token", "password", "secret", "client_secret"]

    static func redact(uri: String, configured: Set<String>) -> String {
        guard let q = uri.firstIndex(of: "?") else { return uri }
        let query = uri[uri.index(after: q)...]
        var changed = false
        let parts = query.split(separator: "&", omittingEmptySubsequences: false).map { part -> String in
            guard let eq = part.firstIndex(of: "=") else { return String(part) }
            let name = PercentDecoding.decode(part[..<eq]).lowercased()
            if secretParameters.contains(name) || configured.contains(name) {
                changed = true
                return part[..<eq] + "=[redacted]"
            }
            return String(part)
        }
        return changed ? String(uri[...q]) + parts.joined(separator: "&") : uri
    }
}

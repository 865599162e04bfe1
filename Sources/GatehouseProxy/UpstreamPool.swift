import GatehouseConfig
import GatehouseHTTP1
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Receives an upstream response for one proxied request.
protocol UpstreamResponseSink: AnyObject {
    func upstreamHead(_ head: ResponseHead)
    func upstreamBody(_ buffer: ByteBuffer)
    func upstreamEnd(reusable: Bool)
    /// The connection failed or closed before the response ended. `receivedHead` tells whether any
    /// of the response was already relayed.
    func upstreamFailed(_ error: any Error, receivedHead: Bool)
    func upstreamWritabilityChanged(writable: Bool)
    /// The upstream read burst ended: flush what was relayed.
    func upstreamReadComplete()
}

/// One keep-alive connection to an upstream target; lives on one event loop.
///
/// Reads and writes raw bytes: the response is parsed by the gateway's own HTTP/1 codec
/// (GatehouseHTTP1), and requests arrive already serialised by `GatewayHandler`.
///
/// **When a connection goes back to the pool.** HTTP/1.1 responses carry no request id: whatever
/// the upstream sends after a response is read as the answer to the next request on the connection,
/// which, through the pool, can be another client's. So a connection is reused only when nothing
/// more can arrive on it, and closed whenever its framing left doubt:
/// - after a response that has no body by the rules but announced one (to a HEAD, unless it said
///   `Content-Length: 0`; a 204 or 304 with a non-empty Content-Length or a Transfer-Encoding):
///   an upstream may write that body late, in another segment (`ResponseHead.framingInDoubt`);
/// - after a response with both Content-Length and Transfer-Encoding (read as chunked, the rest of
///   what the length counted may follow), or one whose head or chunk framing the parser had to
///   repair (`ResponseHead.framingInDoubt`, `BodyDecoder.repaired`);
/// - after a response whose head arrived before the whole request was written (the gateway wrote
///   to the upstream after the head): the upstream answered without reading all of the request and
///   could take what it did not read for a next request;
/// - after a response followed by more bytes in the same read, or with `Connection: close`, or
///   delimited by the close;
/// - (GatewayHandler) when the client's request body had not ended, or the client left.
/// A late body is not waited for (a quarantine read would only move the race by a timeout): closing
/// costs a new connection for the next request, a HEAD or a 304 that names a length.
///
/// And the pool itself never hands out a connection that could carry stray bytes: an idle pooled
/// connection that receives anything (bytes, or the close) is closed and dropped at once; bytes
/// read while an exchange has begun but before its request was written are an error, never a
/// response to it; and a connection that became idle a moment ago is reused only when no other
/// has been idle longer (`LoopPool.takeIdle`), so that late bytes find it idle. What is left is
/// inherent to HTTP/1.1: bytes an upstream sends with no cause, after a response whose framing was
/// exact, arriving after the next request was written. For an upstream that echoes the gateway's
/// `X-Request-Id`, `foreignRequestID` catches a response that names another request
/// (GatewayHandler answers 502 and closes the connection).
final class UpstreamConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let target: HostPort
    /// `target` as text, computed once per connection for logs and details.
    let key: String
    var channel: (any Channel)?
    weak var sink: (any UpstreamResponseSink)?
    private var receivedHead = false
    private var keepAlive = true
    private var inResponse = false
    private var headRequest = false
    /// Bytes read but not yet parsed.
    private var inbound: ByteBuffer?
    private var body = BodyDecoder()
    /// Whether a final (non-1xx) head was parsed and its body is being read.
    private var inBody = false
    /// Whether the read-only-while-writable autoRead setting is currently off.
    private var readPaused = false
    weak var pool: LoopPool?
    /// Exchanges begun on this connection; more than one means it came from the pool.
    private(set) var uses = 0
    /// Whether anything (a 1xx included) was read during the current exchange.
    private(set) var receivedAny = false
    /// Whether any of the current exchange's request was written.
    private var wroteRequest = false
    /// Whether request bytes were written after the final response head arrived.
    private var wroteAfterHead = false
    /// Set when the connection must not be used again (stray bytes while idle).
    private(set) var discarded = false
    /// When the connection last went back to the pool (uptime ns); the pool's order.
    fileprivate(set) var idleSince: UInt64 = 0
    /// Whether the upstream echoed the gateway's `X-Request-Id` on this connection: from then on, a
    /// response naming another id answers another request.
    private(set) var echoesRequestID = false

    init(target: HostPort, key: String, pool: LoopPool) {
        self.target = target
        self.key = key
        self.pool = pool
    }

    /// Starts a request exchange on this connection; `headRequest` when the request is a HEAD
    /// (its response has no body whatever its fields say).
    func begin(sink: any UpstreamResponseSink, headRequest: Bool) {
        self.sink = sink
        self.headRequest = headRequest
        receivedHead = false
        keepAlive = true
        inResponse = true
        inBody = false
        uses += 1
        receivedAny = false
        wroteRequest = false
        wroteAfterHead = false
    }

    /// Whether the connection can start an exchange: open, idle, and never sent stray bytes.
    var isReusable: Bool { !discarded && !inResponse && inbound == nil && channel?.isActive == true }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buf = unwrapInboundIn(data)
        guard inResponse else {
            // Bytes from an idle upstream: nothing can be expecting them, and a next request must
            // not read them as its response. The connection is dropped from the pool and closed.
            discarded = true
            pool?.remove(self)
            context.close(promise: nil)
            return
        }
        receivedAny = true
        guard wroteRequest else {
            // Nothing of this exchange's request was written yet: these bytes answer something else.
            fail(context: context, HTTP1Error.malformed("the upstream sent bytes before the request was written"))
            return
        }
        inbound.accumulate(buf)
        parse(context: context)
    }

    private func parse(context: ChannelHandlerContext) {
        guard var buf = inbound else { return }
        inbound = nil
        defer { if buf.readableBytes > 0, inResponse { inbound = buf } }
        do {
            while inResponse {
                if !inBody {
                    let len: Int? = buf.withUnsafeReadableBytes { HTTP1Parse.headLength($0) }
                    guard let len, len <= HTTP1Parse.maxHeadBytes else {
                        if buf.readableBytes > HTTP1Parse.maxHeadBytes {
                            throw HTTP1Error(kind: .headTooLarge, description: "the response head exceeds \(HTTP1Parse.maxHeadBytes) bytes")
                        }
                        return
                    }
                    let head = try HTTP1Parse.response(buf, length: len, headRequest: headRequest)
                    buf.moveReaderIndex(forwardBy: len)
                    if head.status < 200 {
                        // 1xx: an interim response; the final one follows.
                        continue
                    }
                    receivedHead = true
                    keepAlive = head.keepAlive && !head.framingInDoubt
                    inBody = true
                    body.start(head.framing)
                    sink?.upstreamHead(head)
                    continue
                }
                guard let event = try body.next(&buf) else { return }
                switch event {
                case .data(let piece):
                    sink?.upstreamBody(piece)
                case .end:
                    inBody = false
                    inResponse = false
                    let s = sink
                    sink = nil
                    // Bytes after the response (none expected from an HTTP/1.1 server) make the connection
                    // unusable, and so does an answer that came before the whole request was written.
                    // So does a chunked body whose framing needed a repair.
                    s?.upstreamEnd(
                        reusable: keepAlive && !body.repaired && !wroteAfterHead && buf.readableBytes == 0 && context.channel.isActive)
                }
            }
        } catch {
            fail(context: context, error)
        }
    }

    private func fail(context: ChannelHandlerContext, _ error: any Error) {
        inbound = nil
        if inResponse {
            inResponse = false
            let s = sink
            sink = nil
            s?.upstreamFailed(error, receivedHead: receivedHead)
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        pool?.remove(self)
        if inResponse {
            inResponse = false
            let s = sink
            sink = nil
            if inBody, body.state == .untilClose {
                // A body delimited by the connection's close ends here.
                s?.upstreamEnd(reusable: false)
            } else {
                s?.upstreamFailed(ChannelError.eof, receivedHead: receivedHead)
            }
        }
        inbound = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        sink?.upstreamWritabilityChanged(writable: context.channel.isWritable)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        sink?.upstreamReadComplete()
    }

    func write(_ buffer: ByteBuffer, flush: Bool) {
        guard let channel else { return }
        wroteRequest = true
        if receivedHead { wroteAfterHead = true }
        if flush {
            channel.writeAndFlush(buffer, promise: nil)
        } else {
            channel.write(buffer, promise: nil)
        }
    }

    func flush() {
        if receivedHead { wroteAfterHead = true }
        channel?.flush()
    }

    var isWritable: Bool { channel?.isWritable ?? false }

    func setAutoRead(_ on: Bool) {
        // Only a change costs a channel option call.
        guard readPaused == on else { return }
        readPaused = !on
        _ = channel?.setOption(ChannelOptions.autoRead, value: on)
    }

    func close() { channel?.close(promise: nil) }

    /// The request id a final response names when it is not `sent` (the id written with this
    /// exchange's request) and the upstream has echoed the gateway's ids on this connection
    /// before: the response then answers another request, sent earlier on this connection (the
    /// upstream is a response behind, or answered one twice), and the connection is out of step.
    /// Nil when the response names `sent` (among its X-Request-Id fields), names none, or the
    /// upstream names requests its own way (an id of its own with no echo before). The first
    /// exchange on a connection cannot be out of step (nothing was sent before it), so an upstream
    /// that mints its own ids (nginx's `$request_id`, say) is never refused. Compares bytes; the
    /// returned id (an allocation) only on a mismatch, printable ASCII, at most 128 characters.
    func foreignRequestID(in head: ResponseHead, sent: String) -> String? {
        var named: HeaderLine?
        var sent = sent
        for line in head.lines where line.kind == .xRequestID {
            let same = sent.withUTF8 { id in
                head.bytes.withUnsafeReadableBytes { p in
                    line.valueEnd - line.valueStart == id.count
                        && UnsafeRawBufferPointer(rebasing: p[line.valueStart..<line.valueEnd]).elementsEqual(UnsafeRawBufferPointer(id))
                }
            }
            if same {
                echoesRequestID = true
                return nil
            }
            if named == nil { named = line }
        }
        guard let named, echoesRequestID else { return nil }
        return head.bytes.withUnsafeReadableBytes { p in
            let value = p[named.valueStart..<named.valueEnd]
            var shown = String(decoding: value.prefix(128).map { $0 >= 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
            if value.count > 128 { shown += "..." }
            return shown
        }
    }
}

/// Idle upstream connections of one event loop. Only touched from that loop.
///
/// Each target's idle connections are kept in the order they became idle. A request takes the
/// latest one that has been idle for at least `settleNanos`, or, when every one became idle more
/// recently, the one idle longest (never a new connection while one is idle). Bytes an upstream
/// sends late, after a response, reach a connection that sits idle, which is then dropped, instead
/// of the next request's; among settled connections the latest is reused, so the others can age
/// out (an upstream's keep-alive timeout closes them while idle, not as they are reused). Cost: a
/// clock reading when a target has more than one idle connection, and a binary search.
package final class LoopPool {
    /// How long a connection that became idle is left alone while another can serve: a late body
    /// or a second answer from a sloppy upstream usually follows within milliseconds.
    static let settleNanos: UInt64 = 100_000_000

    package let eventLoop: any EventLoop
    /// A target's idle connections, changed in place (the dictionary is not rewritten per request).
    private final class IdleList {
        var conns: [UpstreamConnection] = []
    }
    private var idle: [HostPort: IdleList] = [:]
    /// The target used last and its list: most loops talk to one target most of the time, and
    /// comparing two short strings is cheaper than hashing one.
    private var recentTarget: HostPort?
    private var recentList: IdleList?
    private var roundRobin: [String: Int] = [:]

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    private func list(for target: HostPort, create: Bool) -> IdleList? {
        if let recentList, recentTarget == target { return recentList }
        var found = idle[target]
        if found == nil, create {
            found = IdleList()
            idle[target] = found
        }
        if let found {
            recentTarget = target
            recentList = found
        }
        return found
    }

    /// The round-robin position for a new request to an upstream group (per loop). Attempt `n` of
    /// that request uses target `(start + n) % count`, so a failover tries every target once.
    func nextStart(_ upstream: UpstreamSpec) -> Int {
        if upstream.targets.count == 1 { return 0 }
        let i = roundRobin[upstream.name, default: 0]
        roundRobin[upstream.name] = (i &+ 1) % max(1, upstream.targets.count)
        return i
    }

    /// An idle, open connection to `target`, if the pool has one (see the type's comment for
    /// which). `now`: the monotonic time in ns, read from the clock when needed if not given.
    func takeIdle(_ target: HostPort, now: UInt64? = nil) -> UpstreamConnection? {
        guard let list = list(for: target, create: false) else { return nil }
        var now = now
        while !list.conns.isEmpty {
            var i = 0
            if list.conns.count > 1 {
                let t = now ?? NIODeadline.now().uptimeNanoseconds
                now = t
                i = Self.pick(list.conns, now: t)
            }
            let conn = list.conns.remove(at: i)
            if conn.isReusable { return conn }
            conn.close()
        }
        return nil
    }

    /// The index in `list` (in the order the connections became idle) of the latest connection
    /// idle for at least `settleNanos`, or 0 (the one idle longest) when none is.
    static func pick(_ list: [UpstreamConnection], now: UInt64) -> Int {
        guard now >= settleNanos else { return 0 }
        let cutoff = now - settleNanos
        // The first connection that became idle after the cutoff.
        var lo = 0, hi = list.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if list[mid].idleSince <= cutoff { lo = mid + 1 } else { hi = mid }
        }
        return lo > 0 ? lo - 1 : 0
    }

    /// A new connection to `target`.
    func connect(_ target: HostPort, connectTimeout: Double) -> EventLoopFuture<UpstreamConnection> {
        let conn = UpstreamConnection(target: target, key: target.description, pool: self)
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(connectTimeout * 1000)))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(conn)
                }
            }
            .connect(host: target.host, port: target.port)
            .map { channel in
                conn.channel = channel
                return conn
            }
    }

    /// Returns a connection after a complete response, if the pool has room. `now`: the monotonic
    /// time in ns (read from the clock if not given).
    func release(_ conn: UpstreamConnection, maxIdle: Int, now: UInt64? = nil) {
        guard conn.isReusable else {
            conn.close()
            return
        }
        let list = list(for: conn.target, create: true)!
        if list.conns.count >= maxIdle {
            conn.close()
            return
        }
        conn.setAutoRead(true)
        conn.idleSince = now ?? NIODeadline.now().uptimeNanoseconds
        list.conns.append(conn)
    }

    func remove(_ conn: UpstreamConnection) {
        list(for: conn.target, create: false)?.conns.removeAll { $0 === conn }
    }

    package func closeAll() {
        for (_, list) in idle { for c in list.conns { c.close() } }
        idle.removeAll()
        recentTarget = nil
        recentList = nil
    }
}

/// One `LoopPool` per event loop.
package final class LoopPools: @unchecked Sendable {
    // @unchecked: `pools` is guarded by `lock`; each LoopPool is then used only on its own loop.
    private let lock = NIOLock()
    private var pools: [ObjectIdentifier: LoopPool] = [:]

    func pool(for loop: any EventLoop) -> LoopPool {
        lock.withLock {
            let id = ObjectIdentifier(loop)
            if let p = pools[id] { return p }
            let p = LoopPool(eventLoop: loop)
            pools[id] = p
            return p
        }
    }

    package func all() -> [LoopPool] { lock.withLock { Array(pools.values) } }
}

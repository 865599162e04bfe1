import GatehouseConfig
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Receives an upstream response for one proxied request.
protocol UpstreamResponseSink: AnyObject {
    func upstreamHead(_ head: HTTPResponseHead)
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
final class UpstreamConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let target: HostPort
    /// `target` as text, computed once per connection for logs and details.
    let key: String
    var channel: (any Channel)?
    weak var sink: (any UpstreamResponseSink)?
    private var receivedHead = false
    private var keepAlive = true
    private var inResponse = false
    weak var pool: LoopPool?

    init(target: HostPort, key: String, pool: LoopPool) {
        self.target = target
        self.key = key
        self.pool = pool
    }

    /// Starts a request exchange on this connection.
    func begin(sink: any UpstreamResponseSink) {
        self.sink = sink
        receivedHead = false
        keepAlive = true
        inResponse = true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard inResponse else { context.close(promise: nil); return }
            receivedHead = true
            keepAlive = head.isKeepAlive
            if head.status.code < 200 { return }  // 1xx: wait for the final response
            sink?.upstreamHead(head)
        case .body(let buf):
            sink?.upstreamBody(buf)
        case .end:
            guard inResponse, receivedHead else { return }
            inResponse = false
            let s = sink
            sink = nil
            s?.upstreamEnd(reusable: keepAlive && context.channel.isActive)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        pool?.remove(self)
        if inResponse {
            inResponse = false
            let s = sink
            sink = nil
            s?.upstreamFailed(ChannelError.eof, receivedHead: receivedHead)
        }
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

    func write(_ part: HTTPClientRequestPart, flush: Bool) {
        guard let channel else { return }
        if flush {
            channel.writeAndFlush(part, promise: nil)
        } else {
            channel.write(part, promise: nil)
        }
    }

    var isWritable: Bool { channel?.isWritable ?? false }

    func setAutoRead(_ on: Bool) {
        _ = channel?.setOption(ChannelOptions.autoRead, value: on)
    }

    func close() { channel?.close(promise: nil) }
}

/// Idle upstream connections of one event loop. Only touched from that loop.
final class LoopPool {
    let eventLoop: any EventLoop
    private var idle: [HostPort: [UpstreamConnection]] = [:]
    private var roundRobin: [String: Int] = [:]

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    /// The round-robin position for a new request to an upstream group (per loop). Attempt `n` of
    /// that request uses target `(start + n) % count`, so a failover tries every target once.
    func nextStart(_ upstream: UpstreamSpec) -> Int {
        let i = roundRobin[upstream.name, default: 0]
        roundRobin[upstream.name] = (i &+ 1) % max(1, upstream.targets.count)
        return i
    }

    /// An idle connection to `target`, or a new one.
    func acquire(_ target: HostPort, connectTimeout: Double) -> EventLoopFuture<UpstreamConnection> {
        while var list = idle[target], let conn = list.popLast() {
            idle[target] = list
            if conn.channel?.isActive == true { return eventLoop.makeSucceededFuture(conn) }
        }
        let conn = UpstreamConnection(target: target, key: target.description, pool: self)
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(connectTimeout * 1000)))
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHTTPClientHandlers(leftOverBytesStrategy: .forwardBytes)
                    try sync.addHandler(conn)
                }
            }
            .connect(host: target.host, port: target.port)
            .map { channel in
                conn.channel = channel
                return conn
            }
    }

    /// Returns a connection after a complete response, if the pool has room.
    func release(_ conn: UpstreamConnection, maxIdle: Int) {
        guard conn.channel?.isActive == true else { return }
        var list = idle[conn.target, default: []]
        if list.count >= maxIdle {
            conn.close()
            return
        }
        conn.setAutoRead(true)
        list.append(conn)
        idle[conn.target] = list
    }

    func remove(_ conn: UpstreamConnection) {
        guard var list = idle[conn.target] else { return }
        list.removeAll { $0 === conn }
        idle[conn.target] = list
    }

    func closeAll() {
        for (_, list) in idle { for c in list { c.close() } }
        idle.removeAll()
    }
}

/// One `LoopPool` per event loop.
final class LoopPools: @unchecked Sendable {
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

    func all() -> [LoopPool] { lock.withLock { Array(pools.values) } }
}

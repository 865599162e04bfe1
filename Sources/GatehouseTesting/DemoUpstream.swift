import GatehouseCore
import GatehouseHTTP1
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// A small HTTP upstream for the quickstart, tests and benchmarks. It answers every request with a
/// JSON summary of what it received (method, path, the forwarding headers, body size) without
/// buffering the body. Query parameters shape the answer:
/// `delay_ms=N` waits before answering; `bytes=N` streams an N-byte body instead (`chunked=1`:
/// without Content-Length, so it goes chunked); `status=N` sets
/// the status; `vary=V` adds a `Vary` header.
///
/// It listens from `init`; as a `Service`, `run()` waits for graceful shutdown (or cancellation)
/// and then stops it.
public final class DemoUpstream: Service, Sendable {
    let group: MultiThreadedEventLoopGroup
    let channel: any Channel

    public init(host: String = "127.0.0.1", port: Int, threads: Int = 1) async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(DemoHandler())
                }
            }
            .bind(host: host, port: port).get()
    }

    public var port: Int { channel.localAddress?.port ?? 0 }

    public func stop() async {
        try? await group.shutdownGracefully()
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await stop()
    }
}

final class DemoHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    var head: HTTPRequestHead?
    var bodyBytes = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            bodyBytes = 0
        case .body(let b):
            bodyBytes += b.readableBytes
        case .end:
            guard let head else { return }
            let params = PolicyRequest(
                method: head.method.rawValue, path: "",
                query: head.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init))
            let delay = params.queryValue("delay_ms").flatMap(Int64.init) ?? 0
            let respond = { [self] in self.respond(context: context, head: head, params: params) }
            if delay > 0 {
                context.eventLoop.scheduleTask(in: .milliseconds(delay)) { respond() }
            } else {
                respond()
            }
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, params: PolicyRequest) {
        guard context.channel.isActive else { return }
        let status = params.queryValue("status").flatMap(Int.init) ?? 200
        var headers = HTTPHeaders()
        if let vary = params.queryValue("vary") { headers.add(name: "Vary", value: vary) }
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        if let n = params.queryValue("bytes").flatMap(Int.init) {
            headers.add(name: "Content-Type", value: "application/octet-stream")
            // ?chunked=1 leaves the length out, so the body goes chunked (or, to HTTP/1.0, until close).
            if params.queryValue("chunked") == nil { headers.add(name: "Content-Length", value: String(n)) }
            context.write(
                wrapOutboundOut(
                    .head(HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status), headers: headers))),
                promise: nil)
            var remaining = n
            let chunk = context.channel.allocator.buffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
            while remaining > 0 {
                let size = min(remaining, chunk.readableBytes)
                context.write(wrapOutboundOut(.body(.byteBuffer(chunk.getSlice(at: 0, length: size)!))), promise: nil)
                remaining -= size
            }
        } else {
            var w = JSONWriter()
            w.beginObject()
            w.field("method", head.method.rawValue)
            w.field("uri", head.uri)
            w.field("body_bytes", bodyBytes)
            w.field("served_by", context.channel.localAddress?.port ?? 0)
            w.key("headers")
            w.beginObject()
            for name in ["host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id", "content-type"] {
                if let v = head.headers.first(name: name) { w.field(name, v) }
            }
            w.endObject()
            w.endObject()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(w.bytes.count))
            context.write(
                wrapOutboundOut(
                    .head(HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status), headers: headers))),
                promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: w.bytes)))), promise: nil)
        }
        let keep = head.isKeepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keep { context.close(promise: nil) }
        }
    }
}

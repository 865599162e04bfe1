import GatehouseCore
import GatehouseHTTP1
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin listener: `/metrics` (Prometheus text), `/healthz`, `/status` (JSON).
/// Plain NIO: two read-only endpoints do not justify a framework on the gateway's event loops.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// The answer to a GET of a path: status, content type, text (a future: `/metrics` first
    /// collects what each event loop has buffered).
    let body: @Sendable (String, any EventLoop) -> EventLoopFuture<(Int, String, String)>
    var head: HTTPRequestHead?

    init(body: @escaping @Sendable (String, any EventLoop) -> EventLoopFuture<(Int, String, String)>) { self.body = body }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let head else { return }
            let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
            let answer =
                head.method == .GET
                ? body(path, context.eventLoop) : context.eventLoop.makeSucceededFuture((405, "text/plain", "only GET\n"))
            answer.hop(to: context.eventLoop).whenSuccess { [self] (status, type, text) in
                respond(context: context, head: head, status: status, type: type, text: text)
            }
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, status: Int, type: String, text: String) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(text.utf8.count))
        context.write(
            wrapOutboundOut(
                .head(HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status), headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
        let keep = head.isKeepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in if !keep { context.close(promise: nil) } }
    }
}

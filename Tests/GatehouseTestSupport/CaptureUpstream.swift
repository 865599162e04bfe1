import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One request as an upstream received it: the exact request line and fields, and the body with
/// its framing removed.
public struct CapturedRequest: Sendable {
    public var method: String
    /// The request target exactly as it arrived (what the upstream would route on).
    public var target: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The raw head, request line to the empty line.
    public var rawHead: String

    public func values(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }
    public func first(_ name: String) -> String? { values(name).first }
    public var path: String { String(target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "") }
}

/// What the upstream sends back: raw bytes, each piece after a pause, and whether it then closes.
public struct CannedResponse: Sendable {
    public var pieces: [(delayMillis: Int64, bytes: [UInt8])]
    public var closeAfter: Bool
    public init(pieces: [(delayMillis: Int64, bytes: [UInt8])], closeAfter: Bool = false) {
        self.pieces = pieces
        self.closeAfter = closeAfter
    }
    public init(_ text: String, closeAfter: Bool = false) {
        self.init(pieces: [(0, Array(text.utf8))], closeAfter: closeAfter)
    }
    /// 200 with `body` (text/plain, Content-Length).
    public static func ok(_ body: String) -> CannedResponse {
        CannedResponse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }
}

/// An upstream on 127.0.0.1 that records every request it receives, byte for byte, and answers
/// with what `respond` returns (by default 200 "upstream saw TARGET"). Keep-alive, pipelining-safe
/// (one request at a time per connection).
public final class CaptureUpstream: Sendable {
    public typealias Responder = @Sendable (CapturedRequest) -> CannedResponse
    let group: MultiThreadedEventLoopGroup
    let channel: any Channel
    public let port: Int
    private let box: NIOLockedValueBox<[CapturedRequest]>

    public init(respond: Responder? = nil) async throws {
        let box = NIOLockedValueBox<[CapturedRequest]>([])
        self.box = box
        let responder: Responder = respond ?? { .ok("upstream saw \($0.target)") }
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandler(CaptureHandler(box: box, respond: responder))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
    }

    /// Every request received so far, in order.
    public var requests: [CapturedRequest] { box.withLockedValue { $0 } }
    public var url: String { "http://127.0.0.1:\(port)" }
    public var hostPort: String { "127.0.0.1:\(port)" }

    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

private final class CaptureHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let box: NIOLockedValueBox<[CapturedRequest]>
    let respond: CaptureUpstream.Responder
    var buffer: [UInt8] = []
    var busy = false

    init(box: NIOLockedValueBox<[CapturedRequest]>, respond: @escaping CaptureUpstream.Responder) {
        self.box = box
        self.respond = respond
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        buffer += b.readBytes(length: b.readableBytes) ?? []
        process(context: context)
    }

    private func process(context: ChannelHandlerContext) {
        while !busy, let (request, used) = Self.parse(buffer) {
            buffer.removeFirst(used)
            box.withLockedValue { $0.append(request) }
            busy = true
            let answer = respond(request)
            send(answer, index: 0, context: context)
        }
    }

    private func send(_ answer: CannedResponse, index: Int, context: ChannelHandlerContext) {
        guard index < answer.pieces.count else {
            if answer.closeAfter {
                context.close(promise: nil)
            } else {
                busy = false
                process(context: context)
            }
            return
        }
        let piece = answer.pieces[index]
        let write = { [self] in
            guard context.channel.isActive else { return }
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: piece.bytes)), promise: nil)
            send(answer, index: index + 1, context: context)
        }
        if piece.delayMillis > 0 {
            context.eventLoop.scheduleTask(in: .milliseconds(piece.delayMillis)) { write() }
        } else {
            write()
        }
    }

    /// A complete request at the start of `bytes` (Content-Length or chunked body), or nil.
    static func parse(_ bytes: [UInt8]) -> (CapturedRequest, Int)? {
        let crlf2: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4, let end = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<$0 + 4]) == crlf2 }) else { return nil }
        let headText = String(decoding: bytes[0..<end], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard requestLine.count >= 3 else { return nil }
        var headers: [(name: String, value: String)] = []
        for l in lines {
            guard let c = l.firstIndex(of: ":") else { continue }
            headers.append((String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)))
        }
        var at = end + 4
        var body: [UInt8] = []
        let te = headers.first { $0.name.lowercased() == "transfer-encoding" }?.value.lowercased()
        if te?.contains("chunked") == true {
            while true {
                guard let lineEnd = (at..<max(at, bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }) else {
                    return nil
                }
                let sizeText = String(decoding: bytes[at..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
                at = lineEnd + 2
                if size == 0 {
                    // Trailers (none expected) then CRLF.
                    guard bytes.count >= at + 2 else { return nil }
                    at += 2
                    break
                }
                guard bytes.count >= at + size + 2 else { return nil }
                body += bytes[at..<at + size]
                at += size + 2
            }
        } else if let cl = headers.first(where: { $0.name.lowercased() == "content-length" }).flatMap({ Int($0.value) }) {
            guard bytes.count >= at + cl else { return nil }
            body = Array(bytes[at..<at + cl])
            at += cl
        }
        let req = CapturedRequest(
            method: String(requestLine[0]), target: String(requestLine[1]), headers: headers, body: body, rawHead: headText)
        return (req, at)
    }
}

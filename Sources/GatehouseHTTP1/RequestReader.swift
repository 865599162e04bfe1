import NIOCore

/// The request side of an HTTP/1 connection as a value: bytes in (`append`), messages out
/// (`next`): a head, the pieces of its body, the body's end. Bytes of pipelined requests wait in
/// it until the caller asks for the next head; the caller decides when that is (after the
/// current response), so a request never overtakes the one before it.
package struct RequestReader {
    package enum Message {
        case head(RequestHead)
        case body(ByteBuffer)
        case end
    }

    /// Bytes read and not yet parsed.
    package private(set) var buffered: ByteBuffer?
    private var body = BodyDecoder(strict: true)
    private static let noBytes = ByteBufferAllocator().buffer(capacity: 0)

    package init() {}

    package var bufferedBytes: Int { buffered?.readableBytes ?? 0 }
    /// Between requests: the next message is a head.
    package var atHead: Bool { body.isIdle }

    package mutating func append(_ bytes: ByteBuffer) { buffered.accumulate(bytes) }

    /// Drops what is buffered (reading has ended).
    package mutating func discard() { buffered = nil }

    /// The next message; nil when more bytes are needed. Bytes that are not HTTP/1.x throw an
    /// `HTTP1Error` (a head over `HTTP1Parse.maxHeadBytes`: `.headTooLarge`), and what is buffered
    /// is dropped.
    package mutating func next() throws -> Message? {
        defer { if buffered?.readableBytes == 0 { buffered = nil } }
        if body.isIdle {
            guard var buf = buffered, buf.readableBytes > 0 else { return nil }
            // RFC 9112 §2.2: ignore empty lines before a request line.
            while let c = buf.getInteger(at: buf.readerIndex, as: UInt8.self), c == 0x0D || c == 0x0A {
                buf.moveReaderIndex(forwardBy: 1)
            }
            buffered = buf
            guard let len = buf.withUnsafeReadableBytes({ HTTP1Parse.headLength($0) }), len <= HTTP1Parse.maxHeadBytes else {
                guard buf.readableBytes > HTTP1Parse.maxHeadBytes else { return nil }
                buffered = nil
                throw HTTP1Error(kind: .headTooLarge, description: "the request head exceeds \(HTTP1Parse.maxHeadBytes) bytes")
            }
            let head: RequestHead
            do {
                head = try buf.withUnsafeReadableBytes { try HTTP1Parse.request($0, length: len) }
            } catch {
                buffered = nil
                throw error
            }
            buf.moveReaderIndex(forwardBy: len)
            buffered = buf
            // A request without a body ends with its head.
            if head.hasBody { body.start(head.framing) }
            return .head(head)
        }
        // A body can end without more bytes (its last piece was the rest of a Content-Length).
        var buf = buffered ?? Self.noBytes
        let event: BodyDecoder.Event?
        do {
            event = try body.next(&buf)
        } catch {
            buffered = nil
            throw error
        }
        buffered = buf
        switch event {
        case nil: return nil
        case .data(let piece): return .body(piece)
        case .end: return .end
        }
    }
}

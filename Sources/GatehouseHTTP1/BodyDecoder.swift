import GatehouseCore
import NIOCore

/// Reads a message body of a given framing from a connection's buffer, piece by piece.
package struct BodyDecoder {
    package enum State: Equatable {
        case idle
        case length(Int)
        case chunkSize
        case chunkData(Int)
        case chunkDataEnd
        case trailers(Int)
        case untilClose
    }

    package enum Event {
        case data(ByteBuffer)
        case end
    }

    package var state = State.idle
    /// Request bodies: chunk lines and trailers end with CRLF (no bare LF), and a chunk-size line
    /// holds nothing but the size and `;extensions` (RFC 9112 §7.1.1). Responses, which the proxy
    /// re-frames, are read leniently.
    package var strict = false
    /// Lenient (response) decoding only: whether the current body's chunk framing needed a repair
    /// (a line ended by a bare LF, something other than `;extensions` after a chunk size). The
    /// connection is then not reused: an upstream that frames sloppily is not trusted to end its
    /// response where the gateway read the end.
    package private(set) var repaired = false

    package init(strict: Bool = false) { self.strict = strict }

    package mutating func start(_ framing: BodyFraming) {
        repaired = false
        switch framing {
        case .none: state = .length(0)
        case .length(let n): state = .length(n)
        case .chunked: state = .chunkSize
        case .untilClose: state = .untilClose
        }
    }

    package var isIdle: Bool { state == .idle }

    /// The next piece of the body from `buf`, `.end` when the body is complete, or nil when more
    /// input is needed.
    package mutating func next(_ buf: inout ByteBuffer) throws -> Event? {
        while true {
            switch state {
            case .idle:
                return nil
            case .length(let n):
                if n == 0 { state = .idle; return .end }
                let k = min(n, buf.readableBytes)
                if k == 0 { return nil }
                state = .length(n - k)
                return .data(buf.readSlice(length: k)!)
            case .untilClose:
                let k = buf.readableBytes
                if k == 0 { return nil }
                return .data(buf.readSlice(length: k)!)
            case .chunkSize:
                guard let (size, lineLen) = try Self.chunkSizeLine(buf, strict: strict) else { return nil }
                if !strict, !repaired, !Self.isPlainChunkSizeLine(buf, lineLen) {
                    // Not "HEX CRLF": would the strict reading take it (extensions, CRLF)?
                    if (try? Self.chunkSizeLine(buf, strict: true)) == nil { repaired = true }
                }
                buf.moveReaderIndex(forwardBy: lineLen)
                state = size == 0 ? .trailers(0) : .chunkData(size)
            case .chunkData(let n):
                let k = min(n, buf.readableBytes)
                if k == 0 { return nil }
                state = n - k == 0 ? .chunkDataEnd : .chunkData(n - k)
                return .data(buf.readSlice(length: k)!)
            case .chunkDataEnd:
                guard buf.readableBytes >= 1 else { return nil }
                let c = buf.getInteger(at: buf.readerIndex, as: UInt8.self)!
                if c == 0x0A {
                    if strict { throw HTTP1Error.malformed("a chunk is followed by a bare LF, not CRLF") }
                    repaired = true
                    buf.moveReaderIndex(forwardBy: 1); state = .chunkSize; continue
                }
                guard c == 0x0D else { throw HTTP1Error.malformed("a chunk is not followed by CRLF") }
                guard buf.readableBytes >= 2 else { return nil }
                guard buf.getInteger(at: buf.readerIndex + 1, as: UInt8.self) == 0x0A else {
                    throw HTTP1Error.malformed("a chunk is not followed by CRLF")
                }
                buf.moveReaderIndex(forwardBy: 2)
                state = .chunkSize
            case .trailers(let seen):
                // Trailer fields are read and dropped (the proxy does not forward trailers).
                let r: (Int, Bool, Bool)? = buf.withUnsafeReadableBytes { p in
                    guard let nl = p.firstIndex(of: 0x0A) else { return nil }
                    let empty = nl == 0 || (nl == 1 && p[0] == 0x0D)
                    return (nl + 1, empty, nl > 0 && p[nl - 1] == 0x0D)
                }
                guard let (lineLen, empty, crlf) = r else {
                    if seen + buf.readableBytes > HTTP1Parse.maxHeadBytes {
                        throw HTTP1Error(kind: .headTooLarge, description: "the chunked trailer section is too large")
                    }
                    return nil
                }
                if !crlf {
                    if strict { throw HTTP1Error.malformed("a trailer line ends with a bare LF, not CRLF") }
                    repaired = true
                }
                if strict, !empty {
                    // Dropped, but read as fields: a line that is not `name: value` is refused, as
                    // a stricter parser in front or behind would refuse it.
                    let ok = buf.withUnsafeReadableBytes { p in Self.isTrailerField(UnsafeRawBufferPointer(rebasing: p[0..<(lineLen - 2)]))
                    }
                    if !ok { throw HTTP1Error.malformed("a chunked trailer line is not a field (name: value)") }
                }
                buf.moveReaderIndex(forwardBy: lineLen)
                if empty { state = .idle; return .end }
                state = .trailers(seen + lineLen)
            }
        }
    }

    /// `token ":" value`, the value without control bytes other than HTAB.
    package static func isTrailerField(_ p: UnsafeRawBufferPointer) -> Bool {
        HTTP1Parse.tchar.withUnsafeBufferPointer { t in
            var i = 0
            while i < p.count, t[Int(p[i])] { i += 1 }
            guard i > 0, i < p.count, p[i] == 0x3A else { return false }
            for c in p[(i + 1)...] where (c < 0x20 && c != 0x09) || c == 0x7F { return false }
            return true
        }
    }

    /// Whether the chunk-size line of `lineLen` bytes at the start of `buf` is hex digits and CRLF
    /// alone (the usual line; anything else is checked further).
    @inline(__always)
    package static func isPlainChunkSizeLine(_ buf: ByteBuffer, _ lineLen: Int) -> Bool {
        buf.withUnsafeReadableBytes { p in
            guard lineLen >= 3, lineLen <= p.count, p[lineLen - 2] == 0x0D else { return false }
            for i in 0..<(lineLen - 2) {
                let c = p[i]
                guard (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x66) else { return false }
            }
            return true
        }
    }

    /// Parses "HEX[;ext] CRLF": (size, line length), or nil when the line is incomplete. `strict`:
    /// after the size only BWS and `;name[=value]` extensions (token or quoted-string), then CRLF.
    package static func chunkSizeLine(_ buf: ByteBuffer, strict: Bool = false) throws -> (Int, Int)? {
        try buf.withUnsafeReadableBytes { p -> (Int, Int)? in
            var i = 0
            var size = 0
            var digits = 0
            while i < p.count {
                let c = p[i]
                let v: Int
                switch c {
                case 0x30...0x39: v = Int(c - 0x30)
                case 0x41...0x46: v = Int(c - 0x41 + 10)
                case 0x61...0x66: v = Int(c - 0x61 + 10)
                default: v = -1
                }
                if v < 0 { break }
                digits += 1
                if digits > 15 { throw HTTP1Error.malformed("a chunk size is too large") }
                size = size << 4 | v
                i += 1
            }
            if i == p.count { if p.count > 4096 { throw HTTP1Error.malformed("a chunk size line is too long") }; return nil }
            guard digits > 0 else { throw HTTP1Error.malformed("a chunk size is not hexadecimal") }
            // Extensions (";name=value") are skipped up to the line end.
            guard let nl = UnsafeRawBufferPointer(rebasing: p[i...]).firstIndex(of: 0x0A) else {
                if p.count > 4096 { throw HTTP1Error.malformed("a chunk size line is too long") }
                return nil
            }
            let end = i + nl
            let c = p[i]
            guard c == 0x3B || c == 0x0D || c == 0x0A || c == 0x20 || c == 0x09 else {
                throw HTTP1Error.malformed("a chunk size is not hexadecimal")
            }
            for k in i..<end where p[k] == 0x0D && k != end - 1 { throw HTTP1Error.malformed("a chunk size line contains a bare CR") }
            if strict {
                guard p[end - 1] == 0x0D else {
                    throw HTTP1Error.malformed("a chunk size line ends with a bare LF, not CRLF")
                }
                try chunkExtensions(UnsafeRawBufferPointer(rebasing: p[i..<(end - 1)]))
            }
            return (size, end + 1)
        }
    }

    /// Checks what follows a chunk size: `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) BWS`.
    package static func chunkExtensions(_ p: UnsafeRawBufferPointer) throws {
        let garbage = HTTP1Error.malformed("a chunk size is followed by something other than ;extensions")
        try HTTP1Parse.tchar.withUnsafeBufferPointer { t in
            var i = 0
            func bws() { while i < p.count, p[i] == 0x20 || p[i] == 0x09 { i += 1 } }
            func token() throws {
                let s = i
                while i < p.count, t[Int(p[i])] { i += 1 }
                if i == s { throw garbage }
            }
            // BWS is allowed only before an extension's ";" (RFC 9112 §7.1.1): "5 " CRLF is refused.
            bws()
            if i == p.count, i > 0 { throw garbage }
            while i < p.count {
                guard p[i] == 0x3B else { throw garbage }
                i += 1
                bws()
                try token()
                bws()
                if i < p.count, p[i] == 0x3D {
                    i += 1
                    bws()
                    if i < p.count, p[i] == 0x22 {
                        i += 1
                        var closed = false
                        while i < p.count {
                            let c = p[i]
                            if c == 0x22 { closed = true; i += 1; break }
                            if c == 0x5C {
                                guard i + 1 < p.count, p[i + 1] >= 0x20 || p[i + 1] == 0x09, p[i + 1] != 0x7F else { throw garbage }
                                i += 2
                                continue
                            }
                            if (c < 0x20 && c != 0x09) || c == 0x7F { throw garbage }
                            i += 1
                        }
                        if !closed { throw garbage }
                    } else {
                        try token()
                    }
                    bws()
                }
            }
        }
    }
}

extension Optional where Wrapped == ByteBuffer {
    /// Adds newly read bytes to those still waiting to be parsed; with none waiting, the new buffer
    /// is taken as it is (no copy).
    package mutating func accumulate(_ buf: ByteBuffer) {
        if var pending = self, pending.readableBytes > 0 {
            self = nil  // the only reference, so the append does not copy the storage
            var b = buf
            pending.writeBuffer(&b)
            self = pending
        } else {
            self = buf
        }
    }
}

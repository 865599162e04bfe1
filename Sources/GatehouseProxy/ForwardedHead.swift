import GatehouseConfig
import GatehouseCore
import GatehouseHTTP1
import NIOCore

/// The request head the upstream receives: the canonical target the checks saw, the client's
/// fields minus what must not travel on, and the fields the gateway adds.
///
/// Removed: hop-by-hop fields (`Connection`, those it names, `Keep-Alive`, `TE`, `Trailer`,
/// `Upgrade`, `Proxy-Connection`), the body's framing (re-derived by the caller), `Expect`; the
/// credentials the route's checks read (an `api_key` header or query parameter); from a peer that
/// is not a trusted proxy, `X-Forwarded-*` and the `untrusted_headers`; from any peer, the
/// underscore spellings of the fields the gateway writes itself (CGI/WSGI upstreams read
/// `X_Forwarded_For` as `X-Forwarded-For`). Added: `X-Forwarded-For` (appended to a trusted proxy's),
/// `X-Forwarded-Proto` and `X-Forwarded-Host` (unless a trusted proxy sent them), `X-Request-Id`.
/// With tracing on (`traceFields` given), the client's `traceparent` and `tracestate` are replaced
/// by the upstream span's. The caller writes the framing field and the blank line.
enum ForwardedHead {
    /// Matches only spellings other than the canonical one (those reach their own `FieldKind`).
    static let ownFieldsOtherwiseSpelled = HeaderNameSet(["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id"])

    /// Writes the request line and fields. `path`: the canonical path (a route's `strip_prefix` is
    /// removed here, on whole segments); `query` as received; `traceFields`: the upstream span's
    /// W3C trace context, nil when tracing is off (the client's fields then pass as any other; with
    /// it, the caller's `untrustedHeaders` names them, so that they are replaced, not doubled).
    static func write(
        _ head: RequestHead, path: String, query: String?, route: CompiledRoute, requestID: String,
        peerTrusted: Bool, peerText: String, isTLS: Bool, untrustedHeaders: HeaderNameSet?,
        traceFields: TraceFields? = nil, into out: inout ByteBuffer
    ) {
        out.writeString(head.method)
        out.writeStaticString(" ")
        out.writeString(route.stripPrefix.flatMap { CanonicalTarget.stripPrefix($0, from: path) } ?? path)
        let strippedQuery = route.chain.credentialFields.queryParameters
        if let query,
            // The key an `api_key` check read from the query stays at the gateway.
            let forwarded = strippedQuery.isEmpty ? query : CredentialStripping.query(query, removing: strippedQuery)
        {
            out.writeStaticString("?")
            out.writeString(forwarded)
        }
        out.writeStaticString(" HTTP/1.1\r\n")
        var forwardedFor: String?, forwardedProto = false, forwardedHost = false, host: String?
        let credentials = route.chain.credentialFields.headers
        for f in head.headers {
            switch FieldKind.of(f.name) {
            case .connection, .keepAlive, .proxyConnection, .te, .trailer, .upgrade, .transferEncoding, .contentLength, .expect,
                .xRequestID:
                continue
            case .xForwardedFor:
                // From a trusted proxy every line counts (a proxy appends its own line); the
                // gateway's view of the client was resolved from all of them too.
                if peerTrusted { forwardedFor = forwardedFor.map { $0 + ", " + f.value } ?? f.value }
                continue
            case .xForwardedProto:
                guard peerTrusted else { continue }
                forwardedProto = true
            case .xForwardedHost:
                guard peerTrusted else { continue }
                forwardedHost = true
            case .host:
                // The host the routes matched: "admin.example.com." goes up as "admin.example.com".
                let value = hostWithoutTrailingDot(f.value)
                if host == nil { host = value }
                out.writeField(f.name, value)
                continue
            default:
                if !head.connectionNames.isEmpty, head.connectionNames.containsIgnoringASCIICase(f.name) { continue }
                if let untrustedHeaders, untrustedHeaders.contains(fieldName: f.name) { continue }
                if ownFieldsOtherwiseSpelled.contains(fieldName: f.name) { continue }
                if !credentials.isEmpty, credentials.containsIgnoringASCIICase(f.name) { continue }
            }
            out.writeField(f.name, f.value)
        }
        if peerTrusted, let existing = forwardedFor {
            out.writeStaticString("X-Forwarded-For: ")
            out.writeString(existing)
            out.writeStaticString(", ")
            out.writeString(peerText)
            out.writeStaticString("\r\n")
        } else {
            out.writeField("X-Forwarded-For", peerText)
        }
        if !forwardedProto { out.writeStaticString(isTLS ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n") }
        if !forwardedHost, let host { out.writeField("X-Forwarded-Host", host) }
        out.writeField("X-Request-Id", requestID)
        if let traceFields {
            if let v = traceFields.traceparent { out.writeField("traceparent", v) }
            if let v = traceFields.tracestate { out.writeField("tracestate", v) }
        }
    }

    /// `name.` or `name.:port` without the dot (a fully qualified name's root label), else as is.
    static func hostWithoutTrailingDot(_ value: String) -> String {
        // Looked at as bytes: the common field (no dot before the port) is returned as is.
        let u = value.utf8
        var end = u.endIndex
        if u.first != UInt8(ascii: "["), let colon = u.lastIndex(of: UInt8(ascii: ":")) { end = colon }
        guard end > u.startIndex, u[u.index(before: end)] == UInt8(ascii: ".") else { return value }
        var nameEnd = end
        while nameEnd > u.startIndex, u[u.index(before: nameEnd)] == UInt8(ascii: ".") { nameEnd = u.index(before: nameEnd) }
        return String(value[..<nameEnd]) + String(value[end...])
    }
}

/// The response head the client receives, built from the upstream's: its status line and fields
/// copied as bytes, hop-by-hop fields (and those its `Connection` names) dropped, `Content-Length`
/// dropped when the upstream also sent `Transfer-Encoding`, the checks' response fields added (a
/// field a check sets replaces the upstream's, except `Vary`, whose lists are merged), then
/// `X-Request-Id`, the framing and `Connection: close` when the connection will close.
enum ClientResponseHead {
    static func write(
        _ up: ResponseHead, minor: Int, extraFields extra: [HeaderField], requestID: String,
        chunked: Bool, keepAlive: Bool, into out: inout ByteBuffer
    ) {
        var varyMerged = false
        up.bytes.withUnsafeReadableBytes { p in
            out.writeStaticString(minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
            out.writeBytes(UnsafeRawBufferPointer(rebasing: p[up.statusStart..<up.statusEnd]))
            out.writeStaticString("\r\n")
            for line in up.lines {
                if line.kind.isHopByHop || line.kind == .xRequestID { continue }
                if line.kind == .contentLength && up.hadTransferEncoding { continue }
                if !up.connectionNames.isEmpty || !extra.isEmpty {
                    let name = UnsafeRawBufferPointer(rebasing: p[line.nameStart..<line.nameEnd])
                    if !up.connectionNames.isEmpty, up.connectionNames.contains(String(decoding: name, as: UTF8.self).lowercased()) {
                        continue
                    }
                    if !extra.isEmpty, let f = extra.first(where: { sameName($0.name, name) }) {
                        // Vary lists accumulate (the upstream's `Accept-Encoding` and a check's
                        // `Origin`); every other field a check sets replaces the upstream's.
                        guard line.kind == .vary, !varyMerged else { continue }
                        varyMerged = true
                        out.writeBytes(UnsafeRawBufferPointer(rebasing: p[line.nameStart..<line.valueEnd]))
                        out.writeStaticString(", ")
                        out.writeCheckedValue(f.value)
                        out.writeStaticString("\r\n")
                        continue
                    }
                }
                out.writeBytes(UnsafeRawBufferPointer(rebasing: p[line.nameStart..<line.valueEnd]))
                out.writeStaticString("\r\n")
            }
        }
        for f in extra where !(varyMerged && HeaderList.sameName(f.name, "vary")) { out.writeCheckedField(f.name, f.value) }
        out.writeField("X-Request-Id", requestID)
        if chunked { out.writeStaticString("Transfer-Encoding: chunked\r\n") }
        if !keepAlive { out.writeStaticString("Connection: close\r\n") }
        out.writeStaticString("\r\n")
    }

    /// ASCII case-insensitive comparison of a field name with bytes.
    static func sameName(_ a: String, _ b: UnsafeRawBufferPointer) -> Bool {
        var a = a
        return a.withUTF8 { x in
            guard x.count == b.count else { return false }
            for i in 0..<x.count where x[i] | 0x20 != b[i] | 0x20 { return false }
            return true
        }
    }
}

extension ForwardedHead {
    /// Ends the upstream's request head with the body's framing: a body read in full (buffered for
    /// inspection, `bufferedLength`) goes with its length; otherwise the client's framing carries
    /// over. Returns true when the body is chunked (re-framed piece by piece, `ChunkFraming`).
    static func writeFraming(_ framing: BodyFraming, bufferedLength: Int?, into out: inout ByteBuffer) -> Bool {
        var chunked = false
        if let n = bufferedLength {
            out.writeStaticString("Content-Length: ")
            out.writeDecimal(n)
            out.writeStaticString("\r\n")
        } else {
            switch framing {
            case .length(let n):
                out.writeStaticString("Content-Length: ")
                out.writeDecimal(n)
                out.writeStaticString("\r\n")
            case .chunked:
                out.writeStaticString("Transfer-Encoding: chunked\r\n")
                chunked = true
            case .none, .untilClose:
                break
            }
        }
        out.writeStaticString("\r\n")
        return chunked
    }
}

/// A body passed on piece by piece (RFC 9112 §7.1 when re-framed as chunks): a small piece goes out
/// in one buffer with what precedes it (a held response head) and its chunk framing; a large one
/// without being copied.
enum ChunkFraming {
    static let lastChunk: StaticString = "0\r\n\r\n"

    /// Hands `write` the bytes for `piece`, after `prefix` when given. Pieces up to `inlineLimit`
    /// bytes are copied into one buffer when there is something to join them with. `prefix` is
    /// taken (left `nil`): the buffer is then referenced once and the piece is appended in place;
    /// a copy of it still held elsewhere would make the append copy the whole buffer first.
    static func emit(
        _ piece: ByteBuffer, after prefix: inout ByteBuffer?, chunked: Bool, inlineLimit: Int, allocator: ByteBufferAllocator,
        _ write: (ByteBuffer) -> Void
    ) {
        let n = piece.readableBytes
        if n <= inlineLimit, prefix != nil || chunked {
            var out = prefix ?? allocator.buffer(capacity: n + 24)
            prefix = nil
            if chunked { out.writeChunkHeader(n) }
            var p = piece
            out.writeBuffer(&p)
            if chunked { out.writeStaticString("\r\n") }
            write(out)
            return
        }
        if let head = prefix {
            prefix = nil
            write(head)
        }
        guard chunked else {
            write(piece)
            return
        }
        var header = allocator.buffer(capacity: 20)
        header.writeChunkHeader(n)
        write(header)
        write(piece)
        var crlf = allocator.buffer(capacity: 2)
        crlf.writeStaticString("\r\n")
        write(crlf)
    }

    /// `emit` with nothing before the piece.
    static func emit(
        _ piece: ByteBuffer, chunked: Bool, inlineLimit: Int, allocator: ByteBufferAllocator, _ write: (ByteBuffer) -> Void
    ) {
        var none: ByteBuffer? = nil
        emit(piece, after: &none, chunked: chunked, inlineLimit: inlineLimit, allocator: allocator, write)
    }
}

/// A response the gateway writes itself (a denial, a failure, a preflight answer), in one buffer.
enum LocalResponse {
    /// The interim `100 Continue` response.
    static func `continue`(_ allocator: ByteBufferAllocator) -> ByteBuffer {
        var buf = allocator.buffer(capacity: 32)
        buf.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
        return buf
    }

    static func write(
        minor: Int, status: Int, headers: [HeaderField], extraFields extra: [HeaderField], requestID: String, body: [UInt8],
        keepAlive: Bool, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var buf = allocator.buffer(capacity: 192 + body.count + 64 * (headers.count + extra.count))
        buf.writeStatusLine(minor: minor, status: status)
        for f in headers { buf.writeCheckedField(f.name, f.value) }
        for f in extra { buf.writeCheckedField(f.name, f.value) }
        buf.writeField("X-Request-Id", requestID)
        buf.writeStaticString("Content-Length: ")
        buf.writeDecimal(body.count)
        buf.writeStaticString("\r\n")
        if !keepAlive { buf.writeStaticString("Connection: close\r\n") }
        buf.writeStaticString("\r\n")
        buf.writeBytes(body)
        return buf
    }
}

import GatehouseCore
import NIOCore

// The gateway's own HTTP/1.x codec: one incremental parser for request and response heads and
// bodies, working on the connection's ByteBuffer, and writers that serialise heads straight into
// one buffer. It replaces NIO's HTTP decoder, encoder and their pipeline handlers on both sides of
// the proxy: per request that saves the boxing of every message part into `NIOAny`, the
// `HTTPHeaders` copies, and three handler hops each way (see docs/performance.md).
//
// What it accepts follows RFC 9112 strictly where a lenient reading could let a request be
// understood differently by the gateway and the upstream (request smuggling): a request with both
// Content-Length and Transfer-Encoding, a transfer coding other than `chunked`, differing
// Content-Length values, obsolete line folding, whitespace before a header's colon, or control
// characters in a field are all rejected with 400. Heads are re-serialised, never forwarded as
// received, so what the upstream sees is what the checks saw.

/// A message that cannot be parsed.
package struct HTTP1Error: Error, CustomStringConvertible {
    package enum Kind { case malformed, headTooLarge }
    package let kind: Kind
    package let description: String

    package init(kind: Kind, description: String) {
        self.kind = kind
        self.description = description
    }

    package static func malformed(_ what: String) -> HTTP1Error { HTTP1Error(kind: .malformed, description: what) }
}

/// How a message's body is delimited (RFC 9112 §6.3).
package enum BodyFraming: Equatable {
    case none
    case length(Int)
    case chunked
    /// Responses only: the body runs until the connection closes.
    case untilClose
}

/// A parsed request head.
package struct RequestHead {
    package var method: String
    /// The request target as sent (origin form: path and query).
    package var uri: String
    /// HTTP/1.minor: 0 or 1.
    package var minor: Int
    package var headers: [HeaderField]
    package var framing: BodyFraming
    package var keepAlive: Bool
    package var expectContinue: Bool
    /// Field names the client listed in `Connection` (other than close and keep-alive): hop-by-hop.
    package var connectionNames: [String]

    package var contentLength: Int? { if case .length(let n) = framing { return n } else { return nil } }
    package var hasBody: Bool {
        switch framing {
        case .none: return false
        case .length(let n): return n > 0
        case .chunked, .untilClose: return true
        }
    }

    /// The first value of a field, by case-insensitive name.
    package func first(_ name: String) -> String? {
        for f in headers where HeaderList.sameName(f.name, name) { return f.value }
        return nil
    }

    package func values(_ name: String) -> [String] {
        var out: [String] = []
        for f in headers where HeaderList.sameName(f.name, name) { out.append(f.value) }
        return out
    }

    /// A placeholder for a request whose head could not be read.
    package static let unparsed = RequestHead(
        method: "-", uri: "-", minor: 1, headers: [], framing: .none, keepAlive: false,
        expectContinue: false, connectionNames: [])
}

/// One header line of a response head, as byte offsets into `ResponseHead.bytes`.
package struct HeaderLine {
    package var nameStart: Int
    package var nameEnd: Int
    package var valueStart: Int
    package var valueEnd: Int
    package var kind: FieldKind
}

/// Fields the proxy treats specially.
package enum FieldKind: UInt8 {
    case other, connection, keepAlive, proxyConnection, te, trailer, upgrade, transferEncoding, contentLength, expect
    case xRequestID, xForwardedFor, xForwardedProto, xForwardedHost, vary, host

    /// Hop-by-hop fields (RFC 9110 §7.6.1) and framing fields the proxy re-derives itself.
    package var isHopByHop: Bool {
        switch self {
        case .connection, .keepAlive, .proxyConnection, .te, .trailer, .upgrade, .transferEncoding: return true
        default: return false
        }
    }

    /// Classifies a field name (ASCII case-insensitive) without allocating.
    package static func of(_ p: UnsafeRawBufferPointer) -> FieldKind {
        @inline(__always) func eq(_ s: StaticString) -> Bool {
            guard s.utf8CodeUnitCount == p.count else { return false }
            let q = s.utf8Start
            for i in 0..<p.count where p[i] | 0x20 != q[i] { return false }  // q is lowercase
            return true
        }
        switch p.count {
        case 2: return eq("te") ? .te : .other
        case 4: return eq("vary") ? .vary : eq("host") ? .host : .other
        case 6: return eq("expect") ? .expect : .other
        case 7: return eq("trailer") ? .trailer : eq("upgrade") ? .upgrade : .other
        case 10: return eq("connection") ? .connection : eq("keep-alive") ? .keepAlive : .other
        case 12: return eq("x-request-id") ? .xRequestID : .other
        case 14: return eq("content-length") ? .contentLength : .other
        case 15: return eq("x-forwarded-for") ? .xForwardedFor : .other
        case 16: return eq("proxy-connection") ? .proxyConnection : eq("x-forwarded-host") ? .xForwardedHost : .other
        case 17: return eq("transfer-encoding") ? .transferEncoding : eq("x-forwarded-proto") ? .xForwardedProto : .other
        default: return .other
        }
    }

    package static func of(_ name: String) -> FieldKind {
        var n = name
        return n.withUTF8 { FieldKind.of(UnsafeRawBufferPointer($0)) }
    }
}

/// A parsed response head; fields stay as bytes (the proxy copies most of them through unchanged).
package struct ResponseHead {
    package var status: Int
    package var minor: Int
    /// The whole head as received, status line to the empty line.
    package var bytes: ByteBuffer
    /// Offset in `bytes` just after "HTTP/1.x " (the status code and reason phrase follow).
    package var statusStart: Int
    /// Offset in `bytes` of the status line's end (its CR or LF).
    package var statusEnd: Int
    package var lines: [HeaderLine]
    package var framing: BodyFraming
    package var keepAlive: Bool
    /// Field names the upstream listed in `Connection`, lowercased (other than close/keep-alive).
    package var connectionNames: [String]
    /// Whether the upstream sent Transfer-Encoding (its Content-Length, if any, is not forwarded).
    package var hadTransferEncoding: Bool
    /// Whether the head leaves doubt about where this response ends on the connection, so that the
    /// connection is not reused after it (see UpstreamConnection):
    /// - a response that has no body by the rules (to HEAD, 204, 304) but whose fields announce
    ///   one, which an upstream may still send later;
    /// - both Content-Length and Transfer-Encoding (RFC 9112 §6.3): read as chunked, but the
    ///   upstream may have meant the length, and then the rest of it arrives after "the end";
    /// - a head the parser had to repair: a Content-Length that was a list or had a leading zero,
    ///   a repeated Content-Length field, a line ended by a bare LF. An upstream that frames
    ///   sloppily is not trusted to end its responses where the gateway read the end.
    /// (A chunked body the decoder had to repair is caught as it is read: `BodyDecoder.repaired`.)
    package var framingInDoubt = false

    package func name(_ line: HeaderLine) -> String {
        bytes.getString(at: bytes.readerIndex + line.nameStart, length: line.nameEnd - line.nameStart) ?? ""
    }

    package func value(_ line: HeaderLine) -> String {
        bytes.getString(at: bytes.readerIndex + line.valueStart, length: line.valueEnd - line.valueStart) ?? ""
    }

    package func first(_ kind: FieldKind) -> String? {
        for l in lines where l.kind == kind { return value(l) }
        return nil
    }
}

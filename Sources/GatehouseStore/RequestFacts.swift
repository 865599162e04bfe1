import Foundation
import GatehouseCore

/// What the call log keeps of a request beyond its method, target, host and client, so that
/// `gatehouse simulate --replay-log` can run the checks that read them again: whether it came over
/// TLS, and the few request fields checks read that never carry a secret (`fieldNames`).
///
/// Credentials are never kept: no `Authorization`, no `Cookie`, no API-key header, no CSRF token.
/// A `Referer` keeps only its origin (`scheme://host[:port]`): its path and query may carry
/// anything. Records written before this existed have none (`CallRecord.facts` is nil).
public struct RequestFacts: Sendable, Equatable, Codable {
    /// The request arrived on the TLS listener.
    public var tls: Bool
    /// The kept fields, lowercased names, in the order they arrived.
    public var headers: [HeaderField]

    public init(tls: Bool, headers: [HeaderField] = []) {
        self.tls = tls
        self.headers = headers
    }

    /// The lowercased names of the fields kept: what `cors`, `csrf` and `request` checks read.
    public static let fieldNames: [String] = [
        "origin", "access-control-request-method", "access-control-request-headers", "sec-fetch-site", "referer",
        "content-type", "content-length", "content-encoding",
    ]

    /// The facts of a request with these fields: the kept ones, each value cut to
    /// `CallLogLimits.listItem` bytes, at most `CallLogLimits.listItems` of them.
    public init(tls: Bool, fields: [HeaderField]) {
        self.tls = tls
        headers = []
        for f in fields {
            guard let name = Self.keptName(f.name) else { continue }
            guard headers.count < CallLogLimits.listItems else { break }
            var value = name == "referer" ? Self.origin(ofReferer: f.value) : f.value
            CallLogLimits.cap(&value, CallLogLimits.listItem)
            headers.append(HeaderField(name, value))
        }
    }

    /// The field's lowercased name when it is one of `fieldNames`; nil otherwise (one length test
    /// for most fields).
    static func keptName(_ name: String) -> String? {
        let n = name.utf8.count
        guard n == 6 || n == 7 || n == 12 || n == 14 || n == 16 || n == 29 || n == 30 else { return nil }
        for k in fieldNames where k.utf8.count == n && HeaderList.sameName(k, name) { return k }
        return nil
    }

    /// `scheme://host[:port]` of a Referer value; the value up to its first `/`, `?` or `#` after
    /// the authority.
    static func origin(ofReferer value: String) -> String {
        guard let range = value.range(of: "://") else { return "" }
        let rest = value[range.upperBound...]
        let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        return String(value[..<end])
    }

    /// The stored form: `{"tls":true,"h":[["origin","https://a.example"]]}`, or `{"tls":false}`
    /// when no field was kept (most API calls).
    func write(to out: inout RowBuffer) {
        out.append(tls ? #"{"tls":true"# : #"{"tls":false"#)
        if !headers.isEmpty {
            out.append(#","h":["#)
            for (i, f) in headers.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out.append(UInt8(ascii: "["))
                out.appendQuoted(f.name)
                out.append(UInt8(ascii: ","))
                out.appendQuoted(f.value)
                out.append(UInt8(ascii: "]"))
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "}"))
    }

    /// Cuts the fields to the call log's caps (as `init(tls:fields:)` does) and returns an
    /// estimate of the stored bytes, for the writer's queue.
    mutating func capFields() -> Int {
        if headers.count > CallLogLimits.listItems { headers.removeSubrange(CallLogLimits.listItems...) }
        var n = 16
        for i in headers.indices {
            CallLogLimits.cap(&headers[i].name, CallLogLimits.listItem)
            CallLogLimits.cap(&headers[i].value, CallLogLimits.listItem)
            n += headers[i].name.utf8.count + headers[i].value.utf8.count + 8
        }
        return n
    }

    /// The most bytes `write` writes.
    var maximumBytes: Int {
        var n = 24
        for f in headers { n += 6 * (f.name.utf8.count + f.value.utf8.count) + 8 }
        return n
    }

    /// Reads the stored form; nil when the text is not one.
    static func read(_ text: String, decoder: JSONDecoder) -> RequestFacts? {
        struct Stored: Decodable {
            var tls: Bool
            var h: [[String]]?
        }
        guard let s = try? decoder.decode(Stored.self, from: Data(text.utf8)) else { return nil }
        return RequestFacts(tls: s.tls, headers: (s.h ?? []).compactMap { $0.count == 2 ? HeaderField($0[0], $0[1]) : nil })
    }
}

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
    /// A kept field was cut to the log's cap, or left out past the most it keeps: replay cannot
    /// know the request's fields, and says so rather than deciding on what is left.
    public var cut: Bool

    enum CodingKeys: String, CodingKey { case tls, headers, cut }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tls = try c.decode(Bool.self, forKey: .tls)
        headers = try c.decode([HeaderField].self, forKey: .headers)
        cut = try c.decodeIfPresent(Bool.self, forKey: .cut) ?? false
    }

    public init(tls: Bool, headers: [HeaderField] = [], cut: Bool = false) {
        self.tls = tls
        self.headers = headers
        self.cut = cut
    }

    /// The lowercased names of the fields kept: what `cors`, `csrf` and `request` checks read.
    public static let fieldNames: [String] = [
        "origin", "access-control-request-method", "access-control-request-headers", "sec-fetch-site", "referer",
        "content-type", "content-length", "content-encoding", "transfer-encoding",
    ]

    /// The facts of a request with these fields: the kept ones, each value cut to
    /// `CallLogLimits.listItem` bytes, at most `CallLogLimits.listItems` of them.
    public init(tls: Bool, fields: [HeaderField]) {
        self.tls = tls
        headers = []
        cut = false
        for f in fields {
            guard let name = Self.keptName(f.name) else { continue }
            guard headers.count < CallLogLimits.listItems else {
                cut = true
                break
            }
            // An Origin or Referer is kept only as a serialized origin, never with user
            // information or a path (either may carry a credential).
            var value: String
            switch name {
            case "referer":
                guard let origin = Self.origin(ofReferer: f.value) else { continue }
                value = origin
            case "origin":
                guard f.value == "null" || Self.origin(ofReferer: f.value) == f.value else { continue }
                value = f.value
            default: value = f.value
            }
            if value.utf8.count > CallLogLimits.listItem {
                CallLogLimits.cap(&value, CallLogLimits.listItem)
                cut = true
            }
            headers.append(HeaderField(name, value))
        }
    }

    /// The field's lowercased name when it is one of `fieldNames`; nil otherwise (one length test
    /// for most fields).
    static func keptName(_ name: String) -> String? {
        let n = name.utf8.count
        guard n == 6 || n == 7 || n == 12 || n == 14 || n == 16 || n == 17 || n == 29 || n == 30 else { return nil }
        for k in fieldNames where k.utf8.count == n && HeaderList.sameName(k, name) { return k }
        return nil
    }

    /// `scheme://host[:port]` of an `http` or `https` URL, without user information; nil for
    /// anything else (a relative reference, another scheme).
    static func origin(ofReferer value: String) -> String? {
        let lower = value.prefix(8).lowercased()
        let scheme = lower.hasPrefix("https://") ? "https" : lower.hasPrefix("http://") ? "http" : nil
        guard let scheme else { return nil }
        let authority = value.dropFirst(scheme.count + 3).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hostPort = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? authority
        guard !hostPort.isEmpty else { return nil }
        return scheme + "://" + hostPort
    }

    /// The stored form: `{"tls":true,"h":[["origin","https://a.example"]]}`, or `{"tls":false}`
    /// when no field was kept (most API calls).
    func write(to out: inout RowBuffer) {
        out.append(tls ? #"{"tls":true"# : #"{"tls":false"#)
        if cut { out.append(#","cut":true"#) }
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
        if headers.count > CallLogLimits.listItems {
            headers.removeSubrange(CallLogLimits.listItems...)
            cut = true
        }
        var n = 16
        for i in headers.indices {
            if headers[i].name.utf8.count > CallLogLimits.listItem || headers[i].value.utf8.count > CallLogLimits.listItem { cut = true }
            CallLogLimits.cap(&headers[i].name, CallLogLimits.listItem)
            CallLogLimits.cap(&headers[i].value, CallLogLimits.listItem)
            n += headers[i].name.utf8.count + headers[i].value.utf8.count + 8
        }
        return n
    }

    /// The most bytes `write` writes.
    var maximumBytes: Int {
        var n = 36
        for f in headers { n += 6 * (f.name.utf8.count + f.value.utf8.count) + 8 }
        return n
    }

    /// Reads the stored form; nil when the text is not one.
    static func read(_ text: String, decoder: JSONDecoder) -> RequestFacts? {
        struct Stored: Decodable {
            var tls: Bool
            var h: [[String]]?
            var cut: Bool?
        }
        guard let s = try? decoder.decode(Stored.self, from: Data(text.utf8)) else { return nil }
        return RequestFacts(
            tls: s.tls, headers: (s.h ?? []).compactMap { $0.count == 2 ? HeaderField($0[0], $0[1]) : nil }, cut: s.cut ?? false)
    }
}

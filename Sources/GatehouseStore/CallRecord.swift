import GatehouseCore

/// One call-log record: every request, allowed or denied.
public struct CallRecord: Sendable, Equatable, Codable {
    public var requestID: String
    /// Seconds since 1970 when the request head arrived.
    public var time: Double
    public var route: String?
    public var consumer: String?
    public var keyID: String?
    public var client: String?
    public var method: String
    /// Path and query as received. API keys sent as query parameters are redacted before logging.
    public var path: String
    public var host: String?
    public var status: Int
    public var upstreamMillis: Double?
    public var totalMillis: Double
    public var decidingCheck: String?
    public var reason: String?
    public var detail: String?
    public var hint: String?
    public var required: [String]
    public var presented: [String]
    public var trace: DecisionTrace
    public var upstreamTarget: String?
    /// The request fields replay needs (TLS, the non-secret fields checks read); nil in records
    /// written before the call log kept them.
    public var facts: RequestFacts?
    /// The audit-log entry behind the denial (a revoked or rejected subscription), which
    /// `explain` cites.
    public var auditEntry: Int64?
    /// The id of the store application the caller was identified as (by a key, a password or a
    /// certificate mapping); nil for a token subject or an anonymous caller.
    public var applicationID: String?

    public init(
        requestID: String, time: Double, route: String?, consumer: String?, keyID: String?, client: String?, method: String,
        path: String, host: String?, status: Int, upstreamMillis: Double?, totalMillis: Double, decidingCheck: String?,
        reason: String?, detail: String?, hint: String?, required: [String], presented: [String], trace: DecisionTrace,
        upstreamTarget: String?, facts: RequestFacts? = nil, auditEntry: Int64? = nil, applicationID: String? = nil
    ) {
        self.requestID = requestID
        self.time = time
        self.route = route
        self.consumer = consumer
        self.keyID = keyID
        self.client = client
        self.method = method
        self.path = path
        self.host = host
        self.status = status
        self.upstreamMillis = upstreamMillis
        self.totalMillis = totalMillis
        self.decidingCheck = decidingCheck
        self.reason = reason
        self.detail = detail
        self.hint = hint
        self.required = required
        self.presented = presented
        self.trace = trace
        self.upstreamTarget = upstreamTarget
        self.facts = facts
        self.auditEntry = auditEntry
        self.applicationID = applicationID
    }
}

/// The most bytes the call log stores for each field of a record (UTF-8, the truncation marker
/// included). A longer value keeps its first bytes, cut on a character boundary, followed by
/// `…[+N bytes]` (N: the bytes left out). Every field an attacker can fill (path, Host, method,
/// details quoting them, check notes) is bounded, so a record stays small whatever the request:
/// see `CallRecord.maximumStoredBytes`.
public enum CallLogLimits {
    public static let requestID = 256
    public static let route = 256
    public static let consumer = 256
    public static let keyID = 256
    public static let client = 256
    public static let method = 64
    public static let path = 2048
    public static let host = 256
    public static let decidingCheck = 256
    public static let reason = 128
    public static let detail = 2048
    public static let hint = 1024
    public static let upstreamTarget = 512
    /// Each item of `required` and `presented`, and how many items each keeps (the last kept
    /// item then says how many were left out).
    public static let listItem = 256
    public static let listItems = 8
    /// Each trace entry's check id, type and note, and how many entries the trace keeps (one per
    /// check of the route's chain, so the configuration bounds it; the last kept entry's note
    /// then says how many were left out).
    public static let traceName = 128
    public static let traceNote = 512
    public static let traceEntries = 64

    /// `…[+N bytes]`: UTF-8 bytes of the marker for N of `digits` decimal digits.
    static func markerBytes(digits: Int) -> Int { 12 + digits }

    /// Cuts `s` to at most `cap` UTF-8 bytes, the marker included, on a character boundary.
    /// Costs one length check when `s` fits (a native string's UTF-8 count is stored).
    @inline(__always)
    public static func cap(_ s: inout String, _ cap: Int) {
        if s.utf8.count > cap { truncate(&s, cap) }
    }

    @inline(__always)
    public static func cap(_ s: inout String?, _ cap: Int) {
        if let n = s?.utf8.count, n > cap { truncate(&s!, cap) }
    }

    static func truncate(_ s: inout String, _ cap: Int) {
        let total = s.utf8.count
        var digits = 1, t = total
        while t >= 10 { digits += 1; t /= 10 }
        var keep = max(0, cap - markerBytes(digits: digits))
        s = s.withUTF8 { u in
            // Back up to the first byte of a character (never a continuation byte 10xxxxxx).
            while keep > 0 && u[keep] & 0xC0 == 0x80 { keep -= 1 }
            return String(decoding: UnsafeBufferPointer(rebasing: u[..<keep]), as: UTF8.self) + "…[+\(total - keep) bytes]"
        }
    }

    static func cap(_ list: inout [String]) {
        if list.count > listItems {
            let left = list.count - listItems + 1
            list.removeSubrange((listItems - 1)...)
            list.append("…[+\(left) items]")
        }
        for i in list.indices where list[i].utf8.count > listItem { truncate(&list[i], listItem) }
    }
}

extension CallRecord {
    /// Cuts every field to its `CallLogLimits` cap and returns an estimate of the record's bytes
    /// (its text plus a fixed overhead), which the writer's queue counts. A record within the
    /// caps is only measured: no copy, no allocation.
    @discardableResult
    public mutating func capFields() -> Int {
        typealias L = CallLogLimits
        L.cap(&requestID, L.requestID)
        L.cap(&route, L.route)
        L.cap(&consumer, L.consumer)
        L.cap(&keyID, L.keyID)
        L.cap(&client, L.client)
        L.cap(&method, L.method)
        L.cap(&path, L.path)
        L.cap(&host, L.host)
        L.cap(&decidingCheck, L.decidingCheck)
        L.cap(&reason, L.reason)
        L.cap(&detail, L.detail)
        L.cap(&hint, L.hint)
        L.cap(&upstreamTarget, L.upstreamTarget)
        func len(_ s: String?) -> Int { s?.utf8.count ?? 0 }
        var bytes =
            256 + requestID.utf8.count + len(route) + len(consumer) + len(keyID) + len(client) + method.utf8.count
            + path.utf8.count + len(host) + len(decidingCheck) + len(reason) + len(detail) + len(hint) + len(upstreamTarget)
        if !required.isEmpty { bytes += Self.listBytes(&required) }
        if !presented.isEmpty { bytes += Self.listBytes(&presented) }
        if !trace.entries.isEmpty { bytes += traceBytes() }
        if facts != nil { bytes += facts!.capFields() }
        return bytes
    }

    private static func fits(_ list: [String]) -> Bool {
        list.count <= CallLogLimits.listItems && list.allSatisfy { $0.utf8.count <= CallLogLimits.listItem }
    }

    private static func listBytes(_ list: inout [String]) -> Int {
        if !fits(list) { CallLogLimits.cap(&list) }
        var n = 0
        for s in list { n += s.utf8.count + 16 }
        return n
    }

    private mutating func traceBytes() -> Int {
        typealias L = CallLogLimits
        var n = 0
        var over = trace.entries.count > L.traceEntries
        if !over {
            trace.entries.withUnsafeBufferPointer { entries in
                for i in entries.indices {
                    let c = entries[i].check.utf8.count, t = entries[i].type.utf8.count, note = entries[i].note.utf8.count
                    if c > L.traceName || t > L.traceName || note > L.traceNote { over = true; return }
                    n += c + t + note + 64
                }
            }
            if !over { return n }
        }
        if trace.entries.count > L.traceEntries {
            let left = trace.entries.count - L.traceEntries
            trace.entries.removeSubrange(L.traceEntries...)
            let marker = " …[+\(left) entries]"
            L.cap(&trace.entries[L.traceEntries - 1].note, L.traceNote - marker.utf8.count)
            trace.entries[L.traceEntries - 1].note += marker
        }
        n = 0
        for i in trace.entries.indices {
            L.cap(&trace.entries[i].check, L.traceName)
            L.cap(&trace.entries[i].type, L.traceName)
            L.cap(&trace.entries[i].note, L.traceNote)
            n += trace.entries[i].check.utf8.count + trace.entries[i].type.utf8.count + trace.entries[i].note.utf8.count + 64
        }
        return n
    }

    /// The most UTF-8 bytes of text a record keeps once capped, before JSON escaping of its lists
    /// and trace: with a route of `checks` checks.
    public static func maximumStoredBytes(checks: Int) -> Int {
        typealias L = CallLogLimits
        return L.requestID + L.route + L.consumer + L.keyID + L.client + L.method + L.path + L.host + L.decidingCheck + L.reason
            + L.detail + L.hint + L.upstreamTarget + 2 * L.listItems * L.listItem
            + min(checks, L.traceEntries) * (2 * L.traceName + L.traceNote)
    }
}

/// Filters for `gatehouse logs`.
public struct CallFilter: Sendable {
    public var status: Int?
    public var reason: String?
    public var route: String?
    public var consumer: String?
    public var since: Double?
    /// Only records with rowid greater than this (for --follow).
    public var afterRow: Int64?
    public var limit: Int
    public init(
        status: Int? = nil, reason: String? = nil, route: String? = nil, consumer: String? = nil, since: Double? = nil,
        afterRow: Int64? = nil, limit: Int = 100
    ) {
        self.status = status
        self.reason = reason
        self.route = route
        self.consumer = consumer
        self.since = since
        self.afterRow = afterRow
        self.limit = limit
    }
}

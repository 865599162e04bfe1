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

    public init(
        requestID: String, time: Double, route: String?, consumer: String?, keyID: String?, client: String?, method: String,
        path: String, host: String?, status: Int, upstreamMillis: Double?, totalMillis: Double, decidingCheck: String?,
        reason: String?, detail: String?, hint: String?, required: [String], presented: [String], trace: DecisionTrace,
        upstreamTarget: String?
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
    public init(status: Int? = nil, reason: String? = nil, route: String? = nil, consumer: String? = nil, since: Double? = nil,
                afterRow: Int64? = nil, limit: Int = 100) {
        self.status = status
        self.reason = reason
        self.route = route
        self.consumer = consumer
        self.since = since
        self.afterRow = afterRow
        self.limit = limit
    }
}

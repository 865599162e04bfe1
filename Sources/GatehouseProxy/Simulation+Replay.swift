import GatehouseChecks
import GatehouseConfig
import GatehouseCore
import GatehouseIdentity
import GatehouseStore

/// Re-decides the call log's records of a period against another configuration and reports the
/// decisions that would change (`gatehouse simulate --replay-log`).
///
/// Each record is rebuilt as the request the gateway saw — method, target (credentials already
/// redacted), host, client address, and where the record has them (`RequestFacts`) the TLS flag
/// and the non-secret fields checks read — and decided by `Simulator` with the gateway's own
/// `Gatekeeper`. What the log cannot give is never guessed:
///
/// - authentication is replayed as the logged principal: the log never holds a credential, so an
///   authentication check takes the caller to be the store consumer the call was identified as
///   (with the roles, scopes and tenant the store gives it now), and a denial it gave in the
///   logged call is given again; a call with no principal that now meets an authentication check
///   cannot be re-evaluated;
/// - rate limits (earlier traffic) and checks that read the body or every field (`waf`, any check
///   that needs the body; the log keeps neither) are not simulated: an allowed call that passes
///   one is counted as "allowed unless" that check, and a call they denied is not re-evaluated
///   when the new decision reaches them.
///
/// Records are read through a cursor and decided one at a time: memory stays bounded whatever
/// the period holds (the report keeps counts and a few example ids per group).
public struct LogReplay {
    /// Check types never simulated in replay, with why.
    public static let notSimulated: [String: String] = Simulator.statefulTypes.merging([
        "waf": "the call log keeps neither request bodies nor every header field the WAF reads"
    ]) { a, _ in a }

    /// Reasons the gateway gives before or without a check: the logged decision is theirs.
    static let gatewayDenials: Set<ReasonCode> = [.routeNotFound, .methodNotAllowed, .badRequest, .headersTooLarge, .bodyTooLarge]
    /// Reasons of calls the checks allowed and the upstream then failed.
    static let upstreamFailures: Set<ReasonCode> = [.upstreamUnavailable, .upstreamTimeout]

    let simulator: Simulator
    let consumers: [String: ConsumerRecord]
    /// Example request ids kept per group.
    public var examplesPerGroup = 3

    /// - Parameters:
    ///   - config: the changed configuration, provisioned (its checks built against the store's
    ///     credential directory).
    ///   - consumers: the store's consumers, which logged principals are looked up in.
    public init(config: GatewayConfig, consumers: [ConsumerRecord]) {
        simulator = Simulator(
            config: config,
            notSimulated: { check in
                if let why = Self.notSimulated[check.type] ?? Self.readsUnlogged(check) { return why }
                return check.needsBody ? "it reads the request body, which the call log does not keep" : nil
            }, assumeIdentity: true)
        self.consumers = Dictionary(consumers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Replays the records of `since..<until` (of `route` when given) from `store`.
    public func run(store: SQLiteStore, since: Double?, until: Double?, route: String?) throws -> ReplayReport {
        var report = ReplayReport(since: since, until: until, route: route)
        try store.forEachCall(since: since, until: until, route: route) { record in
            replay(record, into: &report)
        }
        report.finish()
        return report
    }

    /// Why a check, as configured, reads what the call log does not keep (cookies, token headers,
    /// the whole head): its answer on a logged call would be a guess.
    static func readsUnlogged(_ check: any PolicyCheck) -> String? {
        if let c = check as? CSRFCheck, c.sessionCookie != nil || c.tokenCookie != nil || c.tokenHeader != nil {
            return "it reads cookies or a token header, which the call log does not keep"
        }
        if let t = check as? TenantCheck, t.header != nil {
            return "it reads the tenant from a request header, which the call log does not keep"
        }
        if let r = check as? RequestShapeCheck, r.maxHeaderBytes != nil {
            return "it measures the whole request head, which the call log does not keep"
        }
        return nil
    }

    /// Gateway denials of what the log does not keep (the head's or the body's size, bytes that
    /// were not HTTP): they cannot be decided again.
    static let unreproducibleGatewayDenials: Set<ReasonCode> = [.badRequest, .headersTooLarge, .bodyTooLarge]

    /// The logged decision: allowed, denied with a reason, or nil when the call ended before its
    /// decision (a client that sent no complete request in time, say).
    static func loggedDecision(_ r: CallRecord) -> ReplayReport.Decision? {
        guard let reasonText = r.reason else { return .allowed }
        let reason = ReasonCode(reasonText)
        if r.decidingCheck != nil || gatewayDenials.contains(reason) { return .denied(reason) }
        if upstreamFailures.contains(reason) { return .allowed }
        return nil
    }

    /// Decides one record again and adds it to `report`.
    public func replay(_ record: CallRecord, into report: inout ReplayReport) {
        report.records += 1
        guard record.method != "-" else {
            report.skip("no request head was logged (the client sent none in time, or bytes that are not HTTP)", record.requestID)
            return
        }
        if record.path.utf8.count >= CallLogLimits.path - 32, record.path.contains("…[+") {
            report.skip("the logged target was cut to \(CallLogLimits.path) bytes", record.requestID)
            return
        }
        guard let was = Self.loggedDecision(record) else {
            report.skip("the call ended before its decision (\(record.reason ?? "?"))", record.requestID)
            return
        }
        if case .denied(let reason) = was, record.decidingCheck == nil, Self.unreproducibleGatewayDenials.contains(reason) {
            report.skip("the gateway refused it (\(reason.rawValue)) for what the call log does not keep", record.requestID)
            return
        }
        if record.facts?.cut == true {
            report.skip("its request fields were cut or left out in the call log", record.requestID)
            return
        }
        if record.facts == nil { report.withoutFacts += 1 }
        var headers: [HeaderField] = []
        if let host = record.host { headers.append(HeaderField("Host", host)) }
        headers += record.facts?.headers ?? []
        let request = SimulatedRequest(
            method: record.method, target: record.path, headers: headers, client: record.client.flatMap { IPAddress($0) },
            tls: record.facts?.tls ?? false, requestID: record.requestID, now: record.time)

        var identity = AssumedIdentity(
            consumer: nil, keyID: record.keyID, source: "replayed as the logged principal",
            verifiedTypes: Set(
                record.trace.entries.lazy.filter { $0.outcome == .allow && Simulator.authenticationTypes.contains($0.type) }.map(\.type)))
        for e in record.trace.entries where Simulator.authenticationTypes.contains(e.type) {
            guard e.outcome == .deny || e.outcome == .shadowDeny, let reason = e.reason else { continue }
            let decided = e.outcome == .deny && record.decidingCheck == e.check
            identity.loggedDenials[e.check] = Denial(
                code: reason, detail: e.note, required: decided ? record.required : [], presented: decided ? record.presented : [],
                hint: decided ? record.hint : nil)
        }
        if let token = record.trace.entries.first(where: { $0.type == "jwt" && $0.outcome == .allow }) {
            // A token's subject is logged, its claims (scopes, roles, tenant) are not.
            identity.missing = "the logged principal came from a token (check \(token.check)), whose claims are not logged"
        } else if let name = record.consumer {
            if let c = consumers[name] {
                identity.consumer = c
            } else {
                identity.missing = "the logged principal is no longer a consumer in the store"
            }
        } else {
            identity.missing = "the logged call had no authenticated principal (credentials are never logged)"
        }

        let result = simulator.evaluate(request, identity: identity)
        if let why = result.undetermined {
            report.skip("authentication check \(result.decidingCheck ?? "?") is reached; \(why)", record.requestID)
            return
        }
        let now: ReplayReport.Decision = result.outcome == .denied ? .denied(result.denial?.code ?? "denied") : .allowed
        if case .denied(let wasReason) = was, now == .allowed,
            let check = record.decidingCheck, let skipped = result.notSimulated.first(where: { $0.check == check })
        {
            // The logged call was denied by a check the replay does not run (a rate limit): the
            // new configuration reaches it too, so its answer is unknown.
            report.skip("denied \(wasReason) by \(check) in the log; \(check) is not simulated (\(skipped.why))", record.requestID)
            return
        }
        report.reevaluated += 1
        if now == .allowed {
            for check in result.allowedUnless { report.allowedUnless[check, default: 0] += 1 }
        }
        let routeName = result.route ?? record.route ?? "(no route)"
        report.add(was: was, now: now, route: routeName, requestID: record.requestID, examples: examplesPerGroup)
    }
}

/// What `LogReplay` found: counts of the decisions that would change, grouped by kind, route and
/// reason, with example request ids; what could not be re-evaluated, and why.
public struct ReplayReport: Sendable, Codable, Equatable {
    /// A decision as the report compares them: allowed (forwarded or answered) or denied with a reason.
    public enum Decision: Sendable, Equatable, Hashable {
        case allowed
        case denied(ReasonCode)
        var text: String {
            switch self {
            case .allowed: "allowed"
            case .denied(let r): r.rawValue
            }
        }
    }

    /// The kinds of change.
    public enum Change: String, Sendable, Codable, Comparable {
        case newlyDenied = "newly_denied"
        case newlyAllowed = "newly_allowed"
        case changedReason = "changed_reason"
        public static func < (a: Change, b: Change) -> Bool { a.order < b.order }
        var order: Int {
            switch self {
            case .newlyDenied: 0
            case .newlyAllowed: 1
            case .changedReason: 2
            }
        }
    }

    /// Records of one change on one route, from one logged decision to one new one.
    public struct Group: Sendable, Codable, Equatable {
        public var change: Change
        public var route: String
        /// The logged decision: `allowed` or the reason code.
        public var was: String
        /// The new decision: `allowed` or the reason code.
        public var now: String
        public var count: Int
        /// A few request ids (`gatehouse explain` takes them).
        public var examples: [String]
    }

    /// Records that could not be re-evaluated for one reason.
    public struct Skipped: Sendable, Codable, Equatable {
        public var why: String
        public var count: Int
        public var examples: [String]
    }

    public var since: Double?
    public var until: Double?
    public var route: String?
    /// Records read.
    public var records = 0
    /// Records decided again (the others are in `notReevaluated`).
    public var reevaluated = 0
    public var unchanged = 0
    public var newlyDenied = 0
    public var newlyAllowed = 0
    public var changedReason = 0
    /// The changes, grouped, most records first.
    public var groups: [Group] = []
    public var notReevaluated: [Skipped] = []
    /// Records whose new decision is "allowed unless" a check that is not simulated: by check.
    public var allowedUnless: [String: Int] = [:]
    /// Records written before the call log kept `RequestFacts`: replayed without their TLS flag
    /// and the header fields checks read (as if sent over plain HTTP without them).
    public var withoutFacts = 0

    private var groupIndex: [String: Int] = [:]
    private var skipIndex: [String: Int] = [:]

    enum CodingKeys: String, CodingKey {
        case since, until, route, records, reevaluated, unchanged, newlyDenied = "newly_denied", newlyAllowed = "newly_allowed"
        case changedReason = "changed_reason", groups, notReevaluated = "not_reevaluated", allowedUnless = "allowed_unless"
        case withoutFacts = "without_request_facts"
    }

    public init(since: Double?, until: Double?, route: String?) {
        self.since = since
        self.until = until
        self.route = route
    }

    /// The number of records whose decision would change.
    public var changed: Int { newlyDenied + newlyAllowed + changedReason }

    mutating func skip(_ why: String, _ requestID: String) {
        if let i = skipIndex[why] {
            notReevaluated[i].count += 1
            if notReevaluated[i].examples.count < 3 { notReevaluated[i].examples.append(requestID) }
        } else {
            skipIndex[why] = notReevaluated.count
            notReevaluated.append(Skipped(why: why, count: 1, examples: [requestID]))
        }
    }

    mutating func add(was: Decision, now: Decision, route: String, requestID: String, examples: Int) {
        let change: Change
        switch (was, now) {
        case (.allowed, .allowed):
            unchanged += 1
            return
        case (.denied(let a), .denied(let b)) where a == b:
            unchanged += 1
            return
        case (.allowed, .denied):
            change = .newlyDenied
            newlyDenied += 1
        case (.denied, .allowed):
            change = .newlyAllowed
            newlyAllowed += 1
        case (.denied, .denied):
            change = .changedReason
            changedReason += 1
        }
        let key = "\(change.rawValue)\u{0}\(route)\u{0}\(was.text)\u{0}\(now.text)"
        if let i = groupIndex[key] {
            groups[i].count += 1
            if groups[i].examples.count < examples { groups[i].examples.append(requestID) }
        } else {
            groupIndex[key] = groups.count
            groups.append(Group(change: change, route: route, was: was.text, now: now.text, count: 1, examples: [requestID]))
        }
    }

    /// Orders the groups: by kind of change, then most records first, then route and reasons.
    mutating func finish() {
        groups.sort { a, b in
            if a.change != b.change { return a.change < b.change }
            if a.count != b.count { return a.count > b.count }
            return (a.route, a.was, a.now) < (b.route, b.was, b.now)
        }
        notReevaluated.sort { $0.count != $1.count ? $0.count > $1.count : $0.why < $1.why }
        groupIndex = [:]
        skipIndex = [:]
    }
}

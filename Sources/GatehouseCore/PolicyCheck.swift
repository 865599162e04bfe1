/// One access-policy check. Checks return a verdict and never throw; a check that cannot decide
/// (its key source is down, its store unreachable) denies with `check_unavailable`.
///
/// `evaluate` is synchronous on purpose: it runs on the connection's event loop for every request,
/// and a task hop per request would cost more than most checks. Checks whose inputs come from I/O
/// (the credential store, a JWKS URL) keep an in-memory snapshot refreshed in the background.
public protocol PolicyCheck: Sendable {
    /// Stable id: the policy's name in the configuration, e.g. "office-ip".
    var id: String { get }
    /// The check's type as configured, e.g. "ip", "api_key".
    var type: String { get }
    /// Whether the check needs the request body buffered (WAF, owner-from-body).
    var needsBody: Bool { get }
    /// Query parameters that carry credentials for this check; the call log redacts their values.
    var secretQueryParameters: [String] { get }
    /// Request fields that carry this check's credential and are removed before the request goes
    /// upstream (an upstream that does not need the key never sees it).
    var credentialFields: CredentialFields { get }
    func evaluate(_ request: inout PolicyRequest) -> Verdict
}

extension PolicyCheck {
    public var needsBody: Bool { false }
    public var secretQueryParameters: [String] { [] }
    public var credentialFields: CredentialFields { CredentialFields() }
}

/// Header fields and query parameters that carry a credential (see `PolicyCheck.credentialFields`).
public struct CredentialFields: Sendable, Equatable {
    /// Lowercased header names.
    public var headers: Set<String>
    /// Lowercased query parameter names.
    public var queryParameters: Set<String>
    public init(headers: Set<String> = [], queryParameters: Set<String> = []) {
        self.headers = headers
        self.queryParameters = queryParameters
    }
}

/// Whether a check's denials are enforced or only recorded.
public enum CheckMode: String, Sendable, Codable, CaseIterable {
    case enforce
    /// Evaluated, traced and counted, never enforced.
    case shadow
}

/// A check as placed on a route, with its mode.
public struct ChainLink: Sendable {
    public var check: any PolicyCheck
    public var mode: CheckMode
    public init(_ check: any PolicyCheck, mode: CheckMode = .enforce) {
        self.check = check
        self.mode = mode
    }
}

/// What one check did for one request.
public struct TraceEntry: Sendable, Equatable, Codable {
    public enum Outcome: String, Sendable, Codable {
        case allow, deny, skip
        /// A shadow check that would have denied; the request went on.
        case shadowDeny = "shadow_deny"
        /// Not evaluated because an earlier check denied.
        case notReached = "not_reached"
    }
    public var check: String
    public var type: String
    public var mode: CheckMode
    public var outcome: Outcome
    /// What it compared: the allow note, the skip reason, or the denial detail.
    public var note: String
    public var reason: ReasonCode?
    public var micros: Int

    public init(check: String, type: String, mode: CheckMode, outcome: Outcome, note: String, reason: ReasonCode? = nil, micros: Int) {
        self.check = check
        self.type = type
        self.mode = mode
        self.outcome = outcome
        self.note = note
        self.reason = reason
        self.micros = micros
    }
}

/// The full record of a chain evaluation.
public struct DecisionTrace: Sendable, Equatable, Codable {
    public var entries: [TraceEntry]
    public init(entries: [TraceEntry] = []) { self.entries = entries }
}

/// The result of evaluating a route's chain.
public struct ChainResult: Sendable {
    public var trace: DecisionTrace
    /// The enforced denial, if any.
    public var denial: Denial?
    /// Id of the check that denied, or that answered the request itself (`PolicyRequest.localAnswer`).
    public var decidingCheck: String?
    /// Denials shadow checks would have made.
    public var shadowDenials: [(check: String, denial: Denial)]
}

/// A monotonic clock in microseconds, for trace timings only.
public protocol MicroClock: Sendable {
    func micros() -> UInt64
}

/// The ordered checks of one route.
public struct PolicyChain: Sendable {
    public var links: [ChainLink]
    public let needsBody: Bool
    /// Lowercased query parameters that carry credentials for some check of the chain.
    public let secretQueryParameters: Set<String>
    /// Credential fields of the chain's checks, removed before the request goes upstream.
    public let credentialFields: CredentialFields

    /// Index of the first check that reads the body: the checks before it run as soon as the head
    /// has arrived, before any body is buffered (`evaluateHead`), so an unauthenticated client cannot
    /// make the gateway hold its body.
    public let firstBodyLink: Int?

    public init(_ links: [ChainLink]) {
        self.links = links
        self.firstBodyLink = links.firstIndex { $0.check.needsBody }
        self.needsBody = firstBodyLink != nil
        self.secretQueryParameters = Set(links.flatMap { $0.check.secretQueryParameters.map { $0.lowercased() } })
        var fields = CredentialFields()
        for link in links {
            let f = link.check.credentialFields
            fields.headers.formUnion(f.headers)
            fields.queryParameters.formUnion(f.queryParameters)
        }
        self.credentialFields = fields
    }

    /// Evaluates every check in order until an enforced denial; the rest are traced as not reached.
    public func evaluate(_ request: inout PolicyRequest, clock: (any MicroClock)? = nil) -> ChainResult {
        evaluate(&request, clock: clock, from: 0, prior: nil)
    }

    /// Evaluates the checks that need no body (those before the first body check). A result with
    /// neither a denial nor a local answer means: buffer the body, then `evaluateBody`.
    public func evaluateHead(_ request: inout PolicyRequest, clock: (any MicroClock)? = nil) -> ChainResult {
        evaluate(&request, clock: clock, from: 0, prior: nil, upTo: firstBodyLink ?? links.count)
    }

    /// Evaluates the rest of the chain once the body has arrived, continuing `head`'s trace.
    public func evaluateBody(_ request: inout PolicyRequest, after head: ChainResult, clock: (any MicroClock)? = nil) -> ChainResult {
        evaluate(&request, clock: clock, from: firstBodyLink ?? links.count, prior: head)
    }

    private func evaluate(
        _ request: inout PolicyRequest, clock: (any MicroClock)?, from: Int, prior: ChainResult?, upTo: Int? = nil
    ) -> ChainResult {
        var entries: [TraceEntry] = prior?.trace.entries ?? []
        entries.reserveCapacity(links.count)
        var shadow: [(String, Denial)] = prior?.shadowDenials ?? []
        var denial: Denial?
        var decider: String?
        var lastReading: UInt64?
        let end = upTo ?? links.count
        for index in from..<end {
            let link = links[index]
            if denial != nil {
                entries.append(
                    TraceEntry(check: link.check.id, type: link.check.type, mode: link.mode, outcome: .notReached, note: "", micros: 0))
                continue
            }
            // One clock reading per check: each check's end is the next one's start.
            let start = lastReading ?? clock?.micros() ?? 0
            // A shadow check never enforces, so a streamed-body limit it sets does not apply.
            let limitBefore = request.streamedBodyLimit
            let verdict = link.check.evaluate(&request)
            if link.mode == .shadow { request.streamedBodyLimit = limitBefore }
            let end = clock?.micros() ?? 0
            lastReading = end
            let micros = clock == nil ? 0 : Int(truncatingIfNeeded: end &- start)
            switch verdict {
            case .allow(let note):
                entries.append(
                    TraceEntry(
                        check: link.check.id, type: link.check.type, mode: link.mode, outcome: .allow, note: note ?? "", micros: micros))
                if request.localAnswer != nil {
                    // The check answered the request itself (e.g. a CORS preflight): later checks do not apply.
                    decider = link.check.id
                    for rest in links[(index + 1)...] {
                        entries.append(
                            TraceEntry(
                                check: rest.check.id, type: rest.check.type, mode: rest.mode, outcome: .notReached,
                                note: "the request was answered by \(link.check.id)", micros: 0))
                    }
                    return ChainResult(trace: DecisionTrace(entries: entries), denial: nil, decidingCheck: decider, shadowDenials: shadow)
                }
            case .skip(let why):
                entries.append(
                    TraceEntry(check: link.check.id, type: link.check.type, mode: link.mode, outcome: .skip, note: why, micros: micros))
            case .deny(let d):
                if link.mode == .shadow {
                    shadow.append((link.check.id, d))
                    entries.append(
                        TraceEntry(
                            check: link.check.id, type: link.check.type, mode: .shadow, outcome: .shadowDeny,
                            note: "shadow: would have denied: " + (d.operatorDetail.map { d.detail + " (" + $0 + ")" } ?? d.detail),
                            reason: d.code, micros: micros))
                } else {
                    denial = d
                    decider = link.check.id
                    entries.append(
                        TraceEntry(
                            check: link.check.id, type: link.check.type, mode: .enforce, outcome: .deny,
                            note: d.operatorDetail.map { d.detail + " (" + $0 + ")" } ?? d.detail,
                            reason: d.code, micros: micros))
                }
            }
        }
        if denial != nil, end < links.count {
            for link in links[end...] {
                entries.append(
                    TraceEntry(check: link.check.id, type: link.check.type, mode: link.mode, outcome: .notReached, note: "", micros: 0))
            }
        }
        return ChainResult(trace: DecisionTrace(entries: entries), denial: denial, decidingCheck: decider, shadowDenials: shadow)
    }
}

extension DecisionTrace {
    /// The trace as JSON, in the same shape as its `Codable` encoding, written without Foundation
    /// (the call-log writer encodes one per request).
    public var json: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128 + 128 * entries.count)
        appendJSON(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `json` to `bytes` (the call-log writer reuses one buffer for a whole batch).
    public func appendJSON(to bytes: inout [UInt8]) {
        func key(_ k: StaticString, _ bytes: inout [UInt8]) {
            k.withUTF8Buffer { bytes.append(contentsOf: $0) }
        }
        key(#"{"entries":["#, &bytes)
        for (i, e) in entries.enumerated() {
            key(i == 0 ? #"{"check":"# : #",{"check":"#, &bytes)
            JSONWriter.appendQuoted(e.check, to: &bytes)
            key(#","type":"#, &bytes)
            JSONWriter.appendQuoted(e.type, to: &bytes)
            key(#","mode":"#, &bytes)
            JSONWriter.appendQuoted(e.mode.rawValue, to: &bytes)
            key(#","outcome":"#, &bytes)
            JSONWriter.appendQuoted(e.outcome.rawValue, to: &bytes)
            key(#","note":"#, &bytes)
            JSONWriter.appendQuoted(e.note, to: &bytes)
            if let r = e.reason {
                key(#","reason":"#, &bytes)
                JSONWriter.appendQuoted(r.rawValue, to: &bytes)
            }
            key(#","micros":"#, &bytes)
            JSONWriter.appendInt(e.micros, to: &bytes)
            bytes.append(UInt8(ascii: "}"))
        }
        key("]}", &bytes)
    }
}

extension Array where Element == String {
    /// The list as a JSON array of strings.
    public var jsonArray: String {
        var bytes: [UInt8] = []
        appendJSONArray(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `jsonArray` to `bytes`.
    public func appendJSONArray(to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "["))
        for (i, s) in enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            JSONWriter.appendQuoted(s, to: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }
}

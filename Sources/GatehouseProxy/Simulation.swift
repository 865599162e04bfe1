import GatehouseConfig
import GatehouseCore
import GatehouseHTTP1
import GatehouseIdentity
import Synchronization

/// A request as `gatehouse simulate` describes it (or as replay rebuilds it from a call-log
/// record): what the gateway would have read from the connection and the request head.
public struct SimulatedRequest: Sendable {
    public var method: String
    /// The request target in origin form (`/v1/orders?x=1`).
    public var target: String
    /// The header fields, `Host` included, in order.
    public var headers: [HeaderField]
    /// The client's address (as the gateway resolves it: no `trusted_proxies` apply to it).
    public var client: IPAddress?
    /// The request arrived on the TLS listener.
    public var tls: Bool
    /// The client certificate the TLS listener verified (or refused, with why).
    public var peerIdentity: PeerIdentity?
    /// The body, for checks that read it; nil sends none.
    public var body: [UInt8]?
    public var requestID: String
    /// Seconds since 1970: the time expiry and time-window checks compare with.
    public var now: Double

    public init(
        method: String, target: String, headers: [HeaderField], client: IPAddress?, tls: Bool = false,
        peerIdentity: PeerIdentity? = nil, body: [UInt8]? = nil, requestID: String = "simulated", now: Double
    ) {
        self.method = method
        self.target = target
        self.headers = headers
        self.client = client
        self.tls = tls
        self.peerIdentity = peerIdentity
        self.body = body
        self.requestID = requestID
        self.now = now
    }
}

/// Who the caller is taken to be when authentication is not verified (`--as-consumer`, or a
/// replayed record, whose credential the call log never kept).
public struct AssumedIdentity: Sendable {
    /// The store consumer the request is treated as authenticated as; nil when there is none.
    public var consumer: ConsumerRecord?
    /// The key id (or other credential id) the record names; never a secret.
    public var keyID: String?
    /// How the identity was chosen, for the trace ("--as-consumer", "the logged principal").
    public var source: String
    /// Why there is no consumer, when there is none (for the trace and replay's report).
    public var missing: String?
    /// Denials an authentication check made in the logged call, by check id: replayed as they
    /// were (the credential that earned them is not in the log).
    public var loggedDenials: [String: Denial]
    /// The authentication types that verified the logged call's credential (`api_key`, …): a
    /// check of another type would have needed a credential the call may not have carried. Nil
    /// (`--as-consumer`): any type takes the identity.
    public var verifiedTypes: Set<String>?

    public init(
        consumer: ConsumerRecord?, keyID: String? = nil, source: String, missing: String? = nil, loggedDenials: [String: Denial] = [:],
        verifiedTypes: Set<String>? = nil
    ) {
        self.consumer = consumer
        self.keyID = keyID
        self.source = source
        self.missing = missing
        self.loggedDenials = loggedDenials
        self.verifiedTypes = verifiedTypes
    }
}

/// What a simulation found: the decision the gateway would make, and what it could not decide.
public struct SimulationResult: Sendable {
    /// `allowed` (forwarded upstream), `answered` (a check answered it, e.g. a CORS preflight),
    /// or `denied`.
    public enum Outcome: String, Sendable, Codable { case allowed, answered, denied }

    public var outcome: Outcome
    /// The status the gateway would send for a denial or a local answer; nil when forwarded
    /// (the upstream answers).
    public var status: Int?
    public var denial: Denial?
    public var decidingCheck: String?
    public var route: String?
    public var upstream: String?
    /// The canonical target the gateway would forward; nil when the target is refused.
    public var target: String?
    public var trace: DecisionTrace
    /// The principal the checks established (or were given).
    public var principal: Principal?
    /// Checks on the request's path that were not simulated (rate limits; in replay also the WAF
    /// and checks that read the body): each with why. Only checks the decision reached are listed.
    public var notSimulated: [(check: String, mode: CheckMode, why: String)]
    /// When the request is allowed: the enforced checks that were not simulated and could still
    /// deny it ("allowed unless per-consumer").
    public var allowedUnless: [String] {
        outcome == .denied ? [] : notSimulated.filter { $0.mode == .enforce }.map(\.check)
    }
    /// Set when the decision rests on something the simulation does not know (an authentication
    /// check reached without an assumed identity in replay, say): why.
    public var undetermined: String?
    /// Shadow checks that would have denied.
    public var shadowDenials: [(check: String, reason: ReasonCode)]
}

/// Evaluates described requests against a configuration with the gateway's own decision
/// (`Gatekeeper`), without any upstream: `gatehouse simulate`.
///
/// The configuration's checks run as they are built, with two kinds of stand-ins:
/// - checks whose answer depends on earlier traffic (`rate_limit`), and any other check
///   `notSimulated` names, are traced `skip` with "not simulated: why" and listed in the result;
/// - with `assumeIdentity`, authentication checks (`api_key`, `jwt`, `basic`, `mtls`) do not
///   verify a credential: the request is taken as authenticated as the identity given to
///   `evaluate` (its roles, scopes and tenant), and the trace says so. One that cannot take it
///   (no identity, or one verified by another type of credential) leaves the result
///   `undetermined`.
///
/// The assumed identity is held by the simulator for the length of one `evaluate`: one simulator
/// evaluates one request at a time (replay runs them in order).
public final class Simulator: Sendable {
    /// Check types not simulated by default, with why: their answer depends on earlier traffic.
    public static let statefulTypes: [String: String] = [
        "rate_limit": "rate limits count earlier traffic, which a simulation does not have"
    ]
    /// The types that authenticate a caller (stood in for with `assumeIdentity`).
    public static let authenticationTypes: Set<String> = ["api_key", "jwt", "basic", "mtls"]

    let state: RuntimeState
    let identity: IdentitySlot
    /// The checks not simulated (by id, with why) and the authentication stand-ins (by id).
    let notSimulatedIDs: [String: String]
    let standInIDs: Set<String>

    /// Why a check is not simulated by default: its type is in `statefulTypes`; nil otherwise.
    public static func stateful(_ check: any PolicyCheck) -> String? { statefulTypes[check.type] }

    /// - Parameters:
    ///   - config: the provisioned configuration (its checks built).
    ///   - notSimulated: why a check is not run, or nil to run it (`stateful` by default).
    ///   - assumeIdentity: stand in for authentication checks with the identity `evaluate` is given.
    public init(
        config: GatewayConfig, notSimulated: (any PolicyCheck) -> String? = Simulator.stateful, assumeIdentity: Bool
    ) {
        let slot = IdentitySlot()
        var skipped: [String: String] = [:]
        var standIns: Set<String> = []
        var config = config
        config.router = Router(
            routes: config.router.routes.map { route in
                let links = route.chain.links.map { link -> ChainLink in
                    let type = link.check.type
                    if let why = notSimulated(link.check) {
                        skipped[link.check.id] = why
                        return ChainLink(NotSimulatedCheck(id: link.check.id, type: type, why: why), mode: link.mode)
                    }
                    if assumeIdentity, Self.authenticationTypes.contains(type) {
                        standIns.insert(link.check.id)
                        return ChainLink(AssumedIdentityCheck(id: link.check.id, type: type, slot: slot), mode: link.mode)
                    }
                    return link
                }
                return CompiledRoute(
                    name: route.name, hosts: route.hosts, methods: route.methods, path: route.path, upstream: route.upstream,
                    chain: PolicyChain(links), exposure: route.exposure, explicitDetailed: route.explicitDetailed,
                    maxBufferedBody: route.maxBufferedBody, stripPrefix: route.stripPrefix)
            })
        state = RuntimeState(config: config, generation: 1)
        identity = slot
        notSimulatedIDs = skipped
        standInIDs = standIns
    }

    /// The route names of the configuration, in order.
    public var routeNames: [String] { state.config.router.routes.map(\.name) }

    /// Parses a request head the way the gateway does (the same parser): nil and why when the
    /// gateway would refuse to read it.
    static func head(_ r: SimulatedRequest) -> Result<RequestHead, HTTP1Error> {
        var text = "\(r.method) \(r.target) HTTP/1.1\r\n"
        for f in r.headers { text += "\(f.name): \(f.value)\r\n" }
        if let body = r.body, !r.headers.contains(where: { HeaderList.sameName($0.name, "content-length") }) {
            text += "Content-Length: \(body.count)\r\n"
        }
        text += "\r\n"
        var bytes = Array(text.utf8)
        guard bytes.count <= HTTP1Parse.maxHeadBytes else {
            return .failure(
                HTTP1Error(
                    kind: .headTooLarge,
                    description: "the request head is \(bytes.count) bytes, over the gateway's \(HTTP1Parse.maxHeadBytes)"))
        }
        do {
            return .success(try bytes.withUnsafeMutableBytes { try HTTP1Parse.request(UnsafeRawBufferPointer($0), length: $0.count) })
        } catch let e as HTTP1Error {
            return .failure(e)
        } catch {
            return .failure(.malformed("\(error)"))
        }
    }

    /// Checks that a request head parses as the gateway would parse it; the parser's reason when not.
    public static func validate(_ r: SimulatedRequest) -> String? {
        if case .failure(let e) = head(r) { return e.description }
        return nil
    }

    /// Decides `request` as the gateway would, with `identity` standing in for authentication
    /// (when the simulator was made with `assumeIdentity`).
    public func evaluate(_ request: SimulatedRequest, identity assumed: AssumedIdentity? = nil) -> SimulationResult {
        let head: RequestHead
        switch Self.head(request) {
        case .success(let h): head = h
        case .failure(let e):
            // The gateway answers a head it cannot read with 400 (431 when too large) before any route.
            let denial = Denial(
                code: e.kind == .headTooLarge ? .headersTooLarge : .badRequest, detail: "the request head cannot be read: \(e.description)")
            return SimulationResult(
                outcome: .denied, status: denial.status, denial: denial, decidingCheck: nil, route: nil, upstream: nil, target: nil,
                trace: DecisionTrace(), principal: nil, notSimulated: [], undetermined: nil, shadowDenials: [])
        }
        identity.set(assumed)
        defer { identity.set(nil) }
        let gatekeeper = Gatekeeper(state: state, clock: nil)
        var decision = gatekeeper.decide(
            head, requestID: request.requestID,
            connection: .init(peer: request.client, peerTrusted: false, isTLS: request.tls, identity: request.peerIdentity),
            now: request.now)
        if case .bufferBody = decision.action, let route = decision.route, let before = decision.headResult {
            var withBody = decision.request
            withBody.body = request.body ?? []
            decision = gatekeeper.decideBody(withBody, route: route, after: before, target: decision.target)
        }
        return result(decision, assumed: assumed)
    }

    func result(_ d: Gatekeeper.Decision, assumed: AssumedIdentity?) -> SimulationResult {
        var outcome = SimulationResult.Outcome.allowed
        var status: Int?
        var denial: Denial?
        var upstream: String?
        switch d.action {
        case .deny(let x):
            outcome = .denied
            denial = x
            status = x.status
        case .answer(let a):
            outcome = .answered
            status = a.status
        case .forward(let u, _):
            upstream = u
        case .bufferBody:
            // Not reached: `evaluate` always decides the body.
            break
        }
        var skipped: [(String, CheckMode, String)] = []
        for e in d.trace.entries where e.outcome == .skip {
            if let why = notSimulatedIDs[e.check] { skipped.append((e.check, e.mode, why)) }
        }
        var undetermined: String?
        if let check = d.decidingCheck, let denial, standInIDs.contains(check), denial.code == AssumedIdentityCheck.noIdentity {
            undetermined = String(denial.detail.dropFirst(AssumedIdentityCheck.prefix.count))
        }
        return SimulationResult(
            outcome: outcome, status: status, denial: denial, decidingCheck: d.decidingCheck, route: d.route?.name, upstream: upstream,
            target: d.target, trace: d.trace, principal: d.request.principal, notSimulated: skipped, undetermined: undetermined,
            shadowDenials: d.shadowDenials.map { ($0.check, $0.denial.code) })
    }
}

/// The identity the stand-in authentication checks read, set around each evaluation.
final class IdentitySlot: Sendable {
    private let value = Mutex<AssumedIdentity?>(nil)
    func set(_ identity: AssumedIdentity?) { value.withLock { $0 = identity } }
    func get() -> AssumedIdentity? { value.withLock { $0 } }
}

/// Stands in for a check whose answer depends on earlier traffic: traced as a skip that says so.
struct NotSimulatedCheck: PolicyCheck {
    let id: String
    let type: String
    let why: String
    func evaluate(_ request: inout PolicyRequest) -> Verdict { .skip(why: "not simulated: " + why) }
}

/// Stands in for an authentication check: the caller is taken to be the assumed identity's
/// consumer, without verifying a credential. A denial the logged call got from this check is
/// replayed as it was; with neither, the check cannot decide (`noIdentity`).
struct AssumedIdentityCheck: PolicyCheck {
    /// The reason a stand-in gives when it has no identity to assume; the simulator reports the
    /// decision as undetermined, never as this denial.
    static let noIdentity: ReasonCode = "simulation_no_identity"
    static let prefix = "not simulated: "

    let id: String
    let type: String
    let slot: IdentitySlot

    func evaluate(_ request: inout PolicyRequest) -> Verdict {
        let assumed = slot.get()
        if let logged = assumed?.loggedDenials[id] {
            var d = logged
            d.detail += " (replayed from the call log: the credential itself is never logged)"
            return .deny(d)
        }
        guard let assumed else { return undecided("no identity to assume") }
        if let verified = assumed.verifiedTypes, !verified.isEmpty, !verified.contains(type) {
            return undecided("the logged call authenticated with \(verified.sorted().joined(separator: " and ")), not \(type)")
        }
        guard let consumer = assumed.consumer else { return undecided(assumed.missing ?? "no identity to assume") }
        if consumer.status != "active" {
            return .deny(
                Denial(
                    code: .consumerSuspended, detail: "consumer \(consumer.name) is \(consumer.status)",
                    required: ["an active consumer"], presented: ["consumer \(consumer.name)"]))
        }
        var principal = Principal(
            method: type, consumerID: consumer.id, consumerName: consumer.name, keyID: assumed.keyID, subject: consumer.name,
            scopes: consumer.scopes, roles: consumer.roles, tenant: consumer.tenant)
        if let existing = request.principal {
            var merged = existing
            merged.merge(principal)
            principal = merged
        }
        request.principal = principal
        return .allow(
            note:
                "not verified (\(assumed.source)): taken as consumer \(consumer.name) with roles [\(consumer.roles.joined(separator: ", "))], scopes [\(consumer.scopes.joined(separator: ", "))], tenant \(consumer.tenant ?? "none")"
        )
    }

    /// The stand-in cannot decide: `why` becomes the simulation's `undetermined`.
    func undecided(_ why: String) -> Verdict {
        .deny(Denial(code: Self.noIdentity, status: 401, detail: Self.prefix + why, required: ["a credential for \(type)"]))
    }
}

import GatehouseConfig
import GatehouseCore
import GatehouseIdentity
import GatehouseStore
import Testing

@testable import GatehouseProxy

/// `LogReplay` on single records: what it re-decides, and what it reports as not re-evaluated
/// rather than guess.
@Suite struct LogReplayTests {
    struct Directory: CredentialDirectory {
        func key(id: String) -> KeyRecord? { nil }
        func consumer(id: String) -> ConsumerRecord? { nil }
        var isAvailable: Bool { true }
    }

    static func replay(_ yaml: String, consumers: [ConsumerRecord] = []) throws -> LogReplay {
        let config = try ConfigLoader.parse(
            yaml: """
                upstreams:
                  up: { targets: ["http://127.0.0.1:9"] }
                """ + "\n" + yaml, file: "new.yaml", context: BuildContext(directory: Directory(), baseDirectory: "/tmp"))
        return LogReplay(config: config, consumers: consumers)
    }

    static func record(
        _ id: String, route: String = "r", consumer: String? = nil, reason: String? = nil, check: String? = nil, trace: [TraceEntry] = []
    ) -> CallRecord {
        CallRecord(
            requestID: id, time: 1_700_000_000, route: route, consumer: consumer, keyID: nil, client: "10.0.0.1", method: "GET",
            path: "/r", host: "api.example", status: reason == nil ? 200 : 403, upstreamMillis: nil, totalMillis: 1, decidingCheck: check,
            reason: reason, detail: nil, hint: nil, required: [], presented: [], trace: DecisionTrace(entries: trace), upstreamTarget: nil,
            facts: RequestFacts(tls: false))
    }

    @Test func aCallARateLimitDeniedIsNotReEvaluatedWhenTheSameLimitIsReached() throws {
        let replay = try Self.replay(
            """
            routes:
              - { name: r, match: { path: /r }, upstream: up, policies: [per-ip] }
            policies:
              per-ip: { type: rate_limit, key: ip, rate: 10/minute, burst: 1 }
            """)
        var report = ReplayReport(since: nil, until: nil, route: nil)
        let trace = [
            TraceEntry(check: "per-ip", type: "rate_limit", mode: .enforce, outcome: .deny, note: "", reason: .rateLimited, micros: 1)
        ]
        replay.replay(Self.record("limited", reason: "rate_limited", check: "per-ip", trace: trace), into: &report)
        replay.replay(Self.record("passed"), into: &report)
        #expect(report.reevaluated == 1)
        #expect(report.unchanged == 1)
        #expect(report.allowedUnless == ["per-ip": 1])
        #expect(report.notReevaluated.map(\.count) == [1])
        #expect(report.notReevaluated.first?.why.contains("per-ip is not simulated") == true)
        #expect(report.notReevaluated.first?.examples == ["limited"])
    }

    @Test func aRateLimitRemovedAllowsWhatItDenied() throws {
        let replay = try Self.replay(
            """
            routes:
              - { name: r, match: { path: /r }, upstream: up, policies: [] }
            """)
        var report = ReplayReport(since: nil, until: nil, route: nil)
        let trace = [
            TraceEntry(check: "per-ip", type: "rate_limit", mode: .enforce, outcome: .deny, note: "", reason: .rateLimited, micros: 1)
        ]
        replay.replay(Self.record("limited", reason: "rate_limited", check: "per-ip", trace: trace), into: &report)
        #expect(report.newlyAllowed == 1)
        #expect(report.groups.first?.was == "rate_limited")
    }

    @Test func aTokensSubjectIsNotTakenForAStoreConsumerOfTheSameName() throws {
        let alice = ConsumerRecord(id: "c1", name: "alice", roles: ["admin"])
        let byToken = try Self.replay(
            """
            routes:
              - { name: r, match: { path: /r }, upstream: up, policies: [bearer, admins] }
            policies:
              bearer: { type: jwt, jwks_file: keys.json, algorithms: [RS256] }
              admins: { type: roles, any_of: [admin] }
            """, consumers: [alice])
        let byKey = try Self.replay(
            """
            routes:
              - { name: r, match: { path: /r }, upstream: up, policies: [api-key, admins] }
            policies:
              api-key: { type: api_key, header: X-API-Key }
              admins: { type: roles, any_of: [admin] }
            """, consumers: [alice])
        var report = ReplayReport(since: nil, until: nil, route: nil)
        let token = [TraceEntry(check: "bearer", type: "jwt", mode: .enforce, outcome: .allow, note: "token verified", micros: 1)]
        let key = [
            TraceEntry(check: "api-key", type: "api_key", mode: .enforce, outcome: .allow, note: "key k of consumer alice", micros: 1)
        ]
        byToken.replay(Self.record("by-token", consumer: "alice", trace: token), into: &report)
        byKey.replay(Self.record("by-key", consumer: "alice", trace: key), into: &report)
        byKey.replay(Self.record("by-gone-key", consumer: "bob", trace: key), into: &report)
        #expect(report.reevaluated == 1)
        #expect(report.unchanged == 1)
        #expect(
            Set(report.notReevaluated.map(\.why)) == [
                "authentication check bearer is reached; the logged principal came from a token (check bearer), whose claims are not logged",
                "authentication check api-key is reached; the logged principal is no longer a consumer in the store",
            ])
    }

    @Test func aCheckOfAnotherAuthenticationTypeIsNotGivenTheLoggedPrincipal() throws {
        // The call carried an API key; a route that now wants Basic credentials would need a
        // password the call may never have sent.
        let replay = try Self.replay(
            """
            routes:
              - { name: r, match: { path: /r }, upstream: up, policies: [login] }
            policies:
              login: { type: basic }
            """, consumers: [ConsumerRecord(id: "c1", name: "alice")])
        var report = ReplayReport(since: nil, until: nil, route: nil)
        let key = [
            TraceEntry(check: "api-key", type: "api_key", mode: .enforce, outcome: .allow, note: "key k of consumer alice", micros: 1)
        ]
        replay.replay(Self.record("by-key", consumer: "alice", trace: key), into: &report)
        #expect(report.reevaluated == 0)
        #expect(
            report.notReevaluated.map(\.why) == [
                "authentication check login is reached; the logged call authenticated with api_key, not basic"
            ])
    }

    @Test func aDenialTheLoggedCredentialEarnedIsReplayed() throws {
        let replay = try Self.replay(
            """
            routes:
              - { name: r, match: { path: /r }, upstream: up, policies: [api-key] }
            policies:
              api-key: { type: api_key, header: X-API-Key }
            """)
        var report = ReplayReport(since: nil, until: nil, route: nil)
        let trace = [
            TraceEntry(
                check: "api-key", type: "api_key", mode: .enforce, outcome: .deny, note: "key k was revoked", reason: .revokedCredentials,
                micros: 1)
        ]
        replay.replay(Self.record("revoked", reason: "revoked_credentials", check: "api-key", trace: trace), into: &report)
        #expect(report.reevaluated == 1)
        #expect(report.unchanged == 1)
    }

    @Test func aCallCutShortBeforeItsDecisionIsNotReEvaluated() throws {
        let replay = try Self.replay(
            """
            routes:
              - { name: r, match: { path: /r }, upstream: up, policies: [] }
            """)
        var report = ReplayReport(since: nil, until: nil, route: nil)
        var noHead = Self.record("no-head", reason: "request_timeout")
        noHead.method = "-"
        replay.replay(noHead, into: &report)
        replay.replay(Self.record("timed-out", reason: "request_timeout"), into: &report)
        replay.replay(Self.record("upstream-down", reason: "upstream_unavailable"), into: &report)
        #expect(report.records == 3)
        #expect(report.reevaluated == 1)
        #expect(report.unchanged == 1)
        #expect(report.notReevaluated.count == 2)
    }

    /// What the log cannot show is never decided on: a csrf check reading cookies, a record whose
    /// fields were cut, a gateway refusal of a body's size.
    @Test func whatTheLogDoesNotKeepIsReportedNotGuessed() throws {
        let replay = try Self.replay(
            """
            routes:
              - { name: r, match: { path: /r }, upstream: up, policies: [csrf] }
            policies:
              csrf: { type: csrf, session_cookie: sid }
            """)
        var report = ReplayReport(since: nil, until: nil, route: nil)
        replay.replay(Self.record("plain"), into: &report)
        var cut = Self.record("cut")
        cut.facts = RequestFacts(tls: false, headers: [], cut: true)
        replay.replay(cut, into: &report)
        replay.replay(Self.record("too-big", reason: "body_too_large"), into: &report)
        #expect(report.records == 3)
        #expect(report.reevaluated == 1)
        #expect(report.allowedUnless == ["csrf": 1])
        let why = report.notReevaluated.map(\.why).joined(separator: "\n")
        #expect(why.contains("cut or left out"))
        #expect(why.contains("body_too_large"))
    }
}

import GatehouseChecks
import GatehouseConfig
import GatehouseCore
import GatehouseIdentity
import Testing

@testable import GatehouseHTTP1
@testable import GatehouseProxy

/// `Gatekeeper.decide` without sockets: a configuration, a head, a decision.
@Suite struct GatekeeperTests {
    struct Directory: CredentialDirectory {
        var keys: [String: KeyRecord] = [:]
        var consumers: [String: ConsumerRecord] = [:]
        func key(id: String) -> KeyRecord? { keys[id] }
        func consumer(id: String) -> ConsumerRecord? { consumers[id] }
        var isAvailable: Bool { true }
    }

    static let yaml = """
        trusted_proxies: [10.9.0.0/16]
        upstreams:
          orders: { targets: ["http://127.0.0.1:9000"] }
          admin: { targets: ["http://127.0.0.1:9001"] }
        routes:
          - name: orders
            match: { methods: [GET, POST], path: "/orders/{id}" }
            upstream: orders
            policies: [api-key, { policy: office-ip, mode: shadow }]
          - name: admin
            match: { host: admin.example.com, methods: [GET], path: "/admin/{rest*}" }
            upstream: admin
            policies: [office-ip]
          - name: notes
            match: { methods: [POST], path: "/notes" }
            upstream: orders
            max_body_buffer: 1KiB
            policies: [api-key, waf]
          - name: browser
            match: { methods: [GET], path: "/app" }
            upstream: orders
            policies: [site-cors]
        policies:
          api-key: { type: api_key, header: X-API-Key }
          office-ip: { type: ip, allow: [192.168.0.0/16] }
          waf: { type: waf, paranoia: 1 }
          site-cors: { type: cors, origins: ["https://app.example.com"], methods: [GET] }
        """

    let key: String
    let state: RuntimeState

    init() throws {
        let (key, id) = APIKeyFormat.generate()
        self.key = key
        var directory = Directory()
        directory.consumers["c1"] = ConsumerRecord(id: "c1", name: "acme", status: "active", tenant: "t1", roles: [], scopes: [])
        directory.keys[id] = KeyRecord(
            keyID: id, consumerID: "c1", hash: APIKeyFormat.hash(key), createdAt: 0, expiresAt: nil, revokedAt: nil)
        let config = try ConfigLoader.parse(
            yaml: Self.yaml, file: "t.yaml", context: BuildContext(directory: directory, baseDirectory: "/tmp"))
        state = RuntimeState(config: config, generation: 1)
    }

    func head(
        _ method: String, _ uri: String, _ fields: [(String, String)] = [], host: String = "api.example.com",
        framing: BodyFraming = .none
    ) -> RequestHead {
        RequestHead(
            method: method, uri: uri, minor: 1, headers: [HeaderField("Host", host)] + fields.map { HeaderField($0.0, $0.1) },
            framing: framing, keepAlive: true, expectContinue: false, connectionNames: [])
    }

    func decide(_ h: RequestHead, peer: String = "127.0.0.1", trusted: Bool = false) -> Gatekeeper.Decision {
        Gatekeeper(state: state, clock: nil).decide(
            h, requestID: "req-1", connection: .init(peer: IPAddress(peer), peerTrusted: trusted, isTLS: false, identity: nil),
            now: 1_700_000_000)
    }

    func reason(_ d: Gatekeeper.Decision) -> ReasonCode? {
        if case .deny(let denial) = d.action { return denial.code }
        return nil
    }

    @Test func aKnownKeyIsForwardedWithItsConsumer() {
        let d = decide(head("GET", "/orders/7", [("X-API-Key", key)]))
        guard case .forward(let upstream, let limit) = d.action else { Issue.record("not forwarded: \(d.action)"); return }
        #expect(upstream == "orders")
        #expect(limit == nil)
        #expect(d.target == "/orders/7")
        #expect(d.route?.name == "orders")
        #expect(d.request.principal?.consumerName == "acme")
        #expect(d.request.pathParams["id"] == "7")
        #expect(d.trace.entries.map(\.check) == ["api-key", "office-ip"])
        // The shadow check would have refused 127.0.0.1: counted, not enforced.
        #expect(d.shadowDenials.map(\.check) == ["office-ip"])
        #expect(d.shadowDenials.first?.denial.code == .ipNotAllowed)
    }

    @Test func aMissingKeyIsRefusedByTheCheckThatWantsIt() {
        let d = decide(head("GET", "/orders/7"))
        #expect(reason(d) == .missingCredentials)
        #expect(d.decidingCheck == "api-key")
        #expect(d.route?.name == "orders")
        #expect(d.trace.entries.map(\.outcome) == [.deny, .notReached])
    }

    @Test func theTargetIsDecidedInItsCanonicalForm() {
        let d = decide(head("GET", "/public/../orders/./9?x=1", [("X-API-Key", key)]))
        #expect(d.target == "/orders/9?x=1")
        #expect(d.request.path == "/orders/9")
        #expect(d.request.query == "x=1")
        #expect(d.route?.name == "orders")
    }

    @Test(arguments: ["/orders/a%2Fb", "/orders/1#x", "/orders\\1", "/../../etc/passwd", "orders/1"])
    func targetsBackEndsReadDifferentlyAreRefused(_ uri: String) {
        let d = decide(head("GET", uri, [("X-API-Key", key)]))
        #expect(reason(d) == .badRequest)
        #expect(d.target == nil)
        #expect(d.route == nil)
        #expect(d.decidingCheck == nil)
    }

    @Test(arguments: ["a@b", "a/b", "a:80:x", "a%2Eb", "[zz]", "a:123456"])
    func hostFieldsThatAreNotHostsAreRefused(_ host: String) {
        #expect(reason(decide(head("GET", "/orders/1", [("X-API-Key", key)], host: host))) == .badRequest)
    }

    @Test func theHostIsLowercasedWithoutItsTrailingDot() {
        let d = decide(head("GET", "/admin/users", host: "Admin.Example.COM.:8080"), peer: "192.168.1.5")
        #expect(d.request.host == "admin.example.com")
        #expect(d.route?.name == "admin")
        if case .forward(let upstream, _) = d.action { #expect(upstream == "admin") } else { Issue.record("\(d.action)") }
        #expect(reason(decide(head("GET", "/admin/users", host: "admin.example.com."), peer: "203.0.113.9")) == .ipNotAllowed)
    }

    @Test func unroutedRequestsAreRefusedWithTheRoutesThatExist() {
        #expect(reason(decide(head("GET", "/nowhere"))) == .routeNotFound)
        let d = decide(head("DELETE", "/orders/1"))
        #expect(reason(d) == .methodNotAllowed)
        if case .deny(let denial) = d.action {
            #expect(denial.headers.contains(HeaderField("Allow", "GET, POST")))
        }
    }

    @Test func forwardedForCountsOnlyFromATrustedProxy() {
        let fields = [("X-Forwarded-For", "192.168.7.7")]
        #expect(reason(decide(head("GET", "/admin/x", fields, host: "admin.example.com"), peer: "203.0.113.9")) == .ipNotAllowed)
        let viaProxy = decide(head("GET", "/admin/x", fields, host: "admin.example.com"), peer: "10.9.1.1", trusted: true)
        #expect(viaProxy.request.clientAddress == IPAddress("192.168.7.7"))
        if case .forward = viaProxy.action {} else { Issue.record("\(viaProxy.action)") }
    }

    @Test func aBodyCheckMakesTheGatewayReadTheBodyFirstOnlyForAcceptedCallers() {
        // Refused by the head checks: no body is read.
        #expect(reason(decide(head("POST", "/notes", [("Content-Type", "application/json")], framing: .length(20)))) == .missingCredentials)
        // Declared larger than the route inspects: refused before reading it.
        let large = decide(head("POST", "/notes", [("X-API-Key", key)], framing: .length(5000)))
        #expect(reason(large) == .bodyTooLarge)
        #expect(large.decidingCheck == nil)

        let first = decide(head("POST", "/notes", [("X-API-Key", key), ("Content-Type", "application/json")], framing: .length(20)))
        guard case .bufferBody(let maxBytes) = first.action, let route = first.route, let before = first.headResult else {
            Issue.record("not buffered: \(first.action)")
            return
        }
        #expect(maxBytes == 1024)
        let gatekeeper = Gatekeeper(state: state, clock: nil)
        var clean = first.request
        clean.body = Array(#"{"note":"hello"}"#.utf8)
        let allowed = gatekeeper.decideBody(clean, route: route, after: before, target: first.target)
        if case .forward = allowed.action {} else { Issue.record("\(allowed.action)") }
        #expect(allowed.trace.entries.map(\.check) == ["api-key", "waf"])
        var attack = first.request
        attack.body = Array(#"{"note":"1' OR '1'='1' UNION SELECT password FROM users--"}"#.utf8)
        let refused = gatekeeper.decideBody(attack, route: route, after: before, target: first.target)
        #expect(reason(refused) != nil)
        #expect(refused.decidingCheck == "waf")
    }

    @Test func aPreflightIsAnsweredByTheRouteItAnnouncesOnlyWhenThatRouteAnswersPreflights() {
        let preflight = [("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "GET")]
        let answered = decide(head("OPTIONS", "/app", preflight))
        guard case .answer(let answer) = answered.action else { Issue.record("\(answered.action)"); return }
        #expect(answer.status == 204)
        #expect(answered.decidingCheck == "site-cors")
        // `orders` has no cors check: the preflight is routed as the OPTIONS request it is.
        #expect(reason(decide(head("OPTIONS", "/orders/1", preflight))) == .methodNotAllowed)
    }
}

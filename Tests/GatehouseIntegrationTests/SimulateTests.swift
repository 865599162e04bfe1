import AsyncHTTPClient
import Foundation
import GatehouseCore
import GatehouseProxy
import GatehouseServer
import GatehouseStore
import GatehouseTestSupport
import GatehouseTesting
import NIOHTTP1
import Testing

/// `gatehouse simulate`: one described request decided against a configuration file and the
/// store, and `--replay-log`: a logged period re-decided against a changed configuration.
@Suite struct SimulateTests {
    static let yaml = """
        store: { sqlite: gatehouse.db }
        upstreams:
          orders: { targets: ["http://127.0.0.1:9"] }
        routes:
          - name: orders
            match: { methods: [GET, POST], path: "/v1/orders" }
            upstream: orders
            policies: [office-ip, api-key, orders-read, per-consumer]
        policies:
          office-ip: { type: ip, allow: [203.0.113.0/24, 127.0.0.1/32] }
          api-key: { type: api_key, header: X-API-Key }
          orders-read: { type: scopes, require: [orders:read] }
          per-consumer: { type: rate_limit, key: consumer, rate: 100/minute, burst: 20 }
        """

    /// A configuration file and a store with consumers alice (orders:read) and bob (no scopes).
    struct Setup {
        let dir: TempDir
        let config: String
        let aliceKey: String
        init() throws {
            dir = try TempDir()
            config = try dir.write("gatehouse.yaml", SimulateTests.yaml)
            let store = try SQLiteStore(path: dir.path + "/gatehouse.db")
            try store.createConsumer(name: "alice", scopes: ["orders:read"])
            try store.createConsumer(name: "bob")
            aliceKey = try store.createKey(consumer: "alice").key
        }
        func simulate(_ args: [String]) throws -> CommandResult {
            try gatehouse(["simulate", "-c", config] + args)
        }
        func json(_ args: [String]) throws -> (status: Int32, body: [String: Any]) {
            let r = try simulate(args + ["--json"])
            let body = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
            return (r.status, body)
        }
    }

    @Test func aRequestWithAValidKeyIsAllowedUnlessTheRateLimitDenies() throws {
        let s = try Setup()
        let (status, body) = try s.json([
            "GET", "https://api.example/v1/orders?x=1", "-H", "X-API-Key: \(s.aliceKey)", "--client", "203.0.113.7",
        ])
        #expect(status == 0)
        #expect(body["decision"] as? String == "allowed")
        #expect(body["allowed_unless"] as? [String] == ["per-consumer"])
        #expect(body["route"] as? String == "orders")
        #expect(body["upstream"] as? String == "orders")
        #expect(body["target"] as? String == "/v1/orders?x=1")
        #expect(body["tls"] as? Bool == true)
        let principal = body["principal"] as? [String: Any]
        #expect(principal?["consumer"] as? String == "alice")
        #expect(principal?["verified"] as? Bool == true)
        let trace = body["trace"] as? [[String: Any]] ?? []
        #expect(trace.map { $0["outcome"] as? String } == ["allow", "allow", "allow", "skip"])
        // The text form says the same, like `explain`.
        let text = try s.simulate(["GET", "https://api.example/v1/orders?x=1", "-H", "X-API-Key: \(s.aliceKey)", "--client", "203.0.113.7"])
        #expect(text.status == 0)
        #expect(text.stdout.contains("Simulated request: ALLOWED unless per-consumer (not simulated)"))
        #expect(text.stdout.contains("Checks, in order:"))
        #expect(text.stdout.contains("upstream orders (not contacted)"))
    }

    @Test func aClientOutsideTheAllowListIsDeniedByTheIPRule() throws {
        let s = try Setup()
        let (status, body) = try s.json([
            "GET", "https://api.example/v1/orders", "-H", "X-API-Key: \(s.aliceKey)", "--client", "198.51.100.9",
        ])
        #expect(status == 1)
        #expect(body["decision"] as? String == "denied")
        #expect(body["status"] as? Int == 403)
        #expect(body["reason"] as? String == "ip_not_allowed")
        #expect(body["check"] as? String == "office-ip")
        #expect(body["presented"] as? [String] == ["198.51.100.9"])
        #expect(body["required"] as? [String] == ["203.0.113.0/24", "127.0.0.1/32"])
        // Nothing after the denial ran, so nothing was left unsimulated.
        #expect((body["not_simulated"] as? [Any])?.isEmpty == true)
        let text = try s.simulate(["GET", "https://api.example/v1/orders", "--client", "198.51.100.9"])
        #expect(text.status == 1)
        #expect(text.stdout.contains("DENIED 403 ip_not_allowed"))
        #expect(text.stdout.contains("Decided by: check office-ip"))
        #expect(text.stdout.contains("Required: 203.0.113.0/24, 127.0.0.1/32"))
        #expect(text.stdout.contains("Fix (for the caller):"))
    }

    @Test func asConsumerSkipsTheCredentialAndUsesTheConsumersScopes() throws {
        let s = try Setup()
        let (status, body) = try s.json(["GET", "/v1/orders", "--as-consumer", "bob"])
        #expect(status == 1)
        #expect(body["reason"] as? String == "insufficient_scope")
        #expect(body["check"] as? String == "orders-read")
        #expect(body["required"] as? [String] == ["orders:read"])
        let principal = body["principal"] as? [String: Any]
        #expect(principal?["consumer"] as? String == "bob")
        #expect(principal?["verified"] as? Bool == false)
        let trace = body["trace"] as? [[String: Any]] ?? []
        #expect(trace.count == 4)
        #expect((trace[1]["note"] as? String)?.contains("not verified (--as-consumer): taken as consumer bob") == true)
        // alice holds the scope: allowed, with no key sent at all.
        let alice = try s.json(["POST", "/v1/orders", "--as-consumer", "alice"])
        #expect(alice.status == 0)
        #expect(alice.body["decision"] as? String == "allowed")
    }

    @Test func theRateLimitIsReportedAsNotSimulated() throws {
        let s = try Setup()
        let (_, body) = try s.json(["GET", "/v1/orders", "--as-consumer", "alice"])
        let skipped = body["not_simulated"] as? [[String: Any]] ?? []
        #expect(skipped.count == 1)
        #expect(skipped.first?["check"] as? String == "per-consumer")
        #expect((skipped.first?["why"] as? String)?.contains("earlier traffic") == true)
        let trace = body["trace"] as? [[String: Any]] ?? []
        #expect(trace.last?["check"] as? String == "per-consumer")
        #expect(trace.last?["outcome"] as? String == "skip")
        #expect((trace.last?["note"] as? String)?.hasPrefix("not simulated:") == true)
    }

    @Test func badInputIsAnErrorNamingWhatWasExpected() throws {
        let s = try Setup()
        let cases: [([String], String)] = [
            (["GET", "ftp://api.example/x"], "is not an http(s) URL with a host"),
            (["GET", "/v1/orders", "-H", "NoColon"], "a header is 'Name: value'"),
            (["GET", "/v1/orders", "-H", "Bad Name: x"], "is not a token"),
            (["GET", "/v1/orders", "--client", "1.2.3"], "--client \"1.2.3\" is not an IP address"),
            (["GET", "/v1/orders", "--as-consumer", "carol"], "--as-consumer \"carol\": no consumer of that name"),
            (["get", "/v1/orders"], "is not an uppercase method name"),
            (["GET", "/v1/or ders"], "a space"),
            (["GET"], "give a method and a URL"),
        ]
        for (args, message) in cases {
            let r = try s.simulate(args)
            #expect(r.status == 2, "\(args)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
        let dir = try TempDir()
        let broken = try dir.write("broken.yaml", "routes: 7\n")
        let r = try gatehouse(["simulate", "-c", broken, "GET", "/x"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("broken.yaml:1:"))
    }
}

/// `simulate --replay-log` on 10,000 calls logged by a live gateway, against a tightened
/// configuration: the report must match, group for group, what the test expects of each request
/// under both configurations.
@Suite struct ReplayLogTests {
    static let before = """
        trusted_proxies: [127.0.0.1/32]
        upstreams:
          demo: { targets: ["http://127.0.0.1:PORT"] }
        routes:
          - { name: orders, match: { methods: [GET, POST], path: /orders }, upstream: demo, policies: [office-ip, api-key, orders-read] }
          - { name: reports, match: { methods: [GET], path: /reports }, upstream: demo, policies: [api-key] }
          - { name: public, match: { methods: [GET], path: /public }, upstream: demo, policies: [] }
          - { name: admin, match: { methods: [GET], path: /admin }, upstream: demo, policies: [api-key, admins] }
          - { name: browser, match: { methods: [GET], path: /browser }, upstream: demo, policies: [] }
          - { name: open, match: { methods: [GET], path: /open }, upstream: demo, policies: [] }
        policies:
          office-ip: { type: ip, allow: [10.0.0.0/8] }
          api-key: { type: api_key, header: X-API-Key }
          orders-read: { type: scopes, require: [orders:read] }
          admins: { type: roles, any_of: [admin] }
        """

    /// Tightened: a narrower office network, GET only on orders, a scope on reports, a rate limit
    /// on public (not simulated), CORS on browser, a key on open; looser: admin needs no role.
    static let after = """
        listen: 127.0.0.1:0
        store: { sqlite: gatehouse.db }
        trusted_proxies: [127.0.0.1/32]
        upstreams:
          demo: { targets: ["http://127.0.0.1:PORT"] }
        routes:
          - { name: orders, match: { methods: [GET], path: /orders }, upstream: demo, policies: [office-ip, api-key, orders-read] }
          - { name: reports, match: { methods: [GET], path: /reports }, upstream: demo, policies: [api-key, reports-read] }
          - { name: public, match: { methods: [GET], path: /public }, upstream: demo, policies: [per-ip] }
          - { name: admin, match: { methods: [GET], path: /admin }, upstream: demo, policies: [api-key] }
          - { name: browser, match: { methods: [GET], path: /browser }, upstream: demo, policies: [site-cors] }
          - { name: open, match: { methods: [GET], path: /open }, upstream: demo, policies: [api-key] }
        policies:
          office-ip: { type: ip, allow: [10.1.0.0/16] }
          api-key: { type: api_key, header: X-API-Key }
          orders-read: { type: scopes, require: [orders:read] }
          reports-read: { type: scopes, require: [reports:read] }
          per-ip: { type: rate_limit, key: ip, rate: 1000/minute, burst: 100 }
          site-cors: { type: cors, origins: ["https://app.example"], methods: [GET] }
        """

    struct Consumer {
        var name: String
        var scopes: [String]
        var roles: [String]
    }
    static let consumers = [
        Consumer(name: "alice", scopes: ["orders:read", "reports:read"], roles: ["admin"]),
        Consumer(name: "bob", scopes: ["orders:read"], roles: []),
        Consumer(name: "carol", scopes: [], roles: []),
    ]
    static let clients = ["10.1.2.3", "10.2.3.4", "192.168.1.1"]
    static let origins: [String?] = [nil, "https://app.example", "https://evil.example"]

    /// One generated request.
    struct Call {
        var method: String
        var path: String
        var client: String
        /// Index into `consumers`; nil sends no key.
        var consumer: Int?
        var origin: String?

        init(_ i: Int) {
            let kinds = [
                ("GET", "/orders"), ("POST", "/orders"), ("GET", "/reports"), ("GET", "/public"), ("GET", "/admin"), ("GET", "/browser"),
                ("GET", "/open"),
            ]
            (method, path) = kinds[i % 7]
            client = ReplayLogTests.clients[(i / 7) % 3]
            let c = (i / 21) % 4
            consumer = c < 3 ? c : nil
            origin = path == "/browser" ? ReplayLogTests.origins[(i / 84) % 3] : nil
        }

        var scopes: [String] { consumer.map { ReplayLogTests.consumers[$0].scopes } ?? [] }
        var roles: [String] { consumer.map { ReplayLogTests.consumers[$0].roles } ?? [] }

        /// The decision under `before`: "allowed" or the reason.
        var before: String {
            switch path {
            case "/orders":
                if !client.hasPrefix("10.") { return "ip_not_allowed" }
                if consumer == nil { return "missing_credentials" }
                return scopes.contains("orders:read") ? "allowed" : "insufficient_scope"
            case "/reports":
                return consumer == nil ? "missing_credentials" : "allowed"
            case "/admin":
                if consumer == nil { return "missing_credentials" }
                return roles.contains("admin") ? "allowed" : "missing_role"
            default:
                return "allowed"
            }
        }

        /// The decision under `after`; nil when it cannot be re-evaluated (a key check on a route
        /// whose calls were logged with no principal).
        var after: String? {
            switch path {
            case "/orders":
                if method == "POST" { return "method_not_allowed" }
                if !client.hasPrefix("10.1.") { return "ip_not_allowed" }
                if consumer == nil { return "missing_credentials" }
                return scopes.contains("orders:read") ? "allowed" : "insufficient_scope"
            case "/reports":
                if consumer == nil { return "missing_credentials" }
                return scopes.contains("reports:read") ? "allowed" : "insufficient_scope"
            case "/admin":
                return consumer == nil ? "missing_credentials" : "allowed"
            case "/browser":
                return origin == "https://evil.example" ? "cors_origin_not_allowed" : "allowed"
            case "/open":
                return nil
            default:
                return "allowed"
            }
        }
    }

    @Test func replayReportsExactlyTheChangedDecisionsOfTenThousandCalls() async throws {
        let dir = try TempDir()
        let upstream = try await DemoUpstream(port: 0)
        let port = upstream.port
        let store = try SQLiteStore(path: dir.path + "/gatehouse.db")
        let keys = try Self.consumers.map { c in
            try store.createConsumer(name: c.name, roles: c.roles, scopes: c.scopes)
            return try store.createKey(consumer: c.name).key
        }
        let gateway = try await InProcessGateway(
            yaml: Self.before.replacingOccurrences(of: "PORT", with: "\(port)"), directory: dir.path)

        // 10,000 calls, eight at a time; each answer is checked against the model of `before`.
        let total = 10_000
        let results = try await withThrowingTaskGroup(of: [(Int, String, String?)].self) { group in
            for worker in 0..<8 {
                group.addTask {
                    var out: [(Int, String, String?)] = []
                    for i in stride(from: worker, to: total, by: 8) {
                        let call = Call(i)
                        var headers = [("X-Forwarded-For", call.client)]
                        if let c = call.consumer { headers.append(("X-API-Key", keys[c])) }
                        if let o = call.origin { headers.append(("Origin", o)) }
                        let reply = try await send(
                            call.method == "POST" ? .POST : .GET, gateway.url + call.path, headers: headers,
                            body: call.method == "POST" ? "{}" : nil)
                        out.append((i, reply.requestID, reply.status < 400 ? nil : reply.json["reason"] as? String))
                    }
                    return out
                }
            }
            var all: [(Int, String, String?)] = []
            for try await part in group { all += part }
            return all
        }
        #expect(results.count == total)
        var requestIDs = [String](repeating: "", count: total)
        var mismatches = 0
        for (i, id, reason) in results {
            requestIDs[i] = id
            if (reason ?? "allowed") != Call(i).before { mismatches += 1 }
        }
        #expect(mismatches == 0, "answers that differ from the model of the configuration they were sent to")
        await gateway.gateway.callLog.flush()
        #expect(try gateway.gateway.store.callCount() == total)
        gateway.stop()
        await upstream.stop()

        // What the report must say, computed per request.
        struct Key: Hashable {
            var change: String
            var route: String
            var was: String
            var now: String
        }
        var expected: [Key: Set<String>] = [:]
        var unchanged = 0, skipped = 0, allowedUnless = 0
        for i in 0..<total {
            let call = Call(i)
            guard let now = call.after else { skipped += 1; continue }
            let was = call.before
            if call.path == "/public" { allowedUnless += 1 }
            if was == now { unchanged += 1; continue }
            let change = was == "allowed" ? "newly_denied" : now == "allowed" ? "newly_allowed" : "changed_reason"
            expected[Key(change: change, route: String(call.path.dropFirst()), was: was, now: now), default: []].insert(requestIDs[i])
        }

        let newConfig = try dir.write("after.yaml", Self.after.replacingOccurrences(of: "PORT", with: "\(port)"))
        let r = try gatehouse(["simulate", "--replay-log", "--since", "1h", "-c", newConfig, "--json"])
        #expect(r.status == 1, "exit 1: some decisions change. \(r.stderr)")
        let report = try JSONDecoder().decode(ReplayReport.self, from: Data(r.stdout.utf8))
        #expect(report.records == total)
        #expect(report.reevaluated == total - skipped)
        #expect(report.unchanged == unchanged)
        #expect(report.withoutFacts == 0)
        #expect(report.allowedUnless == ["per-ip": allowedUnless])
        #expect(report.notReevaluated.count == 1)
        #expect(report.notReevaluated.first?.count == skipped)
        #expect(report.notReevaluated.first?.why.contains("authentication check api-key is reached") == true)
        var got: [Key: Int] = [:]
        for g in report.groups {
            let key = Key(change: g.change.rawValue, route: g.route, was: g.was, now: g.now)
            got[key] = g.count
            let ids = expected[key] ?? []
            #expect(!g.examples.isEmpty && g.examples.count <= 3)
            #expect(g.examples.allSatisfy { ids.contains($0) }, "examples of \(key) belong to it")
        }
        #expect(got == expected.mapValues(\.count))
        #expect(report.newlyDenied == expected.filter { $0.key.change == "newly_denied" }.values.reduce(0) { $0 + $1.count })
        #expect(report.newlyAllowed == expected.filter { $0.key.change == "newly_allowed" }.values.reduce(0) { $0 + $1.count })
        #expect(report.changedReason == expected.filter { $0.key.change == "changed_reason" }.values.reduce(0) { $0 + $1.count })
        // Every kind of change occurs in this mix.
        #expect(report.newlyDenied > 0 && report.newlyAllowed > 0 && report.changedReason > 0)

        // The text report names the same groups.
        let text = try gatehouse(["simulate", "--replay-log", "-c", newConfig])
        #expect(text.status == 1)
        #expect(text.stdout.contains("Newly denied:"))
        #expect(text.stdout.contains("route orders: method_not_allowed"))
        #expect(text.stdout.contains("Authentication is replayed as the logged principal"))
        // A period with no records changes nothing.
        let empty = try gatehouse(["simulate", "--replay-log", "--since", "1h", "--until", "59m", "-c", newConfig, "--json"])
        let none = try JSONDecoder().decode(ReplayReport.self, from: Data(empty.stdout.utf8))
        #expect(empty.status == 0)
        #expect(none.records == 0)
    }

    @Test func theGatewayLogsTheFieldsReplayReadsAndNoCredential() async throws {
        let dir = try TempDir()
        let upstream = try await DemoUpstream(port: 0)
        let store = try SQLiteStore(path: dir.path + "/gatehouse.db")
        try store.createConsumer(name: "alice")
        let key = try store.createKey(consumer: "alice").key
        let gateway = try await InProcessGateway(
            yaml: Self.before.replacingOccurrences(of: "PORT", with: "\(upstream.port)"), directory: dir.path)
        let reply = try await send(
            .GET, gateway.url + "/reports",
            headers: [
                ("X-API-Key", key), ("Origin", "https://app.example"), ("Authorization", "Bearer secret-token"),
                ("Referer", "https://app.example/page?session=secret"), ("Cookie", "sid=secret"),
            ])
        #expect(reply.status == 200)
        let record = try await gateway.records(reply.requestID).first
        gateway.stop()
        await upstream.stop()
        #expect(record?.consumer == "alice")
        #expect(record?.facts?.tls == false)
        #expect(
            record?.facts?.headers == [HeaderField("origin", "https://app.example"), HeaderField("referer", "https://app.example")])
        let stored = try String(data: JSONEncoder().encode(record), encoding: .utf8) ?? ""
        #expect(!stored.contains("secret") && !stored.contains(key))
    }

    @Test func recordsWithoutRequestFactsAreCountedAndReplayedWithoutThem() throws {
        // A record as the call log wrote it before it kept `facts`: an Origin is unknown, so the
        // CORS check sees none.
        let dir = try TempDir()
        let store = try SQLiteStore(path: dir.path + "/gatehouse.db")
        let record = CallRecord(
            requestID: "old-1", time: Date().timeIntervalSince1970 - 60, route: "browser", consumer: nil, keyID: nil, client: "10.1.2.3",
            method: "GET", path: "/browser", host: "127.0.0.1", status: 200, upstreamMillis: 1, totalMillis: 2, decidingCheck: nil,
            reason: nil, detail: nil, hint: nil, required: [], presented: [], trace: .init(), upstreamTarget: "127.0.0.1:1")
        _ = try store.insertCalls([record])
        let config = try dir.write("after.yaml", Self.after.replacingOccurrences(of: "PORT", with: "1"))
        let r = try gatehouse(["simulate", "--replay-log", "-c", config, "--json"])
        let report = try JSONDecoder().decode(ReplayReport.self, from: Data(r.stdout.utf8))
        #expect(r.status == 0)
        #expect(report.records == 1)
        #expect(report.unchanged == 1)
        #expect(report.withoutFacts == 1)
        let text = try gatehouse(["simulate", "--replay-log", "-c", config])
        #expect(text.stdout.contains("1 record was written before the call log kept the request's TLS flag"))
    }
}

import Foundation
import GatehouseChecks
import GatehouseConfig
import GatehouseCore
import GatehouseIdentity
import Testing

struct NoDirectory: CredentialDirectory {
    func key(id: String) -> KeyRecord? { nil }
    func consumer(id: String) -> ConsumerRecord? { nil }
    var isAvailable: Bool { true }
}

func load(_ yaml: String) throws -> GatewayConfig {
    try ConfigLoader.parse(yaml: yaml, file: "t.yaml", context: BuildContext(directory: NoDirectory(), baseDirectory: "/tmp"))
}

func issues(_ yaml: String) -> [String] {
    do {
        _ = try load(yaml)
        return []
    } catch let e as ConfigError {
        return e.issues.map(\.description)
    } catch {
        return ["\(error)"]
    }
}

@Suite struct ConfigTests {
    let base = "upstreams:\n  app: { targets: [\"http://127.0.0.1:9000\"] }\n"

    @Test func everyProblemIsReportedWithItsPosition() {
        let found = issues(
            base + """
                routes:
                  - match: { path: orders, methods: [GET] }
                    upstream: ap
                    policies: [ofice]
                    exposure: loud
                policies:
                  office: { type: ipp }
                """)
        #expect(found.contains("t.yaml:4:20: routes[0].match.path: \"orders\" is not a path template (it must start with /)"))
        #expect(found.contains("t.yaml:5:15: routes[0].upstream: unknown upstream \"ap\" (defined: app); did you mean \"app\"?"))
        #expect(found.contains("t.yaml:6:16: routes[0].policies[0]: unknown policy \"ofice\" (defined: office); did you mean \"office\"?"))
        #expect(found.contains("t.yaml:7:15: routes[0].exposure: \"loud\" is not valid (expected one of: detailed, minimal)"))
        #expect(
            found.contains {
                $0.hasPrefix("t.yaml:9:19: policies.office.type: unknown policy type \"ipp\"") && $0.hasSuffix("did you mean \"ip\"?")
            })
    }

    @Test func rateCountsAreBounded() {
        let found = issues(
            base + """
                routes:
                  - match: { path: /a }
                    upstream: app
                    policies: [rl]
                policies:
                  rl: { type: rate_limit, key: ip, rate: 200000000000000000/second }
                """)
        #expect(found.contains { $0.contains("policies.rl.rate") && $0.contains("at most 10000000") }, "\(found)")
    }

    /// Reading a configuration (`gatehouse check`) builds no check and fetches no keys;
    /// provisioning it to serve builds each route's checks and starts loading their keys at once.
    @Test func readingBuildsNothingAndProvisioningLoadsKeys() async throws {
        let dir = NSTemporaryDirectory() + "gatehouse-keys-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"keys": []}"#.write(toFile: dir + "/keys.json", atomically: true, encoding: .utf8)
        let yaml =
            base + """
                routes:
                  - name: a
                    match: { path: /a }
                    upstream: app
                    policies: [token, { policy: office, mode: shadow }]
                policies:
                  token: { type: jwt, jwks_file: keys.json, algorithms: [RS256] }
                  office: { type: ip, allow: [10.0.0.0/8] }
                """
        let document = try ConfigLoader.read(yaml: yaml, file: dir + "/t.yaml", baseDirectory: dir)
        #expect(document.settings.router.routes.isEmpty)
        #expect(document.routes.map(\.name) == ["a"])
        #expect(document.routes.first?.policies.map(\.policy) == ["token", "office"])
        #expect(document.routes.first?.policies.map(\.mode) == [.enforce, .shadow])
        #expect(document.settings.storePath == dir + "/gatehouse.db")
        let config = document.provision(BuildContext(directory: NoDirectory(), baseDirectory: document.baseDirectory))
        let chain = try #require(config.router.routes.first?.chain)
        #expect(chain.links.map(\.check.id) == ["token", "office"])
        let keys = try #require(chain.links.first?.check as? JWTCheck).keys
        for _ in 0..<100 where keys.snapshot().lastError == nil && !keys.snapshot().loaded {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(keys.snapshot().loaded || keys.snapshot().lastError != nil, "the provisioned configuration's keys were never read")
    }

    @Test func syntaxErrorsHavePositions() {
        let found = issues("routes: [\n  - a: b\n")
        #expect(found.count == 1)
        #expect(found[0].hasPrefix("t.yaml:"))
        #expect(found[0].contains("YAML syntax error"))
    }

    @Test func routerPrefersTheMostSpecificRouteAnd405ListsMethods() throws {
        let c = try load(
            base + """
                routes:
                  - name: any-order
                    match: { path: "/orders/{id}", methods: [GET] }
                    upstream: app
                  - name: special
                    match: { path: /orders/special, methods: [GET] }
                    upstream: app
                  - name: writes
                    match: { path: "/orders/{id}", methods: [PUT] }
                    upstream: app
                  - name: files
                    match: { path: "/files/{rest*}" }
                    upstream: app
                  - name: on-host
                    match: { host: "*.example.com", path: "/orders/{id}", methods: [GET] }
                    upstream: app
                """)
        func name(_ host: String, _ m: String, _ p: String) -> String {
            switch c.router.route(host: host, method: m, path: Substring(p)) {
            case .matched(let r, _): return r.name
            case .methodNotAllowed(let allowed, _): return "405 " + allowed.joined(separator: ",")
            case .notFound: return "404"
            }
        }
        #expect(name("h", "GET", "/orders/special") == "special")
        #expect(name("h", "GET", "/orders/7") == "any-order")
        #expect(name("api.example.com", "GET", "/orders/7") == "on-host")
        #expect(name("example.com", "GET", "/orders/7") == "any-order")
        #expect(name("h", "PUT", "/orders/7") == "writes")
        #expect(name("h", "DELETE", "/orders/7") == "405 GET,PUT")
        #expect(name("h", "GET", "/files/a/b/c") == "files")
        #expect(name("h", "GET", "/nothing") == "404")
        if case .matched(_, let params) = c.router.route(host: "h", method: "GET", path: "/orders/a%20b") {
            #expect(params["id"] == "a b")
        }
    }

    @Test func shadowModeFromPolicyOrRoute() throws {
        let c = try load(
            base + """
                routes:
                  - match: { path: /a }
                    upstream: app
                    policies: [net, { policy: net2, mode: enforce }, { policy: net, mode: shadow }]
                policies:
                  net: { type: ip, allow: [10.0.0.0/8] }
                  net2: { type: ip, allow: [10.0.0.0/8], mode: shadow }
                """)
        #expect(c.router.routes[0].chain.links.map(\.mode) == [.enforce, .enforce, .shadow])
    }
}

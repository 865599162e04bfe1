import GatehouseChecks
import GatehouseConfig
import Testing

/// `console:`: the operator console's settings, with the defaults when absent.
@Suite struct ConsoleConfigTests {
    let base = "upstreams:\n  app: { targets: [\"http://127.0.0.1:9000\"] }\nroutes:\n  - match: { path: /a }\n    upstream: app\n"

    @Test func theDefaultsHoldWithoutABlock() throws {
        let c = try load(base).console
        #expect(c == ConsoleSettings())
        #expect(c.idleTimeout == 1800 && c.lifetime == 43200 && c.signInPerName == 5 && c.signInPerAddress == 20)
        #expect(c.trustedOrigins.isEmpty)
    }

    @Test func everySettingIsRead() throws {
        let c = try load(
            base + """
                console:
                  trusted_origins: ["https://gatehouse.example"]
                  idle_timeout: 10m
                  lifetime: 8h
                  sign_in_per_name: 3
                  sign_in_per_address: 50
                """
        ).console
        #expect(c.trustedOrigins.map(\.description) == ["https://gatehouse.example"])
        #expect(c.idleTimeout == 600 && c.lifetime == 8 * 3600 && c.signInPerName == 3 && c.signInPerAddress == 50)
    }

    @Test func mistakesAreNamed() {
        let found = issues(
            base + """
                console:
                  trusted_origins: ["not an origin"]
                  idle_timeout: forever
                  sign_in_per_name: 0
                  remember_me: true
                """)
        #expect(found.count == 4, "\(found)")
        #expect(found.contains { $0.contains("idle_timeout") || $0.contains("forever") })
        #expect(found.contains { $0.contains("sign_in_per_name") })
        #expect(found.contains { $0.contains("remember_me") })
    }

    /// `portal: { listen: HOST:PORT }`: the developer portal's own listener; none without it.
    @Test func thePortalListenerIsReadAndItsMistakesNamed() throws {
        #expect(try load(base).portal == nil)
        let p = try load(base + "portal: { listen: 0.0.0.0:9902 }\n").portal
        #expect(p?.listen.description == "0.0.0.0:9902")
        #expect(issues(base + "portal: { listen: nowhere }\n").contains { $0.contains("not a listen address") })
        #expect(issues(base + "portal: {}\n").contains { $0.contains("listen") })
        #expect(issues(base + "portal: { listen: 127.0.0.1:9902, tls: on }\n").contains { $0.contains("tls") })
    }
}

import GatehouseConfig
import Testing

/// The `subscription` policy type: its one key, and its place after authentication.
@Suite struct SubscriptionConfigTests {
    let base = "upstreams:\n  app: { targets: [\"http://127.0.0.1:9000\"] }\n"

    @Test func aSubscriptionNamesItsServiceAndFollowsAnAuthenticatingPolicy() throws {
        let ok =
            base + """
                routes:
                  - match: { path: /pay }
                    upstream: app
                    policies: [key, payments]
                policies:
                  key: { type: api_key }
                  payments: { type: subscription, service: payments }
                """
        #expect(issues(ok) == [])
        let first =
            base + """
                routes:
                  - match: { path: /pay }
                    upstream: app
                    policies: [payments, key]
                policies:
                  key: { type: api_key }
                  payments: { type: subscription, service: payments }
                """
        let found = issues(first)
        #expect(found.count == 1)
        #expect(found.first?.contains("t.yaml:6:") == true, "\(found)")
        #expect(found.first?.contains("needs the calling application identified first") == true)
        let noService =
            base + """
                routes:
                  - match: { path: /pay }
                    upstream: app
                    policies: [key, payments]
                policies:
                  key: { type: api_key }
                  payments: { type: subscription }
                """
        #expect(issues(noService).contains { $0.contains("service") })
    }
}

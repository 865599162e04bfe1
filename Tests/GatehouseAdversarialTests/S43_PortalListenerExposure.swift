import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S43: a developer given the portal's address probes it for the operator's endpoints: `/status`
/// (config path, route names, node id, store errors), `/metrics`, the admin API (Basic guesses),
/// the console's sign-in. The portal has a listener of its own (`portal: { listen: … }`) that
/// answers 404 to all of them, and the admin listener no longer serves the portal.
@Suite(.serialized) struct S43_PortalListenerExposure {
    @Test func thePortalListenerAnswersNothingButThePortal() async throws {
        let gateway = try GatewayProcess(
            yaml: """
                admin: 127.0.0.1:0
                portal: { listen: 127.0.0.1:0 }
                upstreams:
                  app: { targets: ["http://127.0.0.1:1"] }
                routes:
                  - name: secret-route-name
                    match: { path: /open }
                    upstream: app
                """)
        defer { _ = gateway.stop() }
        let portal = "http://127.0.0.1:\(try #require(gateway.portalPort))"
        let admin = "http://127.0.0.1:\(try #require(gateway.adminPort))"
        #expect(gateway.portalPort != gateway.adminPort)

        for path in ["/status", "/metrics", "/healthz", "/admin/v1/whoami", "/admin/v1/openapi.json", "/console/", "/console/sign-in"] {
            let r = try await send(.GET, portal + path, headers: [("Authorization", "Basic cm9vdDpndWVzcw==")])
            #expect(r.status == 404, "\(path) on the portal listener: \(r.status)")
            #expect(!r.body.contains("secret-route-name") && !r.body.contains("gatehouse.yaml"), "\(path) leaks")
        }
        let posted = try await send(
            .POST, portal + "/admin/v1/admin-users", headers: [("Content-Type", "application/json")], body: #"{"name": "x"}"#)
        #expect(posted.status == 404)

        // The portal itself is there, with its own assets.
        let signIn = try await send(.GET, portal + "/portal/sign-in")
        #expect(signIn.status == 200 && signIn.body.contains("action=\"/portal/sign-in\""))
        #expect(signIn.body.contains("/portal/static/console-") && !signIn.body.contains("/console/"))

        // The operator's listener has no portal: nothing there for a developer to be sent to.
        #expect(try await send(.GET, admin + "/portal/sign-in").status == 404)
        #expect(try await send(.GET, admin + "/status").status == 200)
    }
}

import Foundation
import GatehouseConfig
import Testing

/// `store: { postgres, node }` and the cluster scope of `rate_limit`: each mistake is an error at
/// its place in the file.
@Suite struct ClusterConfigTests {
    let routes = """
        upstreams:
          app: { targets: ["http://127.0.0.1:9000"] }
        routes:
          - match: { path: /a }
            upstream: app
            policies: [limit]

        """

    @Test func aClusterLimitNeedsTheClusterStore() {
        let standalone = routes + "policies:\n  limit: { type: rate_limit, rate: 10/second, scope: cluster }\n"
        let found = issues(standalone)
        #expect(found.count == 1)
        #expect(found.first?.contains("policies.limit.scope: scope: cluster shares counters through the cluster store") == true, "\(found)")
        let clustered = "store: { postgres: \"postgres://gatehouse@db.internal/gatehouse\", node: gw-1 }\n" + standalone
        #expect(issues(clustered) == [])
    }

    @Test func clusterOnlySettingsAreRefusedElsewhere() {
        let store = "store: { postgres: \"postgres://gatehouse@db.internal/gatehouse\" }\n"
        let ban =
            store + routes
            + "policies:\n  limit: { type: rate_limit, rate: 10/second, scope: cluster, ban: { violations: 3, within: 1m, for: 5m } }\n"
        #expect(issues(ban).first?.contains("ban is counted per node") == true, "\(issues(ban))")
        let mode = routes + "policies:\n  limit: { type: rate_limit, rate: 10/second, on_store_error: deny }\n"
        #expect(issues(mode).first?.contains("on_store_error applies to scope: cluster") == true, "\(issues(mode))")
        let node = "store: { sqlite: a.db, node: gw-1 }\n" + routes + "policies:\n  limit: { type: rate_limit, rate: 10/second }\n"
        #expect(issues(node).first?.contains("store.node names this node in a cluster: it needs store.postgres") == true)
        let url = "store: { postgres: \"mysql://db/x\" }\n" + routes + "policies:\n  limit: { type: rate_limit, rate: 10/second }\n"
        #expect(issues(url).first?.contains("store.postgres is not a postgres:// URL") == true)
        let badID =
            store.replacingOccurrences(of: " }", with: ", node: \"gw 1\" }") + routes
            + "policies:\n  limit: { type: rate_limit, rate: 10/second }\n"
        #expect(issues(badID).first?.contains("store.node \"gw 1\" is invalid") == true, "\(issues(badID))")
    }
}

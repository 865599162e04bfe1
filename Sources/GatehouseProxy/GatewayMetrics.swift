import GatehouseCore
import NIOConcurrencyHelpers
import NIOCore

/// Request and shadow-denial counters, exposed in Prometheus text format on the admin listener.
/// Label values are route names, statuses, check ids and reason codes — never request data.
final class GatewayMetrics: Sendable {
    struct RequestKey: Hashable { var route: String; var status: Int; var reason: String }
    struct ShadowKey: Hashable { var route: String; var check: String; var reason: String }

    /// What the data plane reports for each request it answered (`GatewayHandler.log`).
    struct RequestSample {
        var route: String?
        var status: Int
        /// Set when the request was denied.
        var reason: ReasonCode?
        /// The check that denied it (nil when allowed, or denied before any check ran).
        var check: String?
        /// From the head's arrival to the response's end.
        var totalNanos: UInt64
        /// From the request's first byte upstream to the response's end (nil: never forwarded).
        var upstreamNanos: UInt64?
        /// How long a new upstream connection took to open (nil: a pooled one was reused).
        var connectNanos: UInt64?
    }

    /// Request counters, one shard per event loop: each loop counts under its own lock, so the
    /// loops never contend; `/metrics` sums the shards.
    final class RequestCounts: Sendable {
        struct Counts {
            var settled: [RequestKey: Int] = [:]
            /// The last key counted and how many times in a row: consecutive requests mostly share
            /// route, status and reason, so most counts cost a comparison instead of hashing.
            var last: RequestKey?
            var run = 0

            mutating func settle() {
                if let last, run > 0 { settled[last, default: 0] += run }
                run = 0
            }
        }
        fileprivate let counts = NIOLockedValueBox(Counts())

        /// One answered request, as the data plane saw it.
        func record(_ s: RequestSample) {
            count(route: s.route, status: s.status, reason: s.reason)
        }

        func count(route: String?, status: Int, reason: ReasonCode?) {
            counts.withLockedValue { c in
                if let l = c.last, l.status == status, l.route == (route ?? ""), l.reason == (reason?.rawValue ?? "") {
                    c.run += 1
                    return
                }
                c.settle()
                c.last = RequestKey(route: route ?? "", status: status, reason: reason?.rawValue ?? "")
                c.run = 1
            }
        }

        fileprivate var snapshot: [RequestKey: Int] {
            counts.withLockedValue { c in
                c.settle()
                return c.settled
            }
        }
    }

    private let shards = NIOLockedValueBox<[ObjectIdentifier: RequestCounts]>([:])
    private let shadow = NIOLockedValueBox<[ShadowKey: Int]>([:])

    /// The counters of one event loop (looked up once per connection).
    func requestCounts(for loop: any EventLoop) -> RequestCounts {
        shards.withLockedValue { shards in
            if let s = shards[ObjectIdentifier(loop)] { return s }
            let s = RequestCounts()
            shards[ObjectIdentifier(loop)] = s
            return s
        }
    }

    private var requests: [RequestKey: Int] {
        var total: [RequestKey: Int] = [:]
        for shard in shards.withLockedValue({ Array($0.values) }) {
            for (k, v) in shard.snapshot { total[k, default: 0] += v }
        }
        return total
    }

    func countShadowDenial(route: String, check: String, reason: ReasonCode) {
        shadow.withLockedValue { $0[ShadowKey(route: route, check: check, reason: reason.rawValue), default: 0] += 1 }
    }

    func prometheus(callLogWritten: Int, callLogDropped: Int, configGeneration: Int) -> String {
        var out = "# HELP gatehouse_requests_total Requests answered, by route, status and reason code.\n# TYPE gatehouse_requests_total counter\n"
        for (k, v) in requests.sorted(by: { ($0.key.route, $0.key.status, $0.key.reason) < ($1.key.route, $1.key.status, $1.key.reason) }) {
            out += "gatehouse_requests_total{route=\"\(escape(k.route))\",status=\"\(k.status)\",reason=\"\(escape(k.reason))\"} \(v)\n"
        }
        out += "# HELP gatehouse_shadow_denials_total Denials shadow-mode checks would have made.\n# TYPE gatehouse_shadow_denials_total counter\n"
        for (k, v) in shadow.withLockedValue({ $0 }).sorted(by: { ($0.key.route, $0.key.check, $0.key.reason) < ($1.key.route, $1.key.check, $1.key.reason) }) {
            out += "gatehouse_shadow_denials_total{route=\"\(escape(k.route))\",check=\"\(escape(k.check))\",reason=\"\(escape(k.reason))\"} \(v)\n"
        }
        out += "# HELP gatehouse_calllog_written_total Call-log records written to the store.\n# TYPE gatehouse_calllog_written_total counter\n"
        out += "gatehouse_calllog_written_total \(callLogWritten)\n"
        out += "# HELP gatehouse_calllog_dropped_total Call-log records dropped because the store fell behind.\n# TYPE gatehouse_calllog_dropped_total counter\n"
        out += "gatehouse_calllog_dropped_total \(callLogDropped)\n"
        out += "# HELP gatehouse_config_generation Configuration generation (1 at start, +1 per successful reload).\n# TYPE gatehouse_config_generation gauge\n"
        out += "gatehouse_config_generation \(configGeneration)\n"
        return out
    }

    private func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}

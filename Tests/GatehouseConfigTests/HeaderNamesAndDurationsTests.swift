import GatehouseConfig
import Testing

/// `untrusted_headers:` names in either spelling, and the ranges of timeouts and durations.
@Suite struct HeaderNamesAndDurationsTests {
    let base = "upstreams:\n  app: { targets: [\"http://127.0.0.1:9000\"] }\nroutes:\n  - match: { path: /x }\n    upstream: app\n"

    // MARK: Header names

    @Test func keepAndAddTakeEitherSpelling() throws {
        for keep in ["X_Real_IP", "x-real-ip", "X-REAL_IP"] {
            let c = try load(base + "untrusted_headers: { keep: [\(keep)] }\n")
            #expect(!c.untrustedHeaders.contains(fieldName: "X-Real-IP"), "keep: [\(keep)]")
            #expect(!c.untrustedHeaders.contains(fieldName: "x_real_ip"), "keep: [\(keep)]")
            #expect(c.untrustedHeaders.contains(fieldName: "X-Forwarded-For"))
            #expect(!c.untrustedHeaders.names.contains("x-real-ip") && !c.untrustedHeaders.names.contains("x_real_ip"))
        }
        let added = try load(base + "untrusted_headers: { add: [X_Tenant_Id] }\n")
        #expect(added.untrustedHeaders.names.contains("x-tenant-id"))
        for field in ["X-Tenant-Id", "x_tenant_id", "X_TENANT-ID"] { #expect(added.untrustedHeaders.contains(fieldName: field)) }
        let listed = try load(base + "untrusted_headers: [X_Only_This]\n")
        #expect(listed.untrustedHeaders.names == ["x-only-this"])
        #expect(listed.untrustedHeaders.contains(fieldName: "x-only-this"))
        #expect(!listed.untrustedHeaders.contains(fieldName: "X-Forwarded-For"))
    }

    @Test func aNameStartingWithAnUnderscoreOrHyphenMatchesBothSpellings() {
        for configured in ["_Internal-User", "-internal_user", "_internal_user"] {
            let set = HeaderNameSet([configured])
            for field in ["_Internal-User", "-internal-user", "_INTERNAL_USER", "-Internal_User"] {
                #expect(set.contains(fieldName: field), "\(configured) vs \(field)")
            }
            #expect(!set.contains(fieldName: "internal-user"))
            #expect(!set.contains(fieldName: "_internal-users"))
            #expect(!set.contains(fieldName: "_"))
        }
        // Bytes that share the first-letter bit with `-` or `_` are still told apart by the set.
        let set = HeaderNameSet(["_a", "x-y"])
        #expect(set.contains(fieldName: "-A"))
        #expect(!set.contains(fieldName: "\u{1F}a"))
        #expect(!set.contains(fieldName: "Ma"))
    }

    @Test func longNamesMatchWhateverTheirLength() {
        for n in [61, 62, 63, 64, 65, 200] {
            let name = "x_" + String(repeating: "a", count: n - 2)
            let set = HeaderNameSet([name])
            #expect(set.contains(fieldName: name.uppercased()), "length \(n)")
            #expect(set.contains(fieldName: "X-" + String(repeating: "A", count: n - 2)), "length \(n)")
            #expect(!set.contains(fieldName: "x-" + String(repeating: "a", count: n - 3)), "length \(n) - 1")
            #expect(!set.contains(fieldName: "x-" + String(repeating: "a", count: n - 1)), "length \(n) + 1")
        }
        // Lengths 63 and beyond share one bit: the set itself tells them apart.
        let set = HeaderNameSet([String(repeating: "b", count: 63), String(repeating: "c", count: 100)])
        #expect(set.contains(fieldName: String(repeating: "B", count: 63)))
        #expect(set.contains(fieldName: String(repeating: "C", count: 100)))
        #expect(!set.contains(fieldName: String(repeating: "b", count: 64)))
        #expect(!set.contains(fieldName: String(repeating: "c", count: 63)))
    }

    // MARK: Durations

    static let timeoutKeys = ["header_timeout", "body_timeout", "keepalive_timeout", "send_timeout", "request_timeout"]

    @Test func clientTimeoutsMustBeMoreThanZeroAndAtMostSevenDays() throws {
        for key in Self.timeoutKeys {
            for bad in ["0s", "0", "0ms", "0.5ms", "8d", "2w", "1000000000d", "99999999999999999999h"] {
                let found = issues(base + "limits: { \(key): \(bad) }\n")
                #expect(
                    found == [
                        "t.yaml:6:\(13 + key.count): limits.\(key): \"\(bad)\" is out of range (expected a timeout from 1ms to 7d, e.g. 250ms, 30s, 5m)"
                    ],
                    "\(key): \(bad) → \(found)")
            }
            #expect(issues(base + "limits: { \(key): -5s }\n").first?.contains("is not a duration") == true)
            #expect(issues(base + "limits: { \(key): 1e400s }\n").first?.contains("is not a duration") == true)
        }
        let c = try load(base + "limits: { header_timeout: 1ms, body_timeout: 7d, keepalive_timeout: 6d23h, send_timeout: 1w }\n")
        #expect(c.limits.headerTimeout == 0.001)
        #expect(c.limits.bodyTimeout == 7 * 86400)
        #expect(c.limits.keepAliveTimeout == 7 * 86400 - 3600)
        #expect(c.limits.sendTimeout == 7 * 86400)
    }

    @Test func upstreamTimeoutsMustBeMoreThanZeroAndAtMostSevenDays() throws {
        for key in ["connect_timeout", "timeout"] {
            for bad in ["0s", "30d", "1000000000000d"] {
                let yaml =
                    "upstreams:\n  app: { targets: [\"http://127.0.0.1:9000\"], \(key): \(bad) }\nroutes:\n  - match: { path: /x }\n    upstream: app\n"
                let found = issues(yaml)
                #expect(found.count == 1 && found[0].hasPrefix("t.yaml:2:"), "\(key): \(bad) → \(found)")
                #expect(
                    found.first?.hasSuffix(
                        "upstreams.app.\(key): \"\(bad)\" is out of range (expected a timeout from 1ms to 7d, e.g. 250ms, 30s, 5m)")
                        == true,
                    "\(key): \(bad) → \(found)")
            }
        }
        let c = try load(
            "upstreams:\n  app: { targets: [\"http://127.0.0.1:9000\"], connect_timeout: 250ms, timeout: 7d }\nroutes:\n  - match: { path: /x }\n    upstream: app\n"
        )
        #expect(c.upstreams["app"]?.connectTimeout == 0.25)
        #expect(c.upstreams["app"]?.readTimeout == 7.0 * 86400)
    }

    @Test func otherDurationsAreBoundedAtAHundredYears() throws {
        let found = issues(base + "log: { retention: 99999999999999d }\n")
        #expect(
            found == ["t.yaml:6:19: log.retention: \"99999999999999d\" is too long (expected a duration of at most 36500d)"], "\(found)")
        #expect(try load(base + "log: { retention: 36500d }\n").log.retention == 36500 * 86400)
        #expect(try load(base + "log: { retention: 0s }\n").log.retention == 0)
    }
}

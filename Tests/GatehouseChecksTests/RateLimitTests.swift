import GatehouseChecks
import GatehouseCore
import Testing

private func request(ip: String = "203.0.113.7", consumer: String? = nil, route: String = "orders", now: Double) -> PolicyRequest {
    var r = PolicyRequest(method: "GET", path: "/orders", clientAddress: IPAddress(ip), routeName: route, now: now)
    if let consumer { r.principal = Principal(method: "api_key", consumerID: consumer, consumerName: consumer, keyID: "k-" + consumer) }
    return r
}

private func check(
    _ windows: [RateWindow], quota: Quota? = nil, ban: AbuseBan? = nil, key: [RateLimitKeyPart] = [.ip],
    store: InProcessRateLimitStore = InProcessRateLimitStore()
) -> RateLimitCheck {
    RateLimitCheck(id: "limit", keyParts: key, rule: RateLimitRule(windows: windows, quota: quota, ban: ban), store: store)
}

private func header(_ d: Denial?, _ name: String) -> String? { d?.headers.first { $0.name == name }?.value }

@Suite struct RateLimitTests {
    let base = 1_795_000_000.0  // a fixed instant, so calendar periods are stable

    @Test func burstPassesThenRefusesWith429AndFields() {
        let c = check([RateWindow(count: 2, period: 1, burst: 5, name: "limit.2-per-second")])
        var passed = 0
        var last: Verdict = .allow(note: nil)
        for _ in 0..<6 {
            var r = request(now: base)
            last = c.evaluate(&r)
            if case .allow = last { passed += 1 }
        }
        #expect(passed == 5)
        let d = denial(last)
        #expect(d?.code.rawValue == "rate_limited")
        #expect(d?.status == 429)
        #expect(header(d, "Retry-After") == "1")
        #expect(header(d, "RateLimit-Policy") == "\"limit.2-per-second\";q=2;w=1")
        #expect(header(d, "RateLimit") == "\"limit.2-per-second\";r=0;t=3")
        #expect(d?.extensions["policy"] == ["limit.2-per-second"])
        #expect(d?.extensions["limit"] == ["2 per 1 s, burst 5"])
        #expect(d?.detail.contains("retry in 1 s") == true)
    }

    /// A rate near the integer range (configurations refuse it; a check built directly may have
    /// it) must not overflow on the request path: the near-limit measure once did.
    @Test func hugeRatesDoNotOverflow() {
        let c = check([RateWindow(count: Int.max / 2, period: 1, burst: Int.max / 2, name: "limit.huge")])
        var r = request(now: base)
        if case .deny(let d) = c.evaluate(&r) { Issue.record("refused: \(d.detail)") }
    }

    /// The consumer name (a token's `sub`, say) and key id are the caller's text: the 429's detail,
    /// `presented` and the allow note show them escaped, while the count stays per exact name.
    @Test func consumerNamesAreEscapedInTheRefusal() throws {
        let c = check([RateWindow(count: 1, period: 60, burst: 1, name: "per-minute")], key: [.consumer, .key])
        let name = "\u{1b}]0;owned\u{07}\u{1b}[2J\nDecided by: nobody\u{202E}"
        func call() -> Verdict {
            var r = PolicyRequest(method: "GET", path: "/orders", clientAddress: IPAddress("203.0.113.7"), routeName: "orders", now: base)
            r.principal = Principal(method: "jwt", consumerID: "jwt i|" + name, consumerName: name, keyID: "jti " + name + " from i")
            return c.evaluate(&r)
        }
        guard case .allow(let note) = call() else { Issue.record("first call refused"); return }
        #expect(!hasControl(note ?? ""), "\(note ?? "")")
        let d = try #require(denial(call()))
        #expect(d.status == 429)
        #expect(!hasControl(d.detail) && !d.presented.contains(where: hasControl), "\(d.detail) \(d.presented)")
        #expect(d.detail.contains("consumer \\u{1b}]0;owned\\u{07}"), "\(d.detail)")
        #expect(d.detail.contains("\\u{0a}Decided by: nobody\\u{202e}"), "\(d.detail)")
        // A 10,000-character name is cut in the description.
        let long = String(repeating: "a", count: 10_000)
        var r = PolicyRequest(method: "GET", path: "/orders", clientAddress: IPAddress("203.0.113.7"), routeName: "orders", now: base)
        r.principal = Principal(method: "jwt", consumerID: "jwt i|" + long, consumerName: long)
        guard case .allow(let longNote) = c.evaluate(&r) else { Issue.record("long name refused"); return }
        #expect((longNote ?? "").count < 400)
    }

    @Test func recoversAfterTheWindowAndAllowedResponsesCarryFields() {
        let c = check([RateWindow(count: 1, period: 10, name: "w")])
        var r1 = request(now: base)
        #expect(c.evaluate(&r1) == .allow(note: "ip 203.0.113.7: 0 of 1 left in w"))
        #expect(r1.responseHeaders.contains(HeaderField("RateLimit", "\"w\";r=0;t=10")))
        var r2 = request(now: base + 5)
        #expect(header(denial(c.evaluate(&r2)), "Retry-After") == "5")
        var r3 = request(now: base + 10)
        guard case .allow = c.evaluate(&r3) else { Issue.record("not allowed after the window"); return }
    }

    @Test func keysAreIndependent() {
        let c = check([RateWindow(count: 1, period: 60, name: "w")], key: [.consumer, .route])
        var a1 = request(consumer: "acme", now: base)
        var a2 = request(consumer: "acme", now: base)
        var b1 = request(consumer: "globex", now: base)
        var a3 = request(consumer: "acme", route: "other", now: base)
        guard case .allow = c.evaluate(&a1) else { Issue.record("first acme call refused"); return }
        #expect(denial(c.evaluate(&a2))?.code.rawValue == "rate_limited")
        guard case .allow = c.evaluate(&b1) else { Issue.record("globex shares acme's bucket"); return }
        guard case .allow = c.evaluate(&a3) else { Issue.record("another route shares the bucket"); return }
    }

    @Test func severalWindowsAtOnceTheTightestDecides() {
        // 10/second and 15/hour: the hourly window runs out first.
        let c = check([RateWindow(count: 10, period: 1, name: "s"), RateWindow(count: 15, period: 3600, name: "h")])
        var passed = 0
        for i in 0..<40 {
            var r = request(now: base + Double(i) * 0.5)
            if case .allow = c.evaluate(&r) { passed += 1 }
        }
        #expect(passed == 15)
        var r = request(now: base + 20)
        let d = denial(c.evaluate(&r))
        #expect(d?.extensions["policy"] == ["h"])
        #expect(Int(header(d, "Retry-After") ?? "") ?? 0 > 60)
    }

    @Test func accuracyAtAKnownRate() {
        // 5/second with burst 5, offered 20/second for 3 s: 5 + 5 × 3 = 20 get through (±1).
        let c = check([RateWindow(count: 5, period: 1, name: "w")])
        var passed = 0
        for i in 0..<60 {
            var r = request(now: base + Double(i) * 0.05)
            if case .allow = c.evaluate(&r) { passed += 1 }
        }
        #expect(abs(passed - 20) <= 1)
    }

    @Test func dailyQuotaRefusesWithQuotaExceededUntilMidnight() {
        let midnight = (base / 86400).rounded(.up) * 86400
        let c = check([], quota: Quota(limit: 3, period: .day, name: "limit.quota-per-day"))
        for _ in 0..<3 {
            var r = request(now: midnight - 100)
            guard case .allow = c.evaluate(&r) else { Issue.record("refused within quota"); return }
        }
        var r = request(now: midnight - 100)
        let d = denial(c.evaluate(&r))
        #expect(d?.code.rawValue == "quota_exceeded")
        #expect(d?.status == 429)
        #expect(header(d, "Retry-After") == "100")
        #expect(d?.extensions["reset"] == [TimeText.iso(midnight)])
        var next = request(now: midnight + 1)
        guard case .allow = c.evaluate(&next) else { Issue.record("quota did not reset at midnight"); return }
    }

    @Test func monthlyQuotaPeriodEndsOnTheFirstOfNextMonth() {
        // 2026-12-15T00:00:00Z → the period ends 2027-01-01T00:00:00Z.
        let (start, end) = QuotaPeriod.month.bounds(containing: 1_797_292_800)
        #expect(TimeText.iso(start) == "2026-12-01T00:00:00Z")
        #expect(TimeText.iso(end) == "2027-01-01T00:00:00Z")
    }

    @Test func repeatedViolationsBanTheKeyAndTheBodySaysUntilWhen() {
        let c = check([RateWindow(count: 1, period: 60, name: "w")], ban: AbuseBan(violations: 3, within: 10, duration: 300))
        var first = request(now: base)
        _ = c.evaluate(&first)
        for i in 1...3 {
            var r = request(now: base + Double(i))
            #expect(denial(c.evaluate(&r))?.code.rawValue == "rate_limited")
        }
        var banned = request(now: base + 70)  // the window has recovered, the ban has not
        let d = denial(c.evaluate(&banned))
        #expect(d?.code.rawValue == "abuse_banned")
        #expect(d?.status == 403)
        #expect(d?.detail.contains("until \(TimeText.iso(base + 303))") == true)
        #expect(d?.extensions["ban_ends"] == [TimeText.iso(base + 303)])
        var after = request(now: base + 304)
        guard case .allow = c.evaluate(&after) else { Issue.record("still refused after the ban"); return }
    }

    @Test func idleKeysExpire() {
        let store = InProcessRateLimitStore(maxKeys: 100_000, shards: 4, sweepInterval: 1)
        let rule = RateLimitRule(windows: [RateWindow(count: 10, period: 1, name: "w")])
        for i in 0..<1000 { _ = store.consume(key: "k\(i)", rule: rule, now: base) }
        #expect(store.count == 1000)
        // A minute later every bucket is full again; the next new keys trigger sweeps.
        for i in 0..<64 { _ = store.consume(key: "late\(i)", rule: rule, now: base + 61) }
        #expect(store.count <= 64)
    }

    @Test func aMillionDistinctKeysStayWithinTheBound() {
        let store = InProcessRateLimitStore(maxKeys: 10_000, shards: 16)
        let rule = RateLimitRule(
            windows: [RateWindow(count: 10, period: 3600, name: "w")],
            quota: Quota(limit: 100, period: .day, name: "q"))
        for i in 0..<1_000_000 {
            _ = store.consume(key: "attacker-\(i)", rule: rule, now: base + Double(i) / 1000)
        }
        #expect(store.count <= store.capacity)
        #expect(store.capacity <= 10_016)
        // The store still works for a regular caller afterwards.
        if case .allowed = store.consume(key: "regular", rule: rule, now: base + 1001) {} else { Issue.record("regular caller refused") }
    }

    @Test func concurrentCallersNeverExceedTheBurst() async {
        let store = InProcessRateLimitStore()
        let rule = RateLimitRule(windows: [RateWindow(count: 100, period: 3600, name: "w")])
        let allowed = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var n = 0
                    for _ in 0..<100 { if case .allowed = store.consume(key: "shared", rule: rule, now: 1_795_000_000) { n += 1 } }
                    return n
                }
            }
            return await group.reduce(0, +)
        }
        #expect(allowed == 100)
    }

    @Test func anonymousCallersAreCountedByAddressUnderAConsumerKey() {
        let c = check([RateWindow(count: 1, period: 60, name: "w")], key: [.consumer])
        var a = request(ip: "198.51.100.1", now: base)
        var b = request(ip: "198.51.100.2", now: base)
        guard case .allow(let note) = c.evaluate(&a) else { Issue.record("refused"); return }
        #expect(note?.contains("anonymous caller at 198.51.100.1") == true)
        guard case .allow = c.evaluate(&b) else { Issue.record("anonymous callers share one bucket"); return }
    }

    /// A JWT principal as the jwt check builds it: consumer = issuer + subject, key = the token's jti.
    func jwtPrincipal(sub: String?, jti: String?, iss: String? = "https://issuer.example") -> Principal {
        Principal(
            method: "jwt",
            consumerID: Principal.jwtConsumerID(issuer: iss, subject: sub, policy: "bearer", fingerprint: "f-" + (jti ?? "x")),
            consumerName: sub,
            keyID: Principal.jwtKeyID(jti: jti, issuer: iss, subject: sub, policy: "bearer", fingerprint: "f-" + (jti ?? "x")),
            subject: sub)
    }

    func outcomes(_ c: RateLimitCheck, _ principals: [Principal], ip: String = "127.0.0.1") -> [Bool] {
        principals.map { p in
            var r = request(ip: ip, now: base)
            r.principal = p
            if case .allow = c.evaluate(&r) { return true }
            return false
        }
    }

    @Test func jwtCallersAreCountedPerIssuerAndSubjectNotPerAddress() {
        let c = check([RateWindow(count: 2, period: 60, name: "w")], key: [.consumer])
        let alice = jwtPrincipal(sub: "alice", jti: "a1"), bob = jwtPrincipal(sub: "bob", jti: "b1")
        #expect(outcomes(c, [alice, alice, alice, bob]) == [true, true, false, true])
        // A new token of alice's (another jti) is still alice.
        #expect(outcomes(c, [jwtPrincipal(sub: "alice", jti: "a2")]) == [false])
        // The same subject from another issuer is another caller.
        #expect(outcomes(c, [jwtPrincipal(sub: "alice", jti: "a3", iss: "https://other.example")]) == [true])
        #expect(outcomes(c, [bob]) == [true])
        var r = request(now: base)
        r.principal = bob
        guard case .deny(let d) = c.evaluate(&r) else { Issue.record("bob not limited"); return }
        #expect(d.detail.contains("for consumer bob"))
    }

    @Test func jwtKeyIsTheTokenNotTheSigningKey() {
        let c = check([RateWindow(count: 1, period: 60, name: "w")], key: [.key])
        let tokens = ["alice", "bob", "carol"].map { jwtPrincipal(sub: $0, jti: "j-" + $0) }
        #expect(outcomes(c, tokens) == [true, true, true])
        #expect(outcomes(c, tokens) == [false, false, false])
        // Without a jti, the key is the subject's identity.
        #expect(outcomes(c, [jwtPrincipal(sub: "dave", jti: nil), jwtPrincipal(sub: "dave", jti: nil)]) == [true, false])
        // Without iss or sub, callers still never share one bucket.
        let anon = [
            jwtPrincipal(sub: nil, jti: nil, iss: nil),
            Principal(
                method: "jwt", consumerID: Principal.jwtConsumerID(issuer: nil, subject: nil, policy: "bearer", fingerprint: "other"),
                keyID: Principal.jwtKeyID(jti: nil, issuer: nil, subject: nil, policy: "bearer", fingerprint: "other")),
        ]
        #expect(outcomes(c, anon) == [true, true])
    }

    @Test func identityPartsAreEscapedSoPairsNeverCollide() {
        #expect(
            Principal.jwtConsumerID(issuer: "a|b", subject: "c", policy: "p", fingerprint: "f")
                != Principal.jwtConsumerID(issuer: "a", subject: "b|c", policy: "p", fingerprint: "f"))
        #expect(
            Principal.jwtConsumerID(issuer: "https://issuer.example", subject: "alice", policy: "p", fingerprint: "f")
                == "jwt https://issuer.example|alice")
        #expect(
            Principal.jwtKeyID(jti: "j1", issuer: "https://issuer.example", subject: "alice", policy: "p", fingerprint: "f")
                == "jti j1 from https://issuer.example")
        #expect(
            Principal.jwtKeyID(jti: nil, issuer: nil, subject: "alice", policy: "bearer", fingerprint: "f") == "sub policy bearer|alice")
    }

    @Test func basicUsersAreTheirOwnKey() {
        let c = check([RateWindow(count: 1, period: 60, name: "w")], key: [.key])
        let user = Principal(method: "basic", consumerID: "c-alice", consumerName: "alice", subject: "alice")
        #expect(outcomes(c, [user, user]) == [true, false])
        #expect(outcomes(c, [Principal(method: "basic", consumerID: "c-bob", consumerName: "bob")]) == [true])
    }

    @Test func ipv6ClientsAreCountedPerSlash64ByDefault() {
        let c = check([RateWindow(count: 2, period: 60, name: "w")])
        var results: [Bool] = []
        for k in 1...6 {
            var r = request(ip: "2001:db8:1:2::\(String(k, radix: 16))", now: base)
            if case .allow = c.evaluate(&r) { results.append(true) } else { results.append(false) }
        }
        #expect(results == [true, true, false, false, false, false])
        var other = request(ip: "2001:db8:1:3::1", now: base)
        guard case .allow(let note) = c.evaluate(&other) else { Issue.record("the next /64 was refused"); return }
        #expect(note?.contains("ip 2001:db8:1:3::/64") == true)
        // 128 counts each address; IPv4 is always per address.
        let full = RateLimitCheck(
            id: "limit", keyParts: [.ip], rule: RateLimitRule(windows: [RateWindow(count: 1, period: 60, name: "w")]),
            store: InProcessRateLimitStore(), ipv6Prefix: 128)
        var a = request(ip: "2001:db8::1", now: base), b = request(ip: "2001:db8::2", now: base)
        #expect(allowed(full.evaluate(&a)) && allowed(full.evaluate(&b)))
        var v4a = request(ip: "198.51.100.1", now: base), v4b = request(ip: "198.51.100.2", now: base)
        let v4 = check([RateWindow(count: 1, period: 60, name: "w")])
        #expect(allowed(v4.evaluate(&v4a)) && allowed(v4.evaluate(&v4b)))
    }
}

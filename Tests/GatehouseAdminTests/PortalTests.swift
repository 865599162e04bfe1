import Foundation
import GatehouseControl
import GatehouseCore
import GatehouseIdentity
import GatehouseStore
import Synchronization
import Testing

/// The developer portal's domain: accounts managed by admins, what a signed-in developer may do
/// for its own application, and the explanation of its requests without other parties' data.
@Suite struct PortalTests {
    /// `World` (tenant acme: application checkout; tenant globex: application billing and the
    /// manual service payments) with developer dana of checkout and developer ed of billing.
    struct Portal {
        let w: World
        let dana: DeveloperActor
        let ed: DeveloperActor
        init(_ kind: StoreKind) throws {
            w = try World(kind)
            // bcrypt cost 4: the tests verify passwords, they do not measure the work factor.
            _ = try w.control.createDeveloper(w.opA, name: "dana@acme.test", application: "checkout", password: "dana-secret-1", cost: 4)
            _ = try w.control.createDeveloper(w.opB, name: "ed", application: "billing", password: "ed-secret-12", cost: 4)
            dana = try w.control.authenticateDeveloper(name: "dana@acme.test", password: "dana-secret-1", source: "127.0.0.1")
            ed = try w.control.authenticateDeveloper(name: "ed", password: "ed-secret-12", source: "127.0.0.1")
        }
    }

    func code(_ body: () throws -> Any) -> ReasonCode? {
        do {
            _ = try body()
            return nil
        } catch let e as ControlError {
            return e.code
        } catch {
            return "unexpected"
        }
    }

    func denial(_ body: () throws -> Any) -> Denial? {
        do {
            _ = try body()
            return nil
        } catch let e as ControlError {
            return e.denial
        } catch {
            return nil
        }
    }

    // MARK: Accounts

    @Test(arguments: StoreKind.allCases) func developerAccountsAreTenantScopedAndAudited(_ kind: StoreKind) throws {
        let p = try Portal(kind)
        let w = p.w
        // Each tenant's operators see and change only their applications' developers.
        #expect(try w.control.developers(w.opA).items.map(\.name) == ["dana@acme.test"])
        #expect(try w.control.developers(w.opB).items.map(\.name) == ["ed"])
        #expect(try w.control.developers(.cli).items.count == 2)
        #expect(code { try w.control.developer(w.opB, "dana@acme.test") } == .adminTenantMismatch)
        #expect(code { try w.control.developer(w.opB, "nobody") } == .adminTenantMismatch)
        #expect(code { try w.control.setDeveloperStatus(w.opB, "dana@acme.test", status: "disabled") } == .adminTenantMismatch)
        #expect(code { try w.control.deleteDeveloper(w.opB, "dana@acme.test") } == .adminTenantMismatch)
        #expect(
            code { try w.control.createDeveloper(w.opB, name: "mallory", application: "checkout", password: "long-enough", cost: 4) }
                == .adminTenantMismatch)
        // A viewer reads but does not create.
        let viewer = ControlActor(name: "vic", role: .viewer, tenant: "acme", source: "test")
        #expect(try w.control.developers(viewer).items.count == 1)
        #expect(
            code { try w.control.createDeveloper(viewer, name: "vee", application: "checkout", password: "long-enough", cost: 4) }
                == .adminRoleInsufficient)
        // Passwords as for admin users: 8 characters to 72 bytes; names unique.
        #expect(
            code { try w.control.createDeveloper(w.opA, name: "short", application: "checkout", password: "1234567", cost: 4) }
                == .adminInvalidRequest)
        #expect(
            code {
                try w.control.createDeveloper(
                    w.opA, name: "long", application: "checkout", password: String(repeating: "é", count: 37), cost: 4)
            } == .adminInvalidRequest)
        #expect(
            code { try w.control.createDeveloper(w.opA, name: "dana@acme.test", application: "checkout", password: "another-one", cost: 4) }
                == .adminConflict)
        #expect(
            code { try w.control.createDeveloper(w.opA, name: "bad name", application: "checkout", password: "another-one", cost: 4) }
                == .adminInvalidRequest)
        // Every change is in the audit log, never the password or its hash.
        _ = try w.control.setDeveloperStatus(w.opA, "dana@acme.test", status: "disabled")
        _ = try w.control.deleteDeveloper(w.opA, "dana@acme.test")
        let entries = try w.control.auditEntries(w.opA, action: "developer.").items
        #expect(entries.map(\.action) == ["developer.create", "developer.disable", "developer.delete"])
        #expect(entries.allSatisfy { $0.actor == "ann" && $0.tenants == ["acme"] })
        #expect(!entries.contains { ($0.after ?? "").contains("dana-secret") || ($0.after ?? "").contains("$2") })
        #expect(try w.control.developers(.cli).items.map(\.name) == ["ed"])
    }

    @Test(arguments: StoreKind.allCases) func signingInNeedsTheRightPasswordAndAnActiveAccount(_ kind: StoreKind) throws {
        let p = try Portal(kind)
        let w = p.w
        #expect(p.dana.application == "checkout" && p.dana.tenant == "acme")
        let wrong = denial { try w.control.authenticateDeveloper(name: "dana@acme.test", password: "wrong-password", source: "x") }
        let unknown = denial { try w.control.authenticateDeveloper(name: "nobody", password: "wrong-password", source: "x") }
        #expect(wrong?.code == .portalUnauthenticated && wrong?.status == 401)
        // The same answer for an unknown name: names cannot be probed.
        #expect(wrong?.detail == unknown?.detail)
        // Admin users are not developers.
        _ = try w.control.createAdminUser(.cli, name: "root", role: .owner, password: "root-password", cost: 4)
        #expect(
            code { try w.control.authenticateDeveloper(name: "root", password: "root-password", source: "x") } == .portalUnauthenticated)

        // Disabled: no sign-in, and a session signed in before can do nothing more.
        _ = try w.control.setDeveloperStatus(w.opA, "dana@acme.test", status: "disabled")
        let disabled = denial { try w.control.authenticateDeveloper(name: "dana@acme.test", password: "dana-secret-1", source: "x") }
        #expect(disabled?.code == .portalUnauthenticated && disabled?.detail.contains("disabled") == true)
        #expect(code { try w.control.developerActor(id: p.dana.id, source: "x") } == .portalUnauthenticated)
        #expect(code { try w.control.portalKeys(p.dana) } == .portalUnauthenticated)
        #expect(code { try w.control.portalCreateKey(p.dana) } == .portalUnauthenticated)
        #expect(code { try w.control.portalApply(p.dana, service: "payments", reason: "x") } == .portalUnauthenticated)
        #expect(code { try w.control.portalExplain(p.dana, requestID: "any", exposure: { _ in .minimal }) } == .portalUnauthenticated)
        #expect(try w.control.keys(.cli, application: "checkout").items.isEmpty)
        // Enabled again, then deleted.
        _ = try w.control.setDeveloperStatus(w.opA, "dana@acme.test", status: "active")
        #expect(try w.control.developerActor(id: p.dana.id, source: "x").name == "dana@acme.test")
        _ = try w.control.deleteDeveloper(w.opA, "dana@acme.test")
        #expect(code { try w.control.portalSubscriptions(p.dana) } == .portalUnauthenticated)
    }

    // MARK: What a developer does

    @Test(arguments: StoreKind.allCases) func aDeveloperAppliesAndSeesTheDecisionWithoutTheAdminsName(_ kind: StoreKind) throws {
        let p = try Portal(kind)
        let w = p.w
        let services = try w.control.portalServices(p.dana)
        #expect(services.map(\.name) == ["payments"])
        #expect(services[0].state == nil && services[0].approval == "manual")
        let applied = try w.control.portalApply(p.dana, service: "payments", reason: "we take card payments")
        #expect(applied.state == "pending" && applied.decidedBy == "you" && applied.reason == "we take card payments")
        // Audited with the developer as the actor.
        let entry = try #require(try w.control.auditEntries(.cli, action: "subscription.apply").items.last)
        #expect(entry.actor == "developer:dana@acme.test" && entry.role == "developer")
        #expect(try w.control.subscriptions(w.opB, state: "pending").items.map(\.application) == ["checkout"])
        // Applying twice is the usual refusal.
        #expect(code { try w.control.portalApply(p.dana, service: "payments", reason: nil) } == .subscriptionTransitionInvalid)
        // A service that does not exist is not the application's to apply for.
        #expect(code { try w.control.portalApply(p.dana, service: "nope", reason: nil) } == .portalObjectNotYours)

        _ = try w.control.approve(w.opB, applied.id, opinion: "welcome aboard")
        let subs = try w.control.portalSubscriptions(p.dana)
        #expect(subs.count == 1)
        #expect(subs[0].state == "approved" && subs[0].opinion == "welcome aboard")
        // bob approved: the developer reads "an administrator".
        #expect(subs[0].decidedBy == "an administrator")
        #expect(try w.control.portalServices(p.dana).first?.state == "approved")
        // Another application's subscription cannot be touched, and reads as one that does not exist.
        let edApplied = try w.control.portalApply(p.ed, service: "payments", reason: "invoices")
        let other = denial { try w.control.portalCancel(p.dana, subscription: edApplied.id, reason: "mine now") }
        let none = denial { try w.control.portalCancel(p.dana, subscription: "sub_doesnotexist", reason: "x") }
        #expect(other?.code == .portalObjectNotYours)
        #expect(
            other?.detail.replacingOccurrences(of: edApplied.id, with: "ID")
                == none?.detail.replacingOccurrences(of: "sub_doesnotexist", with: "ID"))
        #expect(try w.control.subscription(.cli, edApplied.id).state == "pending")
        // Its own, withdrawn by its developer.
        #expect(try w.control.portalCancel(p.ed, subscription: edApplied.id, reason: "not needed").state == "cancelled")
        // The other application's developer sees none of dana's.
        #expect(try w.control.portalSubscriptions(p.ed).map(\.state) == ["cancelled"])
        #expect(try w.control.portalServices(p.ed).first?.state == "cancelled")
    }

    /// Every key, revoked ones too, is in the data plane's snapshot: a developer keeps at most
    /// `portalMaxActiveKeys` active and creates at most `portalMaxKeysPerDay` a day.
    @Test func aDeveloperCannotGrowTheKeyTableWithoutBound() throws {
        let p = try Portal(.sqlite)
        let w = p.w
        var made: [String] = []
        for _ in 0..<ControlPlane.portalMaxActiveKeys { made.append(try w.control.portalCreateKey(p.dana).info.id) }
        let full = denial { try w.control.portalCreateKey(p.dana) }
        #expect(full?.code == .adminConflict && full?.detail.contains("active keys") == true, "\(String(describing: full))")
        // Revoking makes room, up to the day's budget.
        var created = made.count
        while created < ControlPlane.portalMaxKeysPerDay {
            _ = try w.control.portalRevokeKey(p.dana, id: made.removeFirst())
            made.append(try w.control.portalCreateKey(p.dana).info.id)
            created += 1
        }
        _ = try w.control.portalRevokeKey(p.dana, id: made.removeFirst())
        let day = denial { try w.control.portalCreateKey(p.dana) }
        #expect(day?.code == .adminConflict && day?.detail.contains("last 24 hours") == true, "\(String(describing: day))")
        // An administrator is not held to the developer's budget.
        #expect(throws: Never.self) { try w.control.createKey(.cli, application: "checkout") }
    }

    @Test(arguments: StoreKind.allCases) func aDeveloperManagesOnlyItsApplicationsKeys(_ kind: StoreKind) throws {
        let p = try Portal(kind)
        let w = p.w
        let created = try w.control.portalCreateKey(p.dana)
        #expect(created.key.hasPrefix("gth_") && created.info.application == "checkout")
        // The key is the application's: the data plane's directory finds it.
        try w.temp.sync()
        let directory = StoreDirectory(store: w.temp.store, refreshInterval: 3600)
        directory.refresh()
        #expect(directory.consumer(named: "checkout")?.id == created.info.applicationID)
        #expect(try w.control.portalKeys(p.dana).map(\.id) == [created.info.id])
        #expect(try w.control.portalKeys(p.ed).isEmpty)
        let audit = try #require(try w.control.auditEntries(.cli, action: "key.create").items.last)
        #expect(audit.actor == "developer:dana@acme.test")
        #expect(!(audit.after ?? "").contains(created.key))

        // Another application's key, and a key that does not exist, get the same answer.
        let edKey = try w.control.portalCreateKey(p.ed)
        let other = denial { try w.control.portalRevokeKey(p.dana, id: edKey.info.id) }
        let none = denial { try w.control.portalRevokeKey(p.dana, id: "k_doesnotexist") }
        #expect(other?.code == .portalObjectNotYours && other?.status == 403)
        #expect(
            other?.detail.replacingOccurrences(of: edKey.info.id, with: "ID")
                == none?.detail.replacingOccurrences(of: "k_doesnotexist", with: "ID"))
        #expect(try w.control.keys(.cli, application: "billing").items.first?.revokedAt == nil)

        let revoked = try w.control.portalRevokeKey(p.dana, id: created.info.id)
        #expect(revoked.revokedAt != nil)
        #expect(code { try w.control.portalRevokeKey(p.dana, id: created.info.id) } == .adminConflict)
    }

    @Test(arguments: StoreKind.allCases) func usageCountsOnlyTheDevelopersApplication(_ kind: StoreKind) throws {
        let p = try Portal(kind)
        let w = p.w
        let t0 = w.clock.now
        var records: [CallRecord] = []
        for i in 0..<12 {
            let app = i % 3 == 0 ? p.ed.applicationID : p.dana.applicationID
            let reason: String? = i % 4 == 1 ? "rate_limited" : (i % 4 == 2 ? "subscription_required" : nil)
            records.append(
                Self.record(
                    "u\(i)", time: t0 + Double(i), application: app, status: reason == "rate_limited" ? 429 : (reason == nil ? 200 : 403),
                    reason: reason))
        }
        try w.temp.insertCalls(records)
        let usage = try w.control.portalUsage(p.dana, since: t0 - 3600, until: t0 + 3600, bucket: 3600)
        let mine = records.filter { $0.applicationID == p.dana.applicationID }
        #expect(usage.requests == Int64(mine.count))
        #expect(usage.denied == Int64(mine.filter { $0.reason != nil }.count))
        #expect(usage.allowed == Int64(mine.filter { $0.reason == nil }.count))
        let byReason = Dictionary(usage.deniedByReason.map { ($0.key, $0.denied) }, uniquingKeysWith: +)
        #expect(byReason["rate_limited"] == Int64(mine.filter { $0.reason == "rate_limited" }.count))
        #expect(usage.topDeniedApplications.isEmpty)
        let edUsage = try w.control.portalUsage(p.ed, since: t0 - 3600, until: t0 + 3600, bucket: 3600)
        #expect(edUsage.requests == Int64(records.count - mine.count))
    }

    // MARK: Explaining a request

    static func record(
        _ id: String, time: Double, application: String?, status: Int, reason: String?, detail: String? = nil,
        required: [String] = [], presented: [String] = [], hint: String? = nil, check: String = "limit", type: String = "rate_limit",
        auditEntry: Int64? = nil, route: String = "payments-api"
    ) -> CallRecord {
        var entries = [
            TraceEntry(check: "key", type: "api_key", mode: .enforce, outcome: .allow, note: "key k_1 of checkout", reason: nil, micros: 3)
        ]
        if let reason {
            entries.append(
                TraceEntry(
                    check: check, type: type, mode: .enforce, outcome: .deny, note: detail ?? "denied", reason: ReasonCode(reason),
                    micros: 1))
        }
        return CallRecord(
            requestID: id, time: time, route: route, consumer: "checkout", keyID: "k_1", client: "10.9.8.7", method: "GET",
            path: "/payments/1", host: "api.test", status: status, upstreamMillis: reason == nil ? 4 : nil, totalMillis: 5,
            decidingCheck: reason == nil ? nil : check, reason: reason, detail: detail, hint: hint, required: required,
            presented: presented, trace: DecisionTrace(entries: entries), upstreamTarget: reason == nil ? "10.1.1.1:8080" : nil,
            auditEntry: auditEntry, applicationID: application)
    }

    @Test(arguments: StoreKind.allCases) func aDeveloperReadsWhyItsOwnRequestWasDenied(_ kind: StoreKind) throws {
        let p = try Portal(kind)
        let w = p.w
        try w.temp.insertCalls([
            Self.record(
                "req-limited", time: w.clock.now, application: p.dana.applicationID, status: 429, reason: "rate_limited",
                detail: "GET /payments/1 is over payments-limit's 2 requests per minute for key k_1",
                required: ["at most 2 requests per minute"], presented: ["key k_1"], hint: "Retry in 40 s.")
        ])
        let detailed = PortalExposure(exposure: .detailed, revealsOperatorDetail: false)
        let e = try w.control.portalExplain(p.dana, requestID: "req-limited", exposure: { _ in detailed })
        #expect(e.verdict == "DENIED" && e.status == 429 && e.reason == "rate_limited")
        #expect(e.reasonTitle == ReasonCatalogue.entry(.rateLimited)?.title)
        #expect(e.required == ["at most 2 requests per minute"] && e.hint == "Retry in 40 s.")
        #expect(e.route == "payments-api" && e.application == "checkout" && e.decidingCheck == "limit")
        #expect(e.steps.map(\.outcome) == ["allow", "deny"])
        // Left out: the client address, the upstream, the checks' notes.
        let text = String(decoding: try JSONEncoder().encode(e), as: UTF8.self)
        #expect(!text.contains("10.9.8.7") && !text.contains("key k_1 of checkout"))
        // The operator's renderer, over what is left.
        #expect(e.text.hasPrefix("Request req-limited: DENIED 429 rate_limited"))
        #expect(e.text.contains("Required: at most 2 requests per minute") && e.text.contains("Decided by: check limit"))
        #expect(e.text.contains("route: payments-api") && e.text.contains("from (not shown), consumer checkout"))

        // Under minimal exposure, the denial's own words stay in the call log; the meaning stands in.
        let minimal = try w.control.portalExplain(p.dana, requestID: "req-limited", exposure: { _ in .minimal })
        #expect(minimal.detail == nil && minimal.required.isEmpty && minimal.hint == nil)
        #expect(minimal.reason == "rate_limited" && minimal.reasonMeaning != nil)
    }

    @Test(arguments: StoreKind.allCases) func anotherApplicationsRequestIsRefusedExactlyAsOneThatDoesNotExist(_ kind: StoreKind) throws {
        let p = try Portal(kind)
        let w = p.w
        try w.temp.insertCalls([
            Self.record("ed-req", time: w.clock.now, application: p.ed.applicationID, status: 429, reason: "rate_limited"),
            // A token caller named like the application: not attributed to it (no application id).
            {
                var r = Self.record("token-req", time: w.clock.now, application: nil, status: 403, reason: "insufficient_scope")
                r.consumer = "checkout"
                return r
            }(),
        ])
        let theirs = denial { try w.control.portalExplain(p.dana, requestID: "ed-req", exposure: { _ in .minimal }) }
        let nobody = denial { try w.control.portalExplain(p.dana, requestID: "no-such-req", exposure: { _ in .minimal }) }
        let token = denial { try w.control.portalExplain(p.dana, requestID: "token-req", exposure: { _ in .minimal }) }
        #expect(theirs?.code == .portalRequestNotYours && theirs?.status == 403)
        #expect(nobody?.code == .portalRequestNotYours && token?.code == .portalRequestNotYours)
        // Word for word the same but for the id the developer pasted.
        #expect(
            theirs?.detail.replacingOccurrences(of: "ed-req", with: "ID")
                == nobody?.detail.replacingOccurrences(of: "no-such-req", with: "ID"))
        #expect(theirs?.hint == nobody?.hint && theirs?.required == nobody?.required)
        // Its own developer reads it.
        #expect(try w.control.portalExplain(p.ed, requestID: "ed-req", exposure: { _ in .minimal }).reason == "rate_limited")
    }

    @Test(arguments: StoreKind.allCases) func otherPartiesNamesAreStrippedFromTheExplanation(_ kind: StoreKind) throws {
        let p = try Portal(kind)
        let w = p.w
        let sub = try w.control.portalApply(p.dana, service: "payments", reason: "cards")
        _ = try w.control.approve(w.opB, sub.id, opinion: "ok")
        let revoked = try w.control.revoke(w.opB, sub.id, opinion: "contract ended")
        let auditID = try #require(revoked.auditEntry)
        try w.temp.insertCalls([
            Self.record(
                "req-revoked", time: w.clock.now, application: p.dana.applicationID, status: 403, reason: "subscription_revoked",
                detail:
                    "application checkout's subscription to service payments was revoked by bob at 2027-01-15T08:00:00Z: 'contract ended'",
                required: ["an approved subscription to service payments"],
                presented: ["application checkout", "subscription \(sub.id) revoked"],
                hint: "Contact the owners of service payments (tenant globex), then apply again.", check: "payments-subscription",
                type: "subscription", auditEntry: auditID),
            Self.record(
                "req-waf", time: w.clock.now, application: p.dana.applicationID, status: 403, reason: "waf_blocked",
                detail: #"GET /payments/1 scored 5 (threshold 5, PL1): 942100 SQL injection (942100 "ARGS:id" matched "1' or 1=1")"#,
                required: ["inbound anomaly score below 5"], presented: ["inbound anomaly score 5"], check: "crs", type: "waf"),
        ])
        let detailed = PortalExposure(exposure: .detailed, revealsOperatorDetail: false)
        let e = try w.control.portalExplain(p.dana, requestID: "req-revoked", exposure: { _ in detailed })
        let detail = try #require(e.detail)
        #expect(!detail.contains("bob") && detail.contains("revoked by an administrator"))
        #expect(detail.contains("'contract ended'"))
        #expect(e.hint?.contains("globex") == false && e.hint?.contains("another tenant") == true)
        let citation = try #require(e.citation)
        #expect(citation.what == "subscription revoked" && citation.by == "an administrator" && citation.opinion == "contract ended")
        let text = String(decoding: try JSONEncoder().encode(e), as: UTF8.self)
        #expect(!text.contains("bob") && !text.contains("globex"))
        #expect(e.text.contains("Audit entry \(auditID): subscription revoked by an administrator at"))

        // A WAF's detail (which holds its excerpts) only where the route asks for detailed exposure
        // itself: withheld whole, never cut by pattern.
        let waf = try w.control.portalExplain(p.dana, requestID: "req-waf", exposure: { _ in detailed })
        #expect(waf.detail == nil && waf.required == ["inbound anomaly score below 5"])
        #expect(!waf.text.contains("1' or 1=1") && !waf.text.contains("942100 \"ARGS"))
        #expect(!waf.withheld.filter { $0.contains("excerpts") }.isEmpty)
        let explicit = try w.control.portalExplain(
            p.dana, requestID: "req-waf", exposure: { _ in PortalExposure(exposure: .detailed, revealsOperatorDetail: true) })
        #expect(explicit.detail?.contains("1' or 1=1") == true)
    }

    /// The developer's view is built from the record's fields: caller-chosen text is never
    /// rewritten by looking names up in the store (which told which admin names exist), a
    /// `minimal` route shows only its reason, and shadow-mode steps never show.
    @Test(arguments: StoreKind.allCases) func theExplanationTellsNoNamesAndNoMoreThanTheProblemBody(_ kind: StoreKind) throws {
        let p = try Portal(kind)
        let w = p.w
        func waf(_ id: String, _ field: String) -> CallRecord {
            Self.record(
                id, time: w.clock.now, application: p.dana.applicationID, status: 403, reason: "waf_blocked",
                detail: "GET /payments/1 scored 5: 942100 SQL injection in \(field)", required: ["anomaly score below 5"],
                presented: ["\(field) scored 5", "tenant globex"], check: "waf", type: "waf")
        }
        var shadowed = Self.record("req-shadow", time: w.clock.now, application: p.dana.applicationID, status: 429, reason: "rate_limited")
        shadowed.trace.entries.insert(
            TraceEntry(check: "trial-waf", type: "waf", mode: .shadow, outcome: .shadowDeny, note: "would deny", reason: nil, micros: 1),
            at: 1)
        try w.temp.insertCalls([waf("req-bob", "query.x by bob"), waf("req-zed", "query.x by zed"), shadowed])
        let explicit = PortalExposure(exposure: .detailed, revealsOperatorDetail: true)
        // bob is an admin user, zed is nobody: the two explanations differ only by the name.
        let bob = try w.control.portalExplain(p.dana, requestID: "req-bob", exposure: { _ in explicit })
        let zed = try w.control.portalExplain(p.dana, requestID: "req-zed", exposure: { _ in explicit })
        #expect(bob.detail?.contains("query.x by bob") == true && bob.presented == ["query.x by bob scored 5", "tenant globex"])
        #expect(
            bob.text.replacingOccurrences(of: "req-bob", with: "ID").replacingOccurrences(of: "bob", with: "NAME")
                == zed.text.replacingOccurrences(of: "req-zed", with: "ID").replacingOccurrences(of: "zed", with: "NAME"))

        // Minimal: the reason; no steps, no deciding check, nothing of the chain in the text.
        let minimal = try w.control.portalExplain(p.dana, requestID: "req-shadow", exposure: { _ in .minimal })
        #expect(minimal.reason == "rate_limited" && minimal.steps.isEmpty && minimal.decidingCheck == nil)
        #expect(!minimal.text.contains("trial-waf") && !minimal.text.contains("api_key"))
        // Detailed: the enforced steps, never the shadow trial.
        let detailed = try w.control.portalExplain(
            p.dana, requestID: "req-shadow", exposure: { _ in PortalExposure(exposure: .detailed, revealsOperatorDetail: false) })
        #expect(detailed.steps.map(\.check) == ["key", "limit"] && !detailed.text.contains("trial-waf"))
    }

    /// Disabling or deleting a developer deletes its portal sessions in the same transaction:
    /// re-enabling the account brings none back.
    @Test(arguments: StoreKind.allCases) func disablingOrDeletingADeveloperEndsItsSessions(_ kind: StoreKind) throws {
        let p = try Portal(kind)
        let w = p.w
        func sessions() throws -> Int {
            try w.temp.database.read {
                try $0.rows("SELECT id FROM web_sessions WHERE kind = 'developer' AND subject = ?", [p.dana.id]).count
            }
        }
        func open() throws {
            try w.temp.database.write {
                try $0.execute(
                    "INSERT INTO web_sessions (id, token_hash, kind, subject, created_at, last_seen_at, expires_at, csrf_secret) VALUES (?, ?, 'developer', ?, ?, ?, ?, ?)",
                    [UUID().uuidString, Data(UUID().uuidString.utf8), p.dana.id, w.clock.now, w.clock.now, w.clock.now + 3600, "s"])
            }
        }
        try open()
        #expect(try sessions() == 1)
        _ = try w.control.setDeveloperStatus(w.opA, "dana@acme.test", status: "disabled")
        #expect(try sessions() == 0)
        _ = try w.control.setDeveloperStatus(w.opA, "dana@acme.test", status: "active")
        try open()
        _ = try w.control.deleteDeveloper(w.opA, "dana@acme.test")
        #expect(try sessions() == 0)
    }

    /// Every developer account has one bcrypt cost (an unknown name is checked against a decoy
    /// of that cost); a taken name is refused before any hash is made; a suspended application's
    /// developers create no keys and apply for nothing.
    @Test(arguments: StoreKind.allCases) func costsNamesAndSuspendedApplications(_ kind: StoreKind) async throws {
        let p = try Portal(kind)
        let w = p.w
        #expect(
            code { try w.control.createDeveloper(w.opA, name: "slow", application: "checkout", password: "long-enough", cost: 5) }
                == .adminInvalidRequest)
        let hashed = Mutex(0)
        func count() -> @Sendable (@escaping @Sendable () throws -> String) async throws -> String {
            { work in
                hashed.withLock { $0 += 1 }
                return try work()
            }
        }
        await #expect(throws: ControlError.self) {
            try await w.control.createDeveloper(
                w.opA, name: "dana@acme.test", application: "checkout", password: "another-one", cost: 4, hashing: count())
        }
        #expect(hashed.withLock { $0 } == 0)
        let made = try await w.control.createDeveloper(
            w.opA, name: "fay", application: "checkout", password: "another-one", cost: 4, hashing: count())
        #expect(made.name == "fay" && hashed.withLock { $0 } == 1)

        _ = try w.control.updateApplication(w.opA, "checkout", status: "suspended")
        #expect(code { try w.control.portalCreateKey(p.dana) } == .adminConflict)
        #expect(code { try w.control.portalApply(p.dana, service: "payments", reason: nil) } == .adminConflict)
        // Reading stays.
        #expect(try w.control.portalKeys(p.dana).isEmpty)
    }
}

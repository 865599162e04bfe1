import Foundation
import GatehousePostgres
import GatehouseTestSupport
import GatehouseChecks
import GatehouseControl
import GatehouseCore
import GatehouseIdentity
import GatehouseStore
import Synchronization
import Testing

/// Where the control plane keeps its tables in a test: the embedded SQLite store, or a cluster's
/// PostgreSQL (a database of its own on the tests' server). The suites below run on both.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// A store in a temporary directory, removed with the value. On PostgreSQL, `store` is what a
/// cluster node keeps locally: the replica the data plane reads (refreshed by `sync()`) and the
/// call-log spool (delivered by `insertCalls`).
final class TempStore: Sendable {
    let dir: String
    let store: SQLiteStore
    let pg: PGStore?
    init(_ kind: StoreKind = .sqlite) throws {
        dir = NSTemporaryDirectory() + "gh-control-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        store = try SQLiteStore(path: dir + "/s.db")
        switch kind {
        case .sqlite: pg = nil
        case .postgres:
            let pg = try PGStore(url: try PostgresServer.sharedServer().newDatabase(), maxConnections: 2)
            try pg.migrate()
            self.pg = pg
        }
    }
    deinit {
        pg?.database.closeConnections()
        try? FileManager.default.removeItem(atPath: dir)
    }

    var database: any SQLDatabase { pg?.database ?? store.sqlDatabase }

    /// Copies the cluster store's replicated tables into the local file (a node's replication).
    func sync() throws {
        guard let pg else { return }
        let r = try pg.replicaRows()
        try store.replaceReplica(r.tables, revision: r.revision, epoch: r.epoch, at: Date().timeIntervalSince1970)
    }

    func revision() throws -> Int64 { try pg?.revision() ?? store.revision() }

    /// Logs records as a gateway does: into the local log, and on PostgreSQL from there (the
    /// spool) to the cluster store.
    func insertCalls(_ records: [CallRecord]) throws {
        guard let pg else { _ = try store.insertCalls(records); return }
        try store.startSpool()
        _ = try store.insertCalls(records)
        let rows = try store.spooledCalls(limit: 1000)
        try pg.deliverCalls(node: "test-node", rows)
        if let last = rows.last { try store.setShippedRow(last["rid"]) }
    }
}

/// A clock the test moves by hand.
final class TestClock: Sendable {
    let value = Mutex<Double>(1_800_000_000)
    var now: Double { value.withLock { $0 } }
    func advance(_ s: Double) { value.withLock { $0 += s } }
}

/// Two tenants, each with an operator, an application and a manual service.
struct World {
    let temp: TempStore
    let clock = TestClock()
    let control: ControlPlane
    let opA: ControlActor
    let opB: ControlActor

    init(_ kind: StoreKind = .sqlite) throws {
        temp = try TempStore(kind)
        let clock = self.clock
        control = ControlPlane(database: temp.database, now: { clock.now })
        for t in ["acme", "globex"] { _ = try control.createTenant(.cli, name: t) }
        opA = ControlActor(name: "ann", role: .operator, tenant: "acme", source: "test")
        opB = ControlActor(name: "bob", role: .operator, tenant: "globex", source: "test")
        _ = try control.createApplication(opA, name: "checkout")
        _ = try control.createApplication(opB, name: "billing")
        _ = try control.createService(opB, name: "payments", approval: "manual")
    }
}

@Suite struct ControlPlaneTests {
    /// A name prefix is matched literally and case-sensitively, as names are stored.
    @Test(arguments: StoreKind.allCases) func aNamePrefixIsLiteral(_ kind: StoreKind) throws {
        let w = try World(kind)
        for n in ["shop-1", "shop-2", "Shop-3", "shopx"] { _ = try w.control.createApplication(.cli, name: n) }
        func names(_ prefix: String) throws -> [String] { try w.control.applications(.cli, namePrefix: prefix).items.map(\.name) }
        #expect(try names("shop-") == ["shop-1", "shop-2"])
        #expect(try names("Shop") == ["Shop-3"])
        #expect(try names("shop*").isEmpty)
        #expect(try names("sho?-1").isEmpty)
        #expect(try names("[s]hop").isEmpty)
    }

    @Test(arguments: StoreKind.allCases) func aManualSubscriptionGoesThroughItsStatesWithEveryTransitionRecorded(_ kind: StoreKind) throws {
        let w = try World(kind)
        let sub = try w.control.apply(w.opA, application: "checkout", service: "payments", reason: "we take card payments")
        #expect(sub.state == "pending")
        // The applicant's tenant cannot approve its own application to another tenant's service.
        #expect(throws: ControlError.self) { try w.control.approve(w.opA, sub.id, opinion: "self-approved") }
        let approved = try w.control.approve(w.opB, sub.id, opinion: "welcome")
        #expect(approved.state == "approved" && approved.actor == "bob")
        let revoked = try w.control.revoke(w.opB, sub.id, opinion: "contract ended")
        #expect(revoked.state == "revoked" && revoked.opinion == "contract ended")
        // Invalid transitions are clear errors.
        do {
            _ = try w.control.approve(w.opB, sub.id, opinion: nil)
            Issue.record("approving a revoked subscription succeeded")
        } catch let e as ControlError {
            #expect(e.code == .subscriptionTransitionInvalid)
            #expect(e.description.contains("is revoked"))
        }
        #expect(throws: ControlError.self) { try w.control.cancel(w.opA, sub.id, reason: nil) }
        let full = try w.control.subscription(w.opA, sub.id)
        #expect(full.history?.map(\.to) == ["pending", "approved", "revoked"])
        #expect(full.history?.map(\.actor) == ["ann", "bob", "bob"])
        #expect(full.history?.first?.reason == "we take card payments")
        // Every transition has its audit entry, the latest cited by the subscription.
        let audit = try w.control.auditEntries(.cli, objectID: sub.id)
        #expect(audit.items.map(\.action) == ["subscription.apply", "subscription.approve", "subscription.revoke"])
        #expect(full.auditEntry == audit.items.last?.id)
        #expect(audit.items.last?.tenants == ["acme", "globex"])
        // A closed subscription can be applied for again.
        let again = try w.control.apply(w.opA, application: "checkout", service: "payments", reason: "new contract")
        #expect(again.id == sub.id && again.state == "pending" && again.opinion == nil)
        // Rejection carries the opinion; cancellation is the applicant's.
        #expect(try w.control.reject(w.opB, sub.id, opinion: "no budget").opinion == "no budget")
        _ = try w.control.apply(w.opA, application: "checkout", service: "payments", reason: nil)
        #expect(try w.control.cancel(w.opA, sub.id, reason: "not needed").state == "cancelled")
    }

    @Test(arguments: StoreKind.allCases) func anAutoServiceApprovesAtOnce(_ kind: StoreKind) throws {
        let w = try World(kind)
        _ = try w.control.createService(w.opB, name: "status", approval: "auto")
        let sub = try w.control.apply(w.opA, application: "checkout", service: "status", reason: nil)
        #expect(sub.state == "approved" && sub.actor == "auto-approval")
    }

    @Test(arguments: StoreKind.allCases) func anApprovalPastItsExpiryIsExpired(_ kind: StoreKind) throws {
        let w = try World(kind)
        let sub = try w.control.apply(w.opA, application: "checkout", service: "payments", reason: nil)
        _ = try w.control.approve(w.opB, sub.id, opinion: nil, expiresAt: w.clock.now + 60)
        #expect(throws: ControlError.self) { try w.control.approve(w.opB, sub.id, opinion: nil, expiresAt: w.clock.now - 1) }
        w.clock.advance(61)
        let read = try w.control.subscription(w.opA, sub.id)
        #expect(read.state == "expired")
        #expect(read.history?.last?.actor == "system")
        #expect(read.history?.last?.from == "approved" && read.history?.last?.to == "expired")
        #expect(throws: ControlError.self) { try w.control.revoke(w.opB, sub.id, opinion: nil) }
    }

    @Test(arguments: StoreKind.allCases) func theAuditLogCannotBeRewritten(_ kind: StoreKind) throws {
        let w = try World(kind)
        let entries = try w.control.auditEntries(.cli)
        #expect(entries.items.count == 5)  // 2 tenants, 2 applications, 1 service
        #expect(throws: (any Error).self) { try w.temp.database.write { try $0.execute("UPDATE audit_log SET actor = 'mallory'") } }
        #expect(throws: (any Error).self) { try w.temp.database.write { try $0.execute("DELETE FROM audit_log") } }
        #expect(try w.control.auditEntries(.cli).items == entries.items)
    }

    @Test(arguments: StoreKind.allCases) func aRefusedOrFailedChangeLeavesNoAuditEntry(_ kind: StoreKind) throws {
        let w = try World(kind)
        let before = try w.control.auditEntries(.cli).items.count
        #expect(throws: ControlError.self) { try w.control.createApplication(w.opA, name: "checkout") }  // exists
        #expect(throws: ControlError.self) { try w.control.createService(w.opA, name: "bad name") }
        let sub = try w.control.apply(w.opA, application: "checkout", service: "payments", reason: nil)
        #expect(throws: ControlError.self) { try w.control.revoke(w.opB, sub.id, opinion: nil) }  // still pending
        #expect(try w.control.auditEntries(.cli).items.count == before + 1)
    }

    @Test(arguments: StoreKind.allCases) func aScopedOperatorSeesAndChangesOnlyItsTenant(_ kind: StoreKind) throws {
        let w = try World(kind)
        #expect(try w.control.applications(w.opA).items.map(\.name) == ["checkout"])
        #expect(try w.control.applications(.cli).items.map(\.name) == ["billing", "checkout"])
        #expect(try w.control.tenants(w.opA).items.map(\.name) == ["acme"])
        for attempt in [
            { _ = try w.control.application(w.opA, "billing") },
            { _ = try w.control.application(w.opA, "no-such-app") },
            { _ = try w.control.updateApplication(w.opA, "billing", status: "suspended") },
            { _ = try w.control.createKey(w.opA, application: "billing") },
        ] as [() throws -> Void] {
            do {
                try attempt()
                Issue.record("a cross-tenant operation succeeded")
            } catch let e as ControlError {
                #expect(e.code == .adminTenantMismatch)
                #expect(!e.description.contains("globex"))
            }
        }
        // Naming another tenant in a body is refused too.
        #expect(throws: ControlError.self) { try w.control.createApplication(w.opA, name: "sneaky", tenant: "globex") }
        let key = try w.control.createKey(w.opB, application: "billing")
        #expect(try w.control.keys(w.opA).items.isEmpty)
        #expect(throws: ControlError.self) { try w.control.revokeKey(w.opA, id: key.info.id) }
        #expect(try w.control.auditEntries(w.opA).items.allSatisfy { $0.tenants.contains("acme") })
    }

    @Test(arguments: StoreKind.allCases) func rolesLimitWhatAnActorMayDoAndNoOneGrantsMoreThanItHas(_ kind: StoreKind) throws {
        let w = try World(kind)
        let viewer = ControlActor(name: "vic", role: .viewer, source: "test")
        do {
            _ = try w.control.createApplication(viewer, name: "x")
            Issue.record("a viewer created an application")
        } catch let e as ControlError {
            #expect(e.code == .adminRoleInsufficient)
            #expect(e.denial.required == ["role operator"] && e.denial.presented == ["role viewer"])
        }
        let admin = ControlActor(name: "ada", role: .admin, source: "test")
        #expect(throws: ControlError.self) { try w.control.createAdminUser(admin, name: "eve", role: .owner, cost: 4) }
        _ = try w.control.createAdminUser(admin, name: "olga", role: .operator, cost: 4)
        let scopedAdmin = ControlActor(name: "sam", role: .admin, tenant: "acme", source: "test")
        #expect(throws: ControlError.self) {
            try w.control.createAdminUser(scopedAdmin, name: "gus", role: .operator, tenant: "globex", cost: 4)
        }
        #expect(throws: ControlError.self) { try w.control.createTenant(scopedAdmin, name: "mine") }
    }

    @Test(arguments: StoreKind.allCases) func adminTokensAreStoredAsHashesAndStopWorkingWhenRevoked(_ kind: StoreKind) throws {
        let w = try World(kind)
        _ = try w.control.createAdminUser(.cli, name: "alice", role: .admin, password: "correct horse", cost: 4)
        let created = try w.control.createAdminToken(.cli, user: "alice")
        #expect(created.token.hasPrefix("gha_"))
        #expect(try w.control.authenticate(token: created.token, source: "t").name == "alice")
        #expect(try w.control.authenticate(user: "alice", password: "correct horse", source: "t").role == .admin)
        #expect(throws: ControlError.self) { try w.control.authenticate(user: "alice", password: "wrong", source: "t") }
        #expect(throws: ControlError.self) { try w.control.authenticate(user: "nobody", password: "wrong", source: "t") }
        let stored = try w.temp.database.read { try $0.rows("SELECT hash FROM admin_tokens", []).map { $0["hash"] as Data } }
        #expect(stored.count == 1 && !stored[0].contains(Data(created.token.utf8)))
        let audit = try w.control.auditEntries(.cli).items.map { ($0.before ?? "") + ($0.after ?? "") }.joined()
        #expect(!audit.contains(created.token) && !audit.contains("correct horse"))
        _ = try w.control.revokeAdminToken(.cli, id: created.info.id)
        #expect(throws: ControlError.self) { try w.control.authenticate(token: created.token, source: "t") }
    }

    @Test(arguments: StoreKind.allCases) func pagesFollowTheirCursorAndAForgedCursorIsRefusedOrHarmless(_ kind: StoreKind) throws {
        let w = try World(kind)
        for i in 0..<7 { _ = try w.control.createApplication(w.opA, name: "app\(i)") }
        var names: [String] = []
        var page = PageRequest(limit: 3)
        while true {
            let p = try w.control.applications(w.opA, page: page)
            names += p.items.map(\.name)
            guard let next = p.nextCursor else { break }
            page.cursor = next
        }
        #expect(names == (0..<7).map { "app\($0)" } + ["checkout"])
        #expect(throws: ControlError.self) { try w.control.applications(w.opA, page: PageRequest(limit: 3, cursor: "%%%not-base64")) }
        // A cursor made up to point anywhere still reads only the actor's tenant.
        let forged = Data("a".utf8).base64EncodedString()
        #expect(try w.control.applications(w.opA, page: PageRequest(limit: 50, cursor: forged)).items.allSatisfy { $0.tenant == "acme" })
        #expect(throws: ControlError.self) { try w.control.applications(w.opA, page: PageRequest(limit: 100_000)) }
    }
}

@Suite struct SubscriptionCheckTests {
    func decide(_ w: World, _ directory: StoreDirectory, app: String) -> Verdict {
        do { try w.temp.sync() } catch { Issue.record("the replica could not be copied: \(error)") }
        directory.refresh()
        let c = directory.consumer(named: app)!
        var request = PolicyRequest(method: "GET", path: "/pay")
        request.principal = Principal(method: "api_key", consumerID: c.id, consumerName: c.name)
        request.now = w.clock.now
        return SubscriptionCheck(id: "sub", service: "payments", directory: directory).evaluate(&request)
    }

    @Test(arguments: StoreKind.allCases) func aTokenSubjectIsNoApplication(_ kind: StoreKind) throws {
        let w = try World(kind)
        try w.temp.sync()
        let directory = StoreDirectory(store: w.temp.store, refreshInterval: 3600)
        var request = PolicyRequest(method: "GET", path: "/pay")
        request.principal = Principal(method: "jwt", consumerID: "jwt https://issuer.example|svc", subject: "svc")
        guard case .deny(let d) = SubscriptionCheck(id: "sub", service: "payments", directory: directory).evaluate(&request) else {
            Issue.record("a token subject passed the subscription check")
            return
        }
        #expect(d.code == .subscriptionRequired && d.detail.contains("is not a registered application"))
    }

    @Test(arguments: StoreKind.allCases) func aMappedTokenSubjectHoldsItsApplicationsSubscriptions(_ kind: StoreKind) throws {
        let w = try World(kind)
        let directory = StoreDirectory(store: w.temp.store, refreshInterval: 3600)
        func decide() -> Verdict {
            do { try w.temp.sync() } catch { Issue.record("the replica could not be copied: \(error)") }
            directory.refresh()
            var request = PolicyRequest(method: "GET", path: "/pay", now: w.clock.now)
            request.principal = Principal(
                method: "jwt",
                consumerID: Principal.jwtConsumerID(issuer: "https://id.acme", subject: "svc|1", policy: "jwt", fingerprint: "f"),
                subject: "svc|1")
            return SubscriptionCheck(id: "sub", service: "payments", directory: directory).evaluate(&request)
        }
        // Another tenant cannot make its token act as acme's application.
        #expect(throws: ControlError.self) {
            try w.control.addJWTSubject(w.opB, application: "checkout", issuer: "https://id.acme", subject: "svc|1")
        }
        // Nor can the application's own tenant: a token's subject is not any one tenant's to claim.
        #expect(throws: ControlError.self) {
            try w.control.addJWTSubject(w.opA, application: "checkout", issuer: "https://id.acme", subject: "svc|1")
        }
        _ = try w.control.addJWTSubject(.cli, application: "checkout", issuer: "https://id.acme", subject: "svc|1")
        #expect(throws: ControlError.self) {
            try w.control.addJWTSubject(.cli, application: "checkout", issuer: "https://id.acme", subject: "svc|1")
        }
        guard case .deny(let none) = decide() else { Issue.record("allowed without a subscription"); return }
        #expect(none.code == .subscriptionRequired && none.detail.contains("application checkout has no subscription"))
        let sub = try w.control.apply(w.opA, application: "checkout", service: "payments", reason: nil)
        _ = try w.control.approve(w.opB, sub.id, opinion: nil)
        #expect(code(decide()) == nil)
        // Suspending the application stops its token callers too.
        _ = try w.control.updateApplication(w.opA, "checkout", status: "suspended")
        #expect(code(decide()) == .consumerSuspended)
        _ = try w.control.updateApplication(w.opA, "checkout", status: "active")
        try w.control.removeJWTSubject(w.opA, application: "checkout", issuer: "https://id.acme", subject: "svc|1")
        guard case .deny(let unmapped) = decide() else { Issue.record("allowed after the mapping was removed"); return }
        #expect(unmapped.detail.contains("is not a registered application"))
        #expect(try w.control.auditEntries(w.opA, action: "application.jwt_subject").items.count == 2)
    }

    func code(_ v: Verdict) -> ReasonCode? { if case .deny(let d) = v { return d.code } else { return nil } }

    /// A tenant-scoped view of the call log keys on the application id the gateway recorded: an
    /// application named after another caller's token subject sees none of that caller's calls.
    @Test(arguments: StoreKind.allCases) func aScopedCallLogFollowsApplicationIDsNotNames(_ kind: StoreKind) throws {
        let w = try World(kind)
        _ = try w.control.createApplication(w.opA, name: "svc-1")
        let checkout = try w.control.application(w.opA, "checkout")
        func call(_ id: String, consumer: String, application: String?) -> CallRecord {
            CallRecord(
                requestID: id, time: w.clock.now, route: "r", consumer: consumer, keyID: nil, client: "10.0.0.1", method: "GET",
                path: "/r?secret=x", host: nil, status: 200, upstreamMillis: nil, totalMillis: 1, decidingCheck: nil, reason: nil,
                detail: nil, hint: nil, required: [], presented: [], trace: DecisionTrace(), upstreamTarget: nil,
                applicationID: application)
        }
        try w.temp.insertCalls([
            call("jwt-call", consumer: "svc-1", application: nil), call("key-call", consumer: "checkout", application: checkout.id),
        ])
        #expect(try w.control.calls(w.opA).items.map(\.requestID) == ["key-call"])
        #expect(try w.control.calls(w.opB).items.isEmpty)
        #expect(throws: ControlError.self) { try w.control.call(w.opA, requestID: "jwt-call") }
        #expect(try w.control.call(w.opA, requestID: "key-call").record.requestID == "key-call")
        #expect(try w.control.calls(.cli).items.count == 2)
    }

    /// The call log pages newest first and the audit log oldest first, each by a cursor that
    /// must read as a row number.
    @Test(arguments: StoreKind.allCases) func callAndAuditPagesFollowTheirCursors(_ kind: StoreKind) throws {
        let w = try World(kind)
        let records = (1...3).map { i in
            CallRecord(
                requestID: "r\(i)", time: w.clock.now + Double(i), route: "r", consumer: nil, keyID: nil, client: nil, method: "GET",
                path: "/r", host: nil, status: 200, upstreamMillis: nil, totalMillis: 1, decidingCheck: nil, reason: nil, detail: nil,
                hint: nil, required: [], presented: [], trace: DecisionTrace(), upstreamTarget: nil)
        }
        try w.temp.insertCalls(records)
        let first = try w.control.calls(.cli, page: PageRequest(limit: 2))
        #expect(first.items.map(\.requestID) == ["r3", "r2"])
        let second = try w.control.calls(.cli, page: PageRequest(limit: 2, cursor: first.nextCursor))
        #expect(second.items.map(\.requestID) == ["r1"])
        #expect(second.nextCursor == nil)

        let all = try w.control.auditEntries(.cli).items.map(\.id)
        #expect(all.count >= 3)
        let a = try w.control.auditEntries(.cli, page: PageRequest(limit: 2))
        #expect(a.items.map(\.id) == Array(all.prefix(2)))
        let b = try w.control.auditEntries(.cli, page: PageRequest(limit: 2, cursor: a.nextCursor))
        #expect(b.items.map(\.id) == Array(all.dropFirst(2).prefix(2)))
        let notANumber = Data("abc".utf8).base64EncodedString()
        #expect(throws: ControlError.self) { try w.control.auditEntries(.cli, page: PageRequest(cursor: notANumber)) }
        #expect(throws: ControlError.self) { try w.control.calls(.cli, page: PageRequest(cursor: notANumber)) }
    }

    /// A revocation or a rejection stands: applying again reopens the subscription for a
    /// decision, even on a service that approves automatically.
    @Test(arguments: StoreKind.allCases) func reapplyingAfterARevocationWaitsForTheServicesDecision(_ kind: StoreKind) throws {
        let w = try World(kind)
        _ = try w.control.createService(w.opB, name: "maps", approval: "auto")
        let sub = try w.control.apply(w.opA, application: "checkout", service: "maps", reason: nil)
        #expect(sub.state == "approved")
        _ = try w.control.revoke(w.opB, sub.id, opinion: "contract ended")
        #expect(try w.control.apply(w.opA, application: "checkout", service: "maps", reason: "please").state == "pending")
    }

    @Test(arguments: StoreKind.allCases) func eachStateIsItsOwnExplainedDenialAndChangesBumpTheRevision(_ kind: StoreKind) throws {
        let w = try World(kind)
        let directory = StoreDirectory(store: w.temp.store, refreshInterval: 3600)
        #expect(code(decide(w, directory, app: "checkout")) == .subscriptionRequired)
        let rev = try w.temp.revision()
        let sub = try w.control.apply(w.opA, application: "checkout", service: "payments", reason: "cards")
        #expect(try w.temp.revision() > rev)
        guard case .deny(let pending) = decide(w, directory, app: "checkout") else { Issue.record("allowed while pending"); return }
        #expect(pending.code == .subscriptionPending)
        #expect(pending.detail.contains("tenant globex"))
        _ = try w.control.approve(w.opB, sub.id, opinion: "ok", expiresAt: w.clock.now + 30)
        #expect(code(decide(w, directory, app: "checkout")) == nil)
        _ = try w.control.revoke(w.opB, sub.id, opinion: "contract ended")
        guard case .deny(let revoked) = decide(w, directory, app: "checkout") else { Issue.record("allowed after revocation"); return }
        #expect(revoked.code == .subscriptionRevoked)
        #expect(revoked.detail.contains("by bob") && revoked.detail.contains("'contract ended'"))
        #expect(revoked.auditEntry == (try w.control.subscription(.cli, sub.id)).auditEntry)
        _ = try w.control.apply(w.opA, application: "checkout", service: "payments", reason: nil)
        _ = try w.control.reject(w.opB, sub.id, opinion: "no budget")
        guard case .deny(let rejected) = decide(w, directory, app: "checkout") else { Issue.record("allowed after rejection"); return }
        #expect(rejected.code == .subscriptionRejected && rejected.detail.contains("'no budget'"))
        _ = try w.control.apply(w.opA, application: "checkout", service: "payments", reason: nil)
        _ = try w.control.approve(w.opB, sub.id, opinion: nil, expiresAt: w.clock.now + 30)
        w.clock.advance(31)
        #expect(code(decide(w, directory, app: "checkout")) == .subscriptionExpired)
    }
}

import Foundation
import GatehouseAdmin
import GatehouseConsole
import GatehouseControl
import GatehouseCore
import GatehouseStore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import GatehouseConsole

/// The console's pages, as admins of different roles and tenants see them.
@Suite(.serialized) struct ConsolePagesTests {
    static func record(
        _ id: String, time: Double, route: String, status: Int, reason: String?, application: ApplicationRef?
    )
        -> CallRecord
    {
        var entries = [TraceEntry(check: "key", type: "api_key", mode: .enforce, outcome: .allow, note: "key k1", reason: nil, micros: 3)]
        if let reason {
            entries.append(
                TraceEntry(
                    check: "subs", type: "subscription", mode: .enforce, outcome: .deny, note: "no approved subscription",
                    reason: ReasonCode(reason), micros: 2))
        }
        return CallRecord(
            requestID: id, time: time, route: route, consumer: application?.name, keyID: nil, client: "10.0.0.1", method: "GET",
            path: "/\(route)", host: nil, status: status, upstreamMillis: nil, totalMillis: 2, decidingCheck: reason == nil ? nil : "subs",
            reason: reason, detail: reason == nil ? nil : "GET /\(route) needs an approved subscription to payments", hint: nil,
            required: reason == nil ? [] : ["subscription to payments"], presented: [], trace: DecisionTrace(entries: entries),
            upstreamTarget: nil, applicationID: application?.id)
    }

    struct ApplicationRef {
        var id: String
        var name: String
    }

    @Test func everyPageCarriesTheSecurityHeadersAndNoInlineCode() async throws {
        let w = try ConsoleWorld()
        try await w.app().test(.router) { client in
            let browser = try await Browser.signIn(client, "root")
            for (label, path) in ConsoleRoutes.navigation {
                let r = try await client.execute(uri: path, method: .get, headers: browser.headers)
                #expect(r.status == .ok, "\(label): \(r.status)")
                ConsoleTests.expectSecurityHeaders(r, label)
                #expect(r.headers[.cacheControl] == "no-store", "\(label)")
                ConsoleTests.expectNoInlineCode(r.text, label)
                // The navigation marks the page.
                #expect(r.text.contains("<a href=\"\(path)\" aria-current=\"page\">\(label)</a>"), "\(label)")
            }
        }
    }

    @Test func theRequestPageExplainsADenialAsGatehouseExplainDoes() async throws {
        let w = try ConsoleWorld()
        let checkout = try w.control.application(.cli, "checkout")
        let t = w.clock.now - 60
        let denied = Self.record(
            "req-denied-1", time: t, route: "pay", status: 403, reason: "subscription_required",
            application: ApplicationRef(id: checkout.id, name: checkout.name))
        _ = try w.store.insertCalls([
            Self.record("req-ok-1", time: t - 5, route: "pay", status: 200, reason: nil, application: nil), denied,
        ])
        try await w.app().test(.router) { client in
            let browser = try await Browser.signIn(client, "root")
            let list = try await client.execute(uri: "/console/calls?reason=subscription_required", method: .get, headers: browser.headers)
            #expect(list.status == .ok)
            #expect(list.text.contains("href=\"/console/calls/req-denied-1\""))
            #expect(!list.text.contains("req-ok-1"))
            let page = try await client.execute(uri: "/console/calls/req-denied-1", method: .get, headers: browser.headers)
            #expect(page.status == .ok)
            // The text `gatehouse explain` prints, HTML-escaped.
            let expected = ExplainText.render(denied).replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(
                of: "<", with: "&lt;"
            )
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&#39;")
            #expect(page.text.contains("<pre class=\"explain\" id=\"explanation\">\(expected)</pre>"))
            #expect(page.text.contains("DENIED 403 subscription_required"))
            let missing = try await client.execute(uri: "/console/calls/nope", method: .get, headers: browser.headers)
            #expect(missing.status == .notFound)
            #expect(missing.text.contains("id=\"refusal-reason\">admin_not_found<"))
        }
    }

    @Test func theCallLogPagesWithTheAPIsCursorAndKeepsItsFilters() async throws {
        let w = try ConsoleWorld()
        let t = w.clock.now - 300
        _ = try w.store.insertCalls(
            (0..<5).map {
                Self.record("r\($0)", time: t + Double($0), route: "pay", status: 403, reason: "subscription_required", application: nil)
            }
                + [Self.record("other", time: t, route: "orders", status: 200, reason: nil, application: nil)])
        try await w.app().test(.router) { client in
            let browser = try await Browser.signIn(client, "root")
            var uri = "/console/calls?route=pay&limit=2"
            var seen: [String] = []
            for _ in 0..<5 {
                let r = try await client.execute(uri: uri, method: .get, headers: browser.headers)
                #expect(r.status == .ok)
                let ids = r.text.components(separatedBy: "href=\"/console/calls/").dropFirst().map { String($0.prefix { $0 != "\"" }) }
                seen += ids
                guard let next = r.text.components(separatedBy: "id=\"next-page\" href=\"").dropFirst().first?.prefix(while: { $0 != "\"" })
                else { break }
                uri = String(next).replacingOccurrences(of: "&amp;", with: "&")
                #expect(uri.contains("route=pay") && uri.contains("limit=2"))
            }
            #expect(seen == ["r4", "r3", "r2", "r1", "r0"])
            // since / until take durations before now.
            let recent = try await client.execute(uri: "/console/calls?since=1m", method: .get, headers: browser.headers)
            #expect(!recent.text.contains("href=\"/console/calls/r0\""))
            let old = try await client.execute(uri: "/console/calls?until=1m&route=pay", method: .get, headers: browser.headers)
            #expect(old.text.contains("href=\"/console/calls/r0\""))
            let bad = try await client.execute(uri: "/console/calls?since=yesterday", method: .get, headers: browser.headers)
            #expect(bad.status == .badRequest)
        }
    }

    @Test func anOperatorApprovesFromTheQueueWithAnOpinion() async throws {
        let w = try ConsoleWorld()
        let sub = try w.control.apply(.cli, application: "checkout", service: "payments", reason: "card payments")
        try await w.app().test(.router) { client in
            let browser = try await Browser.signIn(client, "root")
            let page = try await client.execute(uri: "/console/subscriptions", method: .get, headers: browser.headers)
            #expect(page.text.contains("id=\"pending-\(sub.id)\""))
            let token = try #require(Browser.csrf(page.text))
            let r = try await client.execute(
                uri: "/console/subscriptions/\(sub.id)/approve", method: .post, headers: browser.form(),
                body: Browser.body([("csrf", token), ("opinion", "welcome aboard")]))
            #expect(r.status == .seeOther)
            #expect(r.headers[.location] == "/console/subscriptions")
            let now = try w.control.subscription(.cli, sub.id)
            #expect(now.state == "approved" && now.opinion == "welcome aboard" && now.actor == "root")
            let after = try await client.execute(uri: "/console/subscriptions", method: .get, headers: browser.headers)
            #expect(!after.text.contains("id=\"pending-\(sub.id)\""))
            // The audit log names who did it.
            let audit = try await client.execute(uri: "/console/audit?action=subscription.approve", method: .get, headers: browser.headers)
            #expect(audit.text.contains("root (owner)"))
            // Deciding again is the control plane's conflict, explained.
            let again = try await client.execute(
                uri: "/console/subscriptions/\(sub.id)/reject", method: .post, headers: browser.form(),
                body: Browser.body([("csrf", token), ("opinion", "changed my mind")]))
            #expect(again.status == .conflict)
            #expect(again.text.contains("id=\"refusal-reason\">subscription_transition_invalid<"))
        }
    }

    @Test func roleAndTenantRefusalsAreExplainedPages() async throws {
        let w = try ConsoleWorld()
        let sub = try w.control.apply(.cli, application: "billing", service: "payments", reason: "invoices")
        try await w.app().test(.router) { client in
            // A viewer may read, not manage admin users, nor decide.
            let vera = try await Browser.signIn(client, "vera")
            let users = try await client.execute(uri: "/console/admin-users", method: .get, headers: vera.headers)
            #expect(users.status == .forbidden)
            #expect(users.text.contains("id=\"refusal-reason\">admin_role_insufficient<"))
            #expect(users.text.contains("role admin"))
            ConsoleTests.expectSecurityHeaders(users, "the 403 page")
            let overview = try await client.execute(uri: "/console/overview", method: .get, headers: vera.headers)
            #expect(overview.status == .ok)
            let veraPage = try await client.execute(uri: "/console/subscriptions", method: .get, headers: vera.headers)
            let veraToken = try #require(Browser.csrf(veraPage.text))
            let decide = try await client.execute(
                uri: "/console/subscriptions/\(sub.id)/approve", method: .post, headers: vera.form(),
                body: Browser.body([("csrf", veraToken)]))
            #expect(decide.status == .forbidden)
            #expect(decide.text.contains("id=\"refusal-reason\">admin_role_insufficient<"))

            // An operator of acme sees acme's objects only, and cannot decide on globex's service.
            let ann = try await Browser.signIn(client, "ann")
            let apps = try await client.execute(uri: "/console/applications", method: .get, headers: ann.headers)
            #expect(apps.text.contains(">checkout<") && !apps.text.contains(">billing<"))
            let annPage = try await client.execute(uri: "/console/subscriptions", method: .get, headers: ann.headers)
            #expect(!annPage.text.contains("id=\"pending-\(sub.id)\""))
            let token = try #require(Browser.csrf(annPage.text))
            let r = try await client.execute(
                uri: "/console/subscriptions/\(sub.id)/approve", method: .post, headers: ann.form(), body: Browser.body([("csrf", token)]))
            #expect(r.status == .forbidden)
            #expect(r.text.contains("id=\"refusal-reason\">admin_tenant_mismatch<"))
            #expect(try w.control.subscription(.cli, sub.id).state == "pending")
        }
    }

    @Test func aTenantOperatorSeesItsTenantsCallsOnly() async throws {
        let w = try ConsoleWorld()
        let checkout = try w.control.application(.cli, "checkout")
        let billing = try w.control.application(.cli, "billing")
        let t = w.clock.now - 60
        _ = try w.store.insertCalls([
            Self.record(
                "acme-1", time: t, route: "pay", status: 403, reason: "subscription_required",
                application: .init(id: checkout.id, name: "checkout")),
            Self.record(
                "globex-1", time: t, route: "pay", status: 403, reason: "subscription_required",
                application: .init(id: billing.id, name: "billing")),
        ])
        try await w.app().test(.router) { client in
            let ann = try await Browser.signIn(client, "ann")
            let calls = try await client.execute(uri: "/console/calls", method: .get, headers: ann.headers)
            #expect(calls.text.contains("acme-1") && !calls.text.contains("globex-1"))
            let other = try await client.execute(uri: "/console/calls/globex-1", method: .get, headers: ann.headers)
            #expect(other.status == .forbidden)
            #expect(other.text.contains("admin_tenant_mismatch"))
            let overview = try await client.execute(uri: "/console/overview?period=1h", method: .get, headers: ann.headers)
            #expect(overview.text.contains("id=\"fig-denied\">1<"))
        }
    }
}

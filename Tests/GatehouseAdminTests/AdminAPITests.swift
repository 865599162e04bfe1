import Foundation
import GatehouseAdmin
import GatehouseControl
import GatehouseCore
import GatehouseStore
import Hummingbird
import HummingbirdTesting
import Testing

/// The admin API driven through Hummingbird's router test client (no socket).
@Suite struct AdminAPITests {
    struct Fixture {
        let world: World
        let api: AdminAPI
        let ownerToken: String
        let operatorAToken: String
        init(_ kind: StoreKind = .sqlite) throws {
            world = try World(kind)
            api = AdminAPI(control: world.control)
            _ = try world.control.createAdminUser(.cli, name: "root", role: .owner, cost: 4)
            _ = try world.control.createAdminUser(.cli, name: "ann", role: .operator, tenant: "acme", password: "ann-password", cost: 4)
            ownerToken = try world.control.createAdminToken(.cli, user: "root").token
            operatorAToken = try world.control.createAdminToken(.cli, user: "ann").token
        }
        var app: some ApplicationProtocol { Application(router: api.router().router) }
    }

    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]) ?? [:]
    }

    @Test func everyRouteIsInTheOpenAPIDocumentAndEveryOperationIsARoute() throws {
        let api = AdminAPI(control: try World().control)
        let registered = Set(api.router().routes.map { "\($0.method) \($0.path)" })
        let doc = try #require(try JSONSerialization.jsonObject(with: AdminAPI.openAPIDocument) as? [String: Any])
        #expect(doc["openapi"] as? String == "3.1.0")
        let paths = try #require(doc["paths"] as? [String: [String: Any]])
        var documented = Set<String>()
        for (path, item) in paths {
            for method in ["get", "post", "put", "patch", "delete"] where item[method] != nil {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        #expect(registered.subtracting(documented).sorted() == [], "routes missing from openapi.json")
        #expect(documented.subtracting(registered).sorted() == [], "documented operations with no route")
    }

    @Test func theOpenAPIDocumentValidates() throws {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        probe.arguments = ["python3", "-c", "import openapi_spec_validator"]
        probe.standardError = FileHandle.nullDevice
        try probe.run()
        probe.waitUntilExit()
        if probe.terminationStatus != 0 {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record(
                    "python3 -m openapi_spec_validator is missing (pip install openapi-spec-validator==0.9.0, listed in .ci/requirements.txt)"
                )
            } else {
                print(
                    "skipped: the OpenAPI document was not validated: python3 module openapi_spec_validator is missing (pip install openapi-spec-validator==0.9.0)"
                )
            }
            return
        }
        let file = NSTemporaryDirectory() + "gh-openapi-\(UUID().uuidString.prefix(8)).json"
        try AdminAPI.openAPIDocument.write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-m", "openapi_spec_validator", file]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(text)")
    }

    @Test(arguments: StoreKind.allCases) func aRequestWithoutCredentialsIsAnExplainedProblem(_ kind: StoreKind) async throws {
        let f = try Fixture(kind)
        try await f.app.test(.router) { client in
            try await client.execute(uri: "/admin/v1/applications", method: .get) { r in
                #expect(r.status == .unauthorized)
                #expect(r.headers[.contentType] == "application/problem+json")
                #expect(r.headers[.wwwAuthenticate]?.contains("Bearer") == true)
                let body = Self.json(r.body)
                #expect(body["reason"] as? String == "admin_unauthenticated")
                #expect(body["request_id"] as? String != nil && body["hint"] as? String != nil)
            }
            try await client.execute(uri: "/admin/v1/applications", method: .get, headers: [.authorization: "Bearer gha_made-up"]) { r in
                #expect(r.status == .unauthorized)
            }
            try await client.execute(uri: "/admin/v1/nothing-here", method: .get, headers: [.authorization: "Bearer \(f.ownerToken)"]) {
                r in
                #expect(r.status == .notFound)
                #expect(Self.json(r.body)["reason"] as? String == "admin_not_found")
            }
        }
    }

    /// `GET /admin/v1/overview`: the last period's figures from the rollups, scoped to the
    /// caller's tenant; a period that is not a duration is an explained 400.
    @Test func theOverviewIsServedAndScoped() async throws {
        let f = try Fixture()
        let checkout = try f.world.control.application(.cli, "checkout")
        let billing = try f.world.control.application(.cli, "billing")
        let now = Date().timeIntervalSince1970
        try f.world.temp.insertCalls(
            (0..<5).map { OverviewTests.call("a\($0)", time: now - 120, route: "pay", status: 200, application: checkout.id, millis: 2) }
                + (0..<3).map {
                    OverviewTests.call(
                        "b\($0)", time: now - 60, route: "pay", status: 403, reason: "subscription_required", application: billing.id,
                        millis: 1)
                })
        try await f.app.test(.router) { client in
            try await client.execute(
                uri: "/admin/v1/overview?period=1h&bucket=5m", method: .get, headers: [.authorization: "Bearer \(f.ownerToken)"]
            ) { r in
                #expect(r.status == .ok)
                let body = Self.json(r.body)
                #expect(body["requests"] as? Int == 8 && body["denied"] as? Int == 3 && body["allowed"] as? Int == 5)
                #expect((body["series"] as? [Any])?.count == 12 || (body["series"] as? [Any])?.count == 13)
                let top = body["top_denied_applications"] as? [[String: Any]]
                #expect(top?.first?["name"] as? String == "billing" && top?.first?["denied"] as? Int == 3)
            }
            // ann is an operator of acme: checkout's calls only.
            try await client.execute(
                uri: "/admin/v1/overview?period=1h", method: .get, headers: [.authorization: "Bearer \(f.operatorAToken)"]
            ) { r in
                let body = Self.json(r.body)
                #expect(body["requests"] as? Int == 5 && body["denied"] as? Int == 0)
            }
            try await client.execute(
                uri: "/admin/v1/overview?period=soon", method: .get, headers: [.authorization: "Bearer \(f.ownerToken)"]
            ) { r in
                #expect(r.status == .badRequest)
                #expect(Self.json(r.body)["reason"] as? String == "admin_invalid_request")
                #expect((Self.json(r.body)["detail"] as? String)?.contains("period \"soon\" is not a duration") == true)
            }
        }
    }

    /// Developer accounts through `/admin/v1/developers`: created by an operator of the
    /// application's tenant, invisible to others, disabled and deleted; the password is never
    /// answered.
    @Test func developerAccountsAreManagedThroughTheAPI() async throws {
        let f = try Fixture()
        _ = try f.world.control.createAdminUser(.cli, name: "bob", role: .operator, tenant: "globex", cost: 4)
        let bobToken = try f.world.control.createAdminToken(.cli, user: "bob").token
        @Sendable func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }
        try await f.app.test(.router) { client in
            let ann: HTTPFields = [.authorization: "Bearer \(f.operatorAToken)", .contentType: "application/json"]
            let bob: HTTPFields = [.authorization: "Bearer \(bobToken)", .contentType: "application/json"]
            var id = ""
            try await client.execute(
                uri: "/admin/v1/developers", method: .post, headers: ann,
                body: body(#"{"name": "dana@acme.test", "application": "checkout", "password": "dana-secret-1"}"#)
            ) { r in
                #expect(r.status == .created)
                let b = Self.json(r.body)
                #expect(b["application"] as? String == "checkout" && b["status"] as? String == "active" && b["tenant"] as? String == "acme")
                #expect(!String(buffer: r.body).contains("dana-secret") && b["password_hash"] == nil)
                id = b["id"] as? String ?? ""
            }
            try await client.execute(
                uri: "/admin/v1/developers", method: .post, headers: ann,
                body: body(#"{"name": "dee", "application": "checkout", "password": "short"}"#)
            ) { r in
                #expect(r.status == .badRequest && Self.json(r.body)["reason"] as? String == "admin_invalid_request")
            }
            // Another tenant's operator: not in its list, and the same refusal as for a missing id.
            try await client.execute(uri: "/admin/v1/developers", method: .get, headers: bob) { r in
                #expect((Self.json(r.body)["items"] as? [Any])?.isEmpty == true)
            }
            try await client.execute(
                uri: "/admin/v1/developers/\(id)", method: .patch, headers: bob, body: body(#"{"status": "disabled"}"#)
            ) {
                r in
                #expect(r.status == .forbidden && Self.json(r.body)["reason"] as? String == "admin_tenant_mismatch")
            }
            try await client.execute(uri: "/admin/v1/developers?application=checkout", method: .get, headers: ann) { r in
                #expect((Self.json(r.body)["items"] as? [[String: Any]])?.map { $0["name"] as? String } == ["dana@acme.test"])
            }
            try await client.execute(
                uri: "/admin/v1/developers/\(id)", method: .patch, headers: ann, body: body(#"{"status": "disabled"}"#)
            ) {
                r in
                #expect(r.status == .ok && Self.json(r.body)["status"] as? String == "disabled")
            }
            try await client.execute(uri: "/admin/v1/developers/dana@acme.test", method: .delete, headers: ann) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/admin/v1/developers/\(id)", method: .get, headers: ann) { r in
                #expect(r.status == .forbidden)
            }
        }
        #expect(
            try f.world.control.auditEntries(.cli, action: "developer.").items.map(\.action) == [
                "developer.create", "developer.disable", "developer.delete",
            ])
    }

    /// `GET /admin/v1/calls?since=&until=`: the calls of a period (as the console's call log).
    @Test func theCallLogIsReadForAPeriod() async throws {
        let f = try Fixture()
        let now = Date().timeIntervalSince1970
        try f.world.temp.insertCalls(
            [
                OverviewTests.call("early", time: now - 600, route: "pay", status: 200, application: nil, millis: 1),
                OverviewTests.call("middle", time: now - 300, route: "pay", status: 200, application: nil, millis: 1),
                OverviewTests.call("late", time: now - 10, route: "pay", status: 200, application: nil, millis: 1),
            ])
        try await f.app.test(.router) { client in
            try await client.execute(
                uri: "/admin/v1/calls?since=\(now - 400)&until=\(now - 100)", method: .get,
                headers: [.authorization: "Bearer \(f.ownerToken)"]
            ) { r in
                #expect(r.status == .ok)
                let ids = (Self.json(r.body)["items"] as? [[String: Any]])?.compactMap { $0["request_id"] as? String }
                #expect(ids == ["middle"])
            }
            try await client.execute(
                uri: "/admin/v1/calls?since=yesterday", method: .get, headers: [.authorization: "Bearer \(f.ownerToken)"]
            ) { r in
                #expect(r.status == .badRequest)
                #expect(Self.json(r.body)["reason"] as? String == "admin_invalid_request")
            }
        }
    }

    /// Past the bound on requests handled at once, the answer is an explained 503 with
    /// Retry-After, before any authentication or store access (here a bound of 0: every request).
    @Test func requestsBeyondTheBoundAreRefusedAtOnce() async throws {
        let f = try Fixture()
        let app = Application(router: AdminAPI(control: f.world.control, maxInFlight: 0).router().router)
        try await app.test(.router) { client in
            try await client.execute(uri: "/admin/v1/applications", method: .get, headers: [.authorization: "Bearer \(f.ownerToken)"]) {
                r in
                #expect(r.status == .serviceUnavailable)
                #expect(r.headers[.retryAfter] == "1")
                let body = Self.json(r.body)
                #expect(body["reason"] as? String == "gateway_busy")
                #expect((body["detail"] as? String)?.contains("as many requests as it allows at once (0)") == true)
            }
        }
    }

    @Test(arguments: StoreKind.allCases) func anOperatorWorksInItsTenantWithTokenOrPassword(_ kind: StoreKind) async throws {
        let f = try Fixture(kind)
        let basic = "Basic " + Data("ann:ann-password".utf8).base64EncodedString()
        try await f.app.test(.router) { client in
            try await client.execute(
                uri: "/admin/v1/applications", method: .post, headers: [.authorization: basic, .contentType: "application/json"],
                body: ByteBuffer(string: #"{"name": "shop"}"#)
            ) { r in
                #expect(r.status == .created)
                #expect(Self.json(r.body)["tenant"] as? String == "acme")
            }
            // Roles and scopes are shared by every tenant's routes: a scoped operator grants none.
            try await client.execute(
                uri: "/admin/v1/applications", method: .post, headers: [.authorization: basic, .contentType: "application/json"],
                body: ByteBuffer(string: #"{"name": "shop2", "scopes": ["payments:write"]}"#)
            ) { r in
                #expect(r.status == .forbidden)
                #expect(Self.json(r.body)["reason"] as? String == "admin_tenant_mismatch")
            }
            try await client.execute(
                uri: "/admin/v1/applications/shop/keys", method: .post, headers: [.authorization: "Bearer \(f.operatorAToken)"]
            ) { r in
                #expect(r.status == .created)
                #expect((Self.json(r.body)["key"] as? String)?.hasPrefix("gth_") == true)
            }
            try await client.execute(
                uri: "/admin/v1/applications?limit=1", method: .get, headers: [.authorization: "Bearer \(f.operatorAToken)"]
            ) { r in
                let body = Self.json(r.body)
                #expect((body["items"] as? [[String: Any]])?.count == 1)
                #expect(body["next_cursor"] as? String != nil)
            }
            try await client.execute(
                uri: "/admin/v1/tenants", method: .post,
                headers: [.authorization: "Bearer \(f.operatorAToken)", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"name":"x"}"#)
            ) { r in
                #expect(r.status == .forbidden)
                let body = Self.json(r.body)
                #expect(body["reason"] as? String == "admin_role_insufficient")
                #expect(body["required"] as? [String] == ["role admin"] && body["presented"] as? [String] == ["role operator"])
            }
            try await client.execute(
                uri: "/admin/v1/audit?action=application.", method: .get, headers: [.authorization: "Bearer \(f.ownerToken)"]
            ) { r in
                let items = Self.json(r.body)["items"] as? [[String: Any]] ?? []
                #expect(items.contains { $0["actor"] as? String == "ann" && $0["source"] as? String != nil })
            }
        }
    }

    /// Password checks wait in a queue of their own with a bound: a flood of Basic attempts is
    /// answered 503 beyond it instead of holding the threads other requests need.
    @Test func passwordChecksBeyondTheQueueAreRefusedAtOnce() async throws {
        let checks = PasswordChecks(limit: 1)
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let first = Task {
            try await checks.run {
                started.signal()
                release.wait()
            }
        }
        await withCheckedContinuation { c in
            DispatchQueue.global().async {
                started.wait(); c.resume()
            }
        }
        var refused: ControlError?
        do { try await checks.run {} } catch let e as ControlError { refused = e }
        release.signal()
        try await first.value
        #expect(refused?.denial.code == .gatewayBusy)
        #expect(refused?.denial.status == 503)
        try await checks.run {}
    }
}

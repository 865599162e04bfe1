import Foundation
import GatehouseTestSupport
import Testing

/// S23: the request-shape check read the first `Content-Type` while the upstream received both;
/// and `Connection: Content-Type` (or `Authorization`) made the gateway drop, before forwarding, a
/// field its checks had already validated.
@Suite("S23 Content-Type and Connection", .serialized) struct S23ContentTypeAndConnection {
    static func yaml(_ upstream: CaptureUpstream) -> String {
        """
        upstreams:
          app: { targets: ["http://127.0.0.1:\(upstream.port)"] }
        routes:
          - name: json-only
            match: { path: /json }
            upstream: app
            policies: [json-only]
          - name: tenant
            match: { path: /tenant }
            upstream: app
            policies: [bearer, same-tenant]
          - name: open
            match: { path: /open }
            upstream: app
        policies:
          json-only: { type: request, content_types: [application/json] }
          bearer: { type: jwt, jwks_file: jwks.json, algorithms: [HS256], tenant_claim: tenant }
          same-tenant: { type: tenant, header: X-Tenant }
        """
    }

    func post(_ gw: GatewayProcess, _ path: String, _ fields: String, body: String = "{}") throws -> RawReply {
        try attack(
            gw, "POST \(path) HTTP/1.1\r\nHost: x\r\n\(fields)Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
    }

    @Test func twoContentTypesOrAListAreRefusedBeforeAnyCheck() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try ownershipGateway(Self.yaml(upstream))
        defer { gw.stop() }
        let two = try post(gw, "/json", "Content-Type: application/json\r\nContent-Type: application/x-www-form-urlencoded\r\n")
        #expect(two.status == 400 && two.reason == "bad_request")
        #expect(two.body.contains("more than one Content-Type"))
        let list = try post(gw, "/json", "Content-Type: application/json, application/x-www-form-urlencoded\r\n")
        #expect(list.status == 400 && list.reason == "bad_request")
        #expect(list.body.contains("list of media types"))
        // On a route with no shape check too: the upstream never gets two.
        #expect(try post(gw, "/open", "Content-Type: text/plain\r\ncontent-type: application/json\r\n").status == 400)
        #expect(upstream.requests.isEmpty)
        // Controls: one media type, with parameters (a quoted comma is not a list).
        #expect(try post(gw, "/json", "Content-Type: application/json; charset=utf-8\r\n").status == 200)
        #expect(try post(gw, "/open", "Content-Type: multipart/form-data; boundary=\"a,b\"\r\n").status == 200)
        #expect(try post(gw, "/json", "Content-Type: application/x-www-form-urlencoded\r\n").status == 415)
        #expect(upstream.requests.count == 2)
    }

    /// The same ambiguity for credentials: a check would verify the first Authorization, an
    /// upstream might act on the second.
    @Test func twoAuthorizationFieldsAreRefused() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try ownershipGateway(Self.yaml(upstream))
        defer { gw.stop() }
        let two = try post(gw, "/open", "Authorization: Bearer a.b.c\r\nauthorization: Basic YWRtaW46YWRtaW4=\r\n")
        #expect(two.status == 400 && two.reason == "bad_request")
        #expect(two.body.contains("more than one Authorization"))
        #expect(upstream.requests.isEmpty)
        #expect(try post(gw, "/open", "Authorization: Bearer a.b.c\r\n").status == 200)
    }

    @Test func connectionMayNotNominateAFieldTheChecksRead() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try ownershipGateway(Self.yaml(upstream))
        defer { gw.stop() }
        let token = OwnerTokens.raw(#""sub":"alice","tenant":"acme""#)
        for nominated in ["Content-Type", "content-type", "keep-alive, Authorization", "Cookie", "X-Forwarded-For", "Host"] {
            let r = try post(
                gw, "/json", "Content-Type: application/json\r\nAuthorization: Bearer \(token)\r\nConnection: \(nominated)\r\n")
            #expect(r.status == 400 && r.reason == "bad_request", "Connection: \(nominated)")
            #expect(r.body.contains("Connection header nominates"), "\(r.body)")
        }
        #expect(upstream.requests.isEmpty)
        // Any other field it nominates is taken away before the checks, as it is before forwarding:
        // the tenant check cannot be satisfied by a header the upstream would never see.
        let hidden = try post(gw, "/tenant", "Authorization: Bearer \(token)\r\nX-Tenant: acme\r\nConnection: X-Tenant\r\n")
        #expect(hidden.status == 403 && hidden.reason == "wrong_tenant")
        #expect(upstream.requests.isEmpty)
        // Controls: without the nomination it passes, and a nominated unrelated field is dropped.
        #expect(try post(gw, "/tenant", "Authorization: Bearer \(token)\r\nX-Tenant: acme\r\n").status == 200)
        let hop = try post(gw, "/open", "X-Hop: 1\r\nX-End: 2\r\nConnection: X-Hop\r\n")
        #expect(hop.status == 200)
        let seen = upstream.requests.last
        #expect(seen?.first("x-hop") == nil && seen?.first("x-end") == "2")
    }
}

import GatehouseChecks
import GatehouseCore
import GatehouseIdentity
import Testing

/// A directory held in memory.
struct MemoryDirectory: CredentialDirectory {
    var consumers: [ConsumerRecord]
    func key(id: String) -> KeyRecord? { nil }
    func consumer(id: String) -> ConsumerRecord? { consumers.first { $0.id == id } }
    func consumer(named name: String) -> ConsumerRecord? { consumers.first { $0.name == name } }
    var isAvailable: Bool { true }
}

func denialOf(_ v: Verdict) -> Denial? { if case .deny(let d) = v { return d } else { return nil } }
func allowed(_ v: Verdict) -> Bool { if case .allow = v { return true } else { return false } }

@Suite struct AuthorizationTests {
    func req(_ method: String, _ path: String, principal: Principal?, params: [String: String] = [:], body: String? = nil) -> PolicyRequest
    {
        PolicyRequest(
            method: method, path: path, pathParams: params,
            headers: HeaderList(body == nil ? [] : [("Content-Type", "application/json")]),
            body: body.map { Array($0.utf8) }, principal: principal)
    }
    let token = Principal(
        method: "jwt", subject: "17", scopes: ["payment:read", "user:profile"], roles: ["viewer"], tenant: "acme",
        claims: ["sub": .string("17")])

    @Test func insufficientScopeNamesRequiredAndGranted() throws {
        let c = ScopesCheck(id: "pay-write", require: ["payment:write"])
        var r = req("POST", "/process-payment", principal: token)
        let d = try #require(denialOf(c.evaluate(&r)))
        #expect(d.code == "insufficient_scope")
        #expect(d.status == 403)
        #expect(d.required == ["payment:write"])
        #expect(d.presented == ["payment:read", "user:profile"])
        #expect(d.detail == "POST /process-payment needs scope payment:write; the token grants payment:read user:profile")
        #expect(
            d.headers == [
                HeaderField("WWW-Authenticate", "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", scope=\"payment:write\"")
            ])
    }

    @Test func methodSpecificScopes() {
        let c = ScopesCheck(id: "orders", require: [], byMethod: ["GET": ["orders:read"], "POST": ["orders:write"]])
        let p = Principal(method: "jwt", scopes: ["orders:read"])
        var get = req("GET", "/orders", principal: p)
        #expect(allowed(c.evaluate(&get)))
        var post = req("POST", "/orders", principal: p)
        #expect(denialOf(c.evaluate(&post))?.required == ["orders:write"])
        var delete = req("DELETE", "/orders", principal: p)
        if case .skip = c.evaluate(&delete) {} else { Issue.record("DELETE has no scope rule and should skip") }
    }

    @Test func anyOfScopes() {
        let c = ScopesCheck(id: "s", require: ["a", "user:profile"], match: .any)
        var r = req("GET", "/", principal: token)
        #expect(allowed(c.evaluate(&r)))
    }

    @Test func authorizationWithoutAuthenticationIs401() {
        var r = req("GET", "/", principal: nil)
        for c in [
            ScopesCheck(id: "s", require: ["a"]) as any PolicyCheck, RolesCheck(id: "r", anyRole: ["x"]),
            OwnerCheck(id: "o", pathParam: "id"),
            TenantCheck(id: "t", tenant: "acme"),
        ] {
            let d = denialOf(c.evaluate(&r))
            #expect(d?.code == .missingCredentials && d?.status == 401, "\(c.type)")
        }
    }

    @Test func rolesAndPermissions() throws {
        let admin = RolesCheck(id: "admins", anyRole: ["admin"])
        var r = req("DELETE", "/orders/1", principal: token)
        let d = try #require(denialOf(admin.evaluate(&r)))
        #expect(d.code == "missing_role")
        #expect(d.required == ["admin"] && d.presented == ["viewer"])

        let rbac = RolesCheck(
            id: "rbac", permissions: ["viewer": ["orders:read"], "clerk": ["orders:read", "orders:write"]],
            byMethod: ["GET": ["orders:read"], "POST": ["orders:write"]])
        var get = req("GET", "/orders", principal: token)
        #expect(allowed(rbac.evaluate(&get)))
        var post = req("POST", "/orders", principal: token)
        let pd = try #require(denialOf(rbac.evaluate(&post)))
        #expect(pd.code == "missing_permission")
        #expect(pd.detail.contains("orders:write"))
        #expect(pd.hint.contains("clerk"))
    }

    @Test func ownerFromPathOrBody() throws {
        let byPath = OwnerCheck(id: "own", pathParam: "id")
        var mine = req("GET", "/users/17", principal: token, params: ["id": "17"])
        #expect(allowed(byPath.evaluate(&mine)))
        var theirs = req("GET", "/users/42", principal: token, params: ["id": "42"])
        let d = try #require(denialOf(byPath.evaluate(&theirs)))
        #expect(d.code == "not_owner" && d.status == 403)
        #expect(d.detail == "GET /users/42 belongs to 42 (path parameter {id}); the caller's sub is 17")

        let byBody = OwnerCheck(id: "own", bodyField: "account.owner")
        #expect(byBody.needsBody)
        var ok = req("POST", "/transfers", principal: token, body: #"{"account":{"owner":"17"}}"#)
        #expect(allowed(byBody.evaluate(&ok)))
        var bad = req("POST", "/transfers", principal: token, body: #"{"account":{"owner":"99"}}"#)
        #expect(denialOf(byBody.evaluate(&bad))?.code == "not_owner")
    }

    @Test func ownerBodyWithDuplicateMembersIsAmbiguousAt400() throws {
        let c = OwnerCheck(id: "own-transfer", bodyField: "account.owner")
        let alice = Principal(method: "jwt", subject: "alice", claims: ["sub": .string("alice")])
        let bodies: [(String, String)] = [
            (#"{"account":{"owner":"alice"},"account":{"owner":"bob"}}"#, "/account"),
            (#"{"account":{"owner":"alice","owner":"bob"}}"#, "/account/owner"),
            (#"{"account":{"owner":"alice","\u006fwner":"bob"}}"#, "/account/owner"),
            (#"{"account":{"owner":"alice","Owner":"bob"}}"#, "/account/Owner"),
            (#"{"account":{"owner":"alice"},"x":[{"k":1,"k":2}]}"#, "/x/0/k"),
        ]
        for (body, pointer) in bodies {
            var r = req("POST", "/transfer", principal: alice, body: body)
            let d = try #require(denialOf(c.evaluate(&r)), "\(body)")
            #expect(d.code == "ambiguous_body" && d.status == 400, "\(body)")
            #expect(d.detail.contains(pointer), "\(body): \(d.detail)")
            #expect(d.detail.contains("disagree"), "\(d.detail)")
        }
        // Controls: the owner alone passes; another owner is not_owner.
        var ok = req("POST", "/transfer", principal: alice, body: #"{"account":{"owner":"alice"}}"#)
        #expect(allowed(c.evaluate(&ok)))
        var bob = req("POST", "/transfer", principal: alice, body: #"{"account":{"owner":"bob"}}"#)
        #expect(denialOf(c.evaluate(&bob))?.code == "not_owner")
    }

    @Test func ownerBodyThatIsNotStrictJSONIsAmbiguous() throws {
        let c = OwnerCheck(id: "own", bodyField: "owner")
        let alice = Principal(method: "jwt", subject: "alice", claims: ["sub": .string("alice")])
        for body in [
            #"{"owner":"alice",}"#, "\u{FEFF}{\"owner\":\"alice\"}", #"{"owner":"alice"} x"#, #"{"owner":"alice","n":NaN}"#,
            String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
        ] {
            var r = req("POST", "/t", principal: alice, body: body)
            let d = try #require(denialOf(c.evaluate(&r)), "\(body)")
            #expect(d.code == "ambiguous_body" && d.status == 400, "\(body)")
        }
        // UTF-16 (as `charset=utf-16` would announce) is not read either.
        var utf16 = PolicyRequest(
            method: "POST", path: "/t", headers: HeaderList([("Content-Type", "application/json")]),
            body: [0xFF, 0xFE] + Array(#"{"owner":"alice"}"#.utf8).flatMap { [$0, 0] }, principal: alice)
        #expect(denialOf(c.evaluate(&utf16))?.code == "ambiguous_body")
        // The fields must declare plain UTF-8 JSON: a form body can carry other fields than its JSON text.
        let declared: [([(String, String)], String)] = [
            ([], "no Content-Type"),
            ([("Content-Type", "application/x-www-form-urlencoded")], "declared application/x-www-form-urlencoded"),
            ([("Content-Type", "application/json; charset=iso-8859-1")], "charset iso-8859-1"),
            ([("Content-Type", "application/json;charset=\"utf-16\"")], "charset utf-16"),
            ([("Content-Type", "application/json"), ("Content-Encoding", "br")], "content-encoded"),
        ]
        for (headers, words) in declared {
            var r = PolicyRequest(
                method: "POST", path: "/t", headers: HeaderList(headers),
                body: Array(#"{"owner":"alice","x":"&owner=bob"}"#.utf8), principal: alice)
            let d = try #require(denialOf(c.evaluate(&r)), "\(headers)")
            #expect(d.code == "ambiguous_body" && d.detail.contains(words), "\(d.detail)")
        }
        for type in ["application/json; charset=UTF-8", "application/merge-patch+json", "Application/JSON"] {
            var r = PolicyRequest(
                method: "POST", path: "/t", headers: HeaderList([("Content-Type", type)]),
                body: Array(#"{"owner":"alice"}"#.utf8), principal: alice)
            #expect(allowed(c.evaluate(&r)), "\(type)")
        }
        // A dotted field that names two members.
        let dotted = OwnerCheck(id: "own", bodyField: "account.owner")
        var both = req("POST", "/t", principal: alice, body: #"{"account.owner":"alice","account":{"owner":"bob"}}"#)
        let d = try #require(denialOf(dotted.evaluate(&both)))
        #expect(d.code == "ambiguous_body" && d.detail.contains("/account.owner") && d.detail.contains("/account/owner"))
        var flat = req("POST", "/t", principal: alice, body: #"{"account.owner":"alice"}"#)
        #expect(allowed(dotted.evaluate(&flat)))
    }

    @Test func ownerContentTypeParametersAreReadStrictly() throws {
        let c = OwnerCheck(id: "own", bodyField: "owner")
        let alice = Principal(method: "jwt", subject: "alice", claims: ["sub": .string("alice")])
        func verdict(_ headers: [(String, String)]) -> Verdict {
            var r = PolicyRequest(
                method: "POST", path: "/t", headers: HeaderList(headers),
                body: Array(#"{"owner":"alice"}"#.utf8), principal: alice)
            return c.evaluate(&r)
        }
        // Django and Spring trim a parameter and decode the body in its charset: each of these
        // announces UTF-7 (or another charset) to some reader, so none is plain UTF-8 JSON.
        let refused: [(String, String)] = [
            ("application/json; charset = utf-7", "charset = utf-7"),
            ("application/json; charset =utf-7", "not a well-formed name=value"),
            ("application/json; charset= utf-7", "not a well-formed name=value"),
            ("application/json;\tcharset\t=\tutf-7", "not a well-formed name=value"),
            ("application/json; charset=\"utf-8\"; charset = utf-7", "not a well-formed name=value"),
            ("application/json; charset=utf-8; charset=utf-7", "charset twice"),
            ("application/json; charset=utf-8; charset=utf-8", "charset twice"),
            ("application/json; CHARSET=UTF-7", "charset utf-7"),
            ("application/json; charset=\"utf-\\7\"", "charset utf-7"),
            ("application/json; charset=utf8", "charset utf8"),
            ("application/json; charset", "not a well-formed name=value"),
            ("application/json; charset=", "not a well-formed name=value"),
            ("application/json; charset=\"utf-8", "malformed quoted string"),
            ("application/json; charset=utf-8 utf-7", "follows its value"),
            ("application/json; =utf-8", "not a well-formed name=value"),
            ("application/json; charset=utf-8, text/plain", "follows its value"),
        ]
        for (type, words) in refused {
            let d = try #require(denialOf(verdict([("Content-Type", type)])), "\(type)")
            #expect(d.code == "ambiguous_body" && d.status == 400, "\(type)")
            #expect(d.detail.contains(words), "\(type): \(d.detail)")
        }
        // Well-formed parameters, in any letter case, quoted or not, other parameters beside.
        for type in [
            "application/json;charset=utf-8", "application/json ; Charset=\"UTF-8\"", "application/json; charset=utf-8;",
            "application/json;;charset=utf-8", "application/json; profile=\"https://x.example/a;b\"; charset=utf-8",
            "application/vnd.api+json; ext=\"a b\"", "application/json\t;\tcharset=UTF-8",
        ] {
            #expect(allowed(verdict([("Content-Type", type)])), "\(type)")
        }
        // Content-Encoding: every field counts, not only the first; identity included.
        for codings in [["identity", "gzip"], ["identity"], ["", "br"], ["gzip"]] {
            let d = try #require(
                denialOf(verdict([("Content-Type", "application/json")] + codings.map { ("Content-Encoding", $0) })), "\(codings)")
            #expect(d.code == "ambiguous_body" && d.detail.contains("content-encoded"), "\(d.detail)")
        }
    }

    @Test func ownerNumbersAreComparedAsExactDecimalText() throws {
        let c = OwnerCheck(id: "own", bodyField: "owner")
        func verdict(_ sub: JSONValue, _ body: String) -> Verdict {
            var r = req("POST", "/t", principal: Principal(method: "jwt", claims: ["sub": sub]), body: body)
            return c.evaluate(&r)
        }
        #expect(allowed(verdict(.number(17), #"{"owner":17}"#)))
        #expect(allowed(verdict(.string("17"), #"{"owner":17}"#)))
        #expect(allowed(verdict(.number(9_007_199_254_740_991), #"{"owner":9007199254740991}"#)))
        #expect(denialOf(verdict(.number(17), #"{"owner":18}"#))?.code == "not_owner")
        // Beyond 2^53 a Double cannot tell these apart: the claim side is not comparable...
        let big = try #require(denialOf(verdict(.number(9_007_199_254_740_992), #"{"owner":"9007199254740993"}"#)))
        #expect(big.code == "not_owner" && big.detail.contains("cannot compare exactly"))
        #expect(denialOf(verdict(.number(9_007_199_254_740_992), #"{"owner":"9007199254740992"}"#))?.code == "not_owner")
        // ...and a body number beyond it, or with a fraction or exponent, reads differently upstream.
        for body in [
            #"{"owner":9007199254740993}"#, #"{"owner":9007199254740992}"#, #"{"owner":17.0}"#, #"{"owner":1.7e1}"#, #"{"owner":1e400}"#,
        ] {
            let d = try #require(denialOf(verdict(.string("9007199254740993"), body)), "\(body)")
            #expect(d.code == "ambiguous_body", "\(body)")
        }
        #expect(allowed(verdict(.number(0), #"{"owner":-0}"#)))
        // A boolean owner is not an identifier.
        #expect(denialOf(verdict(.string("true"), #"{"owner":true}"#))?.detail.contains("not a string or integer") == true)
    }

    @Test func ownerComparesCodePointsAndDoesNotDecodeAgain() throws {
        let byPath = OwnerCheck(id: "own", pathParam: "id")
        let alice = Principal(method: "jwt", subject: "alice", claims: ["sub": .string("alice")])
        // The router decoded /users/%2561lice once to %61lice: that is not alice.
        var twice = req("GET", "/users/%2561lice", principal: alice, params: ["id": "%61lice"])
        let d = try #require(denialOf(byPath.evaluate(&twice)))
        #expect(d.code == "not_owner" && d.detail.contains("belongs to %61lice"))
        // Canonically equivalent is not equal: é composed and e + combining acute are two names upstream.
        let jose = Principal(method: "jwt", claims: ["sub": .string("jos\u{E9}")])
        var decomposed = req("GET", "/users/x", principal: jose, params: ["id": "jose\u{301}"])
        #expect(denialOf(byPath.evaluate(&decomposed))?.code == "not_owner")
        let tenant = TenantCheck(id: "t", pathParam: "tenant")
        var encoded = req("GET", "/t/%2561cme", principal: token, params: ["tenant": "%61cme"])
        #expect(denialOf(tenant.evaluate(&encoded))?.code == "wrong_tenant")
    }

    @Test func aTenantHeaderSentTwiceOrAsAListIsRefused() throws {
        let byHeader = TenantCheck(id: "t", header: "X-Tenant")
        for headers in [[("X-Tenant", "acme"), ("X-Tenant", "globex")], [("X-Tenant", "acme, globex")]] {
            var r = PolicyRequest(method: "GET", path: "/x", headers: HeaderList(headers), principal: token)
            let d = try #require(denialOf(byHeader.evaluate(&r)))
            #expect(d.code == "bad_request" && d.status == 400)
        }
        var one = PolicyRequest(method: "GET", path: "/x", headers: HeaderList([("X-Tenant", "acme")]), principal: token)
        #expect(allowed(byHeader.evaluate(&one)))
    }

    @Test func crossTenantCallsAreRefused() throws {
        let fixed = TenantCheck(id: "t", tenant: "globex")
        var r = req("GET", "/", principal: token)
        let d = try #require(denialOf(fixed.evaluate(&r)))
        #expect(d.code == "wrong_tenant")
        #expect(d.required == ["tenant globex"] && d.presented == ["tenant acme"])
        let byParam = TenantCheck(id: "t", pathParam: "tenant")
        var same = req("GET", "/t/acme/x", principal: token, params: ["tenant": "acme"])
        #expect(allowed(byParam.evaluate(&same)))
        var noTenant = req("GET", "/t/acme/x", principal: Principal(method: "api_key"), params: ["tenant": "acme"])
        #expect(denialOf(byParam.evaluate(&noTenant))?.detail.contains("no tenant") == true)
    }

    @Test func basicAuthAgainstBcryptHashes() throws {
        let hash = BasicAuthCheck.hashPassword("correct horse", cost: 4)
        let dir = MemoryDirectory(consumers: [
            ConsumerRecord(id: "c1", name: "alice", scopes: ["orders:read"], passwordHash: hash),
            ConsumerRecord(id: "c2", name: "bob", status: "suspended", passwordHash: hash),
        ])
        let c = BasicAuthCheck(id: "basic", directory: dir)
        var missing = PolicyRequest(method: "GET", path: "/")
        let m = try #require(denialOf(c.evaluate(&missing)))
        #expect(m.code == .missingCredentials && m.status == 401)
        #expect(m.headers.first?.value.hasPrefix("Basic realm=\"gatehouse\"") == true)
        var good = PolicyRequest(method: "GET", path: "/", headers: HeaderList([("Authorization", "Basic YWxpY2U6Y29ycmVjdCBob3JzZQ==")]))
        #expect(allowed(c.evaluate(&good)))
        #expect(good.principal?.consumerName == "alice" && good.principal?.scopes == ["orders:read"])
        // Twice: the second time is answered from the verification cache, with the same result.
        var again = PolicyRequest(method: "GET", path: "/", headers: HeaderList([("Authorization", "Basic YWxpY2U6Y29ycmVjdCBob3JzZQ==")]))
        #expect(allowed(c.evaluate(&again)))
        // alice:wrong
        var wrong = PolicyRequest(method: "GET", path: "/", headers: HeaderList([("Authorization", "Basic YWxpY2U6d3Jvbmc=")]))
        let w = try #require(denialOf(c.evaluate(&wrong)))
        #expect(w.code == .invalidCredentials)
        #expect(!w.detail.contains("wrong") || w.detail.contains("wrong password"))
        // bob:correct horse
        var suspended = PolicyRequest(method: "GET", path: "/", headers: HeaderList([("Authorization", "Basic Ym9iOmNvcnJlY3QgaG9yc2U=")]))
        #expect(denialOf(c.evaluate(&suspended))?.code == .consumerSuspended)
    }
}

import GatehouseChecks
import GatehouseCore
import Testing

private func origins(_ list: [String]) -> [OriginPattern] {
    list.map { try! OriginPattern.parse($0).get() }
}

private func preflight(_ origin: String, method: String = "PUT", headers: String? = nil) -> PolicyRequest {
    var h: [(String, String)] = [("Host", "api.example.com"), ("Origin", origin), ("Access-Control-Request-Method", method)]
    if let headers { h.append(("Access-Control-Request-Headers", headers)) }
    return PolicyRequest(method: "OPTIONS", path: "/orders", headers: HeaderList(h))
}

private func actual(_ origin: String?, method: String = "GET") -> PolicyRequest {
    var h: [(String, String)] = [("Host", "api.example.com")]
    if let origin { h.append(("Origin", origin)) }
    return PolicyRequest(method: method, path: "/orders", headers: HeaderList(h))
}

private func value(_ fields: [HeaderField], _ name: String) -> String? { fields.first { $0.name == name }?.value }

@Suite struct CORSCheckTests {
    let cors = CORSCheck(
        id: "web", origins: origins(["https://app.example.com", "https://*.partner.example"]),
        methods: ["GET", "POST", "PUT"], headers: ["Content-Type", "X-API-Key"], credentials: true,
        maxAge: 600, exposeHeaders: ["X-Request-Id"])

    @Test func allowedPreflightIsAnswered204WithTheHeaders() {
        var r = preflight("https://app.example.com", headers: "content-type, x-api-key")
        guard case .allow = cors.evaluate(&r) else { Issue.record("preflight refused"); return }
        let answer = r.localAnswer
        #expect(answer?.status == 204)
        let h = answer?.headers ?? []
        #expect(value(h, "Access-Control-Allow-Origin") == "https://app.example.com")
        #expect(value(h, "Access-Control-Allow-Methods") == "GET, POST, PUT")
        #expect(value(h, "Access-Control-Allow-Headers") == "content-type, x-api-key")
        #expect(value(h, "Access-Control-Allow-Credentials") == "true")
        #expect(value(h, "Access-Control-Max-Age") == "600")
        #expect(value(h, "Vary")?.contains("Origin") == true)
    }

    @Test func wildcardSubdomainsMatchSubdomainsOnly() {
        var sub = preflight("https://eu.partner.example")
        guard case .allow = cors.evaluate(&sub) else { Issue.record("subdomain refused"); return }
        var apex = preflight("https://partner.example")
        #expect(denialCode(cors.evaluate(&apex)) == "cors_origin_not_allowed")
        var lookalike = preflight("https://evilpartner.example")
        #expect(denialCode(cors.evaluate(&lookalike)) == "cors_origin_not_allowed")
        var http = preflight("http://eu.partner.example")
        #expect(denialCode(cors.evaluate(&http)) == "cors_origin_not_allowed")
    }

    @Test func refusedPreflightsNameWhatWasAskedAndWhatIsAllowed() {
        var o = preflight("https://evil.example")
        let od = denial(cors.evaluate(&o))
        #expect(od?.code.rawValue == "cors_origin_not_allowed")
        #expect(od?.status == 403)
        #expect(od?.detail.contains("https://evil.example") == true)
        #expect(od?.detail.contains("https://app.example.com, https://*.partner.example") == true)
        #expect(o.localAnswer == nil)

        var m = preflight("https://app.example.com", method: "DELETE")
        let md = denial(cors.evaluate(&m))
        #expect(md?.code.rawValue == "cors_method_not_allowed")
        #expect(md?.detail.contains("DELETE") == true)
        #expect(md?.detail.contains("GET, POST, PUT") == true)

        var h = preflight("https://app.example.com", headers: "Content-Type, X-Debug")
        let hd = denial(cors.evaluate(&h))
        #expect(hd?.code.rawValue == "cors_header_not_allowed")
        #expect(hd?.detail.contains("x-debug") == true)
        #expect(hd?.detail.contains("content-type, x-api-key") == true)
    }

    @Test func actualCrossOriginRequestsGetAllowOriginAndVary() {
        var r = actual("https://app.example.com")
        guard case .allow = cors.evaluate(&r) else { Issue.record("refused"); return }
        #expect(value(r.responseHeaders, "Access-Control-Allow-Origin") == "https://app.example.com")
        #expect(value(r.responseHeaders, "Vary") == "Origin")
        #expect(value(r.responseHeaders, "Access-Control-Allow-Credentials") == "true")
        #expect(value(r.responseHeaders, "Access-Control-Expose-Headers") == "X-Request-Id")
        #expect(r.localAnswer == nil)
        var bad = actual("https://evil.example", method: "POST")
        #expect(denialCode(cors.evaluate(&bad)) == "cors_origin_not_allowed")
    }

    @Test func starIsNeverSentWithCredentials() {
        let open = CORSCheck(id: "open", origins: [.any])
        var r = actual("https://anything.example")
        _ = open.evaluate(&r)
        #expect(value(r.responseHeaders, "Access-Control-Allow-Origin") == "*")
        #expect(value(r.responseHeaders, "Access-Control-Allow-Credentials") == nil)
        // With credentials the origin is echoed, never `*` (the config loader also refuses "*" + credentials).
        let creds = CORSCheck(id: "creds", origins: [.any], credentials: true)
        var c = actual("https://anything.example")
        _ = creds.evaluate(&c)
        #expect(value(c.responseHeaders, "Access-Control-Allow-Origin") == "https://anything.example")
    }

    @Test func sameOriginAndOriginlessRequestsAreSkipped() {
        var none = actual(nil)
        guard case .skip = cors.evaluate(&none) else { Issue.record("no-Origin request not skipped"); return }
        var same = actual("http://api.example.com", method: "POST")
        guard case .skip = cors.evaluate(&same) else { Issue.record("same-origin request not skipped"); return }
    }

    @Test func originPatternsAreValidated() throws {
        #expect(throws: OriginPatternError.self) { try OriginPattern.parse("app.example.com").get() }
        #expect(throws: OriginPatternError.self) { try OriginPattern.parse("https://app.example.com/path").get() }
        #expect(throws: OriginPatternError.self) { try OriginPattern.parse("https://a.*.example.com").get() }
        #expect(try OriginPattern.parse("https://App.Example.com:443").get() == .exact("https://app.example.com"))
    }
}

func denial(_ v: Verdict) -> Denial? {
    if case .deny(let d) = v { return d }
    return nil
}

func denialCode(_ v: Verdict) -> String? { denial(v)?.code.rawValue }

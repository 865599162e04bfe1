import GatehouseChecks
import GatehouseCore
import Testing

private func post(_ headers: [(String, String)], method: String = "POST") -> PolicyRequest {
    PolicyRequest(method: method, path: "/transfer", headers: HeaderList([("Host", "bank.example")] + headers))
}

@Suite struct CSRFCheckTests {
    let plain = CSRFCheck(
        id: "csrf", trustedOrigins: [try! OriginPattern.parse("https://admin.bank.example").get()], sessionCookie: "session")
    let signer = CSRFTokenSigner(secret: "0123456789abcdef0123456789abcdef")
    var tokened: CSRFCheck {
        CSRFCheck(id: "csrf", sessionCookie: "session", tokenCookie: "csrf", tokenHeader: "X-CSRF-Token", signer: signer)
    }

    @Test func sameOriginPassesByOriginSecFetchSiteOrReferer() {
        for h in [
            [("Origin", "http://bank.example")], [("Sec-Fetch-Site", "same-origin")], [("Referer", "http://bank.example/form?x=1")],
            [("Origin", "https://admin.bank.example")],
        ] {
            var r = post([("Cookie", "session=s1")] + h)
            guard case .allow = plain.evaluate(&r) else { Issue.record("refused with \(h)"); continue }
        }
    }

    @Test func crossSiteIsRefusedNamingTheHeaderChecked() {
        var byOrigin = post([("Cookie", "session=s1"), ("Origin", "https://evil.example"), ("Sec-Fetch-Site", "cross-site")])
        let d1 = denial(plain.evaluate(&byOrigin))
        #expect(d1?.code.rawValue == "csrf_origin_mismatch")
        #expect(d1?.status == 403)
        #expect(d1?.detail.contains("header checked: Origin") == true)
        #expect(d1?.extensions["checked_header"] == ["Origin"])

        var bySite = post([("Cookie", "session=s1"), ("Origin", "null"), ("Sec-Fetch-Site", "cross-site")])
        let d2 = denial(plain.evaluate(&bySite))
        #expect(d2?.code.rawValue == "csrf_origin_mismatch")
        #expect(d2?.extensions["checked_header"] == ["Sec-Fetch-Site"])

        var byReferer = post([("Cookie", "session=s1"), ("Referer", "https://evil.example/page")])
        let d3 = denial(plain.evaluate(&byReferer))
        #expect(d3?.extensions["checked_header"] == ["Referer"])
        #expect(d3?.detail.contains("https://evil.example") == true)

        var nothing = post([("Cookie", "session=s1")])
        #expect(denialCode(plain.evaluate(&nothing)) == "csrf_origin_mismatch")
    }

    @Test func safeMethodsAndCookielessRequestsAreSkipped() {
        var get = post([("Cookie", "session=s1"), ("Origin", "https://evil.example")], method: "GET")
        guard case .skip = plain.evaluate(&get) else { Issue.record("GET not skipped"); return }
        var noCookie = post([("Origin", "https://evil.example")])
        guard case .skip = plain.evaluate(&noCookie) else { Issue.record("request without session cookie not skipped"); return }
    }

    @Test func doubleSubmitTokenMissingInvalidAndValid() {
        let token = signer.issue(session: "s1", nonce: "n0nce")
        var missing = post([("Cookie", "session=s1; csrf=\(token)"), ("Origin", "http://bank.example")])
        let m = denial(tokened.evaluate(&missing))
        #expect(m?.code.rawValue == "csrf_token_missing")
        #expect(m?.detail.contains("header X-CSRF-Token") == true)
        #expect(m?.extensions["checked_header"] == ["X-CSRF-Token"])

        var differs = post([("Cookie", "session=s1; csrf=\(token)"), ("X-CSRF-Token", token + "x"), ("Origin", "http://bank.example")])
        #expect(denialCode(tokened.evaluate(&differs)) == "csrf_token_invalid")

        let forged = "n0nce." + String(repeating: "0", count: 64)
        var unsigned = post([("Cookie", "session=s1; csrf=\(forged)"), ("X-CSRF-Token", forged), ("Origin", "http://bank.example")])
        let u = denial(tokened.evaluate(&unsigned))
        #expect(u?.code.rawValue == "csrf_token_invalid")
        #expect(u?.detail.contains("not signed for this session") == true)

        // A token issued for another session does not verify for this one.
        var otherSession = post([("Cookie", "session=s2; csrf=\(token)"), ("X-CSRF-Token", token), ("Origin", "http://bank.example")])
        #expect(denialCode(tokened.evaluate(&otherSession)) == "csrf_token_invalid")

        var ok = post([("Cookie", "session=s1; csrf=\(token)"), ("X-CSRF-Token", token), ("Origin", "http://bank.example")])
        guard case .allow(let note) = tokened.evaluate(&ok) else { Issue.record("valid token refused"); return }
        #expect(note?.contains("X-CSRF-Token") == true)
    }

    @Test func tokenDoesNotExcuseACrossSiteOrigin() {
        let token = signer.issue(session: "s1", nonce: "n")
        var r = post([("Cookie", "session=s1; csrf=\(token)"), ("X-CSRF-Token", token), ("Origin", "https://evil.example")])
        #expect(denialCode(tokened.evaluate(&r)) == "csrf_origin_mismatch")
    }
}

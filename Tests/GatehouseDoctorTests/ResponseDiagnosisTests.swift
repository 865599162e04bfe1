import Foundation
import GatehouseDoctor
import Testing

/// One case of the response corpus: a response written from a provider's public documentation.
struct CorpusCase: Codable, Sendable, CustomTestStringConvertible {
    var file: String
    var deniedBy: String
    var cause: String
    var source: String
    var testDescription: String { file }

    enum CodingKeys: String, CodingKey { case file, deniedBy = "denied_by", cause, source }

    static let all: [CorpusCase] = (try? JSONDecoder().decode([CorpusCase].self, from: Fixtures.data("responses/corpus.json"))) ?? []
}

@Suite("doctor response")
struct ResponseDiagnosisTests {
    let doctor = ResponseDoctor(knowledge: Fixtures.knowledge)

    @Test("the corpus is present and every case cites its source")
    func corpusPresent() {
        #expect(CorpusCase.all.count >= 80)
        for c in CorpusCase.all { #expect(c.source.hasPrefix("https://"), "\(c.file) cites no URL") }
    }

    @Test("names the system and the cause", arguments: CorpusCase.all)
    func corpus(_ c: CorpusCase) throws {
        let (results, isHAR) = try doctor.diagnose(data: Fixtures.data("responses/" + c.file), source: c.file)
        #expect(!isHAR)
        let d = try #require(results.first?.1)
        #expect(d.deniedBy == c.deniedBy, "\(c.file): denied_by \(d.deniedBy), expected \(c.deniedBy); evidence \(d.evidence)")
        #expect(d.cause.rawValue == c.cause, "\(c.file): cause \(d.cause.rawValue), expected \(c.cause); evidence \(d.evidence)")
        #expect((0.05...0.99).contains(d.confidence))
        #expect(!d.evidence.isEmpty && !d.fix.isEmpty)
        #expect(!d.alternatives.contains { $0.deniedBy == d.deniedBy && $0.cause == d.cause })
        #expect(d.alternatives.allSatisfy { $0.confidence <= d.confidence })
    }

    @Test("--json is exactly the doctor's contract")
    func contract() throws {
        let (results, _) = try doctor.diagnose(data: Fixtures.data("responses/cloudflare-1020.http"), source: "x")
        let text = Diagnosis.json(results.map(\.1), asArray: false)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(Set(obj.keys) == ["denied_by", "layer", "cause", "confidence", "evidence", "fix", "alternatives", "served_through"])
        #expect(obj["served_through"] as? [String] == [])
        #expect(obj["denied_by"] as? String == "cloudflare")
        #expect(obj["layer"] as? String == "cdn_waf")
        #expect(obj["cause"] as? String == "waf_blocked")
        let alts = try #require(obj["alternatives"] as? [[String: Any]])
        for a in alts { #expect(Set(a.keys) == ["denied_by", "cause", "confidence"]) }
        let vocabulary = Set(DenialCause.allCases.map(\.rawValue))
        #expect(
            vocabulary == [
                "missing_credentials", "invalid_credentials", "expired_credentials", "insufficient_scope", "insufficient_permissions",
                "explicit_deny", "ip_not_allowed", "geo_blocked", "waf_blocked", "rate_limited", "csrf", "cors", "signature_mismatch",
                "expired_url", "directory_listing", "filesystem_permission", "config_deny", "account_suspended", "resource_state",
                "bot_challenge", "unknown",
            ])
    }

    @Test("an exhausted rate-limit counter makes a 403 a rate limit whatever the body says")
    func rateLimitOutweighsBody() throws {
        let raw =
            "HTTP/1.1 403 Forbidden\r\nX-RateLimit-Remaining: 0\r\nContent-Type: application/json\r\n\r\n{\"message\":\"You do not have permission to perform this action. CSRF token missing.\"}"
        let d = try #require(try doctor.diagnose(data: Data(raw.utf8), source: "x").results.first?.1)
        #expect(d.cause == .rateLimited)
        #expect(d.evidence.contains { $0.contains("X-RateLimit-Remaining") })
    }

    @Test("a strong vendor header beats generic body words")
    func vendorBeatsWords() throws {
        let raw =
            "HTTP/1.1 403 Forbidden\r\nx-github-request-id: AB:CD\r\nContent-Type: application/json\r\n\r\n{\"message\":\"Must have admin rights to Repository.\",\"documentation_url\":\"https://docs.github.com/rest\"}"
        let d = try #require(try doctor.diagnose(data: Data(raw.utf8), source: "x").results.first?.1)
        #expect(d.deniedBy == "github-api")
        #expect(d.cause == .insufficientPermissions)
    }

    @Test("GitHub scope headers are compared and named in the evidence")
    func scopeMismatch() throws {
        let (results, _) = try doctor.diagnose(data: Fixtures.data("responses/github-scopes.http"), source: "x")
        let d = try #require(results.first?.1)
        #expect(d.cause == .insufficientScope)
        #expect(d.evidence.contains { $0.contains("token has [public_repo, read:user], endpoint accepts [admin:org, read:org]") })
    }

    @Test("an unknown system still gets a cause, and no system is claimed")
    func unknownSystem() throws {
        let raw = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nYour IP address is not in the allowlist for this tenant."
        let d = try #require(try doctor.diagnose(data: Data(raw.utf8), source: "x").results.first?.1)
        #expect(d.deniedBy == "unknown")
        #expect(d.cause == .ipNotAllowed)
        // Calibrated on six corpora, such wording without a named system is right about nine times in
        // ten; the confidence says so, and stays short of certainty.
        #expect(d.confidence <= 0.9)
    }

    @Test("a HAR file gives one diagnosis per 401/403/429 entry, in order")
    func har() throws {
        let (results, isHAR) = try doctor.diagnose(data: Fixtures.data("har/session.har"), source: "session.har")
        #expect(isHAR)
        #expect(results.map(\.0.status) == [401, 403, 429])
        #expect(results.map(\.1.deniedBy) == ["unknown", "cloudflare", "github-api"])
        // The 401 entry's request carried no credentials: the HAR says so.
        #expect(results[0].1.cause == .missingCredentials)
        #expect(results[1].1.cause == .wafBlocked)
        #expect(results[2].1.cause == .rateLimited)
        let json = Diagnosis.json(results.map(\.1), asArray: true)
        let array = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        #expect(array.count == 3)
    }

    @Test("the report says what happened, who denied it, why, the evidence and what to do")
    func report() throws {
        let (results, _) = try doctor.diagnose(data: Fixtures.data("responses/aws-s3-explicit-deny.http"), source: "x")
        let (response, d) = try #require(results.first)
        let text = Report.render(d, response: response, knowledge: Fixtures.knowledge)
        #expect(text.contains("What happened: HTTP 403 Forbidden"))
        #expect(text.contains("Who denied it: Amazon S3 (aws-s3)"))
        #expect(text.contains("Why:           explicit_deny — a policy explicitly denies this request"))
        #expect(text.contains("Evidence:"))
        #expect(text.contains("What to do:\n  1. "))
    }

    @Test("a response that is not HTTP is refused with the reason")
    func notHTTP() {
        #expect {
            _ = try doctor.diagnose(data: Data("hello".utf8), source: "note.txt")
        } throws: { error in
            (error as? ResponseParseError)?.description.contains("note.txt: expected a status line") == true
        }
    }

    @Test("curl -i -L output keeps the last response")
    func redirects() throws {
        let raw =
            "HTTP/1.1 301 Moved Permanently\r\nLocation: /b\r\n\r\nHTTP/1.1 403 Forbidden\r\nServer: nginx\r\n\r\n<html><center>nginx</center></html>"
        let d = try #require(try doctor.diagnose(data: Data(raw.utf8), source: "x").results.first)
        #expect(d.0.status == 403)
        #expect(d.1.deniedBy == "nginx")
    }

    @Test("reads curl -v transcripts, using the request lines too")
    func curlVerbose() throws {
        let raw = """
            *   Trying 140.82.112.6:443...
            > GET /orgs/acme/members HTTP/2
            > Host: api.github.com
            > User-Agent: curl/8.5.0
            >
            < HTTP/2 401
            < server: GitHub.com
            < x-github-request-id: C0A8:1:2:3:4
            < content-type: application/json; charset=utf-8
            <
            { [131 bytes data]
            {"message":"Requires authentication","documentation_url":"https://docs.github.com/rest"}
            * Connection #0 to host api.github.com left intact
            """
        let (response, d) = try #require(try doctor.diagnose(data: Data(raw.utf8), source: "x").results.first)
        #expect(response.status == 401)
        #expect(response.request?.carriedCredentials == false)
        #expect(d.deniedBy == "github-api" && d.cause == .missingCredentials)
    }

    @Test("undoes chunked framing left in a raw capture")
    func chunked() throws {
        let json =
            #"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"x\"","reason":"Forbidden","code":403}"#
        let raw =
            "HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
            + String(json.utf8.count, radix: 16) + "\r\n" + json + "\r\n0\r\n\r\n"
        let d = try #require(try doctor.diagnose(data: Data(raw.utf8), source: "x").results.first?.1)
        #expect(d.deniedBy == "kubernetes-apiserver" && d.cause == .insufficientPermissions)
    }

    @Test("printed URLs never carry credential values")
    func redaction() {
        let url = Report.redacted("https://api.example.com/v1/items?page=2&api_key=sk_live_123&X-Amz-Signature=abcd&q=shoes")
        #expect(url == "https://api.example.com/v1/items?page=2&api_key=REDACTED&X-Amz-Signature=REDACTED&q=shoes")
    }

    @Test("a capture without the blank line after the headers still yields its body")
    func missingBlankLine() throws {
        let raw =
            "HTTP/1.1 403 Forbidden\nServer: nginx\n<html><body><center><h1>403 Forbidden</h1></center><hr><center>nginx</center></body></html>"
        let (response, d) = try #require(try doctor.diagnose(data: Data(raw.utf8), source: "x").results.first)
        #expect(response.headers.count == 1)
        #expect(response.body.hasPrefix("<html>"))
        #expect(d.deniedBy == "nginx")
    }
}

import GatehouseChecks
import GatehouseCore
import GatehouseIdentity
import Testing

struct StubKeyDirectory: CredentialDirectory {
    var keys: [String: KeyRecord] = [:]
    var consumers: [String: ConsumerRecord] = [:]
    var isAvailable = true
    func key(id: String) -> KeyRecord? { keys[id] }
    func consumer(id: String) -> ConsumerRecord? { consumers[id] }
}

@Suite struct APIKeyTests {
    @Test func generatedKeysParseAndEverySingleCharacterTypoIsCaught() throws {
        let (key, id) = APIKeyFormat.generate()
        #expect(key.hasPrefix("gth_"))
        #expect(key.count == APIKeyFormat.length)
        #expect(try APIKeyFormat.parse(key).get() == id)
        let chars = Array(key)
        var caught = 0
        for i in 4..<chars.count where chars[i] != "_" {
            var typo = chars
            typo[i] = typo[i] == "Q" ? "R" : "Q"
            if case .failure = APIKeyFormat.parse(String(typo)) { caught += 1 }
        }
        #expect(caught == chars.count - 5)
        #expect(APIKeyFormat.parse(String(key.dropLast())) == .failure(.wrongLength(key.count - 1)))
        #expect(APIKeyFormat.parse("sk_live_abc") == .failure(.wrongPrefix))
    }

    @Test func everyChecksumDigitAndOnlyTheAlphabetsParse() throws {
        // 500 keys put every base-62 digit into the checksum positions many times over.
        for _ in 0..<500 {
            let (key, id) = APIKeyFormat.generate()
            #expect(try APIKeyFormat.parse(key).get() == id)
        }
        let (key, _) = APIKeyFormat.generate()
        var bytes = Array(key.utf8)
        for bad in Array("-/{[`@:_ ".utf8) {
            bytes[20] = bad  // a secret character
            #expect(APIKeyFormat.parse(String(decoding: bytes, as: UTF8.self)) == .failure(.badCharacters), "byte \(bad)")
        }
        var id = Array(key.utf8)
        id[5] = UInt8(ascii: "A")  // ids are lowercase base 36
        #expect(APIKeyFormat.parse(String(decoding: id, as: UTF8.self)) == .failure(.badCharacters))
    }

    func fixture(status: String = "active", expires: Double? = nil, revoked: Double? = nil) -> (APIKeyCheck, String) {
        let (key, id) = APIKeyFormat.generate()
        var dir = StubKeyDirectory()
        dir.consumers["c1"] = ConsumerRecord(id: "c1", name: "acme", status: status, tenant: "t", roles: ["r"], scopes: ["s"])
        dir.keys[id] = KeyRecord(
            keyID: id, consumerID: "c1", hash: APIKeyFormat.hash(key), createdAt: 0, expiresAt: expires, revokedAt: revoked)
        return (APIKeyCheck(id: "api-key", header: "X-API-Key", queryParameter: "api_key", directory: dir), key)
    }

    func reason(_ v: Verdict) -> ReasonCode? {
        if case .deny(let d) = v { return d.code }
        return nil
    }

    @Test func verdictsForEachCredentialState() {
        let (check, key) = fixture()
        var ok = PolicyRequest(method: "GET", path: "/", headers: HeaderList([("x-api-key", key)]), now: 100)
        #expect(reason(check.evaluate(&ok)) == nil)
        #expect(ok.principal?.consumerName == "acme")
        #expect(ok.principal?.scopes == ["s"])
        var viaQuery = PolicyRequest(method: "GET", path: "/", query: "api_key=\(key)", now: 100)
        #expect(reason(check.evaluate(&viaQuery)) == nil)

        var missing = PolicyRequest(method: "GET", path: "/", now: 100)
        let m = check.evaluate(&missing)
        #expect(reason(m) == .missingCredentials)
        if case .deny(let d) = m { #expect(d.headers.first?.name == "WWW-Authenticate") }

        let (exp, ekey) = fixture(expires: 50)
        var e = PolicyRequest(method: "GET", path: "/", headers: HeaderList([("X-API-Key", ekey)]), now: 100)
        #expect(reason(exp.evaluate(&e)) == .expiredCredentials)
        let (rev, rkey) = fixture(revoked: 10)
        var r = PolicyRequest(method: "GET", path: "/", headers: HeaderList([("X-API-Key", rkey)]), now: 100)
        #expect(reason(rev.evaluate(&r)) == .revokedCredentials)
        let (sus, skey) = fixture(status: "suspended")
        var s = PolicyRequest(method: "GET", path: "/", headers: HeaderList([("X-API-Key", skey)]), now: 100)
        let sv = sus.evaluate(&s)
        #expect(reason(sv) == .consumerSuspended)
        if case .deny(let d) = sv { #expect(d.status == 403) }

        let (other, _) = fixture()
        var u = PolicyRequest(method: "GET", path: "/", headers: HeaderList([("X-API-Key", key)]), now: 100)
        let uv = other.evaluate(&u)
        #expect(reason(uv) == .invalidCredentials)
        // Denials never carry the key.
        if case .deny(let d) = uv { #expect(!(d.detail + d.presented.joined()).contains(key)) }
    }

    @Test func unavailableDirectoryFailsClosed() {
        let (key, _) = APIKeyFormat.generate()
        let check = APIKeyCheck(id: "k", directory: StubKeyDirectory(isAvailable: false))
        var req = PolicyRequest(method: "GET", path: "/", headers: HeaderList([("X-API-Key", key)]))
        #expect(reason(check.evaluate(&req)) == .checkUnavailable)
    }
}

@Suite struct IPAndShapeTests {
    @Test func ipAllowAndDeny() throws {
        let check = IPCheck(
            id: "office", allow: [try CIDRBlock.parse("10.0.0.0/8").get()], deny: [try CIDRBlock.parse("10.6.0.0/16").get()])
        var inside = PolicyRequest(method: "GET", path: "/", clientAddress: IPAddress("10.1.2.3"))
        #expect(check.evaluate(&inside) == .allow(note: "10.1.2.3 in 10.0.0.0/8 (allow list office)"))
        var denied = PolicyRequest(method: "GET", path: "/", clientAddress: IPAddress("10.6.1.1"))
        guard case .deny(let d) = check.evaluate(&denied) else { Issue.record("not denied"); return }
        #expect(d.code == .ipDenied)
        var outside = PolicyRequest(method: "GET", path: "/", clientAddress: IPAddress("203.0.113.7"))
        guard case .deny(let o) = check.evaluate(&outside) else { Issue.record("not denied"); return }
        #expect(o.detail == "203.0.113.7 is not in allow list office (10.0.0.0/8)")
        #expect(o.presented == ["203.0.113.7"])
    }

    @Test func requestShape() {
        let check = RequestShapeCheck(
            id: "shape", methods: ["GET", "POST"], contentTypes: ["application/json", "text/*"], maxBodyBytes: 10, maxHeaderBytes: 100)
        func code(_ r: PolicyRequest) -> ReasonCode? {
            var r = r
            if case .deny(let d) = check.evaluate(&r) { return d.code }
            return nil
        }
        #expect(code(PolicyRequest(method: "DELETE", path: "/")) == .methodNotAllowed)
        #expect(
            code(
                PolicyRequest(
                    method: "POST", path: "/", headers: HeaderList([("Content-Type", "application/json; charset=utf-8")]), contentLength: 5)
            ) == nil)
        #expect(
            code(PolicyRequest(method: "POST", path: "/", headers: HeaderList([("Content-Type", "text/plain")]), contentLength: 5)) == nil)
        #expect(
            code(PolicyRequest(method: "POST", path: "/", headers: HeaderList([("Content-Type", "application/xml")]), contentLength: 5))
                == .unsupportedMediaType)
        #expect(code(PolicyRequest(method: "POST", path: "/", contentLength: 5)) == .unsupportedMediaType)
        #expect(
            code(PolicyRequest(method: "POST", path: "/", headers: HeaderList([("Content-Type", "application/json")]), contentLength: 11))
                == .bodyTooLarge)
        #expect(
            code(PolicyRequest(method: "GET", path: "/", headers: HeaderList([("X", String(repeating: "a", count: 100))])))
                == .headersTooLarge)
        #expect(code(PolicyRequest(method: "GET", path: "/")) == nil)
    }
}

import GatehouseChecks
import GatehouseCore
import Testing

@Suite struct MTLSCheckTests {
    let dir = MemoryDirectory(consumers: [ConsumerRecord(id: "c1", name: "billing", tenant: "acme", scopes: ["payment:write"])])

    func req(tls: Bool = true, _ peer: PeerIdentity?) -> PolicyRequest {
        PolicyRequest(method: "GET", path: "/pay", isTLS: tls, peerIdentity: peer)
    }

    @Test func reasonsForEachCertificateProblem() throws {
        let c = MTLSCheck(id: "mtls", identity: .san, mapping: ["DNS:billing.internal": "billing"], directory: dir)
        var plain = req(tls: false, nil)
        #expect(denialOf(c.evaluate(&plain))?.code == "certificate_missing")
        var none = req(nil)
        let m = try #require(denialOf(c.evaluate(&none)))
        #expect(m.code == "certificate_missing" && m.status == 401)
        var expired = req(PeerIdentity(verified: false, failure: "the client certificate expired on 2026-01-01T00:00:00Z, 325 d ago",
                                       subject: "CN=billing", fingerprint: "ab12"))
        let e = try #require(denialOf(c.evaluate(&expired)))
        #expect(e.code == "certificate_invalid" && e.status == 401)
        #expect(e.detail.contains("expired on 2026-01-01T00:00:00Z"))
        var unmapped = req(PeerIdentity(verified: true, subject: "CN=other", commonName: "other", subjectAltNames: ["DNS:other.internal"], fingerprint: "cd34"))
        let u = try #require(denialOf(c.evaluate(&unmapped)))
        #expect(u.code == "certificate_unmapped" && u.status == 403)
        #expect(u.presented.contains("DNS:other.internal"))
        var good = req(PeerIdentity(verified: true, subject: "CN=x", commonName: "x", subjectAltNames: ["DNS:billing.internal"], fingerprint: "ef56"))
        #expect(allowed(c.evaluate(&good)))
        #expect(good.principal?.consumerName == "billing" && good.principal?.tenant == "acme")
    }

    @Test func commonNameMapsToConsumerOfThatName() {
        let c = MTLSCheck(id: "mtls", directory: dir)
        var r = req(PeerIdentity(verified: true, subject: "CN=billing", commonName: "billing", fingerprint: "01"))
        #expect(allowed(c.evaluate(&r)))
        #expect(r.principal?.method == "mtls")
    }
}

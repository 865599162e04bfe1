import Foundation
import GatehouseChecks
import GatehouseCore
import GatehouseIdentity
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
        var expired = req(
            PeerIdentity(
                verified: false, failure: "the client certificate expired on 2026-01-01T00:00:00Z, 325 d ago",
                subject: "CN=billing", fingerprint: "ab12"))
        let e = try #require(denialOf(c.evaluate(&expired)))
        #expect(e.code == "certificate_invalid" && e.status == 401)
        #expect(e.detail.contains("expired on 2026-01-01T00:00:00Z"))
        var unmapped = req(
            PeerIdentity(
                verified: true, subject: "CN=other", commonName: "other", subjectAltNames: ["DNS:other.internal"], fingerprint: "cd34"))
        let u = try #require(denialOf(c.evaluate(&unmapped)))
        #expect(u.code == "certificate_unmapped" && u.status == 403)
        #expect(u.presented.contains("DNS:other.internal"))
        var good = req(
            PeerIdentity(verified: true, subject: "CN=x", commonName: "x", subjectAltNames: ["DNS:billing.internal"], fingerprint: "ef56"))
        #expect(allowed(c.evaluate(&good)))
        #expect(good.principal?.consumerName == "billing" && good.principal?.tenant == "acme")
    }

    /// An identity is matched whole: never the text after a colon, and an unmapped identity names
    /// a consumer only whole (a CN as it is, a SAN with its type).
    @Test func identitiesAreMatchedWhole() throws {
        let dir = MemoryDirectory(consumers: [
            ConsumerRecord(id: "c1", name: "billing", scopes: ["payment:write"]),
            ConsumerRecord(id: "c2", name: "DNS:ops.internal"),
        ])
        let san = MTLSCheck(id: "mtls", identity: .san, mapping: ["DNS:billing.internal": "billing"], directory: dir)
        let cn = MTLSCheck(id: "mtls", identity: .cn, mapping: ["billing-service": "billing"], directory: dir)
        func verdict(_ c: MTLSCheck, cn name: String = "x", sans: [String] = []) -> Verdict {
            var r = req(PeerIdentity(verified: true, subject: "CN=\(name)", commonName: name, subjectAltNames: sans, fingerprint: "0a0b"))
            return c.evaluate(&r)
        }
        for sans in [["URI:DNS:billing.internal"], ["URI:billing"], ["email:billing"], ["DNS:billing"], ["URI:x:billing"]] {
            #expect(denialOf(verdict(san, sans: sans))?.code == "certificate_unmapped", "\(sans)")
        }
        // `identity: san` never reads the CN, `identity: cn` never the SANs.
        #expect(denialOf(verdict(san, cn: "billing"))?.code == "certificate_unmapped")
        #expect(denialOf(verdict(cn, cn: "x", sans: ["DNS:billing.internal"]))?.code == "certificate_unmapped")
        for name in ["team-a:billing-service", "CN:billing-service", "x:billing", "DNS:billing.internal"] {
            #expect(denialOf(verdict(cn, cn: name))?.code == "certificate_unmapped", "\(name)")
        }
        // Whole identities: mapped, or a consumer of exactly that name.
        #expect(allowed(verdict(san, sans: ["URI:spiffe://x", "DNS:billing.internal"])))
        var r = req(
            PeerIdentity(verified: true, subject: "CN=x", commonName: "x", subjectAltNames: ["DNS:ops.internal"], fingerprint: "0c"))
        #expect(allowed(san.evaluate(&r)) && r.principal?.consumerName == "DNS:ops.internal")
        #expect(allowed(verdict(cn, cn: "billing-service")))
        #expect(allowed(verdict(cn, cn: "billing")))
    }

    @Test func commonNameMapsToConsumerOfThatName() {
        let c = MTLSCheck(id: "mtls", directory: dir)
        var r = req(PeerIdentity(verified: true, subject: "CN=billing", commonName: "billing", fingerprint: "01"))
        #expect(allowed(c.evaluate(&r)))
        #expect(r.principal?.method == "mtls")
    }
}

/// `ClientCertificateAuthority`: swift-certificates' Verifier plus the client-certificate policy,
/// on chains made by OpenSSL (`ClientCertificateFixtures`), each refusal explained.
@Suite struct ClientCertificateVerificationTests {
    typealias F = ClientCertificateFixtures
    let authority: ClientCertificateAuthority

    init() throws { authority = try ClientCertificateAuthority(pemBundle: F.ca) }

    /// The DER of a PEM certificate, as the TLS handshake hands it over.
    static func der(_ pem: String) -> [UInt8] {
        let body = pem.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.hasPrefix("-----") }.joined()
        return Array(Data(base64Encoded: body) ?? Data())
    }

    func verify(_ chain: [String], now: Double = F.now) async -> ClientCertificateAuthority.Verification {
        await authority.verify(chain: chain.map(Self.der), now: now)
    }

    func failure(_ chain: [String], now: Double = F.now) async -> String {
        let v = await verify(chain, now: now)
        #expect(!v.identity.verified)
        #expect(v.validatedChain.isEmpty)
        return v.identity.failure ?? ""
    }

    @Test func directAndIntermediateChainsVerify() async throws {
        let direct = await verify([F.billing])
        #expect(direct.identity.verified, "\(direct.identity.failure ?? "")")
        #expect(direct.identity.commonName == "billing-service")
        #expect(direct.validatedChain == [Self.der(F.billing), Self.der(F.ca)])
        let via = await verify([F.viaInter, F.inter])
        #expect(via.identity.verified, "\(via.identity.failure ?? "")")
        #expect(via.identity.commonName == "admin")
        #expect(via.validatedChain.count == 3)
        // Presented order of the intermediates does not matter; extra certificates are ignored.
        #expect(await verify([F.viaInter, F.billing, F.inter]).identity.verified)
    }

    @Test func certificateSignedByALeafIsRefusedAsNotACA() async {
        let f = await failure([F.forged, F.billing])
        #expect(f.contains("intermediate CN=billing-service is not a CA"), "\(f)")
        let alone = await failure([F.forged])
        #expect(alone.contains("was issued by CN=billing-service, which is not a trusted CA"), "\(alone)")
    }

    @Test func issuersMustBeAllowedToSign() async {
        let noCertSign = await failure([F.underNoCertSign, F.noCertSign])
        #expect(
            noCertSign.contains("intermediate CN=Signing Only is not a CA") && noCertSign.contains("lacks keyCertSign"), "\(noCertSign)")
        let pathLen = await failure([F.underBelow, F.below, F.inter])
        #expect(
            pathLen.contains("CN=Fixture Issuing CA allows 0 CA certificates below it (pathLenConstraint), but the chain has 1"),
            "\(pathLen)")
        let expired = await failure([F.underShort, F.short])
        #expect(expired.contains("intermediate CN=Short CA expired on "), "\(expired)")
    }

    /// A version 1 certificate has no basicConstraints; RFC5280Policy lets one issue, OpenSSL does
    /// not, and neither does Gatehouse, so a holder of a v1 client certificate cannot forge.
    @Test func versionOneCertificatesNeitherIssueNorAuthenticate() async {
        let forged = await failure([F.forgedByV1, F.v1Leaf])
        #expect(forged.contains("intermediate CN=billing-service is not a CA (no basicConstraints CA:TRUE)"), "\(forged)")
        let v1 = await failure([F.v1Leaf])
        #expect(v1.contains("has no extended key usage"), "\(v1)")
    }

    @Test func theLeafMustBeAClientEndEntity() async {
        let serverOnly = await failure([F.serverOnly])
        #expect(serverOnly.contains("does not include TLS client authentication (clientAuth)"), "\(serverOnly)")
        let noEKU = await failure([F.noEKU])
        #expect(noEKU.contains("has no extended key usage"), "\(noEKU)")
        let ca = await failure([F.caAsClient])
        #expect(ca.contains("is a CA certificate"), "\(ca)")
        // The trusted root itself, presented as a client certificate (its key's holder is the CA).
        let root = await failure([F.ca])
        #expect(root.contains("is a CA certificate"), "\(root)")
    }

    @Test func untrustedExpiredImpostorAndMalformedChainsAreExplained() async {
        let rogue = await failure([F.rogueLeaf])
        #expect(rogue.contains("issued by CN=Rogue CA, which is not a trusted CA (trusted: CN=Fixture Client CA)"), "\(rogue)")
        // With the rogue CA presented as an intermediate, the trail ends at the rogue CA.
        let rogueChain = await failure([F.rogueLeaf, F.rogue])
        #expect(rogueChain.contains("intermediate CN=Rogue CA was issued by CN=Rogue CA, which is not a trusted CA"), "\(rogueChain)")
        let expired = await failure([F.billing], now: F.now + 86400 * 365 * 11)
        #expect(expired.contains("the client certificate expired on "), "\(expired)")
        let early = await failure([F.billing], now: F.now - 86400 * 30)
        #expect(early.contains("is not valid until"), "\(early)")
        let impostor = await failure([F.impostor])
        #expect(impostor.contains("names trusted CA CN=Fixture Client CA as issuer but its signature does not verify"), "\(impostor)")

        let empty = await verify([])
        #expect(!empty.identity.verified && empty.identity.fingerprint == nil)
        let garbage = await authority.verify(chain: [[0x30, 0x03, 0x02, 0x01, 0x01]], now: F.now)
        #expect(!garbage.identity.verified && garbage.identity.failure == "the client certificate could not be parsed")
        let tooMany = await failure([F.viaInter] + Array(repeating: F.inter, count: ClientCertificateAuthority.maxIntermediates + 1))
        #expect(tooMany.contains("at most \(ClientCertificateAuthority.maxIntermediates)"), "\(tooMany)")
    }

    /// The explained failure reaches the `mtls` check's denial as it is.
    @Test func theCheckCarriesTheVerifiersReason() async throws {
        let dir = MemoryDirectory(consumers: [ConsumerRecord(id: "c1", name: "admin", roles: ["admin"])])
        let check = MTLSCheck(id: "mtls", directory: dir)
        var forged = PolicyRequest(
            method: "GET", path: "/admin", isTLS: true,
            peerIdentity: await authority.identity(chain: [F.forged, F.billing].map(Self.der), now: F.now))
        let d = try #require(denialOf(check.evaluate(&forged)))
        #expect(d.code == "certificate_invalid" && d.status == 401)
        #expect(d.detail.contains("CN=admin") && d.detail.contains("is not a CA"))
        #expect(forged.principal == nil)
        var good = PolicyRequest(
            method: "GET", path: "/admin", isTLS: true,
            peerIdentity: await authority.identity(chain: [F.viaInter, F.inter].map(Self.der), now: F.now))
        #expect(allowed(check.evaluate(&good)))
        #expect(good.principal?.consumerName == "admin")
    }
}

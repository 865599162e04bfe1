import Crypto
import Foundation
import GatehouseTestSupport
import SwiftASN1
import Testing
import X509

/// A live gateway with a TLS listener whose clients are verified against one CA, and a route that
/// only consumer `admin` (role admin) may use. `billing-service` is a real client of that CA
/// without the role: the review's attacker.
private struct MTLSLab {
    let pki: TestPKI
    let upstream: CaptureUpstream
    let gw: GatewayProcess
    let billing: TestPKI.Issued

    static func start(clientAuth: String = "optional") async throws -> MTLSLab {
        let pki = try TestPKI(name: "Gatehouse Test Client CA")
        let upstream = try await CaptureUpstream()
        let dir = try TempDir()
        let server = try pki.issue(commonName: "localhost", dns: ["localhost"], ip: true, server: true)
        _ = try dir.write("server.pem", server.certPEM)
        _ = try dir.write("server.key", server.keyPEM)
        _ = try dir.write("clients-ca.pem", pki.caPEM)
        let gw = try GatewayProcess(
            yaml: """
                tls: { certificate: server.pem, key: server.key, client_ca: clients-ca.pem, client_auth: \(clientAuth) }
                upstreams:
                  app: { targets: ["\(upstream.url)"] }
                routes:
                  - name: admin
                    match: { path: /admin }
                    upstream: app
                    policies: [client-cert, admins]
                policies:
                  client-cert:
                    type: mtls
                    identity: cn
                    consumers: { "billing-service": billing, "admin": admin, "Gatehouse Test Client CA": admin }
                  admins: { type: roles, any_of: [admin] }
                """, dir: dir)
        #expect(try gw.cli(["consumers", "create", "admin", "--roles", "admin"]).status == 0)
        #expect(try gw.cli(["consumers", "create", "billing"]).status == 0)
        let lab = MTLSLab(
            pki: pki, upstream: upstream, gw: gw,
            billing: try pki.issue(commonName: "billing-service"))
        // The consumers appear in the gateway's directory within a second.
        var probe = try await lab.call([lab.billing], case: "warmup")
        for _ in 0..<40 where probe.json["reason"] as? String != "missing_role" {
            try await Task.sleep(for: .milliseconds(100))
            probe = try await lab.call([lab.billing], case: "warmup")
        }
        return lab
    }

    /// GET /admin?case=NAME over TLS presenting `chain` (leaf first, signed for with the leaf's key).
    func call(_ chain: [TestPKI.Issued], case name: String) async throws -> Reply {
        try await sendWithClientCertificate("https://127.0.0.1:\(gw.port)/admin?case=\(name)", chain: chain, serverCAPEM: pki.caPEM)
    }

    /// Whether the upstream received the request of case `name`.
    func upstreamSaw(_ name: String) -> Bool {
        upstream.requests.contains { $0.target.hasSuffix("case=\(name)") }
    }

    func stop() async {
        gw.stop()
        await upstream.stop()
    }
}

/// Asserts the reply is the explained refusal of a client certificate: 401 `certificate_invalid`,
/// a request id, and a detail containing each of `words`.
private func expectRefused(_ r: Reply, mentioning words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.status == 401, "status \(r.status): \(r.body)", sourceLocation: sourceLocation)
    #expect(r.json["reason"] as? String == "certificate_invalid", "\(r.body)", sourceLocation: sourceLocation)
    #expect(!r.requestID.isEmpty, sourceLocation: sourceLocation)
    let detail = r.json["detail"] as? String ?? ""
    for w in words {
        #expect(detail.contains(w), "detail lacks \"\(w)\": \(detail)", sourceLocation: sourceLocation)
    }
}

@Suite("S1 mTLS chain check never requires the issuer to be a CA")
struct S01ClientCertificateForgery {
    /// The review's reproduction: `billing-service` signs `CN=admin` with its own leaf key and
    /// presents forged + leaf. Before the fix this was 200 as consumer admin, upstream called.
    @Test func certificateSignedWithALeafKeyIsNotAdmittedAsAdmin() async throws {
        let lab = try await MTLSLab.start()
        // The leaf exactly as the review made it: CA:FALSE, keyUsage digitalSignature.
        let leaf = try TestPKI.sign(
            commonName: "billing-service", issuer: lab.pki.caName, issuerKey: lab.pki.caKey,
            extensions: try TestPKI.clientExtensions())
        let forged = try leaf.issue(commonName: "admin")

        let control = try await lab.call([leaf], case: "control")
        #expect(control.status == 403)
        #expect(control.json["reason"] as? String == "missing_role")

        let attack = try await lab.call([forged, leaf], case: "forged")
        expectRefused(attack, mentioning: ["CN=billing-service", "is not a CA"])
        #expect(!lab.upstreamSaw("forged"))
        let record = try await lab.gw.record(attack.requestID)
        #expect("\(record)".contains("certificate_invalid"))

        // The same forgery without the leaf in the chain names the leaf as an untrusted issuer.
        let alone = try await lab.call([forged], case: "forged-alone")
        expectRefused(alone, mentioning: ["issued by CN=billing-service, which is not a trusted CA"])
        #expect(!lab.upstreamSaw("forged-alone"))
        await lab.stop()
    }

    /// Root → intermediate CA → leaf with clientAuth is accepted; leaves without clientAuth are
    /// refused with an explanation.
    @Test func intermediateChainsAcceptedAndLeavesNeedClientAuth() async throws {
        let lab = try await MTLSLab.start()
        let intermediate = try lab.pki.intermediate(commonName: "Gatehouse Issuing CA 1", maxPathLength: 0)
        let admin = try intermediate.issue(commonName: "admin")
        let ok = try await lab.call([admin, intermediate], case: "via-intermediate")
        #expect(ok.status == 200, "\(ok.body)")
        #expect(lab.upstreamSaw("via-intermediate"))

        let serverOnly = try intermediate.issue(commonName: "admin", extensions: try TestPKI.clientExtensions(usages: [.serverAuth]))
        let s = try await lab.call([serverOnly, intermediate], case: "server-auth-only")
        expectRefused(s, mentioning: ["clientAuth", "serverAuth"])
        #expect(!lab.upstreamSaw("server-auth-only"))

        // Issued by the root directly with clientAuth: accepted, as a control.
        #expect(try await lab.call([try lab.pki.issue(commonName: "admin")], case: "direct").status == 200)
        let bare = try TestPKI.sign(
            commonName: "admin", issuer: lab.pki.caName, issuerKey: lab.pki.caKey,
            extensions: try TestPKI.clientExtensions(usages: []))
        let b = try await lab.call([bare], case: "no-eku")
        expectRefused(b, mentioning: ["no extended key usage", "clientAuth"])
        #expect(!lab.upstreamSaw("no-eku"))
        await lab.stop()
    }

    /// Other ways around the issuer checks, each refused with its reason and the upstream untouched.
    @Test func otherChainsThatMustNotPass() async throws {
        let lab = try await MTLSLab.start()
        let pki = lab.pki

        // An intermediate marked CA:TRUE whose keyUsage does not allow certificate signing.
        let noCertSign = try pki.intermediate(commonName: "Signing Only", keyCertSign: false)
        let r1 = try await lab.call([try noCertSign.issue(commonName: "admin"), noCertSign], case: "no-keycertsign")
        expectRefused(r1, mentioning: ["intermediate CN=Signing Only", "keyCertSign"])

        // pathLen 0 on the first intermediate, then a second CA below it.
        let top = try pki.intermediate(commonName: "Path Zero CA", maxPathLength: 0)
        let below = try top.issue(commonName: "Below CA", extensions: try TestPKI.caExtensions())
        let r2 = try await lab.call([try below.issue(commonName: "admin"), below, top], case: "pathlen")
        expectRefused(r2, mentioning: ["CN=Path Zero CA", "pathLenConstraint"])

        // An expired intermediate.
        let old = try pki.intermediate(commonName: "Old CA", notBefore: Date() - 86400 * 30, notAfter: Date() - 86400)
        let r3 = try await lab.call([try old.issue(commonName: "admin"), old], case: "expired-intermediate")
        expectRefused(r3, mentioning: ["intermediate CN=Old CA expired on"])

        // A self-made CA with the trusted CA's exact name, and a self-signed client certificate
        // whose subject is the trusted CA's (mapped to admin in this configuration).
        let impostor = try TestPKI(name: "Gatehouse Test Client CA")
        let r4 = try await lab.call([try impostor.issue(commonName: "admin")], case: "impostor-ca")
        expectRefused(r4, mentioning: ["names trusted CA CN=Gatehouse Test Client CA", "signature does not verify"])
        let selfKey = P256.Signing.PrivateKey()
        let selfSigned = try TestPKI.sign(
            commonName: "Gatehouse Test Client CA", key: selfKey, issuer: pki.caName, issuerKey: selfKey,
            extensions: try TestPKI.clientExtensions())
        let r5 = try await lab.call([selfSigned], case: "self-signed")
        expectRefused(r5, mentioning: ["signature does not verify"])

        // A genuine CA certificate (the client holds an intermediate's key) presented as the client
        // certificate, even with clientAuth: a CA is not a client.
        let caAsClient = try TestPKI.sign(
            commonName: "admin", issuer: pki.caName, issuerKey: pki.caKey,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                KeyUsage(digitalSignature: true, keyCertSign: true)
                try ExtendedKeyUsage([.clientAuth])
            })
        let r6 = try await lab.call([caAsClient], case: "ca-as-client")
        expectRefused(r6, mentioning: ["is a CA certificate"])

        // The leaf not first: the client's own (billing) certificate after a certificate for admin.
        // TLS makes the first certificate the one the client signs for, so this is the forgery
        // again with an extra, unrelated certificate.
        let forged = try lab.billing.issue(commonName: "admin")
        let r7 = try await lab.call([forged, try pki.issue(commonName: "admin"), lab.billing], case: "shuffled")
        expectRefused(r7, mentioning: ["is not a CA"])

        // A version 1 client certificate (no extensions, as `openssl x509 -req` makes without an
        // extension file) has no basicConstraints; RFC5280Policy alone would let it issue.
        let v1 = try TestPKI.sign(
            commonName: "billing-service", issuer: pki.caName, issuerKey: pki.caKey, version: .v1,
            extensions: Certificate.Extensions())
        let r8 = try await lab.call([try v1.issue(commonName: "admin"), v1], case: "v1-issuer")
        expectRefused(r8, mentioning: ["intermediate CN=billing-service is not a CA"])

        for name in [
            "no-keycertsign", "pathlen", "expired-intermediate", "impostor-ca", "self-signed", "ca-as-client", "shuffled", "v1-issuer",
        ] {
            #expect(!lab.upstreamSaw(name), "upstream was called for \(name)")
        }
        // No certificate at all.
        let none = try await lab.call([], case: "none")
        #expect(none.status == 401)
        #expect(none.json["reason"] as? String == "certificate_missing")
        await lab.stop()
    }

    /// `client_auth: require` refuses a handshake without a certificate; a forged chain completes
    /// the handshake there too and gets the same explained refusal.
    @Test func requireModeRefusesTheForgeryToo() async throws {
        let lab = try await MTLSLab.start(clientAuth: "require")
        let attack = try await lab.call([try lab.billing.issue(commonName: "admin"), lab.billing], case: "forged")
        expectRefused(attack, mentioning: ["CN=billing-service", "is not a CA"])
        #expect(!lab.upstreamSaw("forged"))
        await #expect(throws: (any Error).self) { _ = try await lab.call([], case: "none") }
        await lab.stop()
    }
}

/// Review B: the identity lookup tried the whole identity, then the text after its first colon,
/// then (for SANs) that text as a consumer name, whatever the SAN's type. A certificate with the
/// URI SAN `URI:DNS:admin.internal` was mapped as `DNS:admin.internal`, `URI:admin` became
/// consumer admin, and the CN `team-a:admin-service` was mapped as `admin-service`: all 200 on an
/// admin route. Identities are now matched whole.
@Suite("S1 mTLS identities are matched whole") struct S01ClientCertificateIdentityMatching {
    /// A client certificate from `pki` with the subject CN `commonName` and exactly `sans`.
    static func client(_ pki: TestPKI, commonName: String, sans: [GeneralName]) throws -> TestPKI.Issued {
        try TestPKI.sign(
            commonName: commonName, issuer: pki.caName, issuerKey: pki.caKey,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                KeyUsage(digitalSignature: true)
                try ExtendedKeyUsage([.clientAuth])
                if !sans.isEmpty { SubjectAlternativeNames(sans) }
            })
    }

    @Test func partsOfAnIdentityNameNoConsumer() async throws {
        let pki = try TestPKI(name: "Gatehouse Identity CA")
        let upstream = try await CaptureUpstream()
        let dir = try TempDir()
        let server = try pki.issue(commonName: "localhost", dns: ["localhost"], ip: true, server: true)
        _ = try dir.write("server.pem", server.certPEM)
        _ = try dir.write("server.key", server.keyPEM)
        _ = try dir.write("clients-ca.pem", pki.caPEM)
        let gw = try GatewayProcess(
            yaml: """
                tls: { certificate: server.pem, key: server.key, client_ca: clients-ca.pem }
                upstreams:
                  app: { targets: ["\(upstream.url)"] }
                routes:
                  - name: san
                    match: { path: /san }
                    upstream: app
                    policies: [by-san, admins]
                  - name: cn
                    match: { path: /cn }
                    upstream: app
                    policies: [by-cn, admins]
                policies:
                  by-san: { type: mtls, identity: san, consumers: { "DNS:admin.internal": admin } }
                  by-cn: { type: mtls, identity: cn, consumers: { "admin-service": admin } }
                  admins: { type: roles, any_of: [admin] }
                """, dir: dir)
        defer { gw.stop() }
        #expect(try gw.cli(["consumers", "create", "admin", "--roles", "admin"]).status == 0)
        func call(_ path: String, _ cert: TestPKI.Issued, _ name: String) async throws -> Reply {
            try await sendWithClientCertificate("https://127.0.0.1:\(gw.port)\(path)?case=\(name)", chain: [cert], serverCAPEM: pki.caPEM)
        }
        // Controls: the whole identities map to admin (once the consumer has reached the gateway).
        let sanAdmin = try Self.client(pki, commonName: "x", sans: [.dnsName("admin.internal")])
        var control = try await call("/san", sanAdmin, "control-san")
        for _ in 0..<40 where control.status != 200 {
            try await Task.sleep(for: .milliseconds(100))
            control = try await call("/san", sanAdmin, "control-san")
        }
        #expect(control.status == 200, "\(control.body)")
        #expect(try await call("/cn", try Self.client(pki, commonName: "admin-service", sans: []), "control-cn").status == 200)

        let attacks: [(String, String, TestPKI.Issued)] = [
            ("uri-dns", "/san", try Self.client(pki, commonName: "x", sans: [.uniformResourceIdentifier("DNS:admin.internal")])),
            ("uri-consumer", "/san", try Self.client(pki, commonName: "x", sans: [.uniformResourceIdentifier("admin")])),
            ("email-consumer", "/san", try Self.client(pki, commonName: "x", sans: [.rfc822Name("admin")])),
            ("dns-consumer", "/san", try Self.client(pki, commonName: "x", sans: [.dnsName("admin")])),
            ("cn-prefixed", "/cn", try Self.client(pki, commonName: "team-a:admin-service", sans: [])),
            ("cn-typed", "/cn", try Self.client(pki, commonName: "CN:admin", sans: [])),
        ]
        for (name, path, cert) in attacks {
            let r = try await call(path, cert, name)
            #expect(r.status == 403 && r.json["reason"] as? String == "certificate_unmapped", "\(name): \(r.status) \(r.body)")
        }
        for (name, _, _) in attacks { #expect(!upstream.requests.contains { $0.target.hasSuffix("case=\(name)") }, "\(name)") }
        await upstream.stop()
    }
}

/// Runs `openssl` with `arguments` and `input` on standard input; its standard output and error,
/// or nil when it does not finish within 10 s.
private func runOpenSSL(_ arguments: [String], input: String) throws -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    p.arguments = arguments
    let stdin = Pipe(), stdout = Pipe()
    p.standardInput = stdin
    p.standardOutput = stdout
    p.standardError = stdout
    try p.run()
    stdin.fileHandleForWriting.write(Data(input.utf8))
    // s_client -ign_eof keeps reading after standard input ends, until the server closes.
    try stdin.fileHandleForWriting.close()
    let deadline = Date() + 10
    var out = Data()
    let reader = stdout.fileHandleForReading
    while p.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
    if p.isRunning { p.terminate(); return nil }
    out = reader.readDataToEndOfFile()
    return String(decoding: out, as: UTF8.self)
}

/// Review B: a client that resumed its TLS session (TLS 1.2 session id or TLS 1.3 ticket) presented
/// no certificate and the verification callback did not run, so the connection had no identity:
/// 401 certificate_missing for a client whose certificate had been verified a moment before. With
/// client certificates requested, sessions are no longer resumed: the client makes a full
/// handshake and presents its certificate again.
@Suite(
    "S1 mTLS and TLS session resumption", .serialized,
    .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")))
struct S01ClientCertificateSessionResumption {
    @Test func aClientOfferingAnEarlierSessionIsIdentifiedAgain() async throws {
        let pki = try TestPKI(name: "Gatehouse Resumption CA")
        let upstream = try await CaptureUpstream()
        let dir = try TempDir()
        let server = try pki.issue(commonName: "localhost", dns: ["localhost"], ip: true, server: true)
        let client = try pki.issue(commonName: "billing-service")
        let ca = try dir.write("clients-ca.pem", pki.caPEM)
        _ = try dir.write("server.pem", server.certPEM)
        _ = try dir.write("server.key", server.keyPEM)
        let cert = try dir.write("client.pem", client.certPEM)
        let key = try dir.write("client.key", client.keyPEM)
        let gw = try GatewayProcess(
            yaml: """
                tls: { certificate: server.pem, key: server.key, client_ca: clients-ca.pem, client_auth: optional }
                upstreams:
                  app: { targets: ["\(upstream.url)"] }
                routes:
                  - name: ledger
                    match: { path: /ledger }
                    upstream: app
                    policies: [client-cert]
                policies:
                  client-cert: { type: mtls, identity: cn, consumers: { "billing-service": billing } }
                """, dir: dir)
        defer { gw.stop() }
        #expect(try gw.cli(["consumers", "create", "billing"]).status == 0)
        var probe = try await sendWithClientCertificate("https://127.0.0.1:\(gw.port)/ledger", chain: [client], serverCAPEM: pki.caPEM)
        for _ in 0..<40 where probe.status != 200 {
            try await Task.sleep(for: .milliseconds(100))
            probe = try await sendWithClientCertificate("https://127.0.0.1:\(gw.port)/ledger", chain: [client], serverCAPEM: pki.caPEM)
        }
        #expect(probe.status == 200, "\(probe.body)")

        let request = "GET /ledger HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        for version in ["-tls1_2", "-tls1_3"] {
            let session = dir.path + "/session\(version).pem"
            let common = ["s_client", version, "-connect", "127.0.0.1:\(gw.port)", "-CAfile", ca, "-cert", cert, "-key", key, "-ign_eof"]
            let first = try #require(
                try runOpenSSL(common + ["-sess_out", session], input: request), "\(version): first connection timed out")
            #expect(first.contains("HTTP/1.1 200"), "\(version): \(first.suffix(600))")
            #expect(FileManager.default.fileExists(atPath: session), "\(version): no session was saved")
            // The client offers the saved session (and would present its certificate if asked).
            let second = try #require(
                try runOpenSSL(common + ["-sess_in", session], input: request), "\(version): second connection timed out")
            #expect(!second.contains("\nReused,"), "\(version): the session was resumed")
            #expect(second.contains("\nNew,"), "\(version): \(second.suffix(600))")
            #expect(second.contains("HTTP/1.1 200"), "\(version): \(second.suffix(600))")
            #expect(!second.contains("certificate_missing"), "\(version): \(second.suffix(600))")
        }
        await upstream.stop()
    }
}

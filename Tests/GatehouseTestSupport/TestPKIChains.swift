import AsyncHTTPClient
import Crypto
import Foundation
import NIOHTTP1
import NIOSSL
import SwiftASN1
import X509

/// Certificates beyond what `TestPKI.issue` makes: intermediates, certificates signed by any key
/// under any name (forgeries included), and an HTTPS call presenting a client chain.
extension TestPKI {
    /// A certificate for `commonName` signed by `issuerKey` under the name `issuer`, with exactly
    /// the given extensions (none for `.v1`). Nothing about the issuer is checked: this is how
    /// forgeries are made.
    public static func sign(
        commonName: String, key: P256.Signing.PrivateKey = .init(), issuer: DistinguishedName,
        issuerKey: P256.Signing.PrivateKey, notBefore: Date = Date() - 3600, notAfter: Date = Date() + 86400,
        version: Certificate.Version = .v3, extensions: Certificate.Extensions
    ) throws -> Issued {
        let subject = try DistinguishedName { CommonName(commonName) }
        let cert = try Certificate(
            version: version, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: issuer, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: .init(issuerKey))
        return Issued(certificate: cert, key: key)
    }

    /// The extensions of an intermediate CA: CA:TRUE (with `maxPathLength`), keyUsage keyCertSign
    /// unless `keyCertSign` is false (then digitalSignature only).
    public static func caExtensions(maxPathLength: Int? = nil, keyCertSign: Bool = true) throws -> Certificate.Extensions {
        try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: maxPathLength))
            if keyCertSign { KeyUsage(keyCertSign: true, cRLSign: true) } else { KeyUsage(digitalSignature: true) }
        }
    }

    /// The extensions of a client certificate: CA:FALSE, keyUsage digitalSignature, and the given
    /// extended key usages (none at all when `usages` is empty).
    public static func clientExtensions(usages: [ExtendedKeyUsage.Usage] = [.clientAuth]) throws -> Certificate.Extensions {
        try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            KeyUsage(digitalSignature: true)
            if !usages.isEmpty { try ExtendedKeyUsage(usages) }
        }
    }

    /// An intermediate CA issued by this CA.
    public func intermediate(
        commonName: String, maxPathLength: Int? = nil, keyCertSign: Bool = true,
        notBefore: Date = Date() - 3600, notAfter: Date = Date() + 86400 * 10
    ) throws -> Issued {
        try Self.sign(
            commonName: commonName, issuer: caName, issuerKey: caKey, notBefore: notBefore, notAfter: notAfter,
            extensions: try Self.caExtensions(maxPathLength: maxPathLength, keyCertSign: keyCertSign))
    }
}

extension TestPKI.Issued {
    /// A certificate signed with this certificate's key, naming this certificate's subject as issuer.
    public func issue(
        commonName: String, extensions: Certificate.Extensions? = nil,
        notBefore: Date = Date() - 3600, notAfter: Date = Date() + 86400
    ) throws -> TestPKI.Issued {
        try TestPKI.sign(
            commonName: commonName, issuer: certificate.subject, issuerKey: key, notBefore: notBefore,
            notAfter: notAfter, extensions: try extensions ?? TestPKI.clientExtensions())
    }
}

/// Sends one HTTPS request presenting `chain` (leaf first, the leaf's key as the private key), or
/// no certificate when `chain` is empty. The server is trusted through `serverCAPEM`.
public func sendWithClientCertificate(
    _ url: String, chain: [TestPKI.Issued], serverCAPEM: String,
    headers: [(String, String)] = []
) async throws -> Reply {
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: Array(serverCAPEM.utf8), format: .pem)])
    tls.certificateVerification = .noHostnameVerification
    if let leaf = chain.first {
        tls.certificateChain = try chain.map { .certificate(try NIOSSLCertificate(bytes: Array($0.certPEM.utf8), format: .pem)) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(leaf.keyPEM.utf8), format: .pem))
    }
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    do {
        let r = try await send(.GET, url, headers: headers, client: client)
        try await client.shutdown()
        return r
    } catch {
        try? await client.shutdown()
        throw error
    }
}

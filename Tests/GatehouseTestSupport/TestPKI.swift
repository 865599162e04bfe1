import Crypto
import Foundation
import SwiftASN1
import X509

/// Certificates generated for a test: a CA, certificates it issues, and PEM files on disk.
public struct TestPKI {
    public struct Issued {
        public var certificate: Certificate
        public var key: P256.Signing.PrivateKey
        public var certPEM: String { (try? certificate.serializeAsPEM().pemString) ?? "" }
        public var keyPEM: String { key.pemRepresentation }
    }

    public let caKey = P256.Signing.PrivateKey()
    public let caName: DistinguishedName
    public let ca: Certificate

    public init(name: String) throws {
        caName = try DistinguishedName { CommonName(name) }
        let now = Date()
        ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + 86400 * 30, issuer: caName, subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                KeyUsage(keyCertSign: true)
            },
            issuerPrivateKey: .init(caKey))
    }

    public var caPEM: String { (try? ca.serializeAsPEM().pemString) ?? "" }

    /// A certificate for `commonName`, valid from `notBefore` to `notAfter`.
    public func issue(
        commonName: String, dns: [String] = [], ip: Bool = false, server: Bool = false,
        notBefore: Date = Date() - 3600, notAfter: Date = Date() + 86400
    ) throws -> Issued {
        let key = P256.Signing.PrivateKey()
        var sans: [GeneralName] = dns.map { .dnsName($0) }
        if ip { sans.append(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))) }
        let cert = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: notBefore, notValidAfter: notAfter, issuer: caName,
            subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                try ExtendedKeyUsage([server ? .serverAuth : .clientAuth])
                if !sans.isEmpty { SubjectAlternativeNames(sans) }
            },
            issuerPrivateKey: .init(caKey))
        return Issued(certificate: cert, key: key)
    }
}

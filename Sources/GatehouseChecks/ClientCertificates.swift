import Crypto
import Foundation
import GatehouseCore
import GatehouseIdentity
import SwiftASN1
// The fixed validation time lets a verification be reproduced for a given instant (tests, replay).
@_spi(FixedExpiryValidationTime) import X509

/// Verifies TLS client certificates against configured CAs and says why one fails.
///
/// The TLS listener accepts any client certificate at the handshake and hands the chain here (off
/// the event loop), so a failure reaches the policy chain as a denial with a reason (issuer not
/// trusted, an issuer that is not a CA, expired on DATE) instead of a TLS alert the client cannot
/// interpret. Path building and RFC 5280 validation are swift-certificates' `Verifier` with
/// `RFC5280Policy`; `ClientCertificatePolicy` runs before it, adding what that policy leaves out
/// (keyCertSign on issuers, the clientAuth extended key usage on the leaf) and explaining each
/// refusal in words.
public struct ClientCertificateAuthority: Sendable {
    public let roots: [Certificate]

    /// Presented certificates beyond the leaf that are considered at all. Path building tries
    /// every order of same-named intermediates, so the work grows with the factorial of this.
    public static let maxIntermediates = 5

    /// A presented chain's identity and, when verified, the chain of trust that was built.
    public struct Verification: Sendable {
        public var identity: PeerIdentity
        /// DER, from the leaf to a configured CA; empty unless `identity.verified`.
        public var validatedChain: [[UInt8]]
    }

    public init(roots: [Certificate]) { self.roots = roots }

    /// Reads every certificate from a PEM bundle.
    public init(pemBundle text: String) throws {
        var roots: [Certificate] = []
        let marker = "-----BEGIN CERTIFICATE-----"
        var rest = Substring(text)
        while let start = rest.range(of: marker) {
            let after = rest[start.lowerBound...]
            guard let end = after.range(of: "-----END CERTIFICATE-----") else { break }
            let block = String(after[..<end.upperBound])
            roots.append(try Certificate(pemEncoded: block))
            rest = after[end.upperBound...]
        }
        guard !roots.isEmpty else { throw JWKSError("no PEM certificates found in the client CA bundle") }
        self.roots = roots
    }

    /// The identity of a presented chain (DER, leaf first), verified or with the reason it is not.
    public func identity(chain der: [[UInt8]], now: Double) async -> PeerIdentity {
        await verify(chain: der, now: now).identity
    }

    /// Verifies a presented chain (DER, leaf first, as the TLS handshake delivered it).
    ///
    /// The first certificate is the leaf because it is the one whose key the client proved it holds
    /// in the handshake; the others are only candidates for intermediates, in any order.
    public func verify(chain der: [[UInt8]], now: Double) async -> Verification {
        guard let first = der.first else {
            return Verification(identity: PeerIdentity(verified: false, failure: "no client certificate was presented"), validatedChain: [])
        }
        let fingerprint = SHA256.hash(data: first).map { String(format: "%02x", $0) }.joined()
        let leaf: Certificate
        do { leaf = try Certificate(derEncoded: first) } catch {
            return Verification(
                identity: PeerIdentity(verified: false, failure: "the client certificate could not be parsed", fingerprint: fingerprint),
                validatedChain: [])
        }
        var id = PeerIdentity(
            verified: false, subject: leaf.subject.description, commonName: Self.commonName(leaf.subject),
            subjectAltNames: Self.altNames(leaf), fingerprint: fingerprint,
            notAfter: leaf.notValidAfter.timeIntervalSince1970)
        let presented = der.dropFirst()
        if presented.count > Self.maxIntermediates {
            id.failure =
                "the client presented \(presented.count) certificates besides its own; at most \(Self.maxIntermediates) are accepted"
            return Verification(identity: id, validatedChain: [])
        }
        var intermediates: [Certificate] = []
        for (i, bytes) in presented.enumerated() {
            guard let c = try? Certificate(derEncoded: bytes) else {
                id.failure = "presented certificate \(i + 2) of the chain could not be parsed"
                return Verification(identity: id, validatedChain: [])
            }
            intermediates.append(c)
        }

        let validationTime = Date(timeIntervalSince1970: now)
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            ClientCertificatePolicy(now: now)
            RFC5280Policy(fixedExpiryValidationTime: validationTime)
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
        switch result {
        case .validCertificate(let chain):
            id.verified = true
            let validated = chain.map { c -> [UInt8] in
                var serializer = DER.Serializer()
                return (try? serializer.serialize(c)).map { serializer.serializedBytes } ?? []
            }
            return Verification(identity: id, validatedChain: validated.contains(where: \.isEmpty) ? [] : validated)
        case .couldNotValidate(let failures):
            id.failure =
                failures.first.map { Self.explain($0.policyFailureReason.description) }
                ?? explainNoPath(leaf, intermediates: intermediates)
            return Verification(identity: id, validatedChain: [])
        }
    }

    /// `ClientCertificatePolicy` reasons are sentences already; RFC5280Policy's are prefixed and
    /// quote whole certificates, so they are labelled as such.
    static func explain(_ reason: String) -> String {
        let prefix = "RFC5280Policy: "
        guard reason.hasPrefix(prefix) else { return reason }
        return "the certificate chain fails RFC 5280 validation: " + reason.dropFirst(prefix.count)
    }

    /// Why no candidate chain reached a configured CA: follows the presented certificates by issuer
    /// name and signature, as far as they go, and names where the trail ends.
    func explainNoPath(_ leaf: Certificate, intermediates: [Certificate]) -> String {
        let handled = ClientCertificatePolicy.handledCriticalExtensions
        if let ext = leaf.extensions.first(where: { $0.critical && !handled.contains($0.oid) }) {
            return "the client certificate has a critical extension Gatehouse does not process (\(ext.oid))"
        }
        var current = leaf
        var used: [Certificate] = []
        for depth in 0...Self.maxIntermediates {
            let what = depth == 0 ? "the client certificate" : "intermediate \(current.subject)"
            if let root = roots.first(where: { $0.subject == current.issuer }) {
                if !root.publicKey.isValidSignature(current.signature, for: current) {
                    return "\(what) names trusted CA \(root.subject) as issuer but its signature does not verify with that CA's key"
                }
                if let ext = current.extensions.first(where: { $0.critical && !handled.contains($0.oid) }) {
                    return "\(what) has a critical extension Gatehouse does not process (\(ext.oid))"
                }
                return "\(what) could not be validated against trusted CA \(root.subject)"
            }
            guard
                let next = intermediates.first(where: {
                    $0.subject == current.issuer && !used.contains($0) && $0.publicKey.isValidSignature(current.signature, for: current)
                })
            else {
                return
                    "\(what) was issued by \(current.issuer), which is not a trusted CA (trusted: \(roots.map { $0.subject.description }.joined(separator: "; ")))"
            }
            used.append(next)
            current = next
        }
        return "the certificate chain does not lead to a trusted CA"
    }

    static func commonName(_ dn: DistinguishedName) -> String? {
        for rdn in dn {
            for attr in rdn where attr.type == .RDNAttributeType.commonName {
                return String(describing: attr.value)
            }
        }
        return nil
    }

    static func altNames(_ c: Certificate) -> [String] {
        guard let sans = try? c.extensions.subjectAlternativeNames else { return [] }
        return sans.compactMap { name in
            switch name {
            case .dnsName(let s): return "DNS:" + s
            case .rfc822Name(let s): return "email:" + s
            case .uniformResourceIdentifier(let s): return "URI:" + s
            default: return nil
            }
        }
    }
}

/// What a client certificate chain must satisfy besides RFC5280Policy, each refusal in words.
///
/// RFC5280Policy checks basicConstraints and path length but deliberately not key usage; for
/// client authentication we also want: every issuer allowed to sign certificates (CA:TRUE and,
/// when keyUsage is present, keyCertSign), and a leaf that is an end entity meant for TLS client
/// authentication (extended key usage clientAuth, keyUsage allowing signatures when present).
/// The basicConstraints, path length and validity checks repeat RFC5280Policy's, which still runs
/// after this one, so that their refusals read as sentences.
struct ClientCertificatePolicy: VerifierPolicy {
    static let handledCriticalExtensions: [ASN1ObjectIdentifier] = [
        .X509ExtensionID.basicConstraints, .X509ExtensionID.keyUsage, .X509ExtensionID.extendedKeyUsage,
        .X509ExtensionID.nameConstraints,
        // A certificate with an empty subject must mark its SANs critical (RFC 5280 4.2.1.6); the
        // SANs are the identity `identity: san` reads.
        .X509ExtensionID.subjectAlternativeName,
    ]
    var verifyingCriticalExtensions: [ASN1ObjectIdentifier] {
        [.X509ExtensionID.keyUsage, .X509ExtensionID.extendedKeyUsage, .X509ExtensionID.subjectAlternativeName]
    }
    /// Seconds since 1970 at which validity is judged.
    let now: Double

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        let certs = Array(chain)
        func name(_ i: Int) -> String {
            if i == 0 { return "the client certificate" }
            return i == certs.count - 1 ? "trusted CA \(certs[i].subject)" : "intermediate \(certs[i].subject)"
        }
        // Issuers first: a certificate signed by something that may not issue certificates is
        // refused for that, whatever else is wrong with it.
        var caCertificatesBelow = 0
        for i in certs.indices.dropFirst() {
            let c = certs[i]
            let isRoot = i == certs.count - 1
            let constraints: BasicConstraints?
            do { constraints = try c.extensions.basicConstraints } catch {
                return Self.fail("\(name(i)) has an unreadable basicConstraints extension")
            }
            switch constraints {
            case .isCertificateAuthority(let maxPathLength):
                if let maxPathLength, maxPathLength < caCertificatesBelow {
                    let below = caCertificatesBelow
                    return Self.fail(
                        "\(name(i)) allows \(maxPathLength) CA certificate\(maxPathLength == 1 ? "" : "s") below it (pathLenConstraint), but the chain has \(below)"
                    )
                }
            case .notCertificateAuthority:
                return Self.fail("\(name(i)) is not a CA (basicConstraints CA:FALSE), so it cannot issue \(name(i - 1))")
            case .none:
                // A version 1 trust anchor has no extensions at all; the operator configured it.
                if !(isRoot && c.version == .v1) {
                    return Self.fail("\(name(i)) is not a CA (no basicConstraints CA:TRUE), so it cannot issue \(name(i - 1))")
                }
            }
            let usage: KeyUsage?
            do { usage = try c.extensions.keyUsage } catch {
                return Self.fail("\(name(i)) has an unreadable keyUsage extension")
            }
            if let usage, !usage.keyCertSign {
                return Self.fail(
                    "\(name(i)) is not a CA: its keyUsage (\(Self.text(usage))) lacks keyCertSign, so it cannot issue \(name(i - 1))")
            }
            if !isRoot, c.issuer != c.subject { caCertificatesBelow += 1 }
        }

        let leaf = certs[0]
        if case .some(.isCertificateAuthority) = try? leaf.extensions.basicConstraints {
            return Self.fail(
                "the client certificate is a CA certificate (basicConstraints CA:TRUE); a client must present an end-entity certificate")
        }
        let eku: ExtendedKeyUsage?
        do { eku = try leaf.extensions.extendedKeyUsage } catch {
            return Self.fail("the client certificate has an unreadable extended key usage extension")
        }
        guard let eku else {
            return Self.fail("the client certificate has no extended key usage; it must allow TLS client authentication (clientAuth)")
        }
        if !eku.contains(.clientAuth) {
            return Self.fail(
                "the client certificate's extended key usage (\(eku.map { String(describing: $0) }.joined(separator: ", "))) does not include TLS client authentication (clientAuth)"
            )
        }
        if let usage = try? leaf.extensions.keyUsage, !usage.digitalSignature, !usage.keyAgreement {
            return Self.fail("the client certificate's keyUsage (\(Self.text(usage))) allows neither digitalSignature nor keyAgreement")
        }

        for i in certs.indices {
            let c = certs[i]
            let nb = c.notValidBefore.timeIntervalSince1970, na = c.notValidAfter.timeIntervalSince1970
            if now > na { return Self.fail("\(name(i)) expired on \(TimeText.iso(na)), \(TimeText.duration(now - na)) ago") }
            if now < nb { return Self.fail("\(name(i)) is not valid until \(TimeText.iso(nb))") }
        }
        return .meetsPolicy
    }

    static func text(_ usage: KeyUsage) -> String {
        let s = String(describing: usage)
        return s.isEmpty ? "no usages" : s
    }

    /// The reason is built here, once, so the lazily rendered reason captures only the text.
    static func fail(_ message: String) -> PolicyEvaluationResult { .failsToMeetPolicy(reason: message) }
}

/// `mtls`: authenticates the caller by the TLS client certificate the listener verified, and maps
/// its identity (subject CN or a SAN) to a consumer.
///
/// An identity is matched whole: with `identity: cn` the subject CN as it is (`billing-service`),
/// with `identity: san` a SAN with its type (`DNS:billing.internal`, `URI:spiffe://…`,
/// `email:…`). It is looked up in `mapping`, and, when not listed there, as a consumer name,
/// never split at a colon. A CN is free text that a CA's name constraints do not limit (they
/// apply to SANs), so a constrained intermediate can issue any CN: with such CAs, use `san`.
public struct MTLSCheck: PolicyCheck {
    public enum IdentitySource: String, Sendable { case cn, san }
    public let id: String
    public var type: String { "mtls" }
    public let identity: IdentitySource
    /// Certificate identity (whole: a CN, or a typed SAN) → consumer name; identities not listed
    /// are looked up as consumer names, whole.
    public let mapping: [String: String]
    public let directory: any CredentialDirectory

    public init(id: String, identity: IdentitySource = .cn, mapping: [String: String] = [:], directory: any CredentialDirectory) {
        self.id = id
        self.identity = identity
        self.mapping = mapping
        self.directory = directory
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        guard request.isTLS else {
            return .deny(
                Denial(
                    code: .certificateMissing,
                    detail: "\(request.summary) requires a TLS client certificate; the request came over plain HTTP",
                    required: ["HTTPS with a client certificate"], presented: ["plain HTTP"]))
        }
        guard let peer = request.peerIdentity, peer.fingerprint != nil else {
            return .deny(
                Denial(
                    code: .certificateMissing,
                    detail: "\(request.summary) requires a TLS client certificate; none was presented in the handshake",
                    required: ["a client certificate issued by the trusted CA"], presented: ["no certificate"]))
        }
        let fp = String(peer.fingerprint!.prefix(16))
        guard peer.verified else {
            return .deny(
                Denial(
                    code: .certificateInvalid,
                    detail:
                        "the client certificate (\(peer.subject ?? "?"), sha256 \(fp)) is not accepted: \(peer.failure ?? "verification failed")",
                    required: ["a current certificate issued by the trusted CA"],
                    presented: ["subject \(peer.subject ?? "?")", "sha256 \(fp)"]))
        }
        let candidates: [String] = identity == .cn ? (peer.commonName.map { [$0] } ?? []) : peer.subjectAltNames
        for ident in candidates {
            // The whole identity, never a part of it: `URI:DNS:billing.internal` is not
            // `DNS:billing.internal`, `URI:billing` is not consumer billing, and a subject CN
            // `team-a:billing-service` is not `billing-service`. Unmapped, the identity itself
            // (the CN, or the SAN with its type) is looked up as a consumer name.
            let name = mapping[ident] ?? ident
            if let consumer = directory.consumer(named: name) {
                if consumer.status != "active" {
                    return .deny(
                        Denial(
                            code: .consumerSuspended, detail: "consumer \(consumer.name) (certificate \(ident)) is \(consumer.status)",
                            required: ["an active consumer"], presented: ["consumer \(consumer.name)"]))
                }
                var principal = Principal(
                    method: "mtls", consumerID: consumer.id, consumerName: consumer.name, keyID: "cert sha256 \(fp)",
                    subject: ident, scopes: consumer.scopes, roles: consumer.roles, tenant: consumer.tenant)
                if let existing = request.principal {
                    var merged = existing
                    merged.merge(principal)
                    principal = merged
                }
                request.principal = principal
                return .allow(note: "certificate \(ident) (sha256 \(fp)) mapped to consumer \(consumer.name)")
            }
        }
        return .deny(
            Denial(
                code: .certificateUnmapped,
                detail:
                    "the client certificate is valid but its \(identity == .cn ? "subject CN" : "SAN") \(candidates.isEmpty ? "(none)" : candidates.joined(separator: ", ")) maps to no consumer",
                required: ["a certificate identity mapped to a consumer"], presented: candidates + ["sha256 \(fp)"]))
    }
}

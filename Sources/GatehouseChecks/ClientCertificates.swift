import Crypto
import Foundation
import GatehouseCore
import SwiftASN1
import X509

/// Verifies TLS client certificates against configured CAs and says why one fails.
///
/// The TLS listener accepts any client certificate at the handshake and hands the chain here, so a
/// failure reaches the policy chain as a denial with a reason (issuer not trusted, expired on DATE)
/// instead of a TLS alert the client cannot interpret. Chain building is hand-written on top of
/// swift-certificates' signature checks (its `Verifier` is asynchronous, and the handshake callback
/// needs the answer with the reason): leaf, then presented intermediates, up to a configured root.
public struct ClientCertificateAuthority: Sendable {
    public let roots: [Certificate]

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
    public func identity(chain der: [[UInt8]], now: Double) -> PeerIdentity {
        guard let first = der.first else { return PeerIdentity(verified: false, failure: "no client certificate was presented") }
        let leaf: Certificate
        do { leaf = try Certificate(derEncoded: first) } catch {
            return PeerIdentity(verified: false, failure: "the client certificate could not be parsed")
        }
        let intermediates = der.dropFirst().compactMap { try? Certificate(derEncoded: $0) }
        var id = PeerIdentity(verified: false, subject: leaf.subject.description, commonName: Self.commonName(leaf.subject),
                              subjectAltNames: Self.altNames(leaf),
                              fingerprint: SHA256.hash(data: first).map { String(format: "%02x", $0) }.joined(),
                              notAfter: leaf.notValidAfter.timeIntervalSince1970)
        id.failure = verify(leaf, intermediates: intermediates, now: now)
        id.verified = id.failure == nil
        return id
    }

    func verify(_ leaf: Certificate, intermediates: [Certificate], now: Double) -> String? {
        var current = leaf
        for depth in 0..<8 {
            let what = depth == 0 ? "the client certificate" : "intermediate \(current.subject)"
            if let root = roots.first(where: { $0.subject == current.issuer }) {
                guard root.publicKey.isValidSignature(current.signature, for: current) else {
                    return "\(what) names trusted CA \(root.subject) as issuer but its signature does not verify with that CA's key"
                }
                if let why = Self.validity(current, now: now, what: what) { return why }
                return Self.validity(root, now: now, what: "trusted CA \(root.subject)")
            }
            guard let next = intermediates.first(where: { $0.subject == current.issuer && $0.publicKey.isValidSignature(current.signature, for: current) }) else {
                return "\(what) was issued by \(current.issuer), which is not a trusted CA (trusted: \(roots.map { $0.subject.description }.joined(separator: "; ")))"
            }
            if let why = Self.validity(current, now: now, what: what) { return why }
            current = next
        }
        return "the certificate chain is too long"
    }

    static func validity(_ c: Certificate, now: Double, what: String) -> String? {
        let nb = c.notValidBefore.timeIntervalSince1970, na = c.notValidAfter.timeIntervalSince1970
        if now > na { return "\(what) expired on \(TimeText.iso(na)), \(TimeText.duration(now - na)) ago" }
        if now < nb { return "\(what) is not valid until \(TimeText.iso(nb))" }
        return nil
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

/// `mtls`: authenticates the caller by the TLS client certificate the listener verified, and maps
/// its identity (subject CN or a SAN) to a consumer.
public struct MTLSCheck: PolicyCheck {
    public enum IdentitySource: String, Sendable { case cn, san }
    public let id: String
    public var type: String { "mtls" }
    public let identity: IdentitySource
    /// Certificate identity → consumer name; identities not listed are looked up as consumer names.
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
            return .deny(Denial(code: "certificate_missing", detail: "\(request.summary) requires a TLS client certificate; the request came over plain HTTP",
                                required: ["HTTPS with a client certificate"], presented: ["plain HTTP"]))
        }
        guard let peer = request.peerIdentity, peer.fingerprint != nil else {
            return .deny(Denial(code: "certificate_missing", detail: "\(request.summary) requires a TLS client certificate; none was presented in the handshake",
                                required: ["a client certificate issued by the trusted CA"], presented: ["no certificate"]))
        }
        let fp = String(peer.fingerprint!.prefix(16))
        guard peer.verified else {
            return .deny(Denial(code: "certificate_invalid", detail: "the client certificate (\(peer.subject ?? "?"), sha256 \(fp)) is not accepted: \(peer.failure ?? "verification failed")",
                                required: ["a current certificate issued by the trusted CA"],
                                presented: ["subject \(peer.subject ?? "?")", "sha256 \(fp)"]))
        }
        let candidates: [String] = identity == .cn ? (peer.commonName.map { [$0] } ?? []) : peer.subjectAltNames
        for ident in candidates {
            let name = mapping[ident] ?? mapping[ident.split(separator: ":", maxSplits: 1).last.map(String.init) ?? ident]
                ?? (ident.split(separator: ":", maxSplits: 1).count == 2 && identity == .san ? String(ident.split(separator: ":", maxSplits: 1)[1]) : ident)
            if let consumer = directory.consumer(named: name) {
                if consumer.status != "active" {
                    return .deny(Denial(code: .consumerSuspended, detail: "consumer \(consumer.name) (certificate \(ident)) is \(consumer.status)",
                                        required: ["an active consumer"], presented: ["consumer \(consumer.name)"]))
                }
                var principal = Principal(method: "mtls", consumerID: consumer.id, consumerName: consumer.name, keyID: "cert sha256 \(fp)",
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
        return .deny(Denial(code: "certificate_unmapped",
                            detail: "the client certificate is valid but its \(identity == .cn ? "subject CN" : "SAN") \(candidates.isEmpty ? "(none)" : candidates.joined(separator: ", ")) maps to no consumer",
                            required: ["a certificate identity mapped to a consumer"], presented: candidates + ["sha256 \(fp)"]))
    }
}

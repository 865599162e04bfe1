import Foundation
import GatehouseChecks
import GatehouseConfig
import GatehouseCore
import GatehouseHTTP1
import NIOCore
import NIOSSL
import GatehouseProxy

/// Builds the TLS server side from the `tls:` settings.
///
/// When client certificates are requested, TLS session resumption is off: a resumed handshake
/// (a TLS 1.2 session id or a TLS 1.3 ticket) presents no certificate and skips the verification
/// callback, so the connection would carry no client identity and every request on it would get
/// a spurious 401 `certificate_missing`. NIOSSL has no switch for session tickets or the session
/// cache, but both live in BoringSSL's `SSL_CTX` (the ticket key is generated per context), so
/// each connection gets a context of its own: a session or ticket from an earlier connection is
/// unknown to it, and the client falls back to a full handshake, presenting its certificate again.
/// A context costs a few allocations and reference counts (the certificates and key are parsed
/// once, here), small beside the handshake's public-key operations.
struct TLSListener: Sendable {
    /// The context every connection shares, when no client certificate is requested.
    let context: NIOSSLContext?
    /// The configuration each connection's own context is made from, when client certificates
    /// are requested.
    let perConnection: TLSConfiguration?
    let authority: ClientCertificateAuthority?

    init(_ settings: TLSSettings) throws {
        let chain = try NIOSSLCertificate.fromPEMFile(settings.certificatePath).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: settings.keyPath, format: .pem)
        var config = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        if let caPath = settings.clientCAPath, settings.clientAuth != .none {
            let pem = try String(contentsOfFile: caPath, encoding: .utf8)
            authority = try ClientCertificateAuthority(pemBundle: pem)
            // Ask for a certificate; our callback decides, so failures reach the mtls check with a reason.
            config.certificateVerification = settings.clientAuth == .require ? .noHostnameVerification : .optionalVerification
            config.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caPath))
            config.sendCANameList = true
            // Made once here so that a configuration NIOSSL refuses fails at start, not per connection.
            _ = try NIOSSLContext(configuration: config)
            perConnection = config
            context = nil
        } else {
            authority = nil
            perConnection = nil
            context = try NIOSSLContext(configuration: config)
        }
    }

    /// A context for one new connection: a fresh one when client certificates are requested (so
    /// no session can be resumed), else the shared one.
    func connectionContext() throws -> NIOSSLContext {
        if let context { return context }
        return try NIOSSLContext(configuration: perConnection!)
    }

    /// Adds the TLS handler to a new connection's pipeline; returns where the peer identity will be.
    func addHandler(to pipeline: ChannelPipeline.SynchronousOperations) throws -> PeerIdentityBox {
        let box = PeerIdentityBox()
        let context = try connectionContext()
        if let authority {
            try pipeline.addHandler(
                NIOSSLServerHandler(
                    context: context,
                    customVerificationCallbackWithMetadata: { certs, promise in
                        // All or nothing: dropping one would move another certificate into the leaf's place.
                        // An unreadable chain becomes one empty certificate, which verification refuses.
                        let der = (try? certs.map { try $0.toDERBytes() }) ?? [[]]
                        // Chain building and signature checks run in a task, off the event loop; the
                        // handshake waits for the promise. The box is written on the connection's loop
                        // before the promise completes, so the HTTP handler (same loop, after the
                        // handshake) always sees the result.
                        promise.futureResult.eventLoop.makeFutureWithTask { () -> (PeerIdentity, ValidatedCertificateChain?) in
                            let verification = await authority.verify(chain: der, now: wallClock())
                            let chain = try? verification.validatedChain.map { try NIOSSLCertificate(bytes: $0, format: .der) }
                            return (verification.identity, chain.flatMap { $0.isEmpty ? nil : ValidatedCertificateChain($0) })
                        }.whenSuccess { identity, validated in
                            box.value = identity
                            // Accepted at the TLS layer either way: the mtls check turns a refused
                            // certificate into a 401 with the reason, which a TLS alert cannot carry.
                            promise.succeed(.certificateVerified(VerificationMetadata(validated)))
                        }
                    }))
        } else {
            try pipeline.addHandler(NIOSSLServerHandler(context: context))
        }
        return box
    }
}

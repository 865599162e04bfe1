import Foundation
import GatehouseChecks
import GatehouseConfig
import GatehouseCore
import NIOCore
import NIOSSL

/// The verified (or refused, with why) client certificate of one TLS connection. Written by the
/// handshake's verification callback and read by the HTTP handler, both on the connection's loop.
final class PeerIdentityBox: @unchecked Sendable {
    // @unchecked: touched only on the channel's event loop.
    var value: PeerIdentity?
}

/// Builds the TLS server side from the `tls:` settings.
struct TLSListener: Sendable {
    let context: NIOSSLContext
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
        } else {
            authority = nil
        }
        context = try NIOSSLContext(configuration: config)
    }

    /// Adds the TLS handler to a new connection's pipeline; returns where the peer identity will be.
    func addHandler(to pipeline: ChannelPipeline.SynchronousOperations) throws -> PeerIdentityBox {
        let box = PeerIdentityBox()
        if let authority {
            try pipeline.addHandler(NIOSSLServerHandler(context: context, customVerificationCallback: { certs, promise in
                let der = certs.compactMap { try? $0.toDERBytes() }
                box.value = authority.identity(chain: der, now: wallClock())
                // Always accept at the TLS layer: the mtls check turns a bad certificate into a 401 with a reason.
                promise.succeed(.certificateVerified)
            }))
        } else {
            try pipeline.addHandler(NIOSSLServerHandler(context: context))
        }
        return box
    }
}

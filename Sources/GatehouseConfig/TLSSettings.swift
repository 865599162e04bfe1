import Foundation
import GatehouseCore

/// The optional top-level `tls:` block: serve HTTPS, and ask clients for certificates.
///
/// ```yaml
/// tls: { certificate: server.pem, key: server.key, client_ca: clients-ca.pem, client_auth: optional }
/// ```
/// `client_auth: optional` (the default when `client_ca` is set) accepts any client certificate at
/// the handshake and lets the `mtls` check decide, so a missing, untrusted or expired certificate
/// becomes a denial with a reason instead of a TLS alert. `require` refuses the handshake without one.
public struct TLSSettings: Sendable {
    public enum ClientAuth: String, Sendable { case none, optional, require }
    public var certificatePath: String
    public var keyPath: String
    public var clientCAPath: String?
    public var clientAuth: ClientAuth

    static let keys = ["certificate", "key", "client_ca", "client_auth"]

    /// Reads the block; relative paths are resolved against the configuration's directory.
    static func read(_ n: ConfigNode, _ r: ConfigReader, base: String) -> TLSSettings? {
        guard let f = r.mapping(n, known: keys, required: ["certificate", "key"]) else { return nil }
        func path(_ key: String) -> String? {
            guard let node = f[key], let p = r.string(node) else { return nil }
            let full = p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p)
            if !FileManager.default.fileExists(atPath: full) { r.error(node, "\(key) file \(full) does not exist") }
            return full
        }
        let cert = path("certificate"), key = path("key"), ca = path("client_ca")
        var mode: ClientAuth = ca == nil ? .none : .optional
        if let m = f["client_auth"], let s = r.oneOf(m, ["none", "optional", "require"]) {
            mode = ClientAuth(rawValue: s)!
            if mode != .none, ca == nil {
                r.error(m, "client_auth \(s) needs client_ca (the CA bundle client certificates are verified against)")
            }
        }
        guard let cert, let key else { return nil }
        return TLSSettings(certificatePath: cert, keyPath: key, clientCAPath: ca, clientAuth: mode)
    }
}

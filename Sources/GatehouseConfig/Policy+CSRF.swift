import Foundation
import GatehouseChecks
import GatehouseCore

extension PolicyTypes {
    /// `csrf`: `trusted_origins`, `session_cookie`, and an optional signed double-submit `token`
    /// (`cookie`, `header`, `secret_env` or `secret`).
    static let csrf = PolicyType(name: "csrf", keys: ["trusted_origins", "session_cookie", "token"]) { id, node, f, r in
        var trusted: [OriginPattern] = []
        if let tn = f["trusted_origins"] {
            for item in r.list(tn) {
                guard let s = r.string(item) else { continue }
                switch OriginPattern.parse(s) {
                case .success(let o): trusted.append(o)
                case .failure(let e): r.error(item, e.description)
                }
            }
        }
        let session = f["session_cookie"].flatMap(r.string)
        var cookie: String?
        var header: String?
        var signer: CSRFTokenSigner?
        if let tn = f["token"],
            let tf = r.mapping(tn, known: ["cookie", "header", "secret", "secret_env"], required: ["cookie", "header"])
        {
            cookie = tf["cookie"].flatMap(r.string)
            header = tf["header"].flatMap(r.string)
            var secret: String?
            if let en = tf["secret_env"], let name = r.string(en) {
                secret = ProcessInfo.processInfo.environment[name]
                if secret?.isEmpty ?? true { r.error(en, "environment variable \(name) is not set; it must hold the CSRF token secret") }
            } else if let sn = tf["secret"] {
                secret = r.string(sn)
            } else {
                r.error(tn, "a csrf token needs secret_env (the name of an environment variable holding the secret) or secret")
            }
            if let s = secret, !s.isEmpty {
                if s.utf8.count < 16 { r.error(tn, "the CSRF token secret is \(s.utf8.count) bytes; use at least 16") }
                signer = CSRFTokenSigner(secret: s)
            }
        }
        let check = CSRFCheck(
            id: id, trustedOrigins: trusted, sessionCookie: session, tokenCookie: cookie, tokenHeader: header, signer: signer)
        return { _ in check }
    }
}

import Foundation
import Testing

/// Runs python3 scripts that mint tokens with PyJWT, an implementation independent of this one.
enum PyJWT {
    static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Runs `script` with python3 and returns its standard output parsed as a JSON object, or nil
    /// when python3 or PyJWT is missing (recorded as a failure under CI=true, a skip otherwise).
    static func run(_ script: String) throws -> [String: Any]? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch {
            unavailable("python3 could not be started: \(error)")
            return nil
        }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            if e.contains("ModuleNotFoundError") || p.terminationStatus == 127 {
                unavailable("python3 with PyJWT and cryptography is needed (pip install -r .ci/requirements.txt): \(e)")
                return nil
            }
            Issue.record("the PyJWT script failed: \(e)")
            return nil
        }
        return try JSONSerialization.jsonObject(with: o) as? [String: Any]
    }

    static func unavailable(_ why: String) {
        if inCI {
            Issue.record("\(why) (CI=true: a missing prerequisite fails the test)")
        } else {
            print("SKIPPED: \(why)")
        }
    }

    /// Generates RSA, EC P-256, Ed25519 and HMAC keys, publishes them as a JWKS and mints one good
    /// token per algorithm plus the classic attacks.
    static let mintScript = #"""
        import json, time, base64, hmac, hashlib, secrets
        import jwt
        from jwt.algorithms import RSAAlgorithm, ECAlgorithm, OKPAlgorithm, HMACAlgorithm
        from cryptography.hazmat.primitives.asymmetric import rsa, ec, ed25519
        from cryptography.hazmat.primitives import serialization

        now = int(time.time())
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rogue_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ec_key = ec.generate_private_key(ec.SECP256R1())
        ed_key = ed25519.Ed25519PrivateKey.generate()
        secret = secrets.token_bytes(32)

        def jwk(alg_cls, key, kid):
            d = json.loads(alg_cls.to_jwk(key))
            d["kid"] = kid
            return d

        jwks = {"keys": [
            jwk(RSAAlgorithm, rsa_key.public_key(), "rsa-1"),
            jwk(ECAlgorithm, ec_key.public_key(), "ec-1"),
            jwk(OKPAlgorithm, ed_key.public_key(), "ed-1"),
            jwk(HMACAlgorithm, secret, "hs-1"),
        ]}
        claims = {"iss": "https://issuer.example", "aud": "orders-api", "sub": "user-17", "iat": now, "nbf": now - 5,
                  "exp": now + 600, "scope": "orders:read orders:write", "jti": "tok-1",
                  "realm_access": {"roles": ["admin", "ops"]}, "https://example.com/tenant": "acme"}

        def enc(key, alg, kid, **over):
            c = dict(claims); c.update(over)
            return jwt.encode(c, key, algorithm=alg, headers={"kid": kid})

        def b64(b):
            return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

        good = {
            "HS256": enc(secret, "HS256", "hs-1"),
            "RS256": enc(rsa_key, "RS256", "rsa-1"),
            "ES256": enc(ec_key, "ES256", "ec-1"),
            "EdDSA": enc(ed_key, "EdDSA", "ed-1"),
        }
        # alg none: an unsigned token.
        none_tok = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode()) + "."
        # RS->HS confusion: HMAC keyed with the RSA public key PEM, naming the RSA key's kid.
        pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode()) + "." + b64(json.dumps(claims).encode())
        confused = head + "." + b64(hmac.new(pem, head.encode(), hashlib.sha256).digest())
        rs = good["RS256"].split(".")
        tampered_claims = dict(claims); tampered_claims["scope"] = "orders:read orders:write admin:all"
        tampered = rs[0] + "." + b64(json.dumps(tampered_claims).encode()) + "." + rs[2]
        attacks = {
            "none": none_tok,
            "confusion": confused,
            "expired": enc(rsa_key, "RS256", "rsa-1", exp=now - 3 * 3600 - 720, iat=now - 4 * 3600, nbf=now - 4 * 3600),
            "not_yet_valid": enc(rsa_key, "RS256", "rsa-1", nbf=now + 3600),
            "wrong_audience": enc(rsa_key, "RS256", "rsa-1", aud="billing-api"),
            "wrong_issuer": enc(rsa_key, "RS256", "rsa-1", iss="https://evil.example"),
            "unknown_kid": enc(rogue_key, "RS256", "rogue-9"),
            "wrong_key": enc(rogue_key, "RS256", "rsa-1"),
            "tampered": tampered,
            "truncated": ".".join(rs[:2]),
        }
        rogue_jwks = {"keys": jwks["keys"] + [jwk(RSAAlgorithm, rogue_key.public_key(), "rogue-9")]}
        print(json.dumps({"jwks": jwks, "rogue_jwks": rogue_jwks, "good": good, "attacks": attacks, "now": now}))
        """#
}

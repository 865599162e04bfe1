import Benchmark
import GatehouseChecks
import GatehouseCore

// Fixtures minted once with PyJWT (RSA-2048 and a 32-byte HMAC secret; exp in 2100), so the
// benchmark measures verification only. Only the public key and the shared secret are here.
let jwks =
    #"{"keys": [{"kty": "RSA", "key_ops": ["verify"], "n": "qZzx9VXFCeUhYr5uNbFyxrzpZkg76sk_ipVcb85ERBpkZMd1NZUZBx4gcHW4RjaXU_Ltj9DxkJcpqpWpy6zJEAPk90hu_O5ItAt7qoMUigwVmftEQOApGvJWjDV2B9vHZxdYQOg-I-gfEkt0e0G4xiEBsY3wfCOHwRXMRKtGTTPUDoGWVrORdmhS5b8n_fhgPv0MWdqRhhFgVr7y_YZ9SRQ-xu9zVVutPwCOn_ieY4HiowYIsenY2_eTrmhyFsvrHHazroXUldJE6l2UvPvopu1CkwDtdREAl1D60-BpJK_lvdI2uI2_zqBbMjbffqhCWGvb-RsB809wQSrCZTJsAw", "e": "AQAB", "kid": "rsa-1"}, {"k": "LpMmqenrggiVbVWpsGDbnAlxrwlMSFzlWnV2xf_hdqA", "kty": "oct", "kid": "hs-1"}]}"#
let rs256Token =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIiwidHlwIjoiSldUIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoib3JkZXJzLWFwaSIsInN1YiI6InVzZXItMTciLCJpYXQiOjE3NjM4MDAwMDAsIm5iZiI6MTc2MzgwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwLCJzY29wZSI6Im9yZGVyczpyZWFkIG9yZGVyczp3cml0ZSIsImp0aSI6ImJlbmNoLTEifQ.TKCYo8__ivz3uT8Nhs7oeTVzgEHzLe0ld4LuQWSxfoWbb5vAzD9-4Cfo1OYxD01Dj5n0BYVuOicmWQ5Sr4LOZmBAsvFYC7Z6BgJpb0oI-zyTzN47wkHMlrExikxq9ZCXDyEXHNZDbbARdxxRMoS2JBEQnmnJHNF4pfgRcS-MohNRqqbvmr4mFrXxHQrNYyP33lG15xqzGBdUaukG484HqFpDRUMY8uCJQ889heq3h8BfZ1-Dx8hRg9XBPRVH0NKpTN3-kxpBdIv3kAzgwxkA4EYGP_10mEyqGJqh4L0ry5QoEwkH2AsjnTB5uZQST1ANhhVmhIdVjisj5YHKXayNKg"
let hs256Token =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImhzLTEiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoib3JkZXJzLWFwaSIsInN1YiI6InVzZXItMTciLCJpYXQiOjE3NjM4MDAwMDAsIm5iZiI6MTc2MzgwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwLCJzY29wZSI6Im9yZGVyczpyZWFkIG9yZGVyczp3cml0ZSIsImp0aSI6ImJlbmNoLTEifQ.pn9RDX8AHq-DXkOJbb5MfJ4SQZ9ei6j2-nw6KW6_i6E"
let rules = JWTRules(algorithms: ["RS256", "HS256"], issuers: ["https://issuer.example"], audiences: ["orders-api"])
let now = 1_800_000_000.0

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput], maxDuration: .seconds(3))

    let keySet = JWTKeySet(source: .json(jwks))
    nonisolated(unsafe) var keys: [String: VerificationKey] = [:]

    func verify(_ benchmark: Benchmark, _ token: String) {
        for _ in benchmark.scaledIterations {
            guard case .success(let v) = JWTVerifier.verify(token, keys: keys, rules: rules, now: now) else { fatalError("token refused") }
            blackHole(v)
        }
    }

    Benchmark(
        "JWT verify RS256 (decode, signature, claims)", closure: { benchmark in verify(benchmark, rs256Token) },
        setup: {
            await keySet.refreshNow(); keys = keySet.currentKeys(now: now).keys
        })
    Benchmark(
        "JWT verify HS256 (decode, signature, claims)", closure: { benchmark in verify(benchmark, hs256Token) },
        setup: {
            await keySet.refreshNow(); keys = keySet.currentKeys(now: now).keys
        })

    // The whole check as the gateway runs it: header parsing, key lookup, verification, principal.
    Benchmark(
        "jwt check + scopes check, RS256",
        closure: { benchmark in
            let check = JWTCheck(id: "jwt", keys: keySet, rules: rules)
            let scopes = ScopesCheck(id: "scopes", require: ["orders:read"])
            let headers = HeaderList([("Authorization", "Bearer " + rs256Token)])
            for _ in benchmark.scaledIterations {
                var request = PolicyRequest(method: "GET", path: "/orders", headers: headers, now: now)
                blackHole(check.evaluate(&request))
                blackHole(scopes.evaluate(&request))
            }
        }, setup: { await keySet.refreshNow() })
}

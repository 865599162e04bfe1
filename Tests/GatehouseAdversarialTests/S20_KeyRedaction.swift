import Foundation
import GatehouseTestSupport
import Testing

/// S20 (call-log half): redaction split the query on `&` only and matched fixed names plus the
/// configured query parameter, so `/keyed?x=1;api_key=<key>` and `/keyed?X-API-Key=<key>` stored
/// the full key in the call log.
@Suite("S20 API key redaction", .serialized) struct S20KeyRedaction {
    static func yaml(_ port: Int) -> String {
        """
        upstreams:
          app: { targets: ["http://127.0.0.1:\(port)"] }
        routes:
          - name: keyed
            match: { path: /keyed }
            upstream: app
            policies: [by-header]
          - name: custom
            match: { path: /custom }
            upstream: app
            policies: [by-custom-header]
        policies:
          by-header: { type: api_key, header: X-API-Key }
          by-custom-header: { type: api_key, header: X-Partner-Credential }
        """
    }

    @Test func theStoredRowsHoldNoKey() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream.port))
        defer { gw.stop() }
        #expect(try gw.cli(["consumers", "create", "acme"]).status == 0)
        let key = try gw.cli(["keys", "create", "--consumer", "acme", "--quiet"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.hasPrefix("gth_"))
        for _ in 0..<40 {
            if try attack(gw, "GET /keyed HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nConnection: close\r\n\r\n").status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        // The review's two forms, with and without the key also in the header; and spellings an
        // upstream reads as the same names.
        let targets = [
            "/keyed?x=1;api_key=\(key)",
            "/keyed?X-API-Key=\(key)",
            "/keyed?x=1&API%5FKEY=\(key)",
            "/keyed?api+key=\(key)&y=2",
            "/custom?x-partner-credential=\(key)",
            "/custom?X_Partner_Credential=\(key)",
            // Targets the gateway refuses (400): their denial quotes the target.
            "/a/../keyed?x=1;api_key=\(key)",
            "/keyed?X-API-Key=\(key)#frag",
        ]
        var ids: [String] = []
        for target in targets {
            for header in ["", "X-API-Key: \(key)\r\n"] {
                let reply = try attack(gw, "GET \(target) HTTP/1.1\r\nHost: x\r\n\(header)Connection: close\r\n\r\n")
                #expect(reply.status == 200 || reply.status == 401 || reply.status == 400)
                ids.append(try #require(reply.header("x-request-id")))
            }
        }
        // Each record's path keeps the parameter, with its value redacted.
        for (i, id) in ids.enumerated() {
            let record = try await gw.record(id)
            let path = try #require(record["path"] as? String)
            #expect(!path.contains(key), "row \(id) holds the key: \(path)")
            // (A head the codec refuses outright is logged without its target, as "-".)
            #expect(path == "-" || path.contains("=[redacted]"), "\(targets[i / 2]) stored as \(path)")
            let text = String(decoding: try JSONSerialization.data(withJSONObject: record), as: UTF8.self)
            #expect(!text.contains(String(key.dropFirst(17))), "row \(id) holds the key: \(text)")
        }
        let secret = String(key.dropFirst(17))  // what follows gth_<key id>_
        for args in [["logs", "--limit", "1000", "--json"], ["logs", "--limit", "1000"]] {
            let out = try gw.cli(args).stdout
            #expect(out.contains("[redacted]"))
            #expect(!out.contains(secret))
        }
        // Nor do the raw database bytes, once the gateway has written everything and stopped.
        #expect(gw.stop() == 0)
        for suffix in ["", "-wal", "-shm"] {
            guard let data = FileManager.default.contents(atPath: gw.storePath + suffix) else { continue }
            #expect(data.range(of: Data(secret.utf8)) == nil, "gatehouse.db\(suffix) holds the key")
        }
    }

    /// The scrub looked for a literal `gth_` only: `/x?q=x%67th_<id>_<secret>` and a refused
    /// `/x/..;%67th_<id>_<secret>` stored the secret. Now a key is found however much of it is
    /// percent-encoded (once or twice).
    @Test func encodedKeysAreRedactedToo() async throws {
        let upstream = try await CaptureUpstream()
        defer { Task { await upstream.stop() } }
        let gw = try GatewayProcess(yaml: Self.yaml(upstream.port))
        defer { gw.stop() }
        #expect(try gw.cli(["consumers", "create", "acme"]).status == 0)
        let key = try gw.cli(["keys", "create", "--consumer", "acme", "--quiet"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.hasPrefix("gth_"))
        for _ in 0..<40 {
            if try attack(gw, "GET /keyed HTTP/1.1\r\nHost: x\r\nX-API-Key: \(key)\r\nConnection: close\r\n\r\n").status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let rest = String(key.dropFirst(4))  // <key id>_<secret><checksum>
        let secret = String(key.dropFirst(17))
        func escaped<S: StringProtocol>(_ s: S) -> String { s.utf8.map { "%" + String($0, radix: 16, uppercase: true) }.joined() }
        // The secret with one character in its middle escaped: no literal copy of it is left.
        let splitSecret = key.prefix(17) + secret.prefix(16) + escaped(secret.dropFirst(16).prefix(1)) + secret.dropFirst(17)
        let encoded = [
            "%67th_\(rest)", "x%67th_\(rest)", escaped(key), String(splitSecret), "%2567th_\(rest)", "%25%36%37th_\(rest)",
        ]
        var targets: [String] = []
        for e in encoded {
            targets += ["/keyed?q=x\(e)", "/keyed?q=\(e)&y=1", "/keyed/\(e)", "/keyed/..;\(e)", "/a/../keyed?q=\(e)", "/keyed?x=1;\(e)"]
        }
        var ids: [String] = []
        for target in targets {
            for header in ["", "X-API-Key: \(key)\r\n"] {
                let reply = try attack(gw, "GET \(target) HTTP/1.1\r\nHost: x\r\n\(header)Connection: close\r\n\r\n")
                #expect([200, 400, 401, 404].contains(reply.status), "\(target): \(reply.status)")
                ids.append(try #require(reply.header("x-request-id")))
            }
        }
        // Every 8 characters of the secret: an escaped character elsewhere leaves no whole copy.
        let secretBytes = Array(secret)
        let pieces = (0...(secretBytes.count - 8)).map { String(secretBytes[$0..<($0 + 8)]) }
        func leaked(_ text: String) -> String? { pieces.first { text.contains($0) } }
        for (i, id) in ids.enumerated() {
            let record = try await gw.record(id)
            let path = try #require(record["path"] as? String)
            #expect(path == "-" || path.contains("[redacted]"), "\(targets[i / 2]) stored as \(path)")
            let text = String(decoding: try JSONSerialization.data(withJSONObject: record), as: UTF8.self)
            #expect(leaked(text) == nil, "row \(id) for \(targets[i / 2]) holds the key: \(text)")
        }
        for args in [["logs", "--limit", "1000", "--json"], ["logs", "--limit", "1000"]] {
            let out = try gw.cli(args).stdout
            #expect(out.contains("[redacted]"))
            #expect(leaked(out) == nil, "logs holds the key")
        }
        #expect(gw.stop() == 0)
        for suffix in ["", "-wal", "-shm"] {
            guard let data = FileManager.default.contents(atPath: gw.storePath + suffix) else { continue }
            let piece = pieces.first { data.range(of: Data($0.utf8)) != nil }
            #expect(piece == nil, "gatehouse.db\(suffix) holds the key")
        }
    }
}

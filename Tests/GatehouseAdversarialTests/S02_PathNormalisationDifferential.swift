import Foundation
import GatehouseCore
import GatehouseTestSupport
import Testing

/// S2, differential: for each tricky request target, what Gatehouse makes of it against what a
/// real nginx makes of it (`$uri`: nginx's normalised, decoded path). Whenever Gatehouse accepts a
/// target, nginx resolves it to the same path, and the upstream behind a live gateway receives
/// exactly Gatehouse's canonical path; where they would disagree, Gatehouse refuses it (400).
@Suite(.serialized) struct S02_PathNormalisationDifferential {
    /// Hand-picked targets: dot-segments raw, encoded and mixed-case, `;` tricks, `//`, encoded
    /// separators, double encoding, Unicode escapes, trailing dots, long paths, queries.
    static let handPicked: [String] = [
        "/", "/a", "/a/", "/a/b/c", "/a/b/c/",
        "/public/../admin/users", "/public/%2e%2e/admin/users", "/public/.%2E/admin/users", "/public/%2E./admin/users",
        "/public/x/..\\..\\admin/users", "/public/x\\admin", "/public%5cadmin", "/public%5Cadmin", "/public/%5c../admin",
        "/public/%2e%2e%2fadmin", "/public/%2e%2e%2Fadmin", "/public%2f..%2fadmin", "/admin%2fusers", "/admin%2Fusers",
        "/public/..;/admin/users", "/public/..;x=1/admin", "/public/.;/admin", "/public/%2e%2e;/admin", "/;x/admin",
        "/admin;jsessionid=1/users", "/admin/users;x", "/a;b/c;d/e", "/a/...;x", "/a/x;/../b",
        "//admin/users", "/admin//users", "/admin/users/", "///admin///users///", "//", "///",
        "/a/./b", "/a/././b", "/./a", "/a/.", "/a/./", "/.", "/./", "/a/b/..", "/a/b/../", "/a/b/../..", "/a/..",
        "/a/.../b", "/.../a", "/a/..../b", "/a/.b/..c", "/a/b./c", "/a./", "/a..", "/a/b.", "/a/b..", "/...",
        "/..", "/../", "/../a", "/a/../..", "/a/../../b", "/%2e%2e", "/%2e%2e/", "/%2e%2e/a", "/a/%2e%2e/%2e%2e/b",
        "/%2e", "/%2E", "/%2e/", "/a/%2e/b", "/a/%2e%2e", "/a/%2E%2E/", "/a/%2E%2e/b", "/a/%2e%2E/../b",
        "/a/.%2e", "/a/%2e.", "/a/.%2E/", "/a/%2e./b/%2e%2e",
        "/%61dmin/users", "/%41DMIN", "/a%7Eb", "/a%7eb", "/%7e", "/a%2Db%5Fc%2Ed", "/%30%39",
        "/a%20b", "/a%3Bb", "/a%3bb", "/a%3Ab", "/a%40b", "/a%21", "/a%24%26%27%28%29%2A%2B%2C%3D",
        "/a%25", "/a%25b", "/a%2525", "/a/%252e%252e/b", "/a/%252f", "/a/%25%32%65%25%32%65/b", "/a%25%32%66",
        "/a%", "/a%2", "/a%zz", "/a%g0", "/a/%u002e%u002e/b", "/a/%U002E", "/%",
        "/a%00", "/a%00b", "/a%0d%0a", "/a%09", "/a%7f", "/a%1f",
        "/caf%C3%A9", "/caf%c3%a9", "/%E6%97%A5%E6%9C%AC", "/%F0%9F%98%80", "/a/%c0%ae%c0%ae/b", "/a/%c0%af", "/a/%e0%80%ae",
        "/a/%ef%bc%8f/b", "/a/%ef%bc%8e%ef%bc%8e/b", "/a/%e2%80%a5", "/a/%e2%80%a4", "/a/%e2%88%95", "/a/%ef%bc%bc",
        "/a/%e9", "/a/%ff", "/a/%c3", "/a/%ed%a0%80",
        "/a?x=/../", "/a?x=%2e%2e", "/a/../b?c=/../d", "/a?x=\\", "/a?x=%2F", "/a?", "/a??", "/a?x=1&y=..%2f",
        "/a#b", "/a#/../../admin", "/a?x#y",
        "/a:b", "/a@b", "/a!b", "/a$b", "/a&b", "/a'b", "/a(b)", "/a*b", "/a+b", "/a,b", "/a=b", "/~user", "/a-b_c.d~e",
        "/a/b/c/d/e/f/../../../../../../g", "/a/b/c/d/e/f/../../../../../../../g",
        "/" + String(repeating: "a/", count: 500), "/" + String(repeating: "../", count: 3),
        "/" + String(repeating: "a/../", count: 200) + "b",
        "/" + String(repeating: "x", count: 4000), "/" + String(repeating: "%2e%2e/", count: 2),
        "/api/../etc", "//api/x", "/apix", "/api", "/api/", "/api;x/y",
        "/ADMIN", "/Admin/users", "/admin./users", "/admin../users", "/admin%20/users",
    ]

    /// Dot-segment spellings, each in several positions.
    static let dots = [".", "..", "%2e", "%2E", ".%2e", "%2e.", "%2e%2e", "%2E%2E", ".%2E", "%2E.", "..."]
    static let shapes = ["/a/b/X/c", "/a/X", "/X/a", "/a/X/", "/a/b/X/X/c", "/a/X;/b", "/a/X;x/b", "/a/X%2fb", "/a/X\\b", "//a//X//b"]

    static var table: [String] {
        var t = handPicked
        for d in dots { for s in shapes { t.append(s.replacingOccurrences(of: "X", with: d)) } }
        var seen = Set<String>()
        return t.filter { seen.insert($0).inserted }
    }

    /// nginx's `$uri` for the target: (status, path bytes).
    static func nginxResolves(_ nginx: NginxServer, _ target: String) throws -> (status: Int, path: [UInt8]) {
        let (status, body) = try nginx.exchange(
            Array("GET ".utf8) + Array(target.utf8) + Array(" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8))
        guard status == 200, body.first == UInt8(ascii: "["), body.last == UInt8(ascii: "]") else { return (status, []) }
        return (status, Array(body.dropFirst().dropLast()))
    }

    @Test func gatehouseAcceptsOnlyWhatNginxResolvesTheSameWay() async throws {
        guard NginxServer.available() else { return }
        let nginx = try NginxServer(server: "    location / { return 200 \"[$uri]\"; }")
        defer { nginx.stop() }
        let upstream = try await CaptureUpstream()
        let gw = try GatewayProcess(
            yaml: """
                upstreams:
                  cap: { targets: ["\(upstream.url)"], timeout: 5s }
                routes:
                  - name: all
                    match: { path: "/{rest*}" }
                    upstream: cap
                """)
        defer { gw.stop() }

        let table = Self.table
        #expect(table.count >= 200)
        var accepted = 0, refused = 0, nginxRefused = 0
        var disagreements: [String] = []
        for target in table {
            let gatehouse = CanonicalTarget.parse(target)
            let (nStatus, nPath) = try Self.nginxResolves(nginx, target)
            if nStatus != 200 { nginxRefused += 1 }
            // The live gateway: 400, or the upstream receives the canonical path.
            let before = upstream.requests.count
            let reply = try attack(gw, "GET \(target) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            switch gatehouse {
            case .success(let canonical):
                accepted += 1
                let decoded = Array(PercentDecoding.decode(canonical.path).utf8)
                if nStatus != 200 || nPath != decoded {
                    disagreements.append(
                        "\(target.prefix(80).debugDescription): Gatehouse \(canonical.path.prefix(80)) (decoded \(String(decoding: decoded.prefix(80), as: UTF8.self))), nginx \(nStatus) \(String(decoding: nPath.prefix(80), as: UTF8.self))"
                    )
                }
                let received = upstream.requests.dropFirst(before).first
                if reply.status != 200 || received?.target != canonical.target {
                    disagreements.append(
                        "\(target.prefix(80).debugDescription): the live gateway answered \(reply.status) and forwarded \(received?.target.prefix(80) ?? "nothing"), not \(canonical.target.prefix(80))"
                    )
                }
            case .failure(let why):
                refused += 1
                if reply.status != 400 || upstream.requests.count != before {
                    disagreements.append(
                        "\(target.prefix(80).debugDescription): refused (\(why)) but the live gateway answered \(reply.status)")
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements:\n\(disagreements.joined(separator: "\n"))")
        print(
            "S2 differential: \(table.count) targets; Gatehouse accepted \(accepted), refused \(refused); nginx refused \(nginxRefused); \(disagreements.count) disagreements"
        )
        await upstream.stop()
    }
}

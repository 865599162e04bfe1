import Foundation
import GatehouseTestSupport
import Testing

/// S12: only `path` was cut (2 KiB); `detail`, `presented` and `host` kept the whole path and Host
/// of an unauthenticated 404, so each record of a 30 KB path + 30 KB Host stored about 139 KiB, and
/// nothing bounded the log's size on disk but its age.
@Suite("S12 call-log flood", .serialized) struct S12CallLogFlood {
    static let yaml = """
        upstreams:
          app: { targets: ["http://127.0.0.1:9"] }
        routes:
          - name: known
            match: { path: /known }
            upstream: app
        """

    /// Sends `count` requests for unknown paths on one keep-alive connection; returns the replies.
    static func flood(_ gw: GatewayProcess, count: Int, pathBytes: Int, hostBytes: Int) throws -> [RawReply] {
        let conn = try RawSocket(port: gw.port)
        var replies: [RawReply] = []
        for i in 0..<count {
            let path = "/flood-\(i)-" + String(repeating: "a", count: pathBytes)
            let host = String(repeating: "h", count: hostBytes)
            #expect(conn.send("GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n"))
            replies.append(RawReply(conn.readResponse(seconds: 10) ?? ""))
        }
        return replies
    }

    static func filesBytes(_ gw: GatewayProcess) -> Int {
        ["", "-wal", "-shm"].reduce(0) { sum, suffix in
            sum + ((try? FileManager.default.attributesOfItem(atPath: gw.storePath + suffix)[.size] as? Int) ?? 0)
        }
    }

    static func sizes(_ gw: GatewayProcess) -> [Int] {
        ["", "-wal", "-shm"].map { (try? FileManager.default.attributesOfItem(atPath: gw.storePath + $0)[.size] as? Int) ?? 0 }
    }

    @Test func aFloodOfHugeUnauthenticatedRequestsStoresSmallRecords() async throws {
        let gw = try GatewayProcess(yaml: Self.yaml)
        defer { gw.stop() }
        // The review's shape: 300 unauthenticated 404s, each a 30 KB path and a 30 KB Host (the
        // head limit is 64 KiB).
        let replies = try Self.flood(gw, count: 300, pathBytes: 30_000, hostBytes: 30_000)
        #expect(replies.allSatisfy { $0.status == 404 && $0.reason == "route_not_found" })
        let last = try await gw.record(replies.last?.header("x-request-id") ?? "")
        // Every field is cut, with a visible marker saying how much was left out.
        let path = try #require(last["path"] as? String)
        #expect(path.utf8.count <= 2048 && path.hasSuffix(" bytes]") && path.contains("…[+"))
        let host = try #require(last["host"] as? String)
        #expect(host.utf8.count <= 256 && host.hasSuffix("…[+29761 bytes]"))
        #expect((last["detail"] as? String)?.utf8.count ?? .max <= 2048)
        #expect(((last["presented"] as? [String]) ?? []).allSatisfy { $0.utf8.count <= 256 })
        let text = try gw.cli(["explain", replies.last?.header("x-request-id") ?? ""]).stdout
        #expect(text.contains("…[+"))
        #expect(gw.stop() == 0)
        // With the gateway stopped the WAL is checkpointed into the database. Each record keeps at
        // most about 5 KiB of text here (path 2 KiB, detail 2 KiB, Host and the two presented items
        // 256 bytes each, the rest short); 16 KiB per request leaves room for SQLite's pages, the
        // request-id index and the store's other tables, and is a ninth of the 139 KiB the review
        // measured.
        let bytes = Self.filesBytes(gw)
        #expect(bytes < 300 * 16 * 1024, "the store holds \(bytes) bytes after 300 requests \(Self.sizes(gw))")
    }

    @Test func theLogIsKeptUnderItsSizeLimitByDroppingTheOldestRecords() async throws {
        let gw = try GatewayProcess(yaml: "log: { max_bytes: 4MiB }\n" + Self.yaml)
        defer { gw.stop() }
        // About 5 KiB stored per request: 1,200 of them need more than the limit.
        let replies = try Self.flood(gw, count: 2400, pathBytes: 8000, hostBytes: 8000)
        #expect(replies.allSatisfy { $0.status == 404 })
        let newest = try await gw.record(replies.last?.header("x-request-id") ?? "")
        #expect((newest["path"] as? String)?.hasPrefix("/flood-2399-") == true)
        // The oldest records are gone, the newest kept.
        #expect(try gw.cli(["explain", replies[0].header("x-request-id") ?? ""]).status != 0)
        let logs = try gw.cli(["logs", "--limit", "5000", "--json"]).stdout.split(separator: "\n")
        #expect(logs.count > 200 && logs.count < 2400, "\(logs.count) records kept \(Self.sizes(gw))")
        #expect(gw.stderr.contains("call log size limit: removed"))
        #expect(gw.stop() == 0)
        // The limit bounds the file: past it, deleted records' pages are reused. The writer checks
        // after every write, so the file exceeds the limit by at most the records of one round.
        let bytes = Self.filesBytes(gw)
        #expect(bytes < 8 << 20, "the store holds \(bytes) bytes with max_bytes 4MiB \(Self.sizes(gw))")
    }

    @Test func aSizeLimitTooSmallToHoldAnythingIsRefused() throws {
        let dir = try TempDir()
        let file = try dir.write("g.yaml", "log: { max_bytes: 4KiB }\n" + Self.yaml)
        let r = try gatehouse(["check", file])
        #expect(r.status == 2)
        #expect((r.stdout + r.stderr).contains("max_bytes must be at least 4MiB"))
    }
}

import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S31: list cursors edited by hand, or carried from another tenant's listing. A cursor only moves
/// the start of a page: the tenant filter is part of the query, so a forged cursor reads nothing
/// more; one that does not decode, or a limit out of range, is a 400 `admin_invalid_request`.
@Suite(.serialized) struct S31_AdminCursorTampering {
    @Test func forgedAndForeignCursorsReadNothingOfAnotherTenant() async throws {
        let t = try await AdminTarget()
        defer { t.stop() }
        for i in 0..<4 { _ = try await t.call(.POST, "/applications", as: "ann", body: #"{"name": "acme-app-\#(i)"}"#) }
        _ = try await t.call(.POST, "/applications", as: "carol", body: #"{"name": "initech-app"}"#)
        // ann's cursor, used by carol.
        let first = try await t.call(.GET, "/applications?limit=2", as: "ann")
        let cursor = try #require(first.json["next_cursor"] as? String)
        let foreign = try await t.call(.GET, "/applications?limit=50&cursor=\(cursor)", as: "carol")
        #expect(foreign.status == 200)
        #expect(!foreign.body.contains("acme"), "\(foreign.body)")
        // Cursors pointing before everything, at SQL, or not base64 at all.
        for forged in [
            "AA", "Jw", "JyBPUiAxPTEgLS0", Data("' OR 1=1 --".utf8).base64EncodedString(), "%25%25%25", String(repeating: "A", count: 4000),
        ] {
            let r = try await t.call(.GET, "/applications?cursor=\(forged)", as: "carol")
            #expect(
                r.status == 200 || (r.status == 400 && r.json["reason"] as? String == "admin_invalid_request"), "\(forged): \(r.status)")
            #expect(!r.body.contains("acme"), "\(forged) read acme's applications")
        }
        let audit = try await t.call(.GET, "/audit?cursor=\(Data("0".utf8).base64EncodedString())", as: "carol")
        #expect(!audit.body.contains("acme"))
        for limit in ["0", "-1", "100000", "x"] {
            let r = try await t.call(.GET, "/applications?limit=\(limit)", as: "carol")
            #expect(r.status == 400 && r.json["reason"] as? String == "admin_invalid_request", "limit \(limit): \(r.status)")
        }
    }
}

import Crypto
import Foundation
import GRDB
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S33: secrets of the admin plane, and the audit log as evidence. Tokens are stored as SHA-256
/// and found by the hash of what was presented (no comparison runs over the token itself); no
/// token, key or password reaches the log, the audit log or a listing; the audit log has no route
/// that changes it and its table refuses UPDATE and DELETE.
@Suite(.serialized) struct S33_AdminSecretsAndAudit {
    static func storedTokenHashes(_ path: String) throws -> [Data] {
        try DatabaseQueue(path: path).read { db in try Data.fetchAll(db, sql: "SELECT hash FROM admin_tokens") }
    }

    static func execute(_ sql: String, in path: String) throws {
        try DatabaseQueue(path: path).write { try $0.execute(sql: sql) }
    }

    @Test func tokensAreComparedAsHashesAndNeverLoggedOrListed() async throws {
        let t = try await AdminTarget()
        defer { t.stop() }
        let token = try #require(t.tokens["ann"])
        // Near misses: one character changed, truncated, extended, another case.
        let last = token.last == "A" ? "B" : "A"
        for forged in [
            String(token.dropLast()) + last, String(token.dropLast()), token + "A", token.uppercased(), "gha_",
            "gha_" + String(repeating: "A", count: 200),
        ] {
            let r = try await t.call(.GET, "/applications", as: nil, authorization: "Bearer \(forged)")
            #expect(r.status == 401 && r.json["reason"] as? String == "admin_unauthenticated", "\(forged.prefix(12))…: \(r.status)")
        }
        let stored = try Self.storedTokenHashes(t.gateway.storePath)
        #expect(stored.contains(Data(SHA256.hash(data: Data(token.utf8)))))
        #expect(stored.allSatisfy { $0.count == 32 })
        let created = try await t.call(.POST, "/applications/checkout/keys", as: "ann")
        let key = try #require(created.json["key"] as? String)
        let listings = [
            try await t.call(.GET, "/keys", as: "root").body, try await t.call(.GET, "/audit?limit=500", as: "root").body,
            try await t.call(.GET, "/admin-users", as: "root").body,
        ].joined()
        for secret in [key, token] { #expect(!listings.contains(secret)) }
        #expect(!listings.contains("password_hash") && !listings.contains("$2b$"))
        for secret in t.tokens.values + [key] { #expect(!t.gateway.stderr.contains(secret), "a secret reached the log") }
    }

    @Test func theAuditLogCannotBeRewrittenThroughTheAPIOrTheStore() async throws {
        let t = try await AdminTarget()
        defer { t.stop() }
        let before = try await t.call(.GET, "/audit?limit=500", as: "root").body
        for method in [HTTPMethod.PUT, .PATCH, .DELETE, .POST] {
            for path in ["/audit", "/audit/1"] {
                let r = try await t.call(method, path, as: "root", body: #"{"actor": "nobody"}"#)
                #expect(r.status == 404 || r.status == 405, "\(method) \(path): \(r.status)")
                #expect(r.headers.first(name: "content-type") == "application/problem+json")
            }
        }
        for sql in ["UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log", "DELETE FROM audit_log WHERE id = 1"] {
            #expect(throws: DatabaseError.self, "\(sql)") { try Self.execute(sql, in: t.gateway.storePath) }
        }
        #expect(try await t.call(.GET, "/audit?limit=500", as: "root").body == before)
    }
}

import Foundation
import GatehouseConsole
import GatehouseControl
import GatehouseStore
import Testing

/// The console's server-side sessions, on SQLite and on a cluster's PostgreSQL.
@Suite struct WebSessionStoreTests {
    static func store(_ w: World) -> WebSessionStore {
        let clock = w.clock
        return WebSessionStore(database: w.temp.database, lifetime: WebSessionLifetime(idle: 1800, absolute: 12 * 3600), now: { clock.now })
    }

    @Test(arguments: StoreKind.allCases) func aSessionEndsAfterItsIdleTime(_ kind: StoreKind) throws {
        let w = try World(kind)
        let sessions = Self.store(w)
        let (token, made) = try sessions.create(kind: .admin, subject: "u_1")
        #expect(token.hasPrefix("ghs_"))
        w.clock.advance(1700)
        guard case .valid(let s) = try sessions.lookup(token, kind: .admin) else {
            Issue.record("a session used within its idle time is valid")
            return
        }
        #expect(s.id == made.id && s.subject == "u_1" && s.lastSeenAt == w.clock.now)
        // Use moved the idle deadline: 1700 s after the last use is still within it.
        w.clock.advance(1700)
        guard case .valid = try sessions.lookup(token, kind: .admin) else {
            Issue.record("each use restarts the idle time")
            return
        }
        w.clock.advance(1801)
        #expect(try sessions.lookup(token, kind: .admin) == .expired(reason: "idle", at: w.clock.now - 1))
        // An ended session is gone.
        #expect(try sessions.lookup(token, kind: .admin) == .unknown)
    }

    @Test(arguments: StoreKind.allCases) func aSessionEndsAtItsAbsoluteLifetimeHoweverOftenItIsUsed(_ kind: StoreKind) throws {
        let w = try World(kind)
        let sessions = Self.store(w)
        let (token, made) = try sessions.create(kind: .admin, subject: "u_1")
        var result = WebSessionLookup.unknown
        var used = 0
        repeat {
            w.clock.advance(1500)
            result = try sessions.lookup(token, kind: .admin)
            used += 1
        } while used < 40 && { if case .valid = result { return true } else { return false } }()
        #expect(result == .expired(reason: "absolute", at: made.expiresAt))
        #expect(used == 29)
    }

    @Test(arguments: StoreKind.allCases) func signInRotatesTheTokenAndSignOutDeletesTheSession(_ kind: StoreKind) throws {
        let w = try World(kind)
        let sessions = Self.store(w)
        let (first, _) = try sessions.create(kind: .admin, subject: "u_1")
        let (second, _) = try sessions.create(kind: .admin, subject: "u_1", replacing: first)
        #expect(first != second)
        #expect(try sessions.lookup(first, kind: .admin) == .unknown)
        guard case .valid = try sessions.lookup(second, kind: .admin) else {
            Issue.record("the new session is valid")
            return
        }
        // A session of one kind is not one of another (the portal's developers are not admins).
        #expect(try sessions.lookup(second, kind: WebSessionKind(rawValue: "developer")) == .unknown)
        try sessions.delete(second)
        #expect(try sessions.lookup(second, kind: .admin) == .unknown)
    }

    /// The store keeps the token's SHA-256 only, and CSRF tokens are bound to the session.
    @Test(arguments: StoreKind.allCases) func theStoreHoldsNoTokenAndFormTokensAreBoundToTheirSession(_ kind: StoreKind) throws {
        let w = try World(kind)
        let sessions = Self.store(w)
        let (token, a) = try sessions.create(kind: .admin, subject: "u_1")
        let (_, b) = try sessions.create(kind: .admin, subject: "u_2")
        let stored = try w.temp.database.read { db in try db.rows("SELECT * FROM web_sessions", []) }
        #expect(stored.count == 2)
        for row in stored {
            for value in row.values {
                if case .text(let t) = value { #expect(!t.contains(token.dropFirst(4))) }
            }
        }
        let form = a.csrfToken()
        #expect(a.verifyCSRF(form))
        #expect(!b.verifyCSRF(form))
        #expect(!a.verifyCSRF("forged.0000"))
    }

    @Test func anUnknownOrMalformedTokenIsNoSession() throws {
        let w = try World()
        let sessions = Self.store(w)
        #expect(try sessions.lookup("ghs_nothing", kind: .admin) == .unknown)
        #expect(try sessions.lookup("gha_admin-token", kind: .admin) == .unknown)
        #expect(try sessions.lookup("ghs_" + String(repeating: "x", count: 200), kind: .admin) == .unknown)
    }
}

import Foundation
import GatehouseTestSupport
import NIOHTTP1
import Testing

/// S41: the admin API's Basic authentication checked an admin user's password on every
/// `/admin/v1` request with no count of attempts: the console's sign-in limit (the same names,
/// the same passwords) protected nothing, and failures were not logged. Basic attempts are now
/// counted in the console's sign-in limiter, per name and address and per address, and refused
/// 429 `rate_limited` before any password is checked; names too long to be anyone's are refused
/// uncounted; failures are logged without the password.
@Suite(.serialized) struct S41_AdminBasicGuessing {
    static let password = "correct-horse-battery"

    static func basic(_ name: String, _ password: String) -> String {
        "Basic " + Data("\(name):\(password)".utf8).base64EncodedString()
    }

    @Test func basicGuessesAreCountedWithTheConsolesSignInsAndRefusedBeforeTheirPasswordIsChecked() async throws {
        let t = try await AdminTarget()
        defer { t.stop() }
        let created = try await t.call(
            .POST, "/admin-users", as: "root", body: #"{"name": "alice", "role": "viewer", "password": "\#(Self.password)"}"#)
        try #require(created.status == 201, "\(created.body)")

        // Guesses until the limit (5 a minute, refilled one every 12 s) refuses one. Each guess
        // costs a bcrypt check, which a loaded machine can make slow: the guesses checked may be
        // the limit plus what it refilled while they ran, never more.
        var answers: [Int] = []
        let start = Date()
        for i in 0..<40 {
            let status = try await t.call(.GET, "/whoami", as: nil, authorization: Self.basic("alice", "guess-\(i)")).status
            if status == 429 { break }
            answers.append(status)
        }
        let refilled = (Date().timeIntervalSince(start) / 12).rounded(.up)
        #expect(answers.allSatisfy { $0 == 401 })
        #expect(answers.count >= 5 && Double(answers.count) <= 5 + refilled, "\(answers.count) guesses checked")
        // Once refused, the next is refused before its password is checked, even the right one
        // (under another case of the name, which is counted as the same). The budget refills one
        // every 12 s and may do so between two calls: a call it let through is checked (401 for
        // `ALICE`, whose account is `alice`), and no more may be than it refilled since.
        let refusedFirstAt = Date()
        var refused = try await t.call(.GET, "/whoami", as: nil, authorization: Self.basic("ALICE", Self.password))
        var letThrough: [Int] = []
        while refused.status != 429 && letThrough.count < 3 {
            letThrough.append(refused.status)
            refused = try await t.call(.GET, "/whoami", as: nil, authorization: Self.basic("ALICE", Self.password))
        }
        let refilledSince = (Date().timeIntervalSince(refusedFirstAt) / 12).rounded(.up)
        #expect(letThrough.allSatisfy { $0 == 401 }, "\(letThrough)")
        #expect(Double(letThrough.count) <= refilledSince, "\(letThrough.count) calls checked after the refusal")
        #expect(refused.status == 429)
        #expect(refused.json["reason"] as? String == "rate_limited")
        #expect(refused.headers.first(name: "retry-after") != nil)
        #expect((refused.json["hint"] as? String)?.contains("admin token") == true)

        // The console's sign-in form counts in the same budget: refused at once, or, when the
        // budget refilled since the refusal above (a loaded machine), after no more checks than
        // it refilled; a budget of its own would check five.
        let refusedAt = Date()
        let port = t.gateway.adminPort ?? 0
        var formChecked: [Int] = []
        var form = try await signInForm(port: port, password: "form-guess-0")
        while form.status != 429 && formChecked.count < 6 {
            formChecked.append(form.status)
            form = try await signInForm(port: port, password: "form-guess-\(formChecked.count)")
        }
        let formRefilled = (Date().timeIntervalSince(refusedAt) / 12).rounded(.up)
        #expect(form.status == 429)
        #expect(form.body.contains("id=\"refusal-reason\">rate_limited<"))
        #expect(formChecked.allSatisfy { $0 == 401 }, "\(formChecked)")
        #expect(Double(formChecked.count) <= formRefilled, "\(formChecked.count) form sign-ins checked")

        // Tokens are not counted.
        #expect(try await t.call(.GET, "/whoami", as: "root").status == 200)

        // Each failure is logged with the name and the address, never the password.
        let log = t.gateway.stderr
        #expect(log.contains("admin Basic authentication failed"))
        #expect(log.contains("alice"))
        for guess in ["guess-0", "guess-3", "form-guess-0", Self.password] { #expect(!log.contains(guess), "a password reached the log") }
    }

    private func signInForm(port: Int, password: String) async throws -> Reply {
        try await send(
            .POST, "http://127.0.0.1:\(port)/console/sign-in",
            headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", "http://127.0.0.1:\(port)")],
            body: "name=alice&password=\(password)")
    }

    @Test func aNameTooLongToBeAnAccountIsRefusedUncounted() async throws {
        let t = try await AdminTarget()
        defer { t.stop() }
        let long = String(repeating: "n", count: 4000)
        for _ in 0..<8 {
            let r = try await t.call(.GET, "/whoami", as: nil, authorization: Self.basic(long, "guess"))
            #expect(r.status == 400)
            #expect(r.json["reason"] as? String == "admin_invalid_request")
        }
        // Not counted against the address: a real name is still checked (and fails as wrong).
        let r = try await t.call(.GET, "/whoami", as: nil, authorization: Self.basic("nobody", "guess"))
        #expect(r.status == 401)
    }
}

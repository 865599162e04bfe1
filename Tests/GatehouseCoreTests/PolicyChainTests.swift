import Foundation
import GatehouseCore
import GatehouseTesting
import Testing

private typealias Fixed = StubCheck

@Suite struct PolicyChainTests {
    let deny = Denial(code: .ipNotAllowed, detail: "203.0.113.7 is not in allow list office-ip")

    @Test func firstEnforcedDenialDecidesAndLaterChecksAreNotReached() {
        let chain = PolicyChain([
            ChainLink(Fixed(id: "a", verdict: .allow(note: "ok"))),
            ChainLink(Fixed(id: "b", verdict: .deny(deny))),
            ChainLink(Fixed(id: "c", verdict: .allow(note: nil))),
        ])
        var req = PolicyRequest(method: "GET", path: "/")
        let result = chain.evaluate(&req)
        #expect(result.decidingCheck == "b")
        #expect(result.denial?.code == .ipNotAllowed)
        #expect(result.denial?.status == 403)
        #expect(result.trace.entries.map(\.outcome) == [.allow, .deny, .notReached])
    }

    @Test func shadowDenialIsTracedButNotEnforced() {
        let chain = PolicyChain([ChainLink(Fixed(id: "s", verdict: .deny(deny)), mode: .shadow)])
        var req = PolicyRequest(method: "GET", path: "/")
        let result = chain.evaluate(&req)
        #expect(result.denial == nil)
        #expect(result.shadowDenials.count == 1)
        #expect(result.trace.entries[0].outcome == .shadowDeny)
        #expect(result.trace.entries[0].note.hasPrefix("shadow: would have denied"))
    }

    @Test func denialDefaultsComeFromTheCatalogue() {
        let d = Denial(code: .missingCredentials, detail: "x")
        #expect(d.status == 401)
        #expect(d.title == "Credentials required")
        #expect(!d.hint.isEmpty)
    }
}

@Suite struct ProblemRendererTests {
    @Test func detailedCarriesEveryContractField() throws {
        let d = Denial(
            code: "insufficient_scope", detail: "POST /orders needs orders:write", required: ["orders:write"],
            presented: ["orders:read"], headers: [HeaderField("WWW-Authenticate", "Bearer error=\"insufficient_scope\"")])
        let r = ProblemRenderer().render(d, requestID: "req-1", instance: "/orders", exposure: .detailed, checkID: "orders-write")
        let body = String(decoding: r.body, as: UTF8.self)
        #expect(r.status == 403)
        for member in [
            "\"type\":\"docs/reasons.md#insufficient_scope\"", "\"title\":", "\"status\":403",
            "\"detail\":\"POST /orders needs orders:write\"",
            "\"instance\":\"/orders\"", "\"reason\":\"insufficient_scope\"", "\"check\":\"orders-write\"",
            "\"required\":[\"orders:write\"]", "\"presented\":[\"orders:read\"]", "\"hint\":", "\"request_id\":\"req-1\"",
        ] {
            #expect(body.contains(member), "missing \(member) in \(body)")
        }
        #expect(r.headers.contains(HeaderField("Content-Type", "application/problem+json")))
    }

    @Test func minimalShowsOnlyReasonAndRequestID() {
        let d = Denial(
            code: "waf_blocked", detail: "secret detail", operatorDetail: "excerpt ' OR 1=1", extensions: ["rule_ids": ["942100"]])
        let body = String(
            decoding: ProblemRenderer().render(d, requestID: "r", instance: "/", exposure: .minimal, checkID: "waf").body, as: UTF8.self)
        #expect(body.contains("\"reason\":\"waf_blocked\""))
        #expect(body.contains("\"rule_ids\":[\"942100\"]"))
        #expect(!body.contains("secret detail"))
        #expect(!body.contains("excerpt"))
        #expect(!body.contains("\"check\""))
    }

    @Test func escapesControlCharactersAndQuotes() {
        var w = JSONWriter()
        w.beginObject(); w.field("k", "a\"b\\c\n\u{01}"); w.endObject()
        #expect(String(decoding: w.bytes, as: UTF8.self) == #"{"k":"a\"b\\c\n\u0001"}"#)
    }

    @Test func escapesWithinLongRunsAndKeepsUTF8() {
        var w = JSONWriter()
        w.beginArray()
        w.value("plain text without escapes, ünïcødé ✓")
        w.value("\u{1f}start and end\u{7f}\"")
        w.value("")
        w.value("tab\there\r\n")
        w.value(-42); w.value(0); w.value(Int.max); w.value(Int.min)
        w.endArray()
        #expect(
            String(decoding: w.bytes, as: UTF8.self)
                == #"["plain text without escapes, ünïcødé ✓","\u001fstart and end\#u{7f}\"","","tab\there\r\n",-42,0,9223372036854775807,-9223372036854775808]"#
        )
    }

    @Test func traceJSONHasTheCodableShape() throws {
        let trace = DecisionTrace(entries: [
            TraceEntry(check: "office-ip", type: "ip", mode: .enforce, outcome: .allow, note: "127.0.0.1 in 127.0.0.0/8", micros: 3),
            TraceEntry(
                check: "key", type: "api_key", mode: .shadow, outcome: .shadowDeny, note: "quote \" and \u{1}", reason: "key_unknown",
                micros: 0),
            TraceEntry(check: "shape", type: "request", mode: .enforce, outcome: .notReached, note: "", micros: 0),
        ])
        let decoded = try JSONDecoder().decode(DecisionTrace.self, from: Data(trace.json.utf8))
        #expect(decoded == trace)
        #expect(DecisionTrace().json == #"{"entries":[]}"#)
        #expect(try JSONDecoder().decode([String].self, from: Data(["a\"b", "", "ü"].jsonArray.utf8)) == ["a\"b", "", "ü"])
        #expect([String]().jsonArray == "[]")
    }
}

private func Answering() -> StubCheck {
    StubCheck(
        id: "cors", type: "cors", verdict: .allow(note: "preflight allowed"),
        answer: LocalAnswer(status: 204, headers: [HeaderField("Access-Control-Allow-Origin", "https://app.example")]))
}

@Suite struct LocalAnswerTests {
    @Test func aCheckThatAnswersStopsTheChain() {
        let deny = Denial(code: .missingCredentials, detail: "no key")
        let chain = PolicyChain([ChainLink(Answering()), ChainLink(Fixed(id: "key", verdict: .deny(deny)))])
        var req = PolicyRequest(method: "OPTIONS", path: "/")
        let result = chain.evaluate(&req)
        #expect(result.denial == nil)
        #expect(result.decidingCheck == "cors")
        #expect(req.localAnswer?.status == 204)
        #expect(result.trace.entries.map(\.outcome) == [.allow, .notReached])
    }
}

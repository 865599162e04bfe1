import Foundation
import GatehouseCore
import GatehouseDoctor
import Testing

@Suite("Gatehouse's own denials")
struct GatehouseReasonTests {
    @Test("every reason code in the gateway's catalogue maps to a doctor cause", arguments: ReasonCatalogue.all.map(\.code.rawValue))
    func mapped(_ reason: String) throws {
        let body =
            #"{"type":"about:blank","title":"t","status":403,"detail":"d","reason":"\#(reason)","check":"c","request_id":"r1","hint":"h"}"#
        let raw = "HTTP/1.1 403 Forbidden\r\nContent-Type: application/problem+json\r\nX-Request-Id: r1\r\n\r\n" + body
        let d = try #require(
            try ResponseDoctor(knowledge: Fixtures.knowledge).diagnose(data: Data(raw.utf8), source: reason).results.first?.1)
        #expect(d.deniedBy == "gatehouse")
        // Not access decisions: the doctor names the gateway but no access cause.
        let upstream = [
            "check_unavailable", "upstream_unavailable", "upstream_timeout", "gateway_busy", "gateway_shutting_down",
            "rate_limit_store_unavailable",
        ].contains(reason)
        #expect(upstream ? d.cause == .unknown : d.cause != .unknown, "\(reason) → \(d.cause.rawValue)")
        #expect(d.evidence.contains { $0.contains("reason: \(reason)") })
    }
}

import Foundation
import GatehouseDoctor
import Testing

/// Runs the probe against a local Python server that denies in known ways.
@Suite("doctor probe", .serialized)
struct ProbeTests {
    func withServer(_ body: (Int) async throws -> Void) async throws {
        guard let python = requireBinary("python3") else { return }
        let server = try ChildProcess(python, [Fixtures.url("probe_server.py").path])
        defer { server.stop() }
        let port = try #require(Int(server.firstLine()), "the probe server did not print its port")
        try await body(port)
    }

    func probe(_ configure: (inout Probe.Options) -> Void = { _ in }) -> Probe {
        var o = Probe.Options()
        o.delay = .zero
        o.timeout = .seconds(5)
        configure(&o)
        return Probe(classifier: ResponseClassifier(knowledge: Fixtures.knowledge), options: o)
    }

    @Test("bisection finds the one query parameter that trips the WAF rule")
    func bisectTrigger() async throws {
        try await withServer { port in
            var r = ProbeRequest(url: "http://127.0.0.1:\(port)/waf?page=2&q=%3Cscript%3Ealert(1)%3C/script%3E&sort=asc&lang=en")
            r.headers = [("Accept", "text/html"), ("X-Client", "web"), ("User-Agent", "doctor-test"), ("X-Trace", "abc")]
            let result = try await probe {
                $0.bisect = true; $0.repeats = 1
            }.run(r)
            #expect(result.first.status == 403)
            let d = try #require(result.diagnosis)
            #expect(d.cause == .wafBlocked)
            #expect(result.findings.contains { $0.contains("the smallest trigger is query parameter q=<script>alert(1)</script>") })
            #expect(result.findings.contains { $0.contains("a fixed rule, not a passing limit") })
            #expect(result.requestsSent <= 40)
        }
    }

    @Test("bisection finds a JSON body field that trips the rule")
    func bisectBody() async throws {
        try await withServer { port in
            var r = ProbeRequest(
                method: "POST", url: "http://127.0.0.1:\(port)/waf", body: #"{"name":"ann","bio":"<script>x</script>","age":3}"#)
            r.headers = [("Content-Type", "application/json")]
            let result = try await probe {
                $0.bisect = true; $0.repeats = 0
            }.run(r)
            #expect(result.findings.contains { $0.contains("the smallest trigger is JSON body field bio=") })
        }
    }

    @Test("bisection on an allowed request finds the header it cannot do without")
    func bisectMissingHeader() async throws {
        try await withServer { port in
            var r = ProbeRequest(url: "http://127.0.0.1:\(port)/needkey")
            r.headers = [("Accept", "*/*"), ("X-Api-Key", "k-123"), ("X-Trace", "t")]
            let result = try await probe { $0.bisect = true }.run(r)
            #expect(result.first.status == 200)
            #expect(result.findings.contains { $0.contains("removing header X-Api-Key turns the answer into a denial") })
            #expect(result.diagnosis?.cause == .missingCredentials)
            #expect(!result.findings.joined().contains("k-123"))
        }
    }

    @Test("repeating tells a passing rate limit from a fixed rule")
    func repeatDistinguishes() async throws {
        try await withServer { port in
            let limited = try await probe().run(ProbeRequest(url: "http://127.0.0.1:\(port)/limited"))
            #expect(limited.first.status == 429)
            #expect(limited.diagnosis?.cause == .rateLimited)
            #expect(limited.findings.contains { $0.contains("the denial passes, so it is a rate limit") })

            let fixed = try await probe().run(ProbeRequest(url: "http://127.0.0.1:\(port)/fixed"))
            #expect(fixed.first.status == 403)
            #expect(fixed.findings.contains { $0.contains("denied again 2 of 2 times") })
            #expect(fixed.diagnosis?.cause != .rateLimited)
        }
    }

    @Test("a CORS preflight from a foreign origin is reported")
    func cors() async throws {
        try await withServer { port in
            let bad = try await probe { $0.origin = "https://evil.example" }.run(ProbeRequest(url: "http://127.0.0.1:\(port)/cors"))
            #expect(bad.findings.contains { $0.contains("CORS preflight from https://evil.example fails: no Access-Control-Allow-Origin") })
            #expect(bad.diagnosis?.cause == .cors)
            let good = try await probe { $0.origin = "https://good.example" }.run(ProbeRequest(url: "http://127.0.0.1:\(port)/cors"))
            #expect(good.findings.contains { $0 == "CORS preflight from https://good.example: allowed" })
        }
    }

    @Test("a refused port is a network-level block, not an HTTP denial")
    func refused() async throws {
        let port = freePort()
        let result = try await probe().run(ProbeRequest(url: "http://127.0.0.1:\(port)/"))
        guard case .network(let kind, _) = result.first else {
            Issue.record("expected a network failure, got \(result.first)")
            return
        }
        #expect(kind == "connection refused")
        #expect(result.diagnosis?.deniedBy == "network")
        #expect(result.diagnosis?.evidence.contains("no HTTP status was received: this is not an HTTP denial") == true)
        #expect(result.requestsSent == 1)
    }

    @Test("request parts split and rebuild without the dropped ones")
    func parts() {
        var r = ProbeRequest(method: "POST", url: "https://x.example/a?b=1&c=2", body: "d=3&e=%3Cx%3E")
        r.headers = [("Cookie", "s=1; t=2"), ("X-A", "v")]
        let parts = Probe.parts(of: r)
        #expect(
            parts.map(\.description) == [
                "cookie s", "cookie t", "header X-A: v", "query parameter b=1", "query parameter c=2", "body field d=3", "body field e=<x>",
            ])
        let rebuilt = Probe.rebuild(r, keeping: [parts[1], parts[4], parts[6]])
        #expect(rebuilt.url == "https://x.example/a?c=2")
        #expect(rebuilt.body == "e=%3Cx%3E")
        #expect(rebuilt.headers.map(\.name) == ["Cookie"])
        #expect(rebuilt.headers.first?.value == "t=2")
    }
}

import Foundation
import GatehouseDoctor
import Testing

@Suite("doctor logs")
struct LogAnalyzerTests {
    let groups: [LogGroup] = LogAnalyzer().analyze(
        ["nginx-error.log", "apache-error.log", "istio-access.log"].map { ($0, try! Fixtures.text("logs/" + $0)) })

    func group(_ source: String, _ cause: DenialCause) -> LogGroup? { groups.first { $0.source == source && $0.cause == cause } }

    @Test("groups and counts nginx denials")
    func nginx() {
        #expect(group("nginx", .rateLimited)?.count == 3)
        #expect(group("nginx", .rateLimited)?.key == "api")
        #expect(group("nginx", .configDeny)?.count == 2)
        #expect(group("nginx", .directoryListing)?.key == "/srv/www/files/")
        #expect(group("nginx", .filesystemPermission)?.key == "/srv/www/report.pdf")
    }

    @Test("explains Apache message ids and groups ModSecurity by rule")
    func apache() {
        #expect(group("apache-httpd", .configDeny)?.key == "/srv/www/private/")
        #expect(group("apache-httpd", .directoryListing) != nil)
        #expect(groups.filter { $0.source == "apache-httpd" && $0.cause == .filesystemPermission }.count == 3)
        let waf = group("modsecurity", .wafBlocked)
        #expect(waf?.count == 2)
        #expect(waf?.key == "rule 942100")
        #expect(waf?.explanation.contains("SQL Injection Attack Detected via libinjection") == true)
    }

    @Test("reads Envoy/Istio response code details")
    func envoy() {
        #expect(group("istio-envoy", .explicitDeny)?.count == 2)
        #expect(group("istio-envoy", .explicitDeny)?.key == "none")
        #expect(group("istio-envoy", .expiredCredentials)?.key == "Jwt_is_expired")
        #expect(group("istio-envoy", .rateLimited)?.count == 1)
    }

    @Test("the summary counts every denial and sorts the biggest group first")
    func render() {
        let text = LogAnalyzer.render(groups)
        #expect(text.hasPrefix("18 denials in"))
        #expect(groups.first?.count == 3)
        #expect(!groups.contains { $0.example.contains("kube-probe") })
    }
}

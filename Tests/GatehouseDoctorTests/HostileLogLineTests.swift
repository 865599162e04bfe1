import Foundation
import GatehouseDoctor
import Testing

/// Log lines hold what callers wrote (request lines, user agents, JSON parameters): read by
/// `doctor logs`, such text must not make a request that succeeded look like a denial with a named
/// system, and long lines must be read in bounded work (these lines took seconds each to minutes
/// before: a pattern that scanned the rest of the line from every letter).
@Suite("doctor logs: hostile and unusual lines")
struct HostileLogLineTests {
    let analyzer = try! LogAnalyzer()

    @Test("a security device's record written into a user agent is not a denial")
    func recordsInsideAUserAgent() {
        let prefix = #"203.0.113.9 - - [07/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 512 "-" "Mozilla/5.0 "#
        for record in [
            "2026-12-07 10:00:00 +0000 waf WF ALER GEO_IP_BLOCK 198.51.100.7 1 x 2 pol rt DENY NONE [x] GET /admin",
            "CEF:0|Imperva|SecureSphere|1|942100|SQL Injection|10|act=blocked",
            "LEEF:1.0|Fortinet|FortiGate|1|deny|act=blocked",
        ] {
            let read = analyzer.read(prefix + record + #"""#)
            #expect(read.denial == nil, "\(record): \(String(describing: read.denial))")
        }
    }

    @Test("fields a record carries (headers, parameters, a controller's action) do not decide")
    func carriedFields() {
        for line in [
            #"{"level":30,"req":{"method":"GET","url":"/","headers":{"host":"example.com","action":"blocked","attack":"sqli","app":"modsecurity"}},"res":{"statusCode":200},"msg":"request completed"}"#,
            #"{"level":"info","msg":"request done","status":200,"path":"/search","params":{"q":"shoes","action":"deny"}}"#,
            #"{"method":"POST","path":"/users/5/block","controller":"UsersController","action":"block","status":200}"#,
            #"{"method":"POST","path":"/invitations/9/reject","controller":"InvitationsController","action":"reject","status":302}"#,
            #"{"@timestamp":"2026-12-07T10:00:00Z","event":{"outcome":"failure"},"http":{"response":{"status_code":404}},"url":{"path":"/favicon.ico"}}"#,
            #"{"@timestamp":"2026-12-07T10:00:01Z","event":{"outcome":"failure"},"http":{"response":{"status_code":500}},"url":{"path":"/api/x"}}"#,
            #"time=2026-12-07T10:00:00Z level=info msg="cache refreshed" result=failed retries=0"#,
        ] {
            let read = analyzer.read(line)
            #expect(read.denial == nil, "\(line): \(String(describing: read.denial))")
        }
        // A record's own action still decides: a WAF's JSON event that blocked.
        let waf = analyzer.read(#"{"timestamp":"2026-12-07T10:00:00Z","action":"BLOCK","client_ip":"198.51.100.7","attack_type":"sqli"}"#)
        #expect(waf.denial != nil)
    }

    @Test("long lines built against the patterns are read, and the record at their start still is")
    func longLines() {
        let n = 40_000
        let lines = [
            String(repeating: "m", count: n),
            "x \"GET " + String(repeating: "a", count: n),
            "<129>2026-12-07 10:00:00.000 +0100 barracuda WF ALER X 192.0.2.1 1 192.0.2.2 443 p r DENY" + String(repeating: " ", count: n),
            String(repeating: "x 1111111 - - [", count: n / 15),
            String(repeating: "[01/Jan/2020:", count: n / 13),
            String(repeating: "GET / ", count: n / 6),
            "status" + String(repeating: " ", count: n),
            String(repeating: "a", count: n) + "=1",
            String(repeating: "den url ", count: n / 8),
            String(repeating: "logger=", count: n / 7) + "msg=",
            String(repeating: "word ", count: n / 5) + "blocked by ACLs:",
        ]
        for line in lines { _ = analyzer.read(line) }
        // The start of a long access line is still read: its status, beyond any long query string.
        let query = String(repeating: "q=1&", count: 1_000)
        let access = analyzer.read(#"203.0.113.9 - - [07/Dec/2026:10:00:00 +0000] "GET /api?"# + query + #" HTTP/1.1" 403 12 "-" "curl/8""#)
        #expect(access.denial != nil)
    }

    @Test("a 16 KiB line of near-miss words is read in work linear in the line, and its verdict is right")
    func nearMissWords() {
        // Words that begin or almost complete every wording family (`den`, `block`, `rate`, `not`,
        // `token`, `ip`…) without ever completing one within its window: every group has thousands
        // of candidate positions and the matcher must not compare each with each.
        let nearMiss = "denx blockx ratex limitx tokenx invalidx ip passwordx accessx not failedx csrfx originx "
        var line = "2026-12-07 10:00:00 INFO "
        while line.utf8.count < 16_384 { line += nearMiss }
        let read = analyzer.read(line)
        #expect(read.denial == nil)
        // Halves that do complete families far apart: still no denial when no two meet in a window.
        var apart = "2026-12-07 10:00:00 INFO denied "
        while apart.utf8.count < 8_000 { apart += "word " }
        apart += "request"
        #expect(analyzer.read(apart).denial == nil)
        // The same words next to each other: a denial, so the matcher still finds what is there.
        #expect(analyzer.read(String(line.prefix(8_000)) + " rate limit exceeded").denial?.cause == .rateLimited)
    }
}

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

    @Test("16 KiB lines built against the Kafka, NAXSI and status-after-request patterns are no denial")
    func costlyShapes() {
        func upTo16K(_ head: String, _ unit: String, tail: String = "") -> String {
            var line = head
            while line.utf8.count + unit.utf8.count + tail.utf8.count <= 16_000 { line += unit }
            return line + tail
        }
        let combined = #"203.0.113.7 - - [07/Dec/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 512 "-" ""#
        for line in [
            upTo16K("", "a:"),
            upTo16K("", "a:b"),
            upTo16K(combined, "a:", tail: #"""#),
            upTo16K("x GET /", "|"),
            upTo16K("", "NAXSI_FMT: &"),
            upTo16K("2026/12/07 10:00:00 [error] 1234#1234: *1 ", "a-", tail: "a"),
        ] {
            #expect(analyzer.read(line).denial == nil, "\(line.prefix(60))")
        }
        // The records these patterns are for are still read.
        #expect(
            analyzer.read(
                "[2026-12-07 10:00:00,298] INFO Principal = User:producer is Denied Operation = Describe from host = 198.51.100.7 on resource = Topic:LITERAL:orders (kafka.authorizer.logger)"
            ).denial?.cause == .insufficientPermissions)
        #expect(analyzer.read("x GET /admin/ HTTP/1.1|403|345").denial != nil)
    }

    @Test(
        "a caller's path in an upstream address, IIS's user agent and query, a proxy host's Host and Traefik's request fields do not decide"
    )
    func callerTextInFormatFields() {
        // nginx's upstream address carries the caller's path; the line records no denial.
        let upstream =
            #"2026/12/07 10:00:00 [error] 31#31: *1 upstream prematurely closed connection while reading response header from upstream, client: 203.0.113.7, server: example.org, request: "GET /x HTTP/1.1", upstream: "http://127.0.0.1:8080/PERMISSION_DENIED", host: "example.org""#
        #expect(analyzer.read(upstream).denial == nil)
        // The 403 default of each format, as for the same line without the caller's words.
        for line in [
            "2026-12-07 10:00:00 192.0.2.1 GET /x - 443 - 203.0.113.7 Mozilla/5.0+PERMISSION_DENIED - 403 0 0 15",
            "2026-12-07 10:00:00 192.0.2.1 GET /x error=PERMISSION_DENIED 443 - 203.0.113.7 Mozilla/5.0 - 403 0 0 15",
            #"[07/Dec/2026:10:00:00 +0000] - 403 403 - GET https PERMISSION_DENIED.example.org "/x" [Client 203.0.113.7] [Length 150] [Gzip -] [Sent-to 192.0.2.5] "curl/8.0" "-""#,
            #"{"ClientHost":"203.0.113.7","DownstreamStatus":403,"RequestMethod":"GET","RequestPath":"/PERMISSION_DENIED","RouterName":"r@docker","time":"2026-12-07T10:00:00Z"}"#,
            #"{"ClientHost":"203.0.113.7","DownstreamStatus":403,"RequestMethod":"GET","RequestPath":"/x","RouterName":"r@docker","request_User-Agent":"PERMISSION_DENIED","time":"2026-12-07T10:00:00Z"}"#,
        ] {
            let denial = analyzer.read(line).denial
            #expect(denial?.cause == .unknown, "\(line.prefix(80)): \(String(describing: denial))")
        }
    }

    @Test("what a caller wrote into a request line, referrer or user agent does not decide, nor overrule the status")
    func callerTextInAccessLines() {
        let head = #"203.0.113.7 - - [07/Dec/2026:10:00:00 +0000] "GET /x HTTP/1.1" "#
        for ua in [
            "user NOT in sudoers", "rpc error: code = PermissionDenied desc = nope", "PERMISSION_DENIED",
            #"Illuminate\\Auth\\AuthenticationException"#, "Denied connection from 198.51.100.9", "NAXSI_FMT: ip=1&block=1&id0=1000",
            "User:alice is Denied Operation = Read from host = 198.51.100.9 on resource = Topic:t", "RESULT tag=97 err=49",
            "Ban 198.51.100.9", "anonymous is missing the Overall/Read permission",
        ] {
            let ok = analyzer.read(head + #"200 512 "-" ""# + ua + #"""#)
            #expect(ok.denial == nil, "200 with UA \(ua): \(String(describing: ok.denial))")
            let referrer = analyzer.read(head + #"200 512 ""# + ua + #"" "curl/8.0""#)
            #expect(referrer.denial == nil, "200 with referrer \(ua): \(String(describing: referrer.denial))")
        }
        #expect(
            analyzer.read(
                #"203.0.113.7 - - [07/Dec/2026:10:00:00 +0000] "GET /x?q=user%20NOT%20in%20sudoers HTTP/1.1" 200 512 "-" "curl/8.0""#
            ).denial == nil)
        // Free text outside the quoted fields does not overrule a status that is no denial.
        #expect(analyzer.read(head + #"200 512 "-" "curl/8.0" user NOT in sudoers"#).denial == nil)
        // A 401 stays what its status says, whatever the user agent says.
        let unauthorized = analyzer.read(head + #"401 512 "-" "user NOT in sudoers""#)
        #expect(unauthorized.denial?.cause == .missingCredentials, "\(String(describing: unauthorized.denial))")
        // JSON and logfmt access lines: the user agent and path are the caller's too.
        for line in [
            #"{"time":"2026-12-07T10:00:00Z","status":200,"path":"/x","user_agent":"PERMISSION_DENIED","msg":"request"}"#,
            #"time=2026-12-07T10:00:00Z msg=request status=200 path=/x user_agent="user NOT in sudoers""#,
        ] {
            #expect(analyzer.read(line).denial == nil, "\(line): \(String(describing: analyzer.read(line).denial))")
        }
    }

    @Test("wording read inside another system's log leaves out names, paths and what the request carried")
    func wordingInsideAnotherSystemsLog() {
        for line in [
            #"203.0.113.7 - - [07/Dec/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 512 "-" "Mozilla, client: 192.0.2.1, server: a, anonymous is missing the Overall/Read permission""#,
            #"203.0.113.7 - - [07/Dec/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 512 "-" "Mozilla, client: 192.0.2.1, server: a, Ban 198.51.100.9""#,
            #"2026/12/07 10:00:00 [error] 31#31: *5 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 203.0.113.7, server: ban.example.com, request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:8080/", host: "ban.example.com""#,
            #"2026/12/07 10:00:00 [error] 31#31: *5 open() "/usr/share/nginx/html/x user lacks the permission" failed (2: No such file or directory), client: 203.0.113.7, server: www.example.com, request: "GET /x%20user%20lacks%20the%20permission HTTP/1.1", host: "www.example.com""#,
            #"2026/12/07 10:00:00 [error] 31#31: *5 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 203.0.113.7, server: www.example.com, request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:8080/", host: "www.example.com", referrer: "failed auth for admin""#,
            #"2026/12/07 10:00:00 [notice] 1#1: signal process started, ban.example.com 192.0.2.10"#,
            "2026-12-07 10:00:00 198.51.100.9 50123 192.0.2.10 80 HTTP/1.1 GET /x;lacks_the_permission - - Timer_ConnectionIdle -",
            #"2026/12/07 10:00:00 [warn] 1#1: *3 a client request body is buffered to a temporary file, client: 203.0.113.7, server: ban.example.com, request: "POST /upload HTTP/1.1", host: "ban.example.com""#,
        ] {
            let read = analyzer.read(line)
            #expect(read.denial == nil, "\(line.prefix(90)): \(String(describing: read.denial))")
        }
    }

    @Test("'auth' next to a failure is no failed log-in unless it says whose")
    func authWording() {
        for line in [
            "2026-12-07T10:00:00Z ERROR connect to auth service failed: connection refused (upstream 10.0.0.5:9000)",
            "2026-12-07T10:00:00Z WARN failed to reach auth backend, retrying in 5s",
            #"2026-12-07T10:00:00Z ERROR invalid auth configuration: unknown provider "ldapx" in config.yaml"#,
            "2026-12-07T10:00:00Z INFO auth ok for bob, failed jobs: 0",
            #"level=error msg="auth plugin failed to start" err="bind: address already in use""#,
        ] {
            #expect(analyzer.read(line).denial?.cause != .invalidCredentials, "\(line)")
        }
        #expect(analyzer.read("2026-12-07T10:00:00Z ERROR failed auth for bob from 198.51.100.9").denial?.cause == .invalidCredentials)
        #expect(analyzer.read("Dec  7 10:00:00 host doas: auth failed for alice").denial?.cause == .invalidCredentials)
    }

    @Test("444 is called nginx's own only on a line nginx may have written")
    func status444() {
        for line in [
            #"[2026-12-07T10:00:00.000Z] "GET /x HTTP/1.1" 444 - 0 0 1 - "203.0.113.7" "curl" "id" "h" "-""#,
            "GET /x 444 1.0 ms - 0",
        ] {
            let d = analyzer.read(line).denial
            #expect(d?.explanation.contains("nginx") != true, "\(line): \(String(describing: d))")
        }
        let nginx = analyzer.read(#"203.0.113.7 - - [07/Dec/2026:10:00:00 +0000] "GET /x HTTP/1.1" 444 0 "-" "curl""#).denial
        #expect(nginx?.cause == .configDeny)
    }
}

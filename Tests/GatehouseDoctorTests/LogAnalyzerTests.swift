import Foundation
import GatehouseDoctor
import Testing

@Suite("doctor logs")
struct LogAnalyzerTests {
    let groups: [LogGroup] = try! LogAnalyzer().analyze(
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

    @Test("reads Envoy/Istio response code details; RBAC 'none' (no ALLOW policy matched) is the configuration's default deny")
    func envoy() {
        #expect(group("istio-envoy", .configDeny)?.count == 2)
        #expect(group("istio-envoy", .configDeny)?.key == "none")
        #expect(group("istio-envoy", .expiredCredentials)?.key == "Jwt_is_expired")
        #expect(group("istio-envoy", .rateLimited)?.count == 1)
    }

    @Test("a group names its first and last time, its clients and its paths")
    func groupDetails() {
        let rule = group("nginx", .configDeny)
        #expect(rule?.clients == ["203.0.113.7", "203.0.113.8"])
        #expect(rule?.paths == ["/admin/"])
        #expect(rule?.firstSeen == "2024/05/01 10:00:01")
        #expect(rule?.lastSeen == "2024/05/01 10:00:02")
    }

    @Test("common formats: HAProxy deny, IIS substatus, Kubernetes audit, CloudTrail, Squid")
    func moreFormats() throws {
        let analyzer = try LogAnalyzer()
        let haproxy = analyzer.read(
            #"Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/<NOSRV> 0/-1/-1/-1/0 403 212 - - PR-- 1/1/0/0/0 0/0 "GET /admin HTTP/1.1""#
        )
        #expect(haproxy.format == "haproxy-http")
        #expect(haproxy.denial?.cause == .configDeny)
        #expect(haproxy.fields["client"] == "10.0.1.2")
        let iis = analyzer.read("2024-05-01 10:00:01 10.0.0.5 GET /files/ - 443 - 198.51.100.4 Mozilla/5.0 - 403 14 0 15")
        #expect(iis.format == "iis-w3c")
        #expect(iis.denial?.cause == .directoryListing)
        let audit = analyzer.read(
            #"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"1","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/secrets","verb":"list","user":{"username":"system:serviceaccount:ci:builder"},"sourceIPs":["10.1.2.3"],"responseStatus":{"metadata":{},"status":"Failure","reason":"Forbidden","code":403},"requestReceivedTimestamp":"2024-05-01T10:00:00.000000Z"}"#
        )
        #expect(audit.denial?.cause == .insufficientPermissions)
        #expect(audit.fields["client"] == "10.1.2.3")
        let trail = analyzer.read(
            #"{"eventVersion":"1.08","eventTime":"2024-05-01T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","sourceIPAddress":"198.51.100.9","errorCode":"AccessDenied","errorMessage":"User: arn:aws:iam::111122223333:user/ci is not authorized to perform: s3:GetObject with an explicit deny in a service control policy","userIdentity":{"arn":"arn:aws:iam::111122223333:user/ci"}}"#
        )
        #expect(trail.denial?.cause == .explicitDeny)
        let squid = analyzer.read("1386543323.000      4 203.0.113.227 TCP_DENIED/407 4099 GET http://example.com/ - HIER_NONE/- text/html")
        #expect(squid.denial?.cause == .missingCredentials)
        let allowed = analyzer.read(#"10.0.0.2 - bob [18/Nov/2018:21:34:36 +0000] "GET / HTTP/1.1" 200 17 "-" "curl/8""#)
        #expect(allowed.format == "combined")
        #expect(allowed.denial == nil)
    }

    @Test("application lines: Home Assistant's bans and failed logins, Consul's ACL errors, Grafana's login protection and session tokens")
    func applicationsWithFormatsOfTheirOwn() throws {
        let analyzer = try LogAnalyzer()
        let ban = analyzer.read(
            "2022-04-15 12:31:38 WARNING (MainThread) [homeassistant.components.http.ban] Banned IP 192.168.100.134 for too many login attempts"
        )
        #expect(ban.denial?.source == "home-assistant")
        #expect(ban.denial?.cause == .explicitDeny)
        let login = analyzer.read(
            "Login attempt or request with invalid authentication from 10.0.0.41 (10.0.0.41). Requested URL: '/auth/token'.")
        #expect(login.denial?.cause == .invalidCredentials)
        let consul = analyzer.read(
            #"2021-05-31T21:15:47.490Z [ERROR] agent.http: Request error: method=GET url=/v1/agent/self from=172.31.4.108:52416 error="Permission denied""#
        )
        #expect(consul.format == "hclog-text")
        #expect(consul.denial?.cause == .insufficientPermissions)
        let unknownToken = analyzer.read(
            #"2023-08-17T15:37:52.764Z [ERROR] agent.http: Request error: method=GET url=/v1/agent/self from=127.0.0.1:58478 error="ACL not found""#
        )
        #expect(unknownToken.denial?.cause == .invalidCredentials)
        let blocked = analyzer.read(
            #"t=2021-01-09T12:50:31+0000 lvl=eror msg="Invalid username or password" logger=context error="Too many consecutive incorrect login attempts for user. Login for user temporarily blocked""#
        )
        #expect(blocked.denial?.cause == .rateLimited)
        let session = analyzer.read(
            #"logger=context userId=0 orgId=0 uname= t=2024-06-20T14:31:25.119Z level=error msg=Unauthorized error="user token not found" remote_addr=192.168.31.250"#
        )
        #expect(session.denial?.cause == .invalidCredentials)
    }

    @Test("the summary counts every denial and sorts the biggest group first")
    func render() {
        let text = LogAnalyzer.render(groups)
        #expect(text.hasPrefix("18 denials in"))
        #expect(groups.first?.count == 3)
        #expect(!groups.contains { $0.example.contains("kube-probe") })
    }

    @Test("a line relayed by docker compose or syslog is read by its system's own format")
    func relayedLines() throws {
        let analyzer = try LogAnalyzer()
        let compose = analyzer.read(
            #"nginx_1    | 2023/11/03 08:40:55 [error] 29#29: *1 directory index of "/usr/share/nginx/html/" is forbidden, client: 203.0.113.143, server: localhost, request: "GET / HTTP/1.1", host: "example""#
        )
        #expect(compose.system == "nginx")
        #expect(compose.denial?.cause == .directoryListing)
        let syslog = analyzer.read(
            #"Jun 28 09:08:38 tower nginx: 2025/06/28 09:08:38 [error] 3358958#3358958: *161855 limiting requests, excess: 20.955 by zone "authlimit", client: 172.17.0.2, server: , request: "GET /login HTTP/1.1", host: "192.0.2.10""#
        )
        #expect(syslog.denial?.cause == .rateLimited)
    }

    @Test("database and Kubernetes component lines: missing vs wrong password, expired vs invalid token")
    func databasesAndKlog() throws {
        let analyzer = try LogAnalyzer()
        #expect(
            analyzer.read(
                "2019-01-03T08:50:04.634875Z 113 [Note] [MY-010926] [Server] Access denied for user 'root'@'192.0.2.1' (using password: NO)"
            ).denial?.cause == .missingCredentials)
        #expect(
            analyzer.read("130324 17:56:14 [Warning] Access denied for user 'root'@'203.0.113.112' (using password: YES)").denial?.cause
                == .invalidCredentials)
        #expect(
            analyzer.read(
                #"E1126 03:38:26.776766       1 authentication.go:75] "Unable to authenticate the request" err="[invalid bearer token, service account token has expired]""#
            )
            .denial?.cause == .expiredCredentials)
        #expect(
            analyzer.read(
                "E1009 09:42:45.361887    6910 authentication.go:53] Unable to authenticate the request due to an error: [invalid bearer token, Token has been invalidated]"
            )
            .denial?.cause == .invalidCredentials)
    }

    @Test("application log lines: timestamps in other shapes, a level first, an exception, and vendor-neutral wording")
    func applicationLines() throws {
        let analyzer = try LogAnalyzer()
        let cases: [(String, DenialCause)] = [
            (
                "2026/06/18 19:34:27.024\tINFO\thttp.handlers.rate_limit\trate limit exceeded\t{\"zone\": \"app\", \"remote_ip\": \"203.0.113.50\"}",
                .rateLimited
            ),
            ("[2024-08-31 02:11:28.725][vaultwarden::api::admin][ERROR] Invalid admin token. IP: 203.0.113.94", .invalidCredentials),
            ("W, [2016-04-29T15:24:44.339611 #1973]  WARN -- : Can't verify CSRF token authenticity", .csrf),
            (
                "org.elasticsearch.ElasticsearchSecurityException: action [indices:admin/exists] is unauthorized for user [_system]",
                .insufficientPermissions
            ),
            ("Mar  9 09:18:28 host monit[5731]: HttpRequest: access denied -- client 192.0.2.4: empty password", .missingCredentials),
            (
                #"18/Jan/2019:20:07:10 +0000 [ERROR 401 /admin] BasicAuth: user "admin" was not found or password was incorrect."#,
                .invalidCredentials
            ),
            ("[Macaron] 2020-09-27 10:19:16: Completed GET /org/repo.git/info/refs 401 Unauthorized in 1.473705ms", .missingCredentials),
            ("Mar  9 09:18:33 host monit[5731]: HttpRequest: access denied -- client 192.0.2.4: unknown user 'test1'", .invalidCredentials),
        ]
        for (line, cause) in cases {
            let read = analyzer.read(line)
            #expect(read.format != nil, "\(line)")
            #expect(read.denial?.cause == cause, "\(line)")
        }
        #expect(analyzer.read("2026-06-18 19:34:27 INFO server started on port 8080").denial == nil)
    }

    @Test("nginx's limit_conn and untimed lines, expired JWTs, RBAC DENY, pg_hba.conf, an anonymous caller in Spring and ASP.NET Core")
    func sixthRoundLines() throws {
        let analyzer = try LogAnalyzer()
        let cases: [(String, DenialCause?)] = [
            (
                #"2016/06/01 05:59:24 [error] 12#12: *2 limiting connections by zone "limit_per_ip", client: 203.0.113.9, server: a.example, request: "GET / HTTP/2.0""#,
                .rateLimited
            ),
            (
                #"[error] 208#208: *1046 access forbidden by rule, client: 203.0.113.9, server: npm, request: "GET /api/ HTTP/2.0", host: "npm""#,
                .configDeny
            ),
            (
                #"directory index of "/srv/www/static/" is forbidden, client: 203.0.113.9, server: a.example, request: "GET /static/ HTTP/1.1""#,
                .directoryListing
            ),
            (
                #"2024/03/14 08:49:11 [crit] 38#38: *5 open() "/var/log/nginx/access.log" failed (13: Permission denied) while logging request, client: 203.0.113.9, server: a"#,
                nil
            ),
            (
                "io.jsonwebtoken.ExpiredJwtException: JWT expired at 2023-11-29T21:28:46Z. Current time: 2024-02-17T01:18:15Z",
                .expiredCredentials
            ),
            (
                "2024-01-05 10:00:00.000 DEBUG 1 --- [nio-8080-exec-1] o.s.s.o.s.r.a.JwtAuthenticationProvider : Failed to authenticate since the JWT was invalid: Jwt expired at 2024-01-05T09:59:00Z",
                .expiredCredentials
            ),
            (
                #"I0809 17:28:25.750207       1 rbac.go:114] RBAC DENY: user "system:serviceaccount:kube-system:canal" groups ["system:serviceaccounts"] cannot "list" resource "pods" cluster-wide"#,
                .insufficientPermissions
            ),
            (
                #"2020-11-01 15:34:20.089 UTC [4016736] FATAL:  no pg_hba.conf entry for host "127.0.0.1", user "monitor", database "postgres", SSL off"#,
                .configDeny
            ),
            (
                #"FATAL:  pg_hba.conf rejects connection for host "172.21.0.4", user "postgres", database "postgres", SSL off"#,
                .explicitDeny
            ),
            (
                "2020-01-18 11:19:57.973 DEBUG 17284 --- [nio-5555-exec-5] o.s.s.w.a.Http403ForbiddenEntryPoint     : Pre-authenticated entry point called. Rejecting access",
                .missingCredentials
            ),
            (
                "[14:35:27 INF] Authorization failed. These requirements were not met:   DenyAnonymousAuthorizationRequirement: Requires an authenticated user.",
                .missingCredentials
            ),
        ]
        for (line, cause) in cases {
            #expect(analyzer.read(line).denial?.cause == cause, "\(line)")
        }
    }
}

/// The vendor-neutral reader: lines of formats no log knowledge file describes.
@Suite("doctor logs, vendor-neutral reader")
struct VendorNeutralLogTests {
    let analyzer = try! LogAnalyzer()

    @Test("a CEF event of an unknown vendor: the header names the system, the extension the client and path")
    func cef() {
        let line = analyzer.read(
            "CEF:0|Acme|EdgeShield|2.1|1001|SQL injection attempt|8|src=198.51.100.7 request=/login act=blocked requestMethod=POST")
        #expect(line.format == "neutral-cef")
        #expect(line.denial?.cause == .wafBlocked)
        #expect(line.denial?.source == "acme")
        #expect(line.fields["client"] == "198.51.100.7")
        #expect(line.fields["path"] == "/login")
    }

    @Test("a LEEF event: the header names the system, the attributes the action and the client")
    func leef() {
        let line = analyzer.read("LEEF:1.0|Acme|Gate|1.0|LoginFailed|src=192.0.2.3\tusrName=bob\taction=blocked\treason=invalid password")
        #expect(line.format == "neutral-leef")
        #expect(line.denial?.source == "acme")
        #expect(line.denial?.cause == .invalidCredentials)
        #expect(line.fields["client"] == "192.0.2.3")
        #expect(line.fields["user"] == "bob")
    }

    @Test("JSON lines: a status at any depth, an action, a failed log-in event")
    func json() {
        let nested = analyzer.read(
            #"{"ts":"2026-01-02T03:04:05Z","http":{"response":{"status_code":429}},"client":{"ip":"203.0.113.9"},"msg":"request finished"}"#
        )
        #expect(nested.denial?.cause == .rateLimited)
        #expect(nested.fields["client"] == "203.0.113.9")
        let proxy = analyzer.read(
            #"{"event":{"time":"2026-01-02","act":"Denied","category":"Gambling","src_ip":"192.0.2.8","status":"200"}}"#)
        #expect(proxy.denial?.cause == .explicitDeny)
        let login = analyzer.read(#"{"time":"2026-01-02T03:04:05Z","kind":"LoginAttempt","details":{"user":"bob","success":false}}"#)
        #expect(login.denial?.cause == .invalidCredentials)
    }

    @Test("key=value lines and an access-log shape behind any prefix")
    func keyValueAndAccess() {
        let kv = analyzer.read(#"ts=2026-01-02T03:04:05Z component=edge status=403 reason="ip 192.0.2.4 not in allow list" path=/admin"#)
        #expect(kv.denial?.cause == .ipNotAllowed)
        let access = analyzer.read(#"edge-7 proxy: 192.0.2.10 - bob [02/Jan/2026:03:04:05 +0000] "GET /admin HTTP/1.1" 401 0"#)
        #expect(access.format == "neutral-access")
        #expect(access.denial?.cause == .invalidCredentials)
        #expect(access.fields["client"] == "192.0.2.10")
        #expect(access.fields["path"] == "/admin")
    }

    @Test(
        "wording families survive rephrasing",
        arguments: [
            ("2026-01-02 03:04:05 WARN Access was denied because the caller's address is not on the allow list", DenialCause.ipNotAllowed),
            ("2026-01-02 03:04:05 WARN too many requests from this client, slow down", .rateLimited),
            ("2026-01-02 03:04:05 WARN request rejected: the CSRF token is missing", .csrf),
            ("2026-01-02 03:04:05 WARN the bearer token has expired", .expiredCredentials),
            ("2026-01-02 03:04:05 WARN sign-in failed: wrong password for alice", .invalidCredentials),
            ("2026-01-02 03:04:05 WARN user carol lacks the permission projects.delete", .insufficientPermissions),
            ("2026-01-02 03:04:05 WARN request blocked: requests from this country are not allowed", .geoBlocked),
            ("2026-01-02 03:04:05 ERROR cannot open file /srv/app/config.yml: permission denied", .filesystemPermission),
            ("2026-01-02 03:04:05 WARN WAF rule 942100 matched (SQL Injection) - request blocked, client 203.0.113.37", .wafBlocked),
            (
                #"level=error ts=2026-01-12T10:01:02Z caller=main.go:12 msg="permission denied" err="open /data/wal: permission denied""#,
                .filesystemPermission
            ),
            ("2026-01-02 03:04:05 WARN An account failed to log on: unknown user name or bad password", .invalidCredentials),
        ])
    func wording(_ text: String, _ cause: DenialCause) {
        #expect(analyzer.read(text).denial?.cause == cause)
    }

    @Test(
        "no denial: successes, upstream errors and chatter stay quiet",
        arguments: [
            #"{"level":"info","msg":"request completed","status":200,"path":"/login"}"#,
            #"{"level":"error","msg":"upstream error","status":503,"error":"permission denied while connecting"}"#,
            "2026-01-02 03:04:05 ERROR upstream returned 502 Bad Gateway: connection refused",
            "2026-01-02 03:04:05 INFO starting server on 0.0.0.0:8080, rate limit set to 100 requests per second",
            "2026-01-02 03:04:05 INFO access token refreshed for bob, expires in 3600 s",
            "LEEF:1.0|Acme|Gate|1.0|Allowed|src=192.0.2.3\tusrName=bob\taction=allowed",
            "CEF:0|Acme|EdgeShield|2.1|200|Successful Request|1|src=198.51.100.7 act=passed cn1=200 cn1Label=response_code",
            #"edge-7 192.0.2.10 - - [02/Jan/2026:03:04:05 +0000] "GET /admin HTTP/1.1" 200 512"#,
        ])
    func quiet(_ text: String) {
        #expect(analyzer.read(text).denial == nil)
    }

    @Test("the system a line names: a syslog program; the action that decided among several action keys")
    func namedSystemAndAction() {
        let ssh = analyzer.read("Jan 12 10:01:02 host sshd[812]: Failed password for invalid user admin from 203.0.113.5 port 4242 ssh2")
        #expect(ssh.denial?.cause == .invalidCredentials)
        #expect(ssh.denial?.source == "sshd")
        let audit = analyzer.read(
            #"2026-01-12T10:01:02Z audit: user=root action=delete resource=secrets/prod result=denied reason="policy forbids it""#)
        #expect(audit.denial?.cause == .explicitDeny)
        let rejected = analyzer.read("2026-01-12 10:01:02.5|Warn|Auth|Request from 203.0.113.21 rejected: API key is invalid")
        #expect(rejected.denial?.cause == .invalidCredentials)
    }

    @Test("a line a system's own format reads is left to that system's signatures")
    func knownFormatsKeepTheirReading() {
        let line = analyzer.read(
            #"2026/01/02 03:04:05 [error] 12#12: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 192.0.2.1, server: x, request: "GET /private HTTP/1.1", host: "x""#
        )
        #expect(line.format == "nginx-error")
        #expect(line.denial == nil)
    }

    @Test("denials the vendor-neutral reader finds are grouped with counts, times, clients and paths")
    func grouping() {
        let text = """
            edge-7 192.0.2.10 - - [02/Jan/2026:03:04:05 +0000] "GET /api/a HTTP/1.1" 429 0
            edge-7 192.0.2.11 - - [02/Jan/2026:03:04:09 +0000] "GET /api/b HTTP/1.1" 429 0
            edge-7 192.0.2.11 - - [02/Jan/2026:03:04:10 +0000] "GET /api/b HTTP/1.1" 200 10
            """
        let groups = analyzer.analyze([("edge.log", text)])
        #expect(groups.count == 1)
        #expect(groups.first?.source == "unknown")
        #expect(groups.first?.cause == .rateLimited)
        #expect(groups.first?.count == 2)
        #expect(groups.first?.clients == ["192.0.2.10", "192.0.2.11"])
        #expect(groups.first?.paths == ["/api/a", "/api/b"])
        #expect(groups.first?.firstSeen == "02/Jan/2026:03:04:05 +0000")
        #expect(groups.first?.lastSeen == "02/Jan/2026:03:04:09 +0000")
    }

    @Test("the sixth corpus's unread formats: Keycloak's JSON and escaped events, Syncthing, Zscaler, Jupyter, Barracuda")
    func sixthCorpusFormats() {
        let escaped = analyzer.read(
            #"{"timestamp":"2025-11-27T14:48:37Z","loggerName":"org.keycloak.events","level":"WARN","message":"type=\"LOGIN_ERROR\", realmId=\"master\", ipAddress=\"192.0.2.5\", error=\"invalid_user_credentials\", username=\"admin\""}"#
        )
        #expect(escaped.denial?.source == "keycloak")
        #expect(escaped.denial?.cause == .invalidCredentials)
        let event = analyzer.read(
            #"{"time": 1672833679695, "type": "LOGIN_ERROR", "realmId": "demo", "clientId": "app", "ipAddress": "192.0.2.6", "error": "invalid_redirect_uri"}"#
        )
        #expect(event.format == "keycloak-event-json")
        #expect(event.denial?.cause == .configDeny)
        let syncthing = analyzer.read(
            #"{"id":7,"globalID":9,"time":"2026-01-02T03:04:05Z","type":"LoginAttempt","data":{"remoteAddress":"192.0.2.7","username":"bob","success":false}}"#
        )
        #expect(syncthing.format == "syncthing-event")
        #expect(syncthing.denial?.cause == .invalidCredentials)
        let zscaler = analyzer.read(
            #"{"sourcetype":"zscalernss-web","event":{"time":"Fri Jan 02 03:04:05 2026","login":"u@example.com","eurl":"www.example.com/x","action":"Blocked","urlcat":"Gambling","threatname":"None","cip":"192.0.2.8","respcode":"403"}}"#
        )
        #expect(zscaler.format == "zscaler-nss-web-json")
        #expect(zscaler.denial?.cause == .explicitDeny)
        let jupyter = analyzer.read("[W 2026-01-02 03:04:05.404 ServerApp] 403 GET /api/kernels?1 (@192.0.2.9) 1.53ms referer=None")
        #expect(jupyter.format == "jupyter-request")
        #expect(jupyter.denial?.cause == .missingCredentials)
        let barracuda = analyzer.read(
            #"<129>2026-01-02 03:04:05.530 +0100  barracuda WF ALER SQL_INJECTION_IN_URL 192.0.2.10 20835 198.51.100.4 443 global GLOBAL DENY NONE [type="sql-injection"] GET /q?id=1 TLSv1.2 "-" "curl/8" 192.0.2.10 20835 "-" "-" 1"#
        )
        #expect(barracuda.format == "barracuda-waf-wf")
        #expect(barracuda.denial?.cause == .wafBlocked)
    }

    @Test("negation and release wording cancel a block: not blocked, no longer blocked, unbanned, removed from a blocklist")
    func negatedAndReleased() {
        // The same wording without the negation or release is a denial: the cancelling words decide.
        for line in [
            "2026-12-07 10:00:00 INFO 198.51.100.7 blocked",
            "2026-12-07 10:00:00 INFO request was blocked",
            "2026-12-07 10:00:00 WARN IP 198.51.100.7 banned",
            "2026-12-07 10:00:00 WARN 198.51.100.7 added to blocklist",
        ] {
            #expect(analyzer.read(line).denial != nil, "\(line)")
        }
        for line in [
            "198.51.100.7 no longer blocked",
            "2026-12-07 10:00:00 INFO 198.51.100.7 no longer blocked",
            "2026-12-07 10:00:00 INFO request was not blocked",
            "2026-12-07 10:00:00 INFO request wasn't blocked (detection only)",
            "unbanned",
            "2026-12-07 10:00:00 WARN IP 198.51.100.7 unbanned",
            "2026-12-07 10:00:00 NOTICE [sshd] Unban 198.51.100.7",
            "access granted after retry",
            "2026-12-07 10:00:00 INFO access granted after retry for user bob",
            "198.51.100.7 removed from blocklist",
            "2026-12-07 10:00:00 INFO 198.51.100.7 removed from blocklist",
            "2026-12-07 10:00:00 INFO ban on 198.51.100.7 lifted",
        ] {
            let read = analyzer.read(line)
            #expect(read.denial == nil, "\(line): \(String(describing: read.denial))")
        }
        // A negated release is no release; a status that is a denial still is one.
        #expect(analyzer.read("2026-12-07 10:00:00 WARN client 198.51.100.7 not whitelisted").denial?.cause == .ipNotAllowed)
        #expect(analyzer.read("2026-12-07 10:00:00 INFO access was not granted to user bob: access denied").denial != nil)
        #expect(analyzer.read("2026-12-07 10:00:00 INFO unblocked client got status 403 again").denial?.cause == .unknown)
    }

    @Test("a status alone: each denial status's default cause, a user named with 401")
    func statusDefaults() {
        let cases: [(String, DenialCause)] = [
            ("2026-12-07 10:00:00 app: GET /x -> status=429", .rateLimited),
            ("2026-12-07 10:00:00 app: GET /x -> status=407", .missingCredentials),
            ("2026-12-07 10:00:00 app: GET /x -> status=401", .missingCredentials),
            ("2026-12-07 10:00:00 app: GET /x -> status=403", .unknown),
            ("2026-12-07 10:00:00 app: GET /x user=bob status=401", .invalidCredentials),
        ]
        for (line, cause) in cases {
            let read = analyzer.read(line)
            #expect(read.denial?.cause == cause, "\(line): \(String(describing: read.denial))")
        }
        #expect(analyzer.read("2026-12-07 10:00:00 app: GET /x -> status=404").denial == nil)
    }

    @Test("relay prefixes are taken off once: a priority, a syslog header and a compose prefix before a line of no known format")
    func relayedOnce() {
        let line = analyzer.read("<34>Dec  7 10:00:00 host relayd[12]: web-1  | 2026-12-07 10:00:00 ERROR login failed for user bob")
        #expect(line.denial?.cause == .invalidCredentials)
        #expect(line.denial?.source == "relayd")
        let wrapped = analyzer.read(
            #"{"log":"Dec  7 10:00:00 host vaultwarden[3]: Username or password is incorrect. Try again. IP: 203.0.113.9","stream":"stdout"}"#
        )
        #expect(wrapped.denial?.cause == .invalidCredentials)
        #expect(wrapped.denial?.source == "vaultwarden")
    }

    @Test(
        "documented messages any log may carry: LDAP result codes, RLS OVER_LIMIT, Rack::Attack, Laravel's CSRF exception, Consul RPC errors, ModSecurity's audit message"
    )
    func documentedMessages() {
        let cases: [(String, DenialCause)] = [
            ("Dec  7 10:00:00 ldap1 slapd[812]: conn=1001 op=1 RESULT tag=97 err=49 text=", .invalidCredentials),
            ("Dec  7 10:00:00 ldap1 slapd[812]: conn=1001 op=2 RESULT tag=103 err=50 text=", .insufficientPermissions),
            (#"time="2026-12-07T10:00:00Z" level=debug msg="response: overall_code:OVER_LIMIT""#, .rateLimited),
            (#"{"time":"2026-12-07T10:00:00Z","message":"Rack_Attack","env":"throttle","remote_ip":"203.0.113.9"}"#, .rateLimited),
            ("2026-12-07T10:00:00Z Rack_Attack: blocklist 203.0.113.9 GET /users/sign_in", .ipNotAllowed),
            (#"[2026-12-07 10:00:00] production.ERROR: Illuminate\Session\TokenMismatchException in VerifyCsrfToken.php:68"#, .csrf),
            ("2026/12/07 10:00:00 [ERR] agent: failed to sync remote state: rpc error making call: ACL not found", .invalidCredentials),
            ("Message: Access denied with code 403 (phase 2). Pattern match at ARGS:q.", .wafBlocked),
            ("2026-12-07 10:00:00 [audit] [anonymous_access_denied] origin_address=[203.0.113.9], uri=[/x]", .missingCredentials),
        ]
        for (line, cause) in cases {
            let read = analyzer.read(line)
            #expect(read.denial?.cause == cause, "\(line): \(String(describing: read.denial))")
        }
        // The same programs' lines that are no denial.
        for line in [
            "Dec  7 10:00:00 ldap1 slapd[812]: conn=1001 op=1 RESULT tag=97 err=0 text=",
            #"time="2026-12-07T10:00:00Z" level=debug msg="response: overall_code:OK""#,
            "1765101600: New connection from 198.51.100.7:50000 on port 1883.",
        ] {
            #expect(analyzer.read(line).denial == nil, "\(line)")
        }
        // An epoch time or a bracketed level makes a line of no known format a log record.
        #expect(analyzer.read("1765101600: New connection from 198.51.100.7:50000 on port 1883.").format == "neutral-text")
        #expect(analyzer.read("[Warning] Aborted connection 5 to db: 'x'").format == "neutral-text")
    }

    @Test("the negators and release phrases are split into words once, when set, and the reader uses what was set")
    func negatorsSplitOnce() throws {
        let standard = try LogKnowledgeBase.standard()
        var negation = try #require(standard.systems.first { $0.generic == true }?.negation)
        #expect(negation.negatorWords.contains(["no", "longer"]))
        #expect(negation.negatorWords.count == negation.negators.count)
        #expect(negation.releaseWords.contains(["removed", "from"]))
        negation.negators = ["hardly ever"]
        #expect(negation.negatorWords == [["hardly", "ever"]])
        negation.release = ["pardoned"]
        #expect(negation.releaseWords == [["pardoned"]])
        // A knowledge base whose negation names other words: the reader follows the words set.
        let files = try standard.systems.map { system -> (name: String, data: Data) in
            var s = system
            if s.generic == true { s.negation = negation }
            return (s.system + ".json", try JSONEncoder().encode(s))
        }
        let custom = LogAnalyzer(knowledge: try LogKnowledgeBase(files: files))
        let line = "2026-12-07 10:00:00 WARN IP 198.51.100.7 hardly ever banned"
        #expect(analyzer.read(line).denial?.cause == .ipNotAllowed)
        #expect(custom.read(line).denial == nil)
        #expect(custom.read("2026-12-07 10:00:00 WARN IP 198.51.100.7 not banned").denial?.cause == .ipNotAllowed)
        #expect(custom.read("2026-12-07 10:00:00 WARN IP 198.51.100.7 pardoned, was banned").denial == nil)
    }

    @Test("an anonymous caller refused a named permission lacks that permission; refused without one, it lacks credentials")
    func anonymousAndPermission() {
        // Authorization grants permissions to `anonymous` as to any user (Jenkins' matrix, an ACL):
        // a line that names the permission it lacks says what to grant. A line that only says an
        // anonymous caller was refused says to sign in (Spring Security starts authentication).
        let permission = [
            "hudson.security.AccessDeniedException2: anonymous is missing the Overall/Read permission",
            "hudson.security.AccessDeniedException3: anonymous is missing the Credentials/Create permission",
            "2026-12-07 10:00:00 WARN request refused: user anonymous lacks the privilege repo.write",
            "2026-12-07 10:00:00 ERROR the anonymous user does not have the permission to delete this page",
        ]
        for line in permission {
            #expect(
                analyzer.read(line).denial?.cause == .insufficientPermissions, "\(line): \(String(describing: analyzer.read(line).denial))")
        }
        let credentials = [
            "2026-12-07 10:00:00.777 DEBUG 13928 --- [nio-8080-exec-1] o.s.s.w.a.ExceptionTranslationFilter     : Access is denied (user is anonymous); redirecting to authentication entry point",
            "2026-12-07 10:00:00 WARN anonymous access denied to /api/admin",
            "2026-12-07 10:00:00 WARN request refused: missing credentials",
        ]
        for line in credentials {
            #expect(analyzer.read(line).denial?.cause == .missingCredentials, "\(line): \(String(describing: analyzer.read(line).denial))")
        }
    }

    @Test(
        "documented messages of the tenth round: gRPC PERMISSION_DENIED, Laravel's auth exceptions, Kafka's authorizer, NAXSI, HTTP.sys's error log, sshd and vsftpd user lists, fail2ban bans"
    )
    func documentedMessagesTenth() {
        let cases: [(String, DenialCause, String?)] = [
            (
                "logging client: rpc error: code = PermissionDenied desc = The caller does not have permission", .insufficientPermissions,
                "grpc-status-error"
            ),
            (
                "Caused by: com.google.api.gax.rpc.PermissionDeniedException: io.grpc.StatusRuntimeException: PERMISSION_DENIED: Permission 'logging.sinks.create' denied on resource",
                .insufficientPermissions, "exception-text"
            ),
            (
                #"[2026-12-07 10:00:00] local.ERROR: exception 'Illuminate\Auth\AuthenticationException' with message 'Unauthenticated.' in /var/www/app/vendor/laravel/framework/src/Illuminate/Auth/GuardHelpers.php:39"#,
                .missingCredentials, "timestamped-text"
            ),
            (
                #"[2026-12-07 10:00:00] production.ERROR: This action is unauthorized. {"exception":"[object] (Illuminate\\Auth\\Access\\AuthorizationException(code: 0): This action is unauthorized."#,
                .insufficientPermissions, "timestamped-text"
            ),
            (
                "[2026-12-07 10:00:00,298] INFO Principal = User:producer is Denied Operation = Describe from host = 198.51.100.7 on resource = Topic:LITERAL:orders (kafka.authorizer.logger)",
                .insufficientPermissions, "kafka-log4j"
            ),
            (
                #"2026/12/07 10:00:00 [error] 12#0: *18 NAXSI_FMT: ip=203.0.113.4&server=198.51.100.6&uri=/&vers=1.3&total_processed=18&total_blocked=18&config=block&zone0=URL&id0=1000&var_name0=, client: 203.0.113.4, server: example.com, request: "GET /?q=select HTTP/1.1", host: "example.com""#,
                .wafBlocked, "nginx-error"
            ),
            (
                "2026-12-07 10:00:00 203.0.113.15 51517 192.0.2.16 443 HTTP/1.1 GET /..\\x\\y.html 403 - Forbidden -", .configDeny,
                "iis-httperr"
            ),
            (
                "2026-12-07 10:00:00.205351-0700  localhost sshd[6738]: User root from 192.0.2.1 not allowed because not listed in AllowUsers",
                .configDeny, "timestamped-text"
            ),
            (
                #"Mon Dec  7 10:00:00 2026 [pid 15019] [guest] FAIL LOGIN: Client "::ffff:192.0.2.1", "User is not in the allow user list.""#,
                .configDeny, "timestamped-text"
            ),
            (
                "Dec  7 10:00:00 host sshd[15191]: Authentication refused: bad ownership or modes for file /home/deploy/.ssh/authorized_keys",
                .filesystemPermission, "syslog"
            ),
            ("2026-12-07 10:00:00,388 fail2ban.actions [123]: NOTICE [sshd] Ban 192.0.2.4", .ipNotAllowed, "timestamped-text"),
            ("1765101600|192.0.2.6|GET /admin/ HTTP/1.1|403|345", .unknown, "neutral-text"),
            (
                "Dec  7 10:00:00 host sudo:     alice : user NOT in sudoers ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls",
                .insufficientPermissions, "syslog"
            ),
            (
                "[Mon Dec 07 10:00:00.966389 2026] [authz_core:debug] [pid 13187] mod_authz_core.c(809): [client 192.0.2.14:43194] AH01626: authorization result of Require all denied: denied",
                .configDeny, "apache-error"
            ),
            (
                "[Mon Dec 07 10:00:00.966389 2026] [authz_core:debug] [pid 13187] mod_authz_core.c(809): [client 192.0.2.14:43194] AH01626: authorization result of Require ip 10.0.0.0/8: denied",
                .ipNotAllowed, "apache-error"
            ),
            // nginx's 444 closes the connection as its configuration says; an access line in the
            // common log's time is no Envoy line, whose start time is ISO 8601.
            (
                #"[07/Dec/2026:10:00:00 +0000] "GET /wp-login.php HTTP/1.1" 444 0 "-" "Mozilla/5.0" "192.0.2.3""#, .configDeny,
                "timestamped-text"
            ),
            (
                #"[07/Dec/2026:10:00:00 +0000] 444 - GET https example.com "/" [Client 192.0.2.3] [Length 0] [Gzip -] "Mozilla/5.0" "-""#,
                .configDeny, "npm-proxy-host"
            ),
            (
                #"401 401 - POST https example.com "/api/tokens" [Client 192.0.2.3] [Length 51] [Gzip -] [Sent-to 192.0.2.190] "Mozilla/5.0" "-""#,
                .missingCredentials, "npm-proxy-host"
            ),
            ("Dec  7 10:00:00 host doas: failed auth for alice", .invalidCredentials, "syslog"),
            ("Dec  7 10:00:00 host smbd[832]: Denied connection from (192.0.2.23)", .ipNotAllowed, "syslog"),
        ]
        for (line, cause, format) in cases {
            let read = analyzer.read(line)
            #expect(read.denial?.cause == cause, "\(line): \(String(describing: read.denial))")
            #expect(read.format == format, "\(line): format \(read.format ?? "none")")
        }
        // The same systems' lines that are no denial.
        for line in [
            #"2026/12/07 10:00:00 [error] 24323#0: *12 NAXSI_FMT: ip=192.0.2.1&server=example.com&uri=/favicon.ico&learning=1&total_processed=25&total_blocked=2, client: 192.0.2.1, server: example.com, request: "GET /favicon.ico HTTP/1.1", host: "example.com""#,
            #"2026/12/07 10:00:00 [error] 30989#30989: *16 NAXSI_FMT: ip=192.0.2.2&server=example.com&uri=/bg.php&learning=0&vers=0.55&total_processed=1485&total_blocked=0&block=0&cscore0=$XSS&score0=8&zone0=ARGS&id0=1310&var_name0=id, client: 192.0.2.2, server: example.com, request: "GET /bg.php HTTP/1.1", host: "example.com""#,
            "2026-12-07 10:00:00 192.0.2.6 64388 192.0.2.7 80 - - - - - Timer_ConnectionIdle -",
            "2026-12-07 10:00:00,388 fail2ban.actions [123]: NOTICE [sshd] Unban 192.0.2.4",
            "[2026-12-07 10:00:00,298] INFO [KafkaServer id=1] started (kafka.server.KafkaServer)",
            "1765101600|192.0.2.6|GET /admin/ HTTP/1.1|200|345",
        ] {
            #expect(analyzer.read(line).denial == nil, "\(line): \(String(describing: analyzer.read(line).denial))")
        }
        // A JSON event whose request_status says blocked is a security device's block, not an Envoy access line.
        let f5 = analyzer.read(
            #"{"policy_name":"/Common/app","violations":"Evasion technique detected","request_status":"blocked","response_code":"0","ip_client":"192.0.2.9","method":"GET","attack_type":"Detection Evasion","uri":"/admin/."}"#
        )
        #expect(f5.format != "envoy-json")
        #expect(f5.denial?.cause == .wafBlocked)
    }

    @Test(
        "a line a system's format reads but its signatures do not explain: the wording families read it, for causes the system does not describe"
    )
    func wordingInsideASystemsLog() {
        // A ban module writing into nginx's error log: nginx's format reads the line, its signatures say nothing of bans.
        let banned = analyzer.read(
            #"2026/12/07 10:00:00 [warn] 36#36: *20 [BEHAVIOR] IP 192.0.2.5 is banned because of bad behavior, client: 192.0.2.5, server: example.com, request: "GET /favicon.ico HTTP/2.0", host: "example.com""#
        )
        #expect(banned.format == "nginx-error")
        #expect(banned.denial?.cause == .ipNotAllowed)
        #expect(banned.denial?.source == "nginx")
        let captcha = analyzer.read(
            #"2026/12/07 10:00:00 [alert] 515#515: *61 [lua] crowdsec.lua:748: Allow(): [Crowdsec] denied '192.0.2.5' with 'captcha', client: 192.0.2.5, server: example.com, request: "GET /log.php HTTP/2.0""#
        )
        #expect(captcha.denial?.cause == .botChallenge)
        // nginx's signatures describe file-system errors: nginx failing to open its own log is left alone.
        let ownLog = analyzer.read(
            #"2026/12/07 10:00:00 [crit] 38#38: *5 open() "/var/log/nginx/access.log" failed (13: Permission denied) while logging request, client: 192.0.2.5, server: example.com, request: "GET / HTTP/1.1", host: "example.com""#
        )
        #expect(ownLog.denial == nil)
        // A status the line states that is no denial keeps the wording out.
        let allowed = analyzer.read(
            #"192.0.2.5 - - [07/Dec/2026:10:00:00 +0000] "GET /banned-ip-list HTTP/1.1" 200 512 "-" "checker: IP banned?""#
        )
        #expect(allowed.denial == nil)
    }
}

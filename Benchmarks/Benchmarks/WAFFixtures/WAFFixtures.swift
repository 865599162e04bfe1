// The requests the WAF benchmarks inspect, shared by WAFBenchmarks, CRSBenchmarks and CRSCPU so
// that every figure is taken on the same bytes.

import GatehouseCore

/// A 1 KiB `application/x-www-form-urlencoded` body the way sign-up and contact forms send it:
/// a dozen fields, one of them free text with apostrophes, semicolons and SQL words.
public let formBody: [UInt8] = {
    var body = [
        "name=Tim+O%27Reilly", "email=tim%40example.com", "company=O%27Reilly+Media", "phone=%2B1+555+0100",
        "address=1+Union+Street%2C+San+Francisco", "country=US", "plan=team", "seats=12", "newsletter=yes",
        "referrer=https%3A%2F%2Fwww.example.org%2Fpricing", "csrf=9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "comment=" + String(repeating: "Great+product%3B+we%27d+select+it+again.+", count: 20),
    ].joined(separator: "&")
    body = String(body.prefix(1024))
    return Array(body.utf8)
}()

/// The same kilobyte split into 64 short fields: the per-field cost dominates.
public let manyFieldsBody: [UInt8] = {
    var fields: [String] = []
    var i = 0
    while fields.joined(separator: "&").utf8.count < 1024 { fields.append("field\(i)=value+\(i)"); i += 1 }
    return Array(fields.joined(separator: "&").utf8.prefix(1024))
}()

/// What a browser sends with a form post.
public let browserHeaders: [(String, String)] = [
    ("Host", "api.example.com"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"),
    ("Accept", "text/html,application/xhtml+xml"), ("Accept-Language", "en-US,en;q=0.9"), ("Accept-Encoding", "gzip, deflate"),
    ("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", String(formBody.count)),
    ("Cookie", "session=abc123; theme=dark"),
]

/// The form body posted by a browser: the Core Rule Set benchmarks' ordinary request.
public let browserFormRequest = PolicyRequest(
    method: "POST", path: "/signup", headers: HeaderList(browserHeaders), host: "api.example.com", contentLength: formBody.count,
    body: formBody, routeName: "signup")

/// An SQL injection in a query string, with the browser's first five headers.
public let sqlInjectionRequest = PolicyRequest(
    method: "GET", path: "/search", query: "q=1%27+UNION+SELECT+username%2Cpassword+FROM+users--&page=2",
    headers: HeaderList(Array(browserHeaders.prefix(5))), host: "api.example.com")

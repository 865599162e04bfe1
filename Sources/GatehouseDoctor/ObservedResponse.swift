// Saved responses are parsed by hand: captures are often loose (LF line ends, curl transcripts,
// leftover chunked framing) in ways a strict HTTP decoder such as NIO's rejects.
import Foundation

/// A response the doctor examines: status, headers in order, body, and what is known of the request.
public struct ObservedResponse: Sendable, Equatable {
    public var status: Int
    public var reasonPhrase: String
    public var headers: [(name: String, value: String)]
    public var body: String
    /// Request facts, when known (HAR entries and probes know them; a saved response does not).
    public var request: ObservedRequest?
    /// The request URL when known without the rest of the request (`doctor response --url`).
    public var url: String?
    /// Whether the request carried credentials, when the caller says so without the request
    /// (`doctor response --credentials sent|none`).
    public var credentialsSent: Bool?

    public init(
        status: Int, reasonPhrase: String = "", headers: [(name: String, value: String)], body: String, request: ObservedRequest? = nil,
        url: String? = nil
    ) {
        self.status = status
        self.reasonPhrase = reasonPhrase
        self.headers = headers
        self.body = body
        self.request = request
        self.url = url
    }

    /// The request URL from the request facts or `url`, when either is known.
    public var requestURL: String? {
        if let u = request?.url, !u.isEmpty { return u }
        return url.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The lowercased host name of the request URL (no port), when the URL names one.
    public var host: String? {
        guard let u = requestURL else { return nil }
        let withScheme = u.contains("://") ? u : "https://" + u
        guard let h = URLComponents(string: withScheme)?.host ?? Self.roughHost(withScheme), !h.isEmpty else { return nil }
        return h.lowercased()
    }

    /// The host part of a URL that `URLComponents` refuses (placeholders such as `<id>` or `{path}`).
    static func roughHost(_ url: String) -> String? {
        guard let start = url.range(of: "://") else { return nil }
        let rest = url[start.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        let hostPort = authority.split(separator: "@").last.map(String.init) ?? ""
        return hostPort.split(separator: ":").first.map(String.init)
    }

    /// All values of a header, matched case-insensitively.
    public func values(_ name: String) -> [String] {
        let lower = name.lowercased()
        return headers.filter { $0.name.lowercased() == lower }.map(\.value)
    }

    /// The first value of a header.
    public func value(_ name: String) -> String? { values(name).first }

    /// Cookies the response sets, as name → value.
    public var setCookies: [(name: String, value: String)] {
        values("set-cookie").compactMap { line in
            let pair = line.split(separator: ";", maxSplits: 1).first.map(String.init) ?? line
            guard let eq = pair.firstIndex(of: "=") else { return nil }
            return (String(pair[..<eq]).trimmingCharacters(in: .whitespaces), String(pair[pair.index(after: eq)...]))
        }
    }

    public static func == (lhs: ObservedResponse, rhs: ObservedResponse) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body
            && lhs.headers.map { "\($0.name):\($0.value)" } == rhs.headers.map { "\($0.name):\($0.value)" }
            && lhs.request == rhs.request && lhs.url == rhs.url && lhs.credentialsSent == rhs.credentialsSent
    }
}

/// What the doctor knows about the request that drew a response.
public struct ObservedRequest: Sendable, Equatable {
    public var method: String
    public var url: String
    public var headerNames: [String]
    /// True when the request carried an Authorization header, an API-key-like header or cookies.
    public var carriedCredentials: Bool

    public init(method: String, url: String, headerNames: [String], carriedCredentials: Bool) {
        self.method = method
        self.url = url
        self.headerNames = headerNames
        self.carriedCredentials = carriedCredentials
    }

    static let credentialHeaders: Set<String> = [
        "authorization", "proxy-authorization", "x-api-key", "api-key", "apikey", "x-auth-token", "private-token", "cookie",
        "x-amz-security-token", "ocp-apim-subscription-key",
    ]
}

/// Why an input could not be read as a response.
public struct ResponseParseError: Error, CustomStringConvertible, Equatable {
    public var description: String
}

/// Reads raw HTTP/1.x responses and HAR archives into `ObservedResponse` values.
public enum ResponseReader {
    /// Reads either a HAR file (JSON with `log.entries`) or one raw response.
    /// For HAR, only 401, 403 and 429 entries are returned (others are not denials).
    public static func read(_ data: Data, source: String) throws -> (responses: [ObservedResponse], isHAR: Bool) {
        let text = String(decoding: data, as: UTF8.self)
        let trimmed = text.drop { $0.isWhitespace || $0 == "\u{FEFF}" }
        if trimmed.hasPrefix("{") {
            if let har = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any],
                let log = har["log"] as? [String: Any]
            {
                return (try readHAR(log, source: source), true)
            }
        }
        if trimmed.contains("< HTTP/") { return ([try parseCurlVerbose(String(trimmed), source: source)], false) }
        return ([try parseRaw(String(trimmed), source: source)], false)
    }

    /// Reads a `curl -v` transcript: `> ` request lines, `< ` response lines, `* ` notes, then the body.
    static func parseCurlVerbose(_ text: String, source: String) throws -> ObservedResponse {
        var request: [String] = [], head: [String] = [], body: [String] = []
        for line in text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("< HTTP/") { head = []; body = [] }
            if line.hasPrefix("> ") {
                request.append(String(line.dropFirst(2)))
            } else if line.hasPrefix("< ") || line == "<" {
                head.append(String(line.dropFirst(min(2, line.count))))
            } else if line.hasPrefix("* ") || line.hasPrefix("{ ") || line.hasPrefix("} ") || line == ">" {
                continue
            } else if !head.isEmpty {
                body.append(String(line))
            }
        }
        let headText = head.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.joined(separator: "\n")
        var response = try parseRaw(headText + "\n\n" + body.joined(separator: "\n"), source: source)
        if let first = request.first {
            let parts = first.split(separator: " ")
            let names = request.dropFirst().compactMap { $0.split(separator: ":", maxSplits: 1).first.map(String.init) }
            response.request = ObservedRequest(
                method: parts.first.map(String.init) ?? "GET", url: parts.count > 1 ? String(parts[1]) : "", headerNames: names,
                carriedCredentials: names.contains { ObservedRequest.credentialHeaders.contains($0.lowercased()) })
        }
        return response
    }

    /// Undoes `Transfer-Encoding: chunked` framing left in a raw capture.
    static func dechunk(_ body: String) -> String? {
        var out = ""
        var rest = Substring(body)
        while let nl = rest.firstIndex(of: "\n") {
            let sizeText = rest[..<nl].split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard let size = Int(sizeText, radix: 16) else { return nil }
            if size == 0 { return out }
            let start = rest.index(after: nl)
            let bytes = rest[start...].utf8
            guard bytes.count >= size else { return nil }
            let end = bytes.index(bytes.startIndex, offsetBy: size)
            out += String(decoding: rest.utf8[start..<end], as: UTF8.self)
            rest = rest[end...].drop { $0 == "\n" }
        }
        return rest.isEmpty ? out : nil
    }

    /// Parses "HTTP/1.1 403 Forbidden\r\nHeader: v\r\n\r\nbody". Accepts bare LF line ends and
    /// several responses in a row (as `curl -i -L` writes them): the last one is the answer.
    public static func parseRaw(_ text: String, source: String) throws -> ObservedResponse {
        var remaining = Substring(text.replacingOccurrences(of: "\r\n", with: "\n"))
        while true {
            guard remaining.hasPrefix("HTTP/") else {
                throw ResponseParseError(
                    description:
                        "\(source): expected a status line such as 'HTTP/1.1 403 Forbidden' at the start, found '\(remaining.prefix(40))'")
            }
            let headEnd = remaining.range(of: "\n\n")
            let head = headEnd.map { remaining[..<$0.lowerBound] } ?? remaining
            var body = headEnd.map { remaining[$0.upperBound...] } ?? ""
            var lines = head.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let statusLine = lines.removeFirst()
            let parts = statusLine.split(separator: " ", maxSplits: 2).map(String.init)
            guard parts.count >= 2, let status = Int(parts[1]) else {
                throw ResponseParseError(
                    description: "\(source): status line '\(statusLine)' has no numeric status code (expected 'HTTP/1.1 403 Forbidden')")
            }
            var headers: [(name: String, value: String)] = []
            for (index, line) in lines.enumerated() where !line.isEmpty {
                if line.first == " " || line.first == "\t", !headers.isEmpty {
                    headers[headers.count - 1].value += " " + line.trimmingCharacters(in: .whitespaces)
                    continue
                }
                // A capture that lost the blank line after the headers: what follows is the body.
                guard let colon = line.firstIndex(of: ":"), !line[..<colon].contains(" "), !line.hasPrefix("<"), !line.hasPrefix("{") else {
                    body = Substring(lines[index...].joined(separator: "\n") + (headEnd == nil ? "" : "\n\n" + body))
                    break
                }
                headers.append(
                    (
                        String(line[..<colon]).trimmingCharacters(in: .whitespaces),
                        String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                    ))
            }
            // An interim or redirect response followed by another response: keep the last.
            if body.hasPrefix("HTTP/"), status < 200 || (300..<400).contains(status) || status == 200 {
                remaining = body
                continue
            }
            var text = String(body)
            if headers.contains(where: { $0.name.lowercased() == "transfer-encoding" && $0.value.lowercased().contains("chunked") }),
                let plain = dechunk(text)
            {
                text = plain
            }
            return ObservedResponse(status: status, reasonPhrase: parts.count > 2 ? parts[2] : "", headers: headers, body: text)
        }
    }

    static func readHAR(_ log: [String: Any], source: String) throws -> [ObservedResponse] {
        guard let entries = log["entries"] as? [[String: Any]] else {
            throw ResponseParseError(description: "\(source): HAR file has no 'log.entries' array")
        }
        var out: [ObservedResponse] = []
        for (index, entry) in entries.enumerated() {
            guard let response = entry["response"] as? [String: Any], let status = response["status"] as? Int else {
                throw ResponseParseError(description: "\(source): HAR entry \(index) has no response.status")
            }
            guard [401, 403, 429].contains(status) else { continue }
            let headers = ((response["headers"] as? [[String: Any]]) ?? []).compactMap { h -> (name: String, value: String)? in
                guard let n = h["name"] as? String else { return nil }
                return (n, (h["value"] as? String) ?? "")
            }
            var body = ""
            if let content = response["content"] as? [String: Any], let text = content["text"] as? String {
                if (content["encoding"] as? String) == "base64", let decoded = Data(base64Encoded: text) {
                    body = String(decoding: decoded, as: UTF8.self)
                } else {
                    body = text
                }
            }
            var request: ObservedRequest?
            if let req = entry["request"] as? [String: Any] {
                let names = ((req["headers"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
                let cookies = (req["cookies"] as? [Any]) ?? []
                let creds = names.contains { ObservedRequest.credentialHeaders.contains($0.lowercased()) } || !cookies.isEmpty
                request = ObservedRequest(
                    method: (req["method"] as? String) ?? "GET", url: (req["url"] as? String) ?? "", headerNames: names,
                    carriedCredentials: creds)
            }
            out.append(
                ObservedResponse(
                    status: status, reasonPhrase: (response["statusText"] as? String) ?? "", headers: headers, body: body, request: request)
            )
        }
        return out
    }
}

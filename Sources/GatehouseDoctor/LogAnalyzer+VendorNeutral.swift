// The vendor-neutral reader: what a line of a format no log knowledge file describes still says.
// Its shapes (CEF, JSON at any depth, key=value, a quoted request line and its status) are public
// conventions; its wording families are data (`wording` in LogKnowledge/generic.json).
import Foundation

/// What the vendor-neutral reader found in a line no system's format reads: the shape it recognised,
/// the fields, the system the line names (if any) and the text its wording is read from.
struct NeutralReading {
    var format: String
    var fields: [String: String]
    var system: String?
    /// The message words are read from (request lines, paths and user agents left out).
    var text: String
    var status: Int?
    /// An action field said blocked / denied (true) or allowed / passed (false).
    var blocked: Bool?
    /// A field names an attack, threat or rule (a security device's event).
    var attack: Bool
}

/// What a status alone says when a line gives no other reason: the vendor-neutral reader's default
/// for each status that is a denial.
struct StatusDefault {
    var cause: DenialCause
    /// The cause when the line names a user (credentials were sent), if it differs.
    var causeWithUser: DenialCause?
    var explanation: String
    var explanationWithUser: String?
    var fix: [String]
}

extension LogAnalyzer {
    /// The statuses that are denials whatever the line says, and what each says alone.
    static let statusDefaults: [Int: StatusDefault] = [
        429: StatusDefault(
            cause: .rateLimited, explanation: "status 429 Too Many Requests: a rate limit rejected the request",
            fix: ["Slow the client down or raise the limit for it; Retry-After says when to retry."]),
        407: StatusDefault(
            cause: .missingCredentials, explanation: "status 407: the proxy wanted credentials",
            fix: ["Configure the client with the proxy's user and password."]),
        401: StatusDefault(
            cause: .missingCredentials, causeWithUser: .invalidCredentials,
            explanation: "status 401 without a user: no credentials (or none the server could read) came with the request",
            explanationWithUser: "status 401 with a user named: credentials were sent and refused",
            fix: ["Send valid credentials; the service's own log says why they were refused."]),
        444: StatusDefault(
            cause: .configDeny,
            explanation:
                "status 444 is no standard HTTP status: the server's configuration refused the request with a code of its own (often by closing the connection without a response)",
            fix: ["Find what in the server's or application's configuration answers 444 and change it if this request should pass."]),
        403: StatusDefault(
            cause: .unknown, explanation: "status 403: the service refused, and this line does not say why",
            fix: ["Look for the service's own error line for the same time and path."]),
    ]

    /// Reads a line of unknown format (`text`: the line without what relays prefixed, `program`: what
    /// the relay prefix named): its shape, its status and its wording say whether it records a
    /// denial and why. A status outside 401/403/407/429/444, or an action that allowed the request, is no
    /// denial whatever the words say; words that negate or release a block (`not blocked`,
    /// `unbanned`) cancel what the wording families would read.
    func readNeutral(_ text: String, program: String?) -> (reading: NeutralReading, denial: LogDenial?)? {
        guard var r = Self.neutralReading(text) else { return nil }
        r.system = r.system ?? program
        let source = r.system ?? "unknown"
        func denial(_ cause: DenialCause, key: String, explanation: String, fix: [String], id: String) -> LogDenial {
            LogDenial(source: source, cause: cause, key: key, explanation: explanation, fix: fix, signature: id)
        }
        // An action that blocked wins over the status a proxy logs for the block page (often 200).
        if let s = r.status, Self.statusDefaults[s] == nil, r.blocked != true { return (r, nil) }
        if r.blocked == false, r.status == nil { return (r, nil) }
        let family = wordingFamily(Self.words(r.text))
        func fromFamily(_ f: LogSignature) -> LogDenial { familyDenial(f, source: source, fields: r.fields) }
        if let s = r.status, r.blocked != true, let d = Self.statusDefaults[s] {
            if let family, family.cause != .unknown { return (r, fromFamily(family)) }
            let withUser = Self.present(r.fields["user"]) != nil
            return (
                r,
                denial(
                    withUser ? d.causeWithUser ?? d.cause : d.cause, key: "HTTP \(s)",
                    explanation: withUser ? d.explanationWithUser ?? d.explanation : d.explanation, fix: d.fix,
                    id: "neutral-status-\(s)")
            )
        }
        if r.blocked == true {
            if let family, family.cause != .unknown { return (r, fromFamily(family)) }
            return (
                r,
                r.attack
                    ? denial(
                        .wafBlocked, key: r.fields["rule"] ?? "blocked",
                        explanation: "a security device blocked the request as an attack (the event names the attack or rule)",
                        fix: ["Look the event up in the device's console; if the request was legitimate, add an exception for the rule."],
                        id: "neutral-blocked-attack")
                    : denial(
                        .explicitDeny, key: r.fields["rule"] ?? "blocked",
                        explanation: "the event's action says a policy blocked the request",
                        fix: ["Look up which policy or category blocked it in the device's console."], id: "neutral-blocked")
            )
        }
        if let family { return (r, fromFamily(family)) }
        return (r, nil)
    }

    /// The denial the first wording family that matches `text` (request details left out) states,
    /// unless the text releases a block, or the family states no cause or one of `excluded`.
    func wordingDenial(_ text: String, source: String, fields: [String: String], excluding excluded: Set<DenialCause>) -> LogDenial? {
        guard let f = wordingFamily(Self.words(Self.withoutRequestDetails(text))), f.cause != .unknown, !excluded.contains(f.cause)
        else { return nil }
        return familyDenial(f, source: source, fields: fields)
    }

    /// The first wording family that matches the words, unless they release a block.
    func wordingFamily(_ words: BodyWords) -> LogSignature? {
        if negation?.releases(words) == true { return nil }
        return wording.first { WordMatcher.matches($0.words ?? [], within: $0.within ?? 6, in: words, negation: negation) }
    }

    /// The denial a wording family states, its key, explanation and fix filled from the fields.
    func familyDenial(_ f: LogSignature, source: String, fields: [String: String]) -> LogDenial {
        LogDenial(
            source: source, cause: f.cause, key: fill(f.key ?? f.id, [], fields), explanation: fill(f.explanation, [], fields),
            fix: f.fix.map { fill($0, [], fields) }, signature: f.id)
    }

    /// The words of a message for the wording families: `snake_case` codes are split into words here
    /// (`invalid_user_credentials` is wording in a log line), URLs dropped.
    static func words(_ text: String) -> BodyWords {
        // An address is one word (`IP 1.2.3.4 is banned`: "ip", "ipaddr", "is", "banned").
        BodyWords(
            text.replacingOccurrences(of: "_", with: " ").replacingPattern(#"\b\d{1,3}(?:\.\d{1,3}){3}\b"#, with: "ipaddr"), isHTML: false)
    }

    // MARK: Shapes

    /// A line as relays wrapped it: the line, then the text after each prefix taken off (a syslog
    /// priority, then at most two of syslog header, `docker compose` prefix and container runtime
    /// prefix), and the program or service the first prefix that names one names.
    struct Unwrapped {
        var layers: [String]
        var program: String?
        var hadPriority: Bool
        /// What is left once every prefix is off.
        var innermost: String { layers[layers.count - 1] }
    }

    static func unwrap(_ original: String) -> Unwrapped {
        var line = original.trimmingCharacters(in: .whitespaces)
        var out = Unwrapped(layers: [line], program: nil, hadPriority: false)
        if let r = line.rangeOfPattern(#"^<\d{1,3}>\s*"#) {
            line = String(line[r.upperBound...])
            out.layers.append(line)
            out.hadPriority = true
        }
        for _ in 0..<2 {
            if let p = relayProgram(line) { out.program = out.program ?? p }
            guard let rest = withoutRelayPrefix(line) else { break }
            line = rest
            out.layers.append(line)
        }
        return out
    }

    /// The shape of a line whose relay prefixes are already off (`unwrap`).
    static func neutralReading(_ line: String) -> NeutralReading? {
        if let cef = cef(line) ?? leef(line) { return cef }
        if let brace = line.firstIndex(of: "{"), let object = jsonObject(String(line[brace...])) {
            var r = json(object)
            // Text before the object is the message of loggers that append their fields as JSON (zap).
            r.text = withoutRequestDetails(String(line[..<brace])) + " " + r.text
            return r
        }
        var fields: [String: String] = [:]
        var format: String?
        var status: Int?
        var text = line
        // A quoted request line and the status after it, with any prefix (common/combined and kin).
        if let m = firstMatch(#""(?<method>[A-Z]{3,10}) (?<path>\S+)(?: HTTP/[\d.]+)?" +(?<status>\d{3})\b"#, line) {
            format = "neutral-access"
            fields["method"] = m["method"]
            fields["path"] = m["path"]
            status = Int(m["status"] ?? "")
            text = String(line[..<(line.range(of: "\"" + (m["method"] ?? ""))?.lowerBound ?? line.endIndex)])
            // `client ident user [time]`, wherever the common log format starts in the line.
            if let m = firstMatch(#"(?:^|\s)(?<client>[0-9a-fA-F.:]{7,39}) \S+ (?<user>[^\s\[]+) \[(?<time>[^\]]{1,64})\]"#, line) {
                fields["client"] = m["client"]
                fields["time"] = m["time"]
                if m["user"] != "-" { fields["user"] = m["user"] }
            } else if let t = firstMatch(#"\[(?<time>\d{2}/[A-Za-z]{3}/\d{4}:[^\]]{1,40})\]"#, line)?["time"] {
                fields["time"] = t
            }
        }
        let pairs = logfmt(line).mapValues { $0.hasSuffix(",") ? String($0.dropLast()) : $0 }
        if format == nil, pairs.count >= 2 {
            format = "neutral-kv"
            var flat: [String: String] = [:]
            for (k, v) in pairs.sorted(by: { $0.key < $1.key }) { flat[k.lowercased()] = v }
            // The words outside the pairs are added below: keys are no wording (`origin_address=…` says
            // nothing of an origin refused), so the whole line is no fallback here.
            let r = fromFlat(flat, format: "neutral-kv", messageFallback: "")
            fields = r.fields
            status = r.status ?? statusInText(line)
            // The words outside the pairs are the message (`Connection denied server=…`).
            text =
                r.text + " "
                + line.replacingPattern(#"(?<![A-Za-z0-9_.\-])[A-Za-z_][A-Za-z0-9_.\-]*=("(?:[^"\\]|\\.)*"|\S*)"#, with: " ")
            return NeutralReading(
                format: "neutral-kv", fields: fields, system: r.system, text: withoutRequestDetails(text), status: status,
                blocked: r.blocked, attack: r.attack)
        }
        if status == nil, let s = statusInText(line) {
            status = s
            format = format ?? "neutral-text"
        }
        if format == nil, hasTimeOrLevel(line) { format = "neutral-text" }
        if fields["client"] == nil,
            let c = firstMatch(
                #"(?i)(?:client(?: ip)?\s*[:=]\s*|from |\(@?|ip[:=]\s*)\[?(?<c>\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f]{1,4}(?::[0-9a-f]{0,4}){2,7})"#,
                line)?["c"]
        {
            fields["client"] = c
        }
        if fields["path"] == nil, let p = firstMatch(#"\b(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (?<p>/\S*)"#, line)?["p"] {
            fields["path"] = p
        }
        return NeutralReading(
            format: format ?? "neutral-words", fields: fields, system: nil, text: withoutRequestDetails(text), status: status,
            blocked: nil, attack: false)
    }

    /// The program a syslog header or the service a `docker compose` prefix names.
    static func relayProgram(_ line: String) -> String? {
        if let p = firstMatch(#"^(?:[A-Z][a-z]{2} +)?\d{1,2} \d{2}:\d{2}:\d{2} \S+ (?<p>[A-Za-z][A-Za-z0-9_.-]*)(?:\[\d+\])?: "#, line)?[
            "p"]
        {
            return p.lowercased()
        }
        if let p = firstMatch(#"^(?<p>[A-Za-z][A-Za-z0-9_-]*?)(?:[-_]\d+)?(?:\.\d+\.\S+)?\s+\|\s"#, line)?["p"] { return p.lowercased() }
        return nil
    }

    /// ArcSight Common Event Format: `CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|key=value …`.
    static func cef(_ line: String) -> NeutralReading? {
        guard let start = line.rangeOfPattern(#"^(?:[^\s"|]+\s+){0,8}?[^\s"|]*?CEF:\d+\|"#) else { return nil }
        let parts = line[start.upperBound...].split(separator: "|", maxSplits: 6, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 7 else { return nil }
        // Extension values run to the next ` key=`; `csNLabel=name` names the value of `csN`.
        var ext: [String: String] = [:]
        let re = PatternCache.shared.regex(#"(?:^|\s)([A-Za-z0-9_.]+)=((?:\\=|[^=])*?)(?=\s+[A-Za-z0-9_.]+=|\s*$)"#)
        let body = parts[6] as NSString
        for m in re.matches(in: parts[6], range: NSRange(location: 0, length: body.length)) {
            ext[body.substring(with: m.range(at: 1))] = body.substring(with: m.range(at: 2)).trimmingCharacters(in: .whitespaces)
        }
        var flat: [String: String] = [:]
        for (k, v) in ext.sorted(by: { $0.key < $1.key }) {
            if k.hasSuffix("Label") { continue }
            if let label = ext[k + "Label"] { flat[label.lowercased()] = v }
            flat[k.lowercased()] = v
        }
        var r = fromFlat(flat, format: "neutral-cef", messageFallback: "")
        r.system = parts[0].lowercased().replacingOccurrences(of: " ", with: "-")
        r.fields["rule"] = parts[3]
        r.text = [parts[4], parts[3], r.text].joined(separator: " ")
        if r.status == 0 { r.status = nil }
        return r
    }

    /// IBM's Log Event Extended Format: `LEEF:1.0|Vendor|Product|Version|EventID|key=value<TAB>…`
    /// (LEEF 2.0 names its delimiter in a sixth header field).
    static func leef(_ line: String) -> NeutralReading? {
        guard let start = line.rangeOfPattern(#"^(?:[^\s"|]+\s+){0,8}?[^\s"|]*?LEEF:[12]\.0\|"#) else { return nil }
        let v2 = line[start].hasSuffix("LEEF:2.0|")
        var parts = line[start.upperBound...].split(separator: "|", maxSplits: v2 ? 5 : 4, omittingEmptySubsequences: false).map(
            String.init)
        guard parts.count == (v2 ? 6 : 5) else { return nil }
        var delimiter = "\t"
        if v2 {
            let d = parts.remove(at: 4)
            if d.hasPrefix("x") || d.hasPrefix("0x"),
                let code = UInt32(d.replacingOccurrences(of: "0x", with: "").dropFirst(d.hasPrefix("x") ? 1 : 0), radix: 16),
                let scalar = Unicode.Scalar(code)
            {
                delimiter = String(Character(scalar))
            } else if !d.isEmpty {
                delimiter = d
            }
        }
        var flat: [String: String] = [:]
        for pair in parts[4].components(separatedBy: delimiter) {
            guard let eq = pair.firstIndex(of: "=") else { continue }
            flat[pair[..<eq].trimmingCharacters(in: .whitespaces).lowercased()] = String(pair[pair.index(after: eq)...])
        }
        var r = fromFlat(flat, format: "neutral-leef", messageFallback: "")
        r.system = parts[0].lowercased().replacingOccurrences(of: " ", with: "-")
        r.fields["rule"] = parts[3]
        r.text = [parts[3], r.text].joined(separator: " ")
        return r
    }

    /// A JSON line: fields found at any depth by their usual names.
    static func json(_ object: [String: Any]) -> NeutralReading {
        var flat: [String: String] = [:]
        // Keys that say what happened and who logged it do not count inside what the record
        // carries of the request: its headers, parameters or body (`"params": {"action": "deny"}`)
        // are the caller's to write.
        var carried: Set<String> = []
        func walk(_ v: Any, _ key: String, parent: String?) {
            if let o = v as? [String: Any] {
                for (k, x) in o.sorted(by: { $0.key < $1.key }) { walk(x, k.lowercased(), parent: key) }
            } else if let a = v as? [Any] {
                for x in a.prefix(20) { walk(x, key, parent: parent) }
            } else if flat[key] == nil {
                if let parent, Self.requestContainers.contains(parent) { carried.insert(key) }
                if let b = v as? Bool {
                    flat[key] = b ? "true" : "false"
                } else if let n = v as? NSNumber {
                    flat[key] = n.stringValue
                } else if let s = v as? String {
                    flat[key] = s
                }
            }
        }
        // The outer keys first: a nested `status` (an upstream's) does not hide the line's own.
        // Keys in sorted order: a dictionary's own order changes from one run to the next.
        let keys = object.keys.sorted()
        for k in keys where !(object[k] is [String: Any]) && !(object[k] is [Any]) { walk(object[k]!, k.lowercased(), parent: nil) }
        for k in keys where object[k] is [String: Any] || object[k] is [Any] { walk(object[k]!, k.lowercased(), parent: nil) }
        for k in Self.decisionKeys + Self.systemKeys where carried.contains(k) { flat[k] = nil }
        // A web framework's request log names the controller's action (Rails' `"action": "block"`).
        if flat["controller"] != nil { flat["action"] = nil }
        // A container runtime's JSON wraps the application's own line.
        if let inner = flat["log"], flat.count <= 4 {
            let u = unwrap(inner)
            if var r = neutralReading(u.innermost) {
                r.system = r.system ?? u.program
                return r
            }
        }
        return fromFlat(flat, format: "neutral-json", messageFallback: "")
    }

    /// The keys whose value says whether the request was blocked or allowed, first found first.
    static let decisionKeys = [
        "action", "act", "outcome", "decision", "verdict", "disposition", "result", "event.outcome", "request_status",
    ]
    /// JSON objects that hold what a request carried rather than what the logger decided.
    static let requestContainers: Set<String> = [
        "headers", "params", "parameters", "query", "querystring", "query_params", "body", "args", "arguments", "form", "cookies",
        "request", "req", "data", "payload", "input", "variables",
    ]
    /// The keys that name the system that wrote the line.
    static let systemKeys = ["service.type", "app", "application", "app_name", "service_name", "program", "sourcetype"]

    /// Fields, status, action and message from flattened keys (JSON, CEF extension or key=value).
    static func fromFlat(_ flat: [String: String], format: String, messageFallback: String) -> NeutralReading {
        func first(_ keys: [String]) -> String? {
            for k in keys { if let v = flat[k], present(v) != nil, v.lowercased() != "none", v.lowercased() != "n/a" { return v } }
            return nil
        }
        var fields: [String: String] = [:]
        fields["client"] = first([
            "client_ip", "clientip", "remote_addr", "remoteaddr", "remoteaddress", "remote_ip", "remoteip", "ipaddress", "ip_address", "ip",
            "cip", "src", "srcip", "source_ip", "sourceip", "client",
        ])
        fields["path"] = first(["path", "uri", "request_uri", "requesturi", "url", "eurl", "endpoint", "request", "requesturl", "route"])
        fields["time"] = first(["time", "timestamp", "@timestamp", "ts", "date", "datetime", "rt", "t"])
        fields["user"] = first(["user", "username", "user_name", "usrname", "login", "uname", "userid", "suser", "principal"])
        fields["method"] = first(["method", "requestmethod", "http_method", "reqmethod"])
        var status: Int?
        for k in [
            "status", "status_code", "statuscode", "response_code", "responsecode", "respcode", "http_status", "httpstatus", "code",
            "response_status", "responsestatus", "res_status", "http_status_code", "httpstatuscode",
        ] {
            if let v = flat[k], let n = Int(v), (100...599).contains(n) {
                status = n
                break
            }
        }
        var blocked: Bool?
        // The first of these keys whose value says blocked or allowed (`action=delete result=denied`).
        for k in Self.decisionKeys {
            guard let a = flat[k]?.lowercased() else { continue }
            if a.rangeOfPattern(#"^(block|blocked|deny|denied|drop|dropped|reject|rejected|forbidden|intercepted)\b"#) != nil {
                blocked = true
                break
            }
            if a.rangeOfPattern(#"^(allow|allowed|pass|passed|accept|accepted|permit|permitted|success|succeeded|log|logged)\b"#) != nil {
                blocked = false
                break
            }
        }
        if flat["allowed"] == "true" { blocked = false }
        let attack =
            first(["attack_type", "attacktype", "threatname", "threat", "attack", "rule_id", "ruleid", "signature_id", "violation"]) != nil
        // The words: messages, error codes and event types; `success: false` reads as a failure.
        var text = [
            "msg", "message", "error", "err", "error_description", "errormessage", "description", "reason", "statusreason", "detail",
            "details",
            "type", "kind", "event", "eventtype", "event_type", "eventname", "event_name", "event.action", "operation", "status", "action",
            "act",
            "category", "name",
        ].compactMap { k in flat[k].flatMap { Int($0) == nil ? $0 : nil } }.joined(separator: " ")
        if flat["success"] == "false" || flat["authenticated"] == "false" { text += " failed" }
        // `"ConsoleLogin": "Failure"`: the key says what failed.
        for (k, v) in flat.sorted(by: { $0.key < $1.key }) where ["failure", "failed"].contains(v.lowercased()) { text += " \(k) failed" }
        if text.isEmpty { text = messageFallback }
        return NeutralReading(
            format: format, fields: fields.compactMapValues { $0 },
            system: first(Self.systemKeys).map {
                $0.lowercased()
            },
            text: text, status: status, blocked: blocked, attack: attack)
    }

    /// A status that free text states: `status: 403`, `HTTP 429`, `- 401 GET /x`, `Result: 429`, `403 Forbidden`.
    static func statusInText(_ line: String) -> Int? {
        let patterns = [
            #"(?i)\b(?:status[ _-]?code|http[ _-]?status|response[ _-]?code)\s{0,3}[:=]?\s{0,3}\(?(\d{3})\b"#,
            #"(?i)\bstatus\s{0,3}[:=]?\s{0,3}\(?(\d{3})\b"#,
            // W3C extended (IIS) without its #Fields line: … method path … status substatus win32-status [time].
            #"\b(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|PROPFIND) /\S* (?:\S+ ){0,16}?([1-5]\d\d) \d{1,3} \d+(?: \d+)?\s*$"#,
            #"\bHTTP(?:/[\d.]+)? (\d{3})\b(?! \d)"#,
            #"(?:^|[\s\]-])(\d{3}) (?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /"#,
            #"\bResult: (\d{3})\b"#,
            // The status just before the quoted request line (`… 401 "GET /x HTTP/1.1"`).
            #"\b([1-5]\d\d) "(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /"#,
            // The status right after the request line, before a delimiter or the end of the line
            // (`GET /admin/ HTTP/1.1|403|345`, `… GET /x 403`).
            #"\b(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /[^\s|,;]*+(?: HTTP/[\d.]+)?[ |,;\t]++([1-5]\d\d)(?=[ |,;\t]|$)"#,
            // A status with its reason phrase (RFC 9110), also the ones that are no denial: `502 Bad Gateway`.
            #"\b([1-5]\d\d) (?:OK|Created|No Content|Found|Not Modified|Bad Request|Unauthorized|Forbidden|Not Found|Method Not Allowed|Proxy Authentication Required|Request Timeout|Conflict|Gone|Payload Too Large|Unprocessable (?:Entity|Content)|Too Many Requests|Internal Server Error|Not Implemented|Bad Gateway|Service Unavailable|Gateway Timeout)\b"#,
        ]
        let ns = line as NSString
        for p in patterns {
            guard let m = PatternCache.shared.regex(p).firstMatch(in: line, range: NSRange(location: 0, length: ns.length)),
                m.range(at: 1).location != NSNotFound
            else { continue }
            if let n = Int(ns.substring(with: m.range(at: 1))), (100...599).contains(n) { return n }
        }
        return nil
    }

    /// A timestamp or a level word: the line is a log record even though no format describes it.
    static func hasTimeOrLevel(_ line: String) -> Bool {
        line.rangeOfPattern(
            #"\d{4}[-/]\d{2}[-/]\d{2}[T :]\d{2}:\d{2}|\b\d{1,2}:\d{2}:\d{2}\b|^\s*\d{10}(?:\.\d{1,9})?(?::|\s)|\[[A-Z]\s|\b(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|CRITICAL|FATAL|Info|Notice|Warn|Warning|Error|Critical|Fatal|Trace|Debug)\b|\[(?:debug|info|notice|warn|warning|error|crit|alert|emerg)\]"#
        ) != nil
    }

    /// The message without what names the request rather than the outcome: URLs, paths, quoted request lines.
    static func withoutRequestDetails(_ text: String) -> String {
        text.replacingPattern(#""[A-Z]{3,10} [^"\s][^"]*""#, with: " ")
            .replacingPattern(#"(?:^|[\s"'(\[=:])/[^\s,;"'\]]*"#, with: " ")
    }

    /// Named groups of the first match of `pattern` in `line`.
    static func firstMatch(_ pattern: String, _ line: String) -> [String: String]? {
        let re = PatternCache.shared.regex(pattern)
        let ns = line as NSString
        guard let m = re.firstMatch(in: line, range: NSRange(location: 0, length: ns.length)) else { return nil }
        var out: [String: String] = [:]
        let names = PatternCache.shared.regex(#"\(\?<([A-Za-z][A-Za-z0-9]*)>"#)
        let pns = pattern as NSString
        for n in names.matches(in: pattern, range: NSRange(location: 0, length: pns.length)) {
            let name = pns.substring(with: n.range(at: 1))
            let r = m.range(withName: name)
            if r.location != NSNotFound { out[name] = ns.substring(with: r) }
        }
        return out
    }
}

extension String {
    /// `range(of:options: .regularExpression)` with the pattern compiled once.
    func rangeOfPattern(_ pattern: String) -> Range<String.Index>? {
        let ns = self as NSString
        guard let m = PatternCache.shared.regex(pattern).firstMatch(in: self, range: NSRange(location: 0, length: ns.length)) else {
            return nil
        }
        return Range(m.range, in: self)
    }

    /// `replacingOccurrences(of:with:options: .regularExpression)` with the pattern compiled once.
    func replacingPattern(_ pattern: String, with template: String) -> String {
        let ns = self as NSString
        return PatternCache.shared.regex(pattern).stringByReplacingMatches(
            in: self, range: NSRange(location: 0, length: ns.length), withTemplate: template)
    }
}

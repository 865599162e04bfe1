// Log formats are matched by hand with regular expressions: no listed library parses them.
import Foundation

/// One group of denials found in logs: same source, cause and key (rule id, directive, path…).
public struct LogGroup: Codable, Sendable, Equatable {
    public var source: String
    public var cause: DenialCause
    public var key: String
    public var count: Int
    public var explanation: String
    public var example: String
    public var fix: [String]
}

/// Reads nginx and Apache error logs, ModSecurity audit/error lines and Envoy/Istio access logs,
/// and groups the denials by cause. The log formats are matched by hand: no listed library parses them.
public struct LogAnalyzer: Sendable {
    struct Rule {
        let source: String
        let pattern: NSRegularExpression
        let cause: DenialCause
        /// Capture group giving the grouping key, or 0 for none.
        let keyGroup: Int
        let explanation: String
        let fix: [String]
    }

    let rules: [Rule]

    public init() {
        func r(_ source: String, _ p: String, _ cause: DenialCause, key: Int = 0, _ explanation: String, _ fix: [String]) -> Rule {
            Rule(
                source: source, pattern: try! NSRegularExpression(pattern: p), cause: cause, keyGroup: key, explanation: explanation,
                fix: fix)
        }
        // Order matters: ModSecurity lines also carry web-server prefixes, so they come first.
        rules = [
            r(
                "modsecurity", #"ModSecurity: Access denied with code (\d{3}).*?\[id "(\d+)"\](?:.*?\[msg "([^"]*)"\])?"#, .wafBlocked,
                key: 2,
                "ModSecurity rule blocked the request",
                [
                    "Check whether the rule's match is a false positive for this path; if so add a narrow exclusion (SecRuleUpdateTargetById / ctl:ruleRemoveTargetById) instead of disabling the rule."
                ]),
            r(
                "modsecurity", #"Inbound Anomaly Score Exceeded.*?\(Total (?:Inbound )?Score: (\d+)"#, .wafBlocked, key: 0,
                "OWASP CRS blocked the request: the anomaly score passed the threshold",
                ["Find the individual rules that added to the score in the same transaction and tune those."]),
            r(
                "nginx", #"access forbidden by rule"#, .configDeny, "an allow/deny rule in the matching location refused the client",
                ["Look at the allow/deny lines of the location serving this request (`gatehouse doctor nginx PATH` names them)."]),
            r(
                "nginx", #"directory index of "([^"]+)" is forbidden"#, .directoryListing, key: 1,
                "a directory was requested that has no index file, and autoindex is off",
                ["Add an index file to the directory, or `autoindex on;` if listing is intended."]),
            r(
                "nginx", #"(?:open\(\) )?"([^"]+)"(?: failed| is forbidden) \(13: Permission denied\)"#, .filesystemPermission, key: 1,
                "the nginx worker user may not read this file or traverse a directory above it",
                ["Run `gatehouse doctor nginx --as-user www-data PATH` to get the exact chmod."]),
            r(
                "nginx", #""([^"]+)" failed \((?:40: Too many levels of symbolic links|31: Too many links)\)"#, .configDeny, key: 1,
                "disable_symlinks refused a symbolic link on the path", ["Replace the link by the file, or relax disable_symlinks."]),
            r(
                "nginx", #"limiting (?:requests|connections)[^,]*,.*?by zone "([^"]+)""#, .rateLimited, key: 1,
                "limit_req/limit_conn rejected the request", ["Raise the zone's rate/burst, or slow the client."]),
            r(
                "nginx", #"no user/password was provided for basic authentication"#, .missingCredentials,
                "auth_basic asked for credentials and none came", ["Send the user name and password."]),
            r(
                "nginx", #"user "([^"]*)"(?:: password mismatch| was not found in)"#, .invalidCredentials, key: 1,
                "auth_basic credentials did not match", ["Check the user and password against the auth_basic_user_file."]),
            r(
                "apache-httpd", #"AH01630: client denied by server configuration: (\S+)"#, .configDeny, key: 1,
                "a Require rule refused the client (Require all denied, or an ip/host list without the client)",
                ["Run `gatehouse doctor apache PATH` to see the Require in force for that path."]),
            r(
                "apache-httpd", #"AH01797: client denied by server configuration: (\S+)"#, .ipNotAllowed, key: 1,
                "Order/Deny/Allow (mod_access_compat) refused the client",
                ["Replace Order/Deny/Allow by `Require ip …` lists that include the client."]),
            r(
                "apache-httpd", #"AH01276: Cannot serve directory ([^:]+):"#, .directoryListing, key: 1,
                "a directory without DirectoryIndex file, and Options lacks Indexes",
                ["Add an index file, or `Options +Indexes` if listing is intended."]),
            r(
                "apache-httpd", #"AH00035: access to (\S+) denied \(filesystem path '([^']+)'\)"#, .filesystemPermission, key: 2,
                "a directory on the path lacks the search (x) permission for the Apache user",
                ["`chmod o+x` on the directories of that path (doctor apache prints which one)."]),
            r(
                "apache-httpd", #"AH00132: file permissions deny server access: (\S+)"#, .filesystemPermission, key: 1,
                "the file is not readable by the Apache user", ["`chmod o+r FILE` or give it to the Apache user's group."]),
            r(
                "apache-httpd", #"AH00037: Symbolic link not allowed or link target not accessible: (\S+)"#, .filesystemPermission, key: 1,
                "a symbolic link is broken, points outside what Options allows, or its target is unreadable",
                ["Fix or remove the link, or allow FollowSymLinks for the directory."]),
            r(
                "apache-httpd", #"AH00529: (\S+) pcfg_openfile: unable to check htaccess file"#, .filesystemPermission, key: 1,
                "Apache must read a .htaccess file (AllowOverride) but cannot",
                ["Make the .htaccess readable and its directory searchable by the Apache user."]),
            r(
                "apache-httpd", #"AH0161[78]: user (\S+)(?: not found|: authentication failure)"#, .invalidCredentials, key: 1,
                "basic-auth user unknown or wrong password", ["Check the user in the AuthUserFile."]),
            r(
                "istio-envoy", #"rbac_access_denied_matched_policy\[([^\]]*(?:\][^\]\s"]*)*)\]"#, .explicitDeny, key: 1,
                "an Envoy RBAC filter / Istio AuthorizationPolicy denied the request ('none' = no ALLOW policy matched)",
                ["Check the AuthorizationPolicy named in the brackets, or add an ALLOW rule for this source when it says none."]),
            r(
                "istio-envoy", #"jwt_authn_access_denied\{([^}]*)\}"#, .invalidCredentials, key: 1, "the JWT filter rejected the token",
                ["Decode the token with `gatehouse doctor token` and compare issuer, audience and expiry with the RequestAuthentication."]),
            r(
                "istio-envoy", #"ext_authz_denied|\sUAEX\s"#, .explicitDeny, "the external authorization service denied the request",
                ["Look at the ext_authz service's own logs for the decision."]),
            r(
                "istio-envoy", #"local_rate_limited|request_rate_limited|\sRL\s"#, .rateLimited,
                "Envoy's local or global rate limit rejected the request",
                ["Raise the token bucket / descriptor limit, or slow the client."]),
        ]
    }

    /// Analyzes the lines of several logs; `name` identifies each input in examples.
    public func analyze(_ inputs: [(name: String, text: String)]) -> [LogGroup] {
        var groups: [String: LogGroup] = [:]
        var order: [String] = []
        for (_, text) in inputs {
            for rawLine in text.split(separator: "\n", omittingEmptySubsequences: true) {
                let line = String(rawLine)
                for rule in rules {
                    let ns = line as NSString
                    guard let m = rule.pattern.firstMatch(in: line, range: NSRange(location: 0, length: ns.length)) else { continue }
                    var key =
                        rule.keyGroup > 0 && m.range(at: rule.keyGroup).location != NSNotFound
                        ? ns.substring(with: m.range(at: rule.keyGroup)) : "-"
                    var explanation = rule.explanation
                    var cause = rule.cause
                    if rule.source == "modsecurity", m.numberOfRanges > 3, m.range(at: 3).location != NSNotFound {
                        explanation += ": rule \(key) — \(ns.substring(with: m.range(at: 3)))"
                        key = "rule \(key)"
                    }
                    if rule.source == "istio-envoy", rule.cause == .invalidCredentials {
                        if key.lowercased().contains("expired") { cause = .expiredCredentials }
                        if key.lowercased().contains("missing") { cause = .missingCredentials }
                    }
                    if rule.source == "nginx", rule.cause == .configDeny, line.contains("access forbidden by rule") {
                        key = Self.field(line, "request") ?? "-"
                    }
                    let id = "\(rule.source)|\(cause.rawValue)|\(key)"
                    if groups[id] == nil {
                        order.append(id)
                        groups[id] = LogGroup(
                            source: rule.source, cause: cause, key: key, count: 0, explanation: explanation,
                            example: String(line.prefix(300)), fix: rule.fix)
                    }
                    groups[id]!.count += 1
                    break
                }
                if let g = envoyJSON(line) {
                    let id = "\(g.source)|\(g.cause.rawValue)|\(g.key)"
                    if groups[id] == nil { order.append(id); groups[id] = g } else { groups[id]!.count += 1 }
                }
            }
        }
        return order.compactMap { groups[$0] }.sorted { $0.count > $1.count }
    }

    /// Envoy JSON access-log lines carry `response_code_details`; the text patterns above see them too
    /// when present, so this only handles a 403/401/429 JSON line the patterns did not explain.
    func envoyJSON(_ line: String) -> LogGroup? {
        guard line.hasPrefix("{"), let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
        guard let code = obj["response_code"] as? Int, [401, 403, 429].contains(code) else { return nil }
        let details = (obj["response_code_details"] as? String) ?? ""
        if rules.contains(where: {
            $0.source == "istio-envoy"
                && $0.pattern.firstMatch(in: line, range: NSRange(location: 0, length: (line as NSString).length)) != nil
        }) {
            return nil
        }
        let cause: DenialCause = code == 429 ? .rateLimited : code == 401 ? .missingCredentials : .unknown
        return LogGroup(
            source: "istio-envoy", cause: cause, key: details.isEmpty ? "status \(code)" : details, count: 1,
            explanation: "Envoy answered \(code) (\(details.isEmpty ? "no response_code_details" : details))",
            example: String(line.prefix(300)),
            fix: ["Match response_code_details against the filter that produced it."])
    }

    static func field(_ line: String, _ name: String) -> String? {
        guard let r = line.range(of: "\(name): \"") else { return nil }
        let rest = line[r.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    /// The person-readable summary.
    public static func render(_ groups: [LogGroup]) -> String {
        guard !groups.isEmpty else { return "No denials recognised in these logs." }
        let total = groups.reduce(0) { $0 + $1.count }
        var out = ["\(total) denial\(total == 1 ? "" : "s") in \(groups.count) group\(groups.count == 1 ? "" : "s"):"]
        for g in groups {
            out.append("")
            out.append("\(g.count) × \(g.cause.rawValue) from \(g.source)\(g.key == "-" ? "" : " [\(g.key)]")")
            out.append("  Why: \(g.explanation)")
            out.append("  Example: \(g.example)")
            out += g.fix.map { "  Fix: \($0)" }
        }
        return out.joined(separator: "\n")
    }
}

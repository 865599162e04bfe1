import Foundation

/// Renders diagnoses as a report a person can act on without the docs.
public enum Report {
    /// The person-readable report for one diagnosed response.
    public static func render(_ d: Diagnosis, response: ObservedResponse?, knowledge: KnowledgeBase?) -> String {
        var out: [String] = []
        let name: (String) -> String = { id in
            knowledge?.systems.first { $0.system == id }.map { "\($0.name) (\(id))" } ?? (id == "unknown" ? "an unidentified system" : id)
        }
        if let r = response {
            var line = "What happened: HTTP \(r.status)\(r.reasonPhrase.isEmpty ? "" : " " + r.reasonPhrase)"
            if let req = r.request { line += " for \(req.method) \(redacted(req.url))" }
            out.append(line)
        }
        let doors = d.servedThrough.map { id in knowledge?.systems.first { $0.system == id }?.name ?? id }
        if d.deniedBy == "unknown", !doors.isEmpty {
            out.append(
                "Who denied it: not identified — the service behind \(doors.joined(separator: " and ")), which the knowledge base does not know; the cause comes from standard HTTP signals"
            )
        } else if d.deniedBy == "unknown" {
            out.append("Who denied it: not identified — no vendor-specific evidence; the cause comes from standard HTTP signals")
        } else {
            out.append("Who denied it: \(name(d.deniedBy)), at the \(layerName(d.layer)) layer")
        }
        if !d.servedThrough.isEmpty {
            out.append("Served through: \(d.servedThrough.map(name).joined(separator: ", ")) (on the way, not the writer of the denial)")
        }
        out.append("Why:           \(d.cause.rawValue) — \(d.cause.explanation)")
        out.append("How sure:      \(Int((d.confidence * 100).rounded()))% (\(sureWord(d.confidence)))")
        out.append("Evidence:")
        out += d.evidence.map { "  - \($0)" }
        out.append("What to do:")
        out += d.fix.enumerated().map { "  \($0.offset + 1). \($0.element)" }
        if !d.alternatives.isEmpty {
            out.append("Less likely:")
            out += d.alternatives.map { "  - \(name($0.deniedBy)): \($0.cause.rawValue) (\(Int(($0.confidence * 100).rounded()))%)" }
        }
        return out.joined(separator: "\n")
    }

    /// A URL with the values of credential-looking query parameters replaced, so reports never echo a secret.
    public static func redacted(_ url: String) -> String {
        guard var comps = URLComponents(string: url), let items = comps.queryItems, !items.isEmpty else { return url }
        let secretish = ["key", "token", "secret", "signature", "password", "auth", "credential", "session", "sig"]
        comps.queryItems = items.map { item in
            let name = item.name.lowercased()
            return secretish.contains(where: { name.contains($0) }) ? URLQueryItem(name: item.name, value: "REDACTED") : item
        }
        return comps.string ?? url
    }

    static func sureWord(_ c: Double) -> String {
        c >= 0.75
            ? "strong evidence"
            : c >= 0.5 ? "fairly sure" : c >= 0.3 ? "a plausible reading, check the alternatives" : "weak evidence; treat as a hint"
    }

    /// A readable name for a layer id.
    public static func layerName(_ layer: String) -> String {
        switch layer {
        case "cdn": "CDN"
        case "cdn_waf": "CDN / WAF"
        case "waf": "web application firewall"
        case "api_gateway": "API gateway"
        case "service_mesh": "service mesh"
        case "load_balancer": "load balancer"
        case "web_server": "web server"
        case "framework": "application framework"
        case "cloud_iam": "cloud access management (IAM)"
        case "object_storage": "object storage"
        case "api_provider": "API provider"
        case "platform": "platform"
        case "identity_provider": "identity provider"
        case "database_service": "database service"
        case "package_registry": "package registry"
        case "self_hosted_app": "self-hosted application"
        case "ci_cd": "CI/CD"
        default: "unknown"
        }
    }
}

/// The `doctor response` entry point: reads a file and diagnoses every denial in it.
public struct ResponseDoctor: Sendable {
    public let classifier: ResponseClassifier

    public init(knowledge: KnowledgeBase) { classifier = ResponseClassifier(knowledge: knowledge) }

    /// Diagnoses a raw response or every 401/403/429 entry of a HAR file; `url` is the request URL
    /// and `credentialsSent` whether the request carried credentials, when the caller knows them and
    /// the input does not say them.
    public func diagnose(
        data: Data, source: String, url: String? = nil, credentialsSent: Bool? = nil
    ) throws -> (
        results: [(ObservedResponse, Diagnosis)], isHAR: Bool
    ) {
        var (responses, isHAR) = try ResponseReader.read(data, source: source)
        for i in responses.indices {
            if let url, !url.isEmpty, responses[i].requestURL == nil { responses[i].url = url }
            if responses[i].request == nil { responses[i].credentialsSent = credentialsSent }
        }
        return (responses.map { ($0, classifier.diagnose($0)) }, isHAR)
    }
}

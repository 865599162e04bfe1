import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// A request to probe, described the way curl flags describe it.
public struct ProbeRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: String?
    public var insecure = false
    public var caCertPath: String?

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [], body: String? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// One removable part of a request that bisection can leave out.
public enum RequestPart: Sendable, Equatable, CustomStringConvertible {
    case header(String, String)
    case cookie(String, String)
    case query(String, String)
    case formField(String, String)
    case jsonField(String, String)

    public var description: String {
        switch self {
        case .header(let n, let v): "header \(n): \(Self.short(v))"
        case .cookie(let n, _): "cookie \(n)"
        case .query(let n, let v): "query parameter \(n)=\(Self.short(v))"
        case .formField(let n, let v): "body field \(n)=\(Self.short(v))"
        case .jsonField(let n, let v): "JSON body field \(n)=\(Self.short(v))"
        }
    }

    /// Values are shortened, and credential-looking ones hidden, so reports never echo secrets.
    static func short(_ v: String) -> String { v.count > 60 ? String(v.prefix(57)) + "…" : v }

    var looksLikeCredential: Bool {
        let name: String
        switch self {
        case .header(let n, _), .cookie(let n, _), .query(let n, _), .formField(let n, _), .jsonField(let n, _): name = n.lowercased()
        }
        return ["authorization", "key", "token", "secret", "session", "auth", "password", "cookie", "signature"].contains {
            name.contains($0)
        }
    }

    /// A description that never shows a credential's value.
    public var safeDescription: String {
        guard looksLikeCredential else { return description }
        switch self {
        case .header(let n, _): return "header \(n)"
        case .cookie(let n, _): return "cookie \(n)"
        case .query(let n, _): return "query parameter \(n)"
        case .formField(let n, _), .jsonField(let n, _): return "body field \(n)"
        }
    }
}

/// The result of sending one request: a response, or a failure below HTTP.
public enum ProbeOutcome: Sendable {
    case response(ObservedResponse)
    case network(kind: String, detail: String)

    public var status: Int? { if case .response(let r) = self { r.status } else { nil } }
}

/// Everything `doctor probe` found.
public struct ProbeResult: Sendable {
    public var first: ProbeOutcome
    public var diagnosis: Diagnosis?
    public var findings: [String]
    public var requestsSent: Int
}

/// Sends a request, classifies the answer, and runs the follow-up experiments.
public final class Probe: Sendable {
    /// How many follow-up requests to send, how fast, and which experiments to run.
    public struct Options: Sendable {
        public var repeats = 2
        public var delay: Duration = .milliseconds(500)
        public var timeout: Duration = .seconds(10)
        public var origin: String?
        public var bisect = false
        public var maxRequests = 40
        public init() {}
    }

    let classifier: ResponseClassifier
    let options: Options

    public init(classifier: ResponseClassifier, options: Options) {
        self.classifier = classifier
        self.options = options
    }

    var timeAmount: TimeAmount {
        let c = options.timeout.components
        return .nanoseconds(c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000)
    }

    static func isDenied(_ status: Int?) -> Bool { status.map { [401, 403, 406, 407, 419, 429, 451].contains($0) } ?? false }

    public func run(_ request: ProbeRequest) async throws -> ProbeResult {
        var tls = TLSConfiguration.makeClientConfiguration()
        if request.insecure { tls.certificateVerification = .none }
        if let ca = request.caCertPath { tls.trustRoots = .file(ca) }
        var config = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow, timeout: .init(connect: timeAmount, read: timeAmount))
        config.httpVersion = .http1Only
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        do {
            let result = try await runWith(client, request)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    func runWith(_ client: HTTPClient, _ request: ProbeRequest) async throws -> ProbeResult {
        var sent = 0
        func send(_ r: ProbeRequest) async -> ProbeOutcome {
            if sent > 0, options.delay > .zero { try? await Task.sleep(for: options.delay) }
            sent += 1
            return await Self.send(client, r, timeout: timeAmount)
        }
        let first = await send(request)
        var findings: [String] = []
        var diagnosis: Diagnosis?
        switch first {
        case .network(let kind, let detail):
            diagnosis = Diagnosis(
                deniedBy: "network", layer: "network", cause: .unknown, confidence: 0.9,
                evidence: ["\(kind): \(detail)", "no HTTP status was received: this is not an HTTP denial"],
                fix: Self.networkFix(kind), alternatives: [])
            return ProbeResult(first: first, diagnosis: diagnosis, findings: findings, requestsSent: sent)
        case .response(let r):
            if Self.isDenied(r.status) { diagnosis = classifier.diagnose(r) }
        }

        // Repeat: a passing limit lets a later identical request through; a fixed rule never does.
        if Self.isDenied(first.status), options.repeats > 0 {
            var statuses: [Int] = []
            for _ in 0..<options.repeats where sent < options.maxRequests {
                let o = await send(request)
                statuses.append(o.status ?? 0)
                if !Self.isDenied(o.status) { break }
            }
            if statuses.contains(where: { !Self.isDenied($0) && $0 != 0 }) {
                findings.append(
                    "repeat: the same request later got \(statuses.map(String.init).joined(separator: ", ")) — the denial passes, so it is a rate limit or another temporary block, not a fixed rule"
                )
                if var d = diagnosis, d.cause != .rateLimited {
                    d.alternatives.insert(Alternative(deniedBy: d.deniedBy, cause: d.cause, confidence: d.confidence * 0.5), at: 0)
                    d.cause = .rateLimited
                    d.confidence = max(d.confidence, 0.8)
                    d.fix = ResponseClassifier.defaultFix(.rateLimited)
                    diagnosis = d
                }
                diagnosis?.evidence.append("repeat: a later identical request succeeded (temporary limit)")
            } else {
                findings.append(
                    "repeat: denied again \(statuses.count) of \(statuses.count) times (\(statuses.map(String.init).joined(separator: ", "))) — a fixed rule, not a passing limit"
                )
                diagnosis?.evidence.append("repeat: denied \(statuses.count + 1) of \(statuses.count + 1) times (fixed rule)")
            }
        }

        if let origin = options.origin {
            let (finding, isCORSProblem) = await preflight(request, origin: origin, send: send)
            findings.append(finding)
            if isCORSProblem {
                diagnosis?.evidence.append(finding)
                if diagnosis == nil {
                    diagnosis = Diagnosis(
                        deniedBy: "unknown", layer: "unknown", cause: .cors, confidence: 0.85, evidence: [finding],
                        fix: ResponseClassifier.defaultFix(.cors), alternatives: [])
                }
            }
        }

        if options.bisect {
            let (finding, part, deniedMode) = await bisect(request, firstStatus: first.status, send: send, sentSoFar: { sent })
            findings.append(finding)
            if let part {
                let cause: DenialCause = deniedMode ? .wafBlocked : (part.looksLikeCredential ? .missingCredentials : .configDeny)
                if var d = diagnosis {
                    d.evidence.append(finding)
                    if deniedMode, d.cause != .wafBlocked, d.cause != .rateLimited {
                        d.alternatives.insert(Alternative(deniedBy: d.deniedBy, cause: d.cause, confidence: d.confidence * 0.5), at: 0)
                        d.cause = .wafBlocked
                        d.confidence = max(d.confidence, 0.8)
                        d.fix = [
                            "Leave out or encode \(part.safeDescription): it alone turns the answer into a denial.",
                            "Or ask the operator for a narrow WAF exception for this path and parameter.",
                        ]
                    }
                    diagnosis = d
                } else {
                    diagnosis = Diagnosis(
                        deniedBy: "unknown", layer: "unknown", cause: cause, confidence: 0.8, evidence: [finding],
                        fix: ["Keep sending \(part.safeDescription): without it the request is denied."], alternatives: [])
                }
            }
        }
        return ProbeResult(first: first, diagnosis: diagnosis, findings: findings, requestsSent: sent)
    }

    func preflight(_ request: ProbeRequest, origin: String, send: (ProbeRequest) async -> ProbeOutcome) async -> (String, Bool) {
        var pre = ProbeRequest(
            method: "OPTIONS", url: request.url, headers: [("Origin", origin), ("Access-Control-Request-Method", request.method)])
        let custom = request.headers.map { $0.name.lowercased() }.filter {
            !["accept", "accept-language", "content-language", "origin", "user-agent"].contains($0)
        }
        if !custom.isEmpty { pre.headers.append(("Access-Control-Request-Headers", custom.joined(separator: ","))) }
        pre.insecure = request.insecure
        pre.caCertPath = request.caCertPath
        guard case .response(let r) = await send(pre) else {
            return ("CORS preflight: no HTTP answer to OPTIONS (network failure)", true)
        }
        let allowOrigin = r.value("access-control-allow-origin")
        let allowMethods = (r.value("access-control-allow-methods") ?? "").uppercased()
        let allowHeaders = (r.value("access-control-allow-headers") ?? "").lowercased()
        var problems: [String] = []
        if !(200..<300).contains(r.status) { problems.append("the preflight got HTTP \(r.status), not 2xx") }
        if allowOrigin == nil {
            problems.append("no Access-Control-Allow-Origin in the preflight answer")
        } else if allowOrigin != "*" && allowOrigin != origin {
            problems.append("Access-Control-Allow-Origin is '\(allowOrigin!)', not '\(origin)'")
        }
        let simple = ["GET", "HEAD", "POST"].contains(request.method.uppercased())
        if !simple, !allowMethods.contains(request.method.uppercased()), allowMethods != "*" {
            problems.append("Access-Control-Allow-Methods does not list \(request.method)")
        }
        for h in custom where !allowHeaders.contains(h) && allowHeaders != "*" {
            problems.append("Access-Control-Allow-Headers does not list \(h)")
        }
        if problems.isEmpty { return ("CORS preflight from \(origin): allowed", false) }
        return ("CORS preflight from \(origin) fails: " + problems.joined(separator: "; ") + " — a browser would block the call", true)
    }

    func bisect(
        _ request: ProbeRequest, firstStatus: Int?, send: (ProbeRequest) async -> ProbeOutcome, sentSoFar: () -> Int
    ) async -> (String, RequestPart?, Bool) {
        let parts = Self.parts(of: request)
        guard !parts.isEmpty else { return ("bisect: the request has no headers, query parameters or body fields to vary", nil, false) }
        let deniedMode = Self.isDenied(firstStatus)
        let budget = max(0, options.maxRequests - sentSoFar())
        let debugger = DeltaDebugger<Int>(budget: max(0, budget - 1))
        // The search needs a clean baseline: with every part left out (denied mode) the request must
        // pass, and with every part kept (allowed mode) it must pass too.
        let baseline = await send(Self.rebuild(request, keeping: deniedMode ? [] : parts))
        if deniedMode, Self.isDenied(baseline.status) || baseline.status == nil {
            return (
                "bisect: still denied (\(baseline.status.map(String.init) ?? "no response")) with every header, parameter and field removed — the denial does not come from the request's content (look at the client address, path or method)",
                nil, true
            )
        }
        let indices = Array(parts.indices)
        if deniedMode {
            let out = await debugger.minimize(indices) { subset in
                Self.isDenied(await send(Self.rebuild(request, keeping: subset.map { parts[$0] })).status)
            }
            let found = out.minimal.map { parts[$0] }
            guard out.conclusive else {
                return (
                    "bisect: stopped after \(out.tests) requests (budget); narrowed to \(found.map(\.safeDescription).joined(separator: ", "))",
                    nil, true
                )
            }
            let list = found.map(\.safeDescription).joined(separator: " + ")
            return (
                "bisect: the smallest trigger is \(list) (found in \(out.tests + 1) requests); the request passes without it",
                found.count == 1 ? found[0] : found.first, true
            )
        }
        // Allowed mode: which minimal removal makes it denied (a required header, cookie or parameter)?
        let removeAll = await send(Self.rebuild(request, keeping: []))
        guard Self.isDenied(removeAll.status) else {
            return ("bisect: the request is allowed, and still allowed with every part removed: nothing to bisect", nil, false)
        }
        let out = await debugger.minimize(indices) { removed in
            let set = Set(removed)
            return Self.isDenied(await send(Self.rebuild(request, keeping: indices.filter { !set.contains($0) }.map { parts[$0] })).status)
        }
        let found = out.minimal.map { parts[$0] }
        guard out.conclusive else { return ("bisect: stopped after \(out.tests) requests (budget)", nil, false) }
        return (
            "bisect: removing \(found.map(\.safeDescription).joined(separator: " + ")) turns the answer into a denial: it is required",
            found.first, false
        )
    }

    /// Splits a request into the parts bisection may drop.
    public static func parts(of r: ProbeRequest) -> [RequestPart] {
        var parts: [RequestPart] = []
        for h in r.headers {
            if h.name.lowercased() == "cookie" {
                for pair in h.value.split(separator: ";") {
                    let kv = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    parts.append(.cookie(kv[0], kv.count > 1 ? kv[1] : ""))
                }
            } else if !["host", "content-length", "content-type"].contains(h.name.lowercased()) {
                parts.append(.header(h.name, h.value))
            }
        }
        if let comps = URLComponents(string: r.url) {
            for item in comps.queryItems ?? [] { parts.append(.query(item.name, item.value ?? "")) }
        }
        if let body = r.body, !body.isEmpty {
            if let obj = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] {
                for k in obj.keys.sorted() {
                    let v = obj[k]!
                    let text =
                        (v as? String)
                        ?? ((try? JSONSerialization.data(withJSONObject: v, options: [.fragmentsAllowed])).map {
                            String(decoding: $0, as: UTF8.self)
                        } ?? "")
                    parts.append(.jsonField(k, text))
                }
            } else if body.contains("=") {
                for pair in body.split(separator: "&") {
                    let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    parts.append(
                        .formField(
                            kv[0].removingPercentEncoding ?? kv[0],
                            (kv.count > 1 ? kv[1] : "").replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""))
                }
            }
        }
        return parts
    }

    /// The request with only the given parts kept (other removable parts dropped).
    public static func rebuild(_ r: ProbeRequest, keeping kept: [RequestPart]) -> ProbeRequest {
        var out = r
        out.headers = r.headers.filter { ["host", "content-length", "content-type"].contains($0.name.lowercased()) }
        var cookies: [String] = []
        var query: [URLQueryItem] = []
        var form: [String] = []
        var json: [String: Any] = [:]
        let original = (r.body.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }) ?? [:]
        for p in kept {
            switch p {
            case .header(let n, let v): out.headers.append((n, v))
            case .cookie(let n, let v): cookies.append("\(n)=\(v)")
            case .query(let n, let v): query.append(URLQueryItem(name: n, value: v))
            case .formField(let n, let v):
                let enc: (String) -> String = { $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0 }
                form.append("\(enc(n))=\(enc(v))")
            case .jsonField(let n, _): json[n] = original[n]
            }
        }
        if !cookies.isEmpty { out.headers.append(("Cookie", cookies.joined(separator: "; "))) }
        if var comps = URLComponents(string: r.url), comps.queryItems != nil {
            comps.queryItems = query.isEmpty ? nil : query
            out.url = comps.string ?? r.url
        }
        if r.body != nil, !original.isEmpty {
            out.body = String(
                decoding: (try? JSONSerialization.data(withJSONObject: json, options: [.sortedKeys])) ?? Data("{}".utf8), as: UTF8.self)
        } else if let b = r.body, b.contains("=") {
            out.body = form.joined(separator: "&")
        }
        return out
    }

    static func send(_ client: HTTPClient, _ r: ProbeRequest, timeout: TimeAmount) async -> ProbeOutcome {
        var req = HTTPClientRequest(url: r.url)
        req.method = HTTPMethod(rawValue: r.method.uppercased())
        for h in r.headers { req.headers.add(name: h.name, value: h.value) }
        if let body = r.body {
            req.body = .bytes(ByteBuffer(string: body))
            if !r.headers.contains(where: { $0.name.lowercased() == "content-type" }) {
                let isJSON = body.trimmingCharacters(in: .whitespaces).hasPrefix("{")
                req.headers.add(name: "Content-Type", value: isJSON ? "application/json" : "application/x-www-form-urlencoded")
            }
        }
        do {
            let response = try await client.execute(req, timeout: timeout)
            let body = try await response.body.collect(upTo: 1 << 20)
            let headers = response.headers.map { (name: $0.name, value: $0.value) }
            let requestFacts = ObservedRequest(
                method: r.method, url: r.url, headerNames: r.headers.map(\.name),
                carriedCredentials: r.headers.contains { ObservedRequest.credentialHeaders.contains($0.name.lowercased()) })
            return .response(
                ObservedResponse(
                    status: Int(response.status.code), reasonPhrase: response.status.reasonPhrase, headers: headers,
                    body: String(buffer: body), request: requestFacts))
        } catch {
            return classify(error)
        }
    }

    static func classify(_ error: any Error) -> ProbeOutcome {
        let text = String(describing: error)
        let lower = text.lowercased()
        if lower.contains("refused") || lower.contains("econnrefused") || lower.contains("errno: 111") {
            return .network(
                kind: "connection refused",
                detail: "the host answered the TCP connection with a reset: nothing listens on that port, or a firewall rejects it")
        }
        if lower.contains("timeout") || lower.contains("timedout") || lower.contains("deadline") {
            return .network(
                kind: "timeout",
                detail: "no answer within the time limit: a firewall silently drops the packets, or the host is down or overloaded")
        }
        if lower.contains("ssl") || lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake") {
            return .network(
                kind: "TLS failure",
                detail: "the TLS handshake failed (\(text.prefix(160))): untrusted or mismatched certificate, or protocol mismatch")
        }
        if lower.contains("resolve") || lower.contains("dns") || lower.contains("nodename") || lower.contains("getaddrinfo") {
            return .network(kind: "DNS failure", detail: "the host name does not resolve")
        }
        return .network(kind: "connection failure", detail: String(text.prefix(200)))
    }

    static func networkFix(_ kind: String) -> [String] {
        switch kind {
        case "connection refused":
            [
                "Check the host and port; if a service should listen there, check that it runs and that no firewall or security group rejects your address."
            ]
        case "timeout":
            [
                "Check network reachability (VPN, security groups, firewall allow lists); a silent drop usually means a network firewall, not the application."
            ]
        case "TLS failure":
            ["Check the certificate chain and host name (`--cacert` for a private CA); `-k` skips verification for a test only."]
        default: ["Check the URL, DNS and network path; no HTTP server answered."]
        }
    }
}

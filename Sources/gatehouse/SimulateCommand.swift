import ArgumentParser
import Foundation
import GatehouseChecks
import GatehouseConfig
import GatehouseCore
import GatehouseProxy
import GatehouseServer
import GatehouseStore

/// `gatehouse simulate`: the operator's dry run. One described request, or a logged period
/// (`--replay-log`), decided against a configuration file by the gateway's own decision code,
/// with no upstream contacted.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Decide a described request (or a logged period) against a configuration, without any upstream.",
        discussion: """
            One request: gatehouse simulate [-c FILE] GET https://api.example/v1/orders?x=1 -H 'X-API-Key: …' --client 203.0.113.7
            prints the decision like `explain`. --as-consumer NAME skips credential verification: the request is taken as \
            authenticated as that store consumer. Rate limits are not simulated (they depend on earlier traffic): an allowed \
            request that passes one is "allowed unless" it. Exit status: 0 allowed (or answered by a check), 1 denied, \
            2 bad input (URL, header, address, consumer, configuration).

            A period: gatehouse simulate --replay-log --since 24h -c NEW.yaml re-decides the call log's records against \
            NEW.yaml and reports the decisions that would change, by route and reason, with example request ids. \
            Authentication is replayed as the logged principal (the log never keeps credentials). Exit status: 0 no \
            decision changes, 1 some do, 2 bad input. See docs/simulate.md.
            """
    )

    @Argument(help: "The request method (GET, POST, …).")
    var method: String?

    @Argument(help: "The URL (https://host/path?query) or a path (/path?query, with -H 'Host: …').")
    var url: String?

    @OptionGroup var storeOptions: StoreOptions

    @Option(name: [.customShort("H"), .customLong("header")], help: "A request header field, 'Name: value' (repeatable).")
    var headers: [String] = []

    @Option(help: "The client's address, as the gateway resolves it.")
    var client = "127.0.0.1"

    @Flag(help: "The request comes over TLS (implied by an https URL).")
    var tls = false

    @Option(help: "A verified client certificate with this subject CN (implies --tls).")
    var clientCertCn: String?

    @Option(help: "A subject alternative name of the client certificate, typed (DNS:svc.internal, URI:…); repeatable.")
    var clientCertSan: [String] = []

    @Option(help: "A file whose bytes are the request body, for checks that read it.")
    var body: String?

    @Option(help: "Skip credential verification: take the request as authenticated as this store consumer.")
    var asConsumer: String?

    @Flag(help: "Re-decide the call log's records of a period (--since, --until) against the configuration.")
    var replayLog = false

    @Option(help: "With --replay-log: records newer than this, e.g. 15m, 24h, 7d.")
    var since: String?

    @Option(help: "With --replay-log: records older than this, e.g. 1h (ago).")
    var until: String?

    @Option(help: "With --replay-log: only records of this (logged) route.")
    var route: String?

    @Option(help: "With --replay-log: example request ids per group.")
    var examples = 3

    @Flag(help: "Print the result as JSON.")
    var json = false

    /// Bad input: printed, exit status 2.
    struct InputError: Error {
        var message: String
    }

    func run() async throws {
        do {
            if replayLog {
                try await replay()
            } else {
                try await simulateOne()
            }
        } catch let e as InputError {
            printError("gatehouse simulate: \(e.message)")
            throw ExitCode(2)
        }
    }

    /// The configuration (read and validated), or an input error listing its problems.
    func document() throws -> ConfigDocument {
        do {
            return try Gateway.readConfig(storeOptions.config)
        } catch let e as ConfigError {
            throw InputError(message: "the configuration \(storeOptions.config ?? "(embedded defaults)") is invalid:\n\(e)")
        }
    }

    func openStore(_ document: ConfigDocument) throws -> SQLiteStore {
        let path = storeOptions.store ?? document.settings.storePath
        do {
            return try SQLiteStore(path: path)
        } catch {
            throw InputError(message: "cannot open the store \(path): \(error)")
        }
    }

    /// Builds the configuration's checks (credential lookups read `store`) and waits briefly for
    /// the JWKS loads of its `jwt` checks, as `serve` does before it binds.
    func provision(_ document: ConfigDocument, store: SQLiteStore, body: (GatewayConfig) throws -> Void) async throws {
        let directory = StoreDirectory(store: store)
        let refresher = JWKSRefresher()
        let config = document.provision(
            BuildContext(directory: directory, baseDirectory: document.baseDirectory, jwksRefresher: refresher))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await refresher.run() }
            if await !refresher.waitForQueuedLoads(upTo: Gateway.initialJWKSWait) {
                printError("gatehouse simulate: JWKS keys are still loading; jwt checks answer check_unavailable")
            }
            defer { group.cancelAll() }
            try body(config)
        }
    }

    // MARK: One request

    /// The request the arguments describe, or an input error naming the argument.
    func describedRequest() throws -> SimulatedRequest {
        guard let method, let url else {
            throw InputError(message: "give a method and a URL (e.g. simulate GET https://api.example/v1/orders?x=1), or --replay-log")
        }
        guard !method.isEmpty, method.utf8.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || $0 == 0x2D || $0 == 0x5F }) else {
            throw InputError(
                message: "the method \"\(DisplayText.escaped(method))\" is not an uppercase method name (expected e.g. GET, POST)")
        }
        var fields: [HeaderField] = []
        for h in headers {
            guard let colon = h.firstIndex(of: ":") else {
                throw InputError(
                    message: "-H \"\(DisplayText.escaped(h))\": a header is 'Name: value' (expected e.g. -H 'Origin: https://app.example')")
            }
            let name = String(h[..<colon])
            let value = h[h.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, name.utf8.allSatisfy({ HTTP1Token.isTokenByte($0) }) else {
                throw InputError(
                    message:
                        "-H \"\(DisplayText.escaped(h))\": the field name \"\(DisplayText.escaped(name))\" is not a token (letters, digits and !#$%&'*+-.^_`|~)"
                )
            }
            guard !value.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7F }) else {
                throw InputError(message: "-H \"\(DisplayText.escaped(h))\": the value holds a control character")
            }
            fields.append(HeaderField(name, value))
        }
        if let bad = url.unicodeScalars.first(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
            throw InputError(
                message:
                    "the URL \"\(DisplayText.escaped(url))\" holds \(bad == " " ? "a space" : "a control character"); send it percent-encoded (a space is %20)"
            )
        }
        var target: String
        var useTLS = tls || clientCertCn != nil || !clientCertSan.isEmpty
        if url.hasPrefix("/") || (url == "*" && method == "OPTIONS") {
            target = url
            if !fields.contains(where: { HeaderList.sameName($0.name, "host") }) { fields.insert(HeaderField("Host", "localhost"), at: 0) }
        } else {
            guard let u = URLComponents(string: url), let scheme = u.scheme?.lowercased(), scheme == "http" || scheme == "https",
                let host = u.percentEncodedHost, !host.isEmpty
            else {
                throw InputError(
                    message:
                        "the URL \"\(DisplayText.escaped(url))\" is not an http(s) URL with a host, nor a path starting with / (expected e.g. https://api.example/v1/orders?x=1)"
                )
            }
            guard u.fragment == nil else {
                throw InputError(message: "the URL \"\(DisplayText.escaped(url))\" has a fragment (#…), which a client never sends")
            }
            if scheme == "https" { useTLS = true }
            target = u.percentEncodedPath.isEmpty ? "/" : u.percentEncodedPath
            if let q = u.percentEncodedQuery { target += "?" + q }
            let authority = u.port.map { "\(host):\($0)" } ?? host
            if !fields.contains(where: { HeaderList.sameName($0.name, "host") }) { fields.insert(HeaderField("Host", authority), at: 0) }
        }
        guard let address = IPAddress(client) else {
            throw InputError(
                message: "--client \"\(DisplayText.escaped(client))\" is not an IP address (expected e.g. 203.0.113.7 or 2001:db8::7)")
        }
        var bytes: [UInt8]?
        if let body {
            guard let data = FileManager.default.contents(atPath: body) else {
                throw InputError(message: "--body \(body): cannot read the file")
            }
            bytes = [UInt8](data)
        }
        var peer: PeerIdentity?
        if clientCertCn != nil || !clientCertSan.isEmpty {
            peer = PeerIdentity(
                verified: true, subject: clientCertCn.map { "CN=\($0)" }, commonName: clientCertCn, subjectAltNames: clientCertSan,
                fingerprint: String(repeating: "0", count: 64))
        }
        let request = SimulatedRequest(
            method: method, target: target, headers: fields, client: address, tls: useTLS, peerIdentity: peer, body: bytes,
            now: Date().timeIntervalSince1970)
        if let why = Simulator.validate(request) {
            throw InputError(message: "the gateway would not read this request: \(why)")
        }
        return request
    }

    func simulateOne() async throws {
        let request = try describedRequest()
        let document = try document()
        let store = try openStore(document)
        var identity: AssumedIdentity?
        if let asConsumer {
            guard let consumer = try store.consumer(named: asConsumer) else {
                let names = try store.consumers().prefix(10).map(\.name)
                throw InputError(
                    message:
                        "--as-consumer \"\(DisplayText.escaped(asConsumer))\": no consumer of that name in the store \(store.path) (\(names.isEmpty ? "it has none" : "it has: " + names.joined(separator: ", ") + (names.count == 10 ? ", …" : ""))); see `gatehouse consumers list`"
                )
            }
            identity = AssumedIdentity(consumer: consumer, source: "--as-consumer")
        }
        var result: SimulationResult?
        try await provision(document, store: store) { config in
            let simulator = Simulator(config: config, assumeIdentity: identity != nil)
            result = simulator.evaluate(request, identity: identity)
        }
        guard let result else { return }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            let out = SimulationJSON(result, request: request, config: document.settings.file, asConsumer: asConsumer)
            print(TerminalSafe.json(String(decoding: try enc.encode(out), as: UTF8.self)))
        } else {
            print(SimulationText.render(result, request: request, config: document.settings.file, asConsumer: asConsumer))
        }
        if result.outcome == .denied { throw ExitCode(1) }
    }

    // MARK: Replay

    func replay() async throws {
        guard method == nil, url == nil else {
            throw InputError(message: "--replay-log takes no method or URL: it replays the logged requests (--since, --until, --route)")
        }
        guard asConsumer == nil, headers.isEmpty, body == nil else {
            throw InputError(message: "--replay-log replays each record as logged: -H, --body and --as-consumer do not apply")
        }
        let now = Date().timeIntervalSince1970
        func time(_ text: String?, _ option: String) throws -> Double? {
            guard let text else { return nil }
            guard let d = TimeText.parseDuration(text) else {
                throw InputError(message: "\(option) \"\(DisplayText.escaped(text))\" is not a duration (expected e.g. 15m, 24h, 7d)")
            }
            return now - d
        }
        let since = try time(self.since, "--since")
        let until = try time(self.until, "--until")
        if let since, let until, until <= since {
            throw InputError(message: "--until \(self.until!) is not after --since \(self.since!): the period is empty")
        }
        guard examples >= 0 else { throw InputError(message: "--examples \(examples) is negative") }
        let document = try document()
        let store = try openStore(document)
        let consumers = try store.consumers()
        var report: ReplayReport?
        try await provision(document, store: store) { config in
            if let route, !config.router.routes.contains(where: { $0.name == route }) {
                printError(
                    "gatehouse simulate: note: route \(route) is not in \(document.settings.file); its logged records are replayed against the other routes"
                )
            }
            var replay = LogReplay(config: config, consumers: consumers)
            replay.examplesPerGroup = examples
            report = try replay.run(store: store, since: since, until: until, route: route)
        }
        guard let report else { return }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(TerminalSafe.json(String(decoding: try enc.encode(report), as: UTF8.self)))
        } else {
            print(ReplayText.render(report, config: document.settings.file, store: store.path))
        }
        if report.changed > 0 { throw ExitCode(1) }
    }
}

/// Field-name bytes (RFC 9110 `tchar`).
enum HTTP1Token {
    static func isTokenByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) || "!#$%&'*+-.^_`|~".utf8.contains(b)
    }
}

/// The person-readable result of one simulated request, laid out like `explain`.
enum SimulationText {
    static func render(_ r: SimulationResult, request: SimulatedRequest, config: String, asConsumer: String?) -> String {
        var out: [String] = []
        let verdict: String
        switch r.outcome {
        case .denied: verdict = "DENIED \(r.status ?? 0) \(r.denial?.code.rawValue ?? "")"
        case .answered: verdict = "ANSWERED \(r.status ?? 0) by check \(r.decidingCheck ?? "?")"
        case .allowed:
            verdict = r.allowedUnless.isEmpty ? "ALLOWED" : "ALLOWED unless \(r.allowedUnless.joined(separator: " or ")) (not simulated)"
        }
        out.append("Simulated request: \(verdict)")
        let host = request.headers.first(where: { HeaderList.sameName($0.name, "host") })?.value
        out.append("  \(request.method) \(r.target ?? request.target)\(host.map { " (host \($0))" } ?? "")")
        out.append(
            "  from \(request.client?.description ?? "unknown") over \(request.tls ? "HTTPS" : "HTTP")\(request.peerIdentity.map { ", client certificate \($0.subject ?? $0.subjectAltNames.joined(separator: ", "))" } ?? "")"
        )
        if let asConsumer {
            out.append("  as consumer \(asConsumer): credentials not verified (--as-consumer)")
        } else if let p = r.principal {
            out.append("  authenticated as \(p.consumerName ?? p.subject ?? "?") (\(p.method))")
        }
        out.append("  route: \(r.route ?? "none matched")\(r.upstream.map { " → upstream \($0) (not contacted)" } ?? "")")
        out.append("  configuration: \(config)")
        if !r.trace.entries.isEmpty {
            out.append("")
            out += ExplainText.traceLines(r.trace, timings: false)
        }
        if let d = r.denial {
            out.append("")
            out += ExplainText.denialLines(
                reason: d.code.rawValue, status: d.status, decidingCheck: r.decidingCheck,
                detail: d.operatorDetail.map { d.detail + " (" + $0 + ")" } ?? d.detail, required: d.required, presented: d.presented,
                hint: d.hint)
        } else if !r.shadowDenials.isEmpty {
            out.append("")
            out.append(
                "Allowed, but \(r.shadowDenials.count) shadow check\(r.shadowDenials.count == 1 ? "" : "s") would have denied it: \(r.shadowDenials.map { "\($0.check) (\($0.reason))" }.joined(separator: ", "))."
            )
        }
        if !r.notSimulated.isEmpty {
            out.append("")
            out.append("Not simulated:")
            for n in r.notSimulated {
                out.append("  \(n.check)\(n.mode == .shadow ? " (shadow)" : ""): \(n.why)")
            }
            if !r.allowedUnless.isEmpty {
                out.append("The request is allowed unless \(r.allowedUnless.joined(separator: " or ")) denies it when it runs.")
            }
        }
        return out.map(TerminalSafe.line).joined(separator: "\n")
    }
}

/// `simulate --json`: the decision, its reason, the trace and what was not simulated.
struct SimulationJSON: Encodable {
    struct NotSimulated: Encodable {
        var check: String
        var mode: String
        var why: String
    }
    struct PrincipalJSON: Encodable {
        var consumer: String?
        var method: String
        var verified: Bool
        var roles: [String]
        var scopes: [String]
        var tenant: String?
    }
    var decision: String
    var allowedUnless: [String]
    var status: Int?
    var reason: String?
    var check: String?
    var title: String?
    var detail: String?
    var required: [String]
    var presented: [String]
    var hint: String?
    var route: String?
    var upstream: String?
    var method: String
    var target: String
    var host: String?
    var client: String?
    var tls: Bool
    var principal: PrincipalJSON?
    var notSimulated: [NotSimulated]
    var shadowDenials: [String: String]
    var trace: [TraceEntry]
    var configuration: String

    enum CodingKeys: String, CodingKey {
        case decision, allowedUnless = "allowed_unless", status, reason, check, title, detail, required, presented, hint, route, upstream
        case method, target, host, client, tls, principal, notSimulated = "not_simulated", shadowDenials = "shadow_denials", trace
        case configuration
    }

    init(_ r: SimulationResult, request: SimulatedRequest, config: String, asConsumer: String?) {
        decision = r.outcome.rawValue
        allowedUnless = r.allowedUnless
        status = r.status
        reason = r.denial?.code.rawValue
        check = r.decidingCheck
        title = r.denial?.title
        detail = r.denial.map { d in d.operatorDetail.map { d.detail + " (" + $0 + ")" } ?? d.detail }
        required = r.denial?.required ?? []
        presented = r.denial?.presented ?? []
        hint = r.denial?.hint
        route = r.route
        upstream = r.upstream
        method = request.method
        target = r.target ?? request.target
        host = request.headers.first(where: { HeaderList.sameName($0.name, "host") })?.value
        client = request.client?.description
        tls = request.tls
        principal = r.principal.map {
            PrincipalJSON(
                consumer: $0.consumerName ?? $0.subject, method: $0.method, verified: asConsumer == nil, roles: $0.roles, scopes: $0.scopes,
                tenant: $0.tenant)
        }
        notSimulated = r.notSimulated.map { NotSimulated(check: $0.check, mode: $0.mode.rawValue, why: $0.why) }
        shadowDenials = Dictionary(r.shadowDenials.map { ($0.check, $0.reason.rawValue) }, uniquingKeysWith: { a, _ in a })
        trace = r.trace.entries
        configuration = config
    }
}

/// The person-readable replay report.
enum ReplayText {
    static func render(_ r: ReplayReport, config: String, store: String) -> String {
        var out: [String] = []
        let period =
            [r.since.map { "since \(TimeText.iso($0))" }, r.until.map { "until \(TimeText.iso($0))" }].compactMap { $0 }.joined(
                separator: " ")
        out.append(
            "Replayed \(r.records) logged call\(r.records == 1 ? "" : "s")\(period.isEmpty ? "" : " " + period)\(r.route.map { " of route \($0)" } ?? "") from \(store) against \(config)."
        )
        out.append(
            "  \(r.reevaluated) re-evaluated: \(r.unchanged) unchanged, \(r.newlyDenied) newly denied, \(r.newlyAllowed) newly allowed, \(r.changedReason) with another reason."
        )
        let skipped = r.records - r.reevaluated
        if skipped > 0 { out.append("  \(skipped) could not be re-evaluated (below).") }
        out.append("  Authentication is replayed as the logged principal: the log never keeps credentials.")
        for change in [ReplayReport.Change.newlyDenied, .newlyAllowed, .changedReason] {
            let groups = r.groups.filter { $0.change == change }
            guard !groups.isEmpty else { continue }
            out.append("")
            switch change {
            case .newlyDenied: out.append("Newly denied:")
            case .newlyAllowed: out.append("Newly allowed:")
            case .changedReason: out.append("Denied with another reason:")
            }
            for g in groups {
                let what: String
                switch change {
                case .newlyDenied: what = g.now
                case .newlyAllowed: what = "was \(g.was)"
                case .changedReason: what = "\(g.was) → \(g.now)"
                }
                out.append("  \(g.count)  route \(g.route): \(what)   e.g. \(g.examples.joined(separator: ", "))")
            }
        }
        if !r.allowedUnless.isEmpty {
            out.append("")
            out.append("Allowed unless a check that is not simulated denies them:")
            for (check, n) in r.allowedUnless.sorted(by: { $0.key < $1.key }) { out.append("  \(n)  \(check)") }
        }
        if !r.notReevaluated.isEmpty {
            out.append("")
            out.append("Not re-evaluated:")
            for s in r.notReevaluated { out.append("  \(s.count)  \(s.why)   e.g. \(s.examples.joined(separator: ", "))") }
        }
        if r.withoutFacts > 0 {
            out.append("")
            out.append(
                "\(r.withoutFacts) record\(r.withoutFacts == 1 ? " was" : "s were") written before the call log kept the request's TLS flag and the fields checks read (Origin, Content-Type, …): replayed as plain HTTP without them."
            )
        }
        if r.changed > 0 {
            out.append("")
            out.append("`gatehouse explain ID` shows how a logged call was decided.")
        }
        return out.map(TerminalSafe.line).joined(separator: "\n")
    }
}

import ArgumentParser
import Foundation
import GatehouseDoctor

/// `gatehouse doctor token JWT`.
struct DoctorTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Decode a JWT, explain its claims, verify it and flag what a server would reject."
    )

    @Argument(help: "The JWT (or 'Bearer …'); '-' reads it from standard input, which keeps it out of the shell history.")
    var token: String

    @Option(help: "Verify an HS256/384/512 signature with this shared secret.")
    var secret: String?

    @Option(help: "Verify with the keys of this JWKS file or http(s) URL.")
    var jwks: String?

    @Option(name: .customLong("require-scope"), help: "A scope the token must grant (repeatable).")
    var requireScope: [String] = []

    @Option(help: "The audience the server expects.")
    var audience: String?

    @Option(help: "The issuer the server expects.")
    var issuer: String?

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        var options = TokenInspector.Options()
        options.secret = secret
        options.requiredScopes = requireScope
        options.audience = audience
        options.issuer = issuer
        if let jwks {
            if jwks.hasPrefix("http://") || jwks.hasPrefix("https://") {
                options.jwksJSON = try await fetchText(jwks)
            } else {
                guard let text = try? String(contentsOfFile: jwks, encoding: .utf8) else {
                    throw DoctorCLIError(description: "cannot read JWKS file '\(jwks)'")
                }
                options.jwksJSON = text
            }
        }
        let raw = token == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) : token
        let report: TokenReport
        do { report = try await TokenInspector().inspect(raw, options: options) } catch let e as TokenError {
            throw DoctorCLIError(description: e.description)
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
        } else {
            print(report.render())
        }
        if report.cause != nil { throw ExitCode(2) }
    }

    func fetchText(_ url: String) async throws -> String {
        do { return try await TokenInspector.fetchJWKS(url) } catch let e as TokenError { throw DoctorCLIError(description: e.description) }
    }
}

/// `gatehouse doctor probe [curl-like flags] URL`.
struct DoctorProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Send a request, diagnose the answer, and run follow-up experiments (repeat, CORS preflight, bisection)."
    )

    @Option(name: [.customShort("X"), .customLong("request")], help: "HTTP method.")
    var method: String?
    @Option(name: [.customShort("H"), .customLong("header")], help: "Header 'Name: value' (repeatable).")
    var headers: [String] = []
    @Option(name: [.customShort("d"), .customLong("data")], help: "Request body (implies POST).")
    var data: String?
    @Option(name: .customLong("data-binary"), help: "Request body sent as-is; '@file' reads a file.")
    var dataBinary: String?
    @Option(name: [.customShort("u"), .customLong("user")], help: "user:password for Basic auth.")
    var user: String?
    @Option(name: [.customShort("b"), .customLong("cookie")], help: "Cookies 'a=1; b=2'.")
    var cookie: String?
    @Option(help: "CA certificate file to trust.")
    var cacert: String?
    @Flag(name: [.customShort("k"), .customLong("insecure")], help: "Skip TLS certificate verification.")
    var insecure = false
    @Option(help: "Also send a CORS preflight from this Origin.")
    var origin: String?
    @Flag(help: "Find the smallest header/parameter/field that turns a 200 into a denial (delta debugging).")
    var bisect = false
    @Option(help: "How many times to repeat a denied request to tell a passing limit from a fixed rule.")
    var repeats = 2
    @Option(help: "Pause between requests, in milliseconds (be polite to the server).")
    var delay = 500
    @Option(name: .customLong("max-requests"), help: "Upper bound on requests sent in total.")
    var maxRequests = 40
    @Option(help: "Timeout per request, in seconds.")
    var timeout = 10
    @Flag(help: "Print the doctor's JSON contract.")
    var json = false
    @Argument(help: "The URL.")
    var url: String

    func run() async throws {
        var request = ProbeRequest(url: url)
        for h in headers {
            guard let colon = h.firstIndex(of: ":") else { throw DoctorCLIError(description: "-H '\(h)': expected 'Name: value'") }
            request.headers.append(
                (
                    String(h[..<colon]).trimmingCharacters(in: .whitespaces),
                    String(h[h.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                ))
        }
        if let user { request.headers.append(("Authorization", "Basic " + Data(user.utf8).base64EncodedString())) }
        if let cookie { request.headers.append(("Cookie", cookie)) }
        if let body = dataBinary {
            if body.hasPrefix("@") {
                guard let d = FileManager.default.contents(atPath: String(body.dropFirst())) else {
                    throw DoctorCLIError(description: "--data-binary \(body): cannot read the file")
                }
                request.body = String(decoding: d, as: UTF8.self)
            } else {
                request.body = body
            }
        } else if let data {
            request.body = data
        }
        request.method = method ?? (request.body != nil ? "POST" : "GET")
        request.insecure = insecure
        request.caCertPath = cacert
        var options = Probe.Options()
        options.repeats = repeats
        options.delay = .milliseconds(delay)
        options.timeout = .seconds(Int64(timeout))
        options.origin = origin
        options.bisect = bisect
        options.maxRequests = maxRequests
        let knowledge = try loadKnowledge()
        let result = try await Probe(classifier: ResponseClassifier(knowledge: knowledge), options: options).run(request)
        if json {
            if let d = result.diagnosis { print(Diagnosis.json([d], asArray: false)) } else { print("{}") }
            return
        }
        switch result.first {
        case .network(let kind, let detail):
            print("What happened: no HTTP response — \(kind): \(detail)")
            print("This is a network-level block, not an HTTP denial.")
        case .response(let r):
            if let d = result.diagnosis {
                print(Report.render(d, response: r, knowledge: knowledge))
            } else {
                print("What happened: HTTP \(r.status) \(r.reasonPhrase) — not a denial.")
            }
        }
        if !result.findings.isEmpty {
            print("Experiments (\(result.requestsSent) request\(result.requestsSent == 1 ? "" : "s") sent):")
            for f in result.findings { print("  - \(f)") }
        }
    }
}

/// Shared options of the nginx and Apache analyzers.
struct ServerAnalyzerOptions: ParsableArguments {
    @Option(name: .customLong("as-user"), help: "The worker user whose permissions are checked.")
    var asUser = "www-data"
    @Option(help: "Client address to evaluate allow/deny rules for.")
    var client = "127.0.0.1"
    @Option(help: "Host name, to pick the server block / virtual host.")
    var host: String?
    @Flag(help: "Print the doctor's JSON contract.")
    var json = false
    @Argument(help: "The URL path, e.g. /private/report.pdf")
    var urlPath: String
}

extension ServerAnalyzerOptions {
    /// Prints a server analyzer's verdict as the report or, with --json, the doctor's contract.
    func report(_ verdict: ServerVerdict, server: String) {
        print(json ? Diagnosis.json([verdict.diagnosis(server: server)], asArray: false) : verdict.render(server: server, path: urlPath))
    }
}

/// `gatehouse doctor nginx`.
struct DoctorNginxCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nginx", abstract: "Explain nginx's 403 for a URL path from its config and the file system.")
    @Option(help: "The main nginx config.")
    var config = "/etc/nginx/nginx.conf"
    @OptionGroup var common: ServerAnalyzerOptions

    func run() throws {
        do {
            var analyzer = NginxAnalyzer(configFile: config, worker: try WorkerIdentity.lookup(common.asUser))
            analyzer.clientAddress = common.client
            analyzer.host = common.host
            common.report(try analyzer.analyze(path: common.urlPath), server: "nginx")
        } catch let e as ServerAnalysisError { throw DoctorCLIError(description: e.description) }
    }
}

/// `gatehouse doctor apache`.
struct DoctorApacheCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apache", abstract: "Explain Apache httpd's 403 for a URL path from its config, .htaccess files and the file system.")
    @Option(help: "The main Apache config.")
    var config = "/etc/apache2/apache2.conf"
    @OptionGroup var common: ServerAnalyzerOptions

    func run() throws {
        do {
            var analyzer = ApacheAnalyzer(configFile: config, worker: try WorkerIdentity.lookup(common.asUser))
            analyzer.clientAddress = common.client
            analyzer.host = common.host
            common.report(try analyzer.analyze(path: common.urlPath), server: "apache-httpd")
        } catch let e as ServerAnalysisError { throw DoctorCLIError(description: e.description) }
    }
}

/// `gatehouse doctor logs FILE…`.
struct DoctorLogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract:
            "Group and explain the denials in server, proxy, gateway, WAF, audit and application logs (formats in the log knowledge base).")
    @Argument(help: "Log files ('-' for standard input).")
    var files: [String]
    @Flag(help: "Print the groups as JSON.")
    var json = false
    @Flag(help: "Print how each line was read (format, fields, denial) as JSON lines instead of the groups.")
    var lines = false

    func run() throws {
        let inputs = try files.map { ($0, String(decoding: try readInput($0), as: UTF8.self)) }
        let analyzer: LogAnalyzer
        do { analyzer = try LogAnalyzer() } catch { throw DoctorCLIError(description: "log knowledge: \(error)") }
        if lines {
            for (_, text) in inputs {
                for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
                    let read = analyzer.read(line)
                    var object: [String: Any] = [
                        "format": read.format ?? NSNull(), "system": read.system ?? NSNull(), "fields": read.fields,
                    ]
                    if let d = read.denial {
                        object["denial"] = ["source": d.source, "cause": d.cause.rawValue, "key": d.key, "signature": d.signature]
                    }
                    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                    print(String(decoding: data, as: UTF8.self))
                }
            }
            return
        }
        let groups = analyzer.analyze(inputs)
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try enc.encode(groups), as: UTF8.self))
        } else {
            print(LogAnalyzer.render(groups))
        }
    }
}

import Foundation
import GatehouseChecks
import GatehouseCore
import Yams

/// host:port.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public static func parse(_ text: String) -> HostPort? {
        var s = Substring(text)
        if s.hasPrefix("http://") { s = s.dropFirst(7) }
        if s.hasSuffix("/") { s = s.dropLast() }
        var host: Substring
        var portText: Substring
        if s.hasPrefix("["), let close = s.firstIndex(of: "]") {
            host = s[s.index(after: s.startIndex)..<close]
            let after = s[s.index(after: close)...]
            guard after.hasPrefix(":") else { return nil }
            portText = after.dropFirst()
        } else {
            guard let colon = s.lastIndex(of: ":") else { return nil }
            host = s[..<colon]
            portText = s[s.index(after: colon)...]
        }
        if host.isEmpty { host = "0.0.0.0" }
        guard let port = Int(portText), (0...65535).contains(port), !host.contains("/") else { return nil }
        return HostPort(host: String(host), port: port)
    }
}

/// A group of upstream targets, balanced round-robin over pooled keep-alive connections.
public struct UpstreamSpec: Sendable {
    public var name: String
    public var targets: [HostPort]
    public var connectTimeout: Double
    /// Time allowed for the upstream to answer (head, and each later read).
    public var readTimeout: Double
    /// Idle keep-alive connections kept per target and event loop.
    public var maxIdle: Int
}

/// A route, compiled: how requests are matched and which chain guards them.
///
/// A class: the data plane hands a route from the router to each request, and a reference is one
/// retain where a struct of this size would be a dozen.
public final class CompiledRoute: Sendable {
    public let name: String
    public let hosts: [HostPattern]
    public let methods: [String]
    public let path: PathTemplate
    public let upstream: String
    public let chain: PolicyChain
    public let exposure: Exposure
    /// True when the route explicitly asked for `detailed` exposure (reveals operator detail such as WAF excerpts).
    public let explicitDetailed: Bool
    /// Largest body buffered for checks that inspect bodies.
    public let maxBufferedBody: Int
    /// Prefix removed before forwarding, if any.
    public let stripPrefix: String?

    public init(
        name: String, hosts: [HostPattern], methods: [String], path: PathTemplate, upstream: String, chain: PolicyChain,
        exposure: Exposure, explicitDetailed: Bool, maxBufferedBody: Int, stripPrefix: String?
    ) {
        self.name = name
        self.hosts = hosts
        self.methods = methods
        self.path = path
        self.upstream = upstream
        self.chain = chain
        self.exposure = exposure
        self.explicitDetailed = explicitDetailed
        self.maxBufferedBody = maxBufferedBody
        self.stripPrefix = stripPrefix
    }
}

/// Call-log settings.
public struct LogSettings: Sendable {
    public var retention: Double
    public var queueCapacity: Int
    public var batchSize: Int
    /// The queue's bound in (estimated) bytes, beside its bound in records.
    public var queueBytes: Int = 64 << 20
    /// Size retention: when the store's pages in use exceed this, the oldest records are deleted.
    public var maxBytes: Int = 1 << 30
}

/// Request tracing (`tracing:`): where spans are exported over OTLP/HTTP, under which service name,
/// and which share of traces is kept. Absent, the gateway creates no spans at all.
public struct TracingSettings: Sendable, Equatable {
    /// The OTLP wire encodings over HTTP.
    public enum WireProtocol: String, Sendable, Equatable {
        case protobuf = "http/protobuf"
        case json = "http/json"
    }
    /// The collector's base URL (`http://127.0.0.1:4318`), as written.
    public var otlp: String
    /// The URL spans are posted to: the base URL's path followed by `v1/traces`, as for
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    public var tracesEndpoint: String
    /// `service.name` of the exported resource.
    public var serviceName: String = "gatehouse"
    /// The share of new traces kept, 0...1; a continued trace follows its parent's decision.
    public var sampleRatio: Double = 1
    /// The body encoding of the export requests.
    public var wireProtocol: WireProtocol = .protobuf

    public init(otlp: String, tracesEndpoint: String) {
        self.otlp = otlp
        self.tracesEndpoint = tracesEndpoint
    }

    /// Validates a collector URL: http or https, with a host and a port. Returns the traces
    /// endpoint, or the reason the URL is refused.
    public static func tracesEndpoint(forCollector text: String) -> Result<String, ConfigMessage> {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased() else {
            return .failure(ConfigMessage("\"\(text)\" is not a URL (expected e.g. http://127.0.0.1:4318)"))
        }
        guard scheme == "http" || scheme == "https" else {
            return .failure(ConfigMessage("\"\(text)\": the OTLP exporter speaks http or https only (expected e.g. http://127.0.0.1:4318)"))
        }
        guard let host = url.host, !host.isEmpty else {
            return .failure(ConfigMessage("\"\(text)\" has no host (expected e.g. http://127.0.0.1:4318)"))
        }
        guard url.port != nil else {
            return .failure(ConfigMessage("\"\(text)\" has no port (expected e.g. http://\(host):4318)"))
        }
        guard url.query == nil, url.fragment == nil, url.user == nil else {
            return .failure(ConfigMessage("\"\(text)\": a collector URL takes no user, query or fragment"))
        }
        return .success(text.hasSuffix("/") ? text + "v1/traces" : text + "/v1/traces")
    }
}

/// A configuration problem's text, without its position (the reader adds file:line).
public struct ConfigMessage: Error, Sendable, Equatable {
    public let text: String
    public init(_ text: String) { self.text = text }
}

/// Time limits and caps on client connections (`limits:`), nginx-like by default.
public struct ClientLimits: Sendable, Equatable {
    /// The whole request head must arrive within this time of its first byte (or of the
    /// connection's start); nginx's `client_header_timeout`.
    public var headerTimeout: Double = 60
    /// The request body must make progress at least this often; nginx's `client_body_timeout`.
    public var bodyTimeout: Double = 60
    /// An idle keep-alive connection is closed after this time; nginx's `keepalive_timeout`.
    public var keepAliveTimeout: Double = 75
    /// A client that reads nothing of its response for this long is disconnected; nginx's `send_timeout`.
    public var sendTimeout: Double = 60
    /// The whole request (head and body) must arrive within this time; Envoy's `request_timeout`.
    /// An idle-read timeout alone lets a client trickle a body forever.
    public var requestTimeout: Double = 300
    /// Request bodies buffered for checks that read them, across all connections; past it, 503.
    public var maxBufferedBodies: Int = 256 << 20
    /// Open client connections at most; nil derives it from the process's descriptor limit.
    public var maxConnections: Int?
    public init() {}
}

/// Request fields removed when the peer is not a trusted proxy: they would let a client choose the
/// address, scheme, host, path or method an upstream believes (`untrusted_headers:`).
public enum UntrustedHeaders {
    public static let defaults: [String] = [
        "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port",
        "x-forwarded-prefix", "x-forwarded-server", "x-forwarded-ssl", "x-forwarded-scheme", "x-real-ip",
        "true-client-ip", "x-client-ip", "client-ip", "x-cluster-client-ip", "cf-connecting-ip",
        "fastly-client-ip", "x-originating-ip", "x-remote-ip", "x-remote-addr", "x-original-forwarded-for",
        "x-original-url", "x-rewrite-url", "x-original-uri", "x-original-method", "x-http-method-override",
        "x-http-method", "x-method-override", "x-request-id",
    ]
}

/// A set of header field names, matched case-insensitively and also in their underscore spelling
/// (`X_Forwarded_For`), which CGI and WSGI stacks read as the same variable as `X-Forwarded-For`.
/// A field whose length or first letter no name has is rejected without folding its name, so most
/// fields of a request cost two bit tests.
public struct HeaderNameSet: Sendable, Equatable {
    public let names: Set<String>
    private var lengths: UInt64 = 0
    private var firsts: UInt32 = 0

    public init<S: Sequence>(_ names: S) where S.Element == String {
        let folded = Set(names.map { Self.fold($0) })
        self.names = folded
        for n in folded {
            let u = Array(n.utf8)
            guard let f = u.first else { continue }
            if u.count < 64 { lengths |= 1 << UInt64(u.count) } else { lengths |= 1 << 63 }
            firsts |= Self.firstBit(f)
        }
    }

    public func contains(fieldName name: String) -> Bool {
        let n = name.utf8.count
        guard n > 0, lengths & (1 << UInt64(min(n, 63))) != 0,
            let f = name.utf8.first, firsts & Self.firstBit(f) != 0
        else { return false }
        return names.contains(Self.fold(name))
    }

    /// The first byte's bit, taken after folding (`_` as `-`, any case), so a field and its folded
    /// name test the same bit. Bytes that share a bit are sorted out by the set itself.
    @inline(__always) static func firstBit(_ b: UInt8) -> UInt32 {
        1 << UInt32((b == UInt8(ascii: "_") ? UInt8(ascii: "-") : b) & 0x1F)
    }

    /// Lowercased, `_` read as `-`.
    static func fold(_ name: String) -> String {
        // Written in place: a short name becomes a small string, with no array in between.
        String(unsafeUninitializedCapacity: name.utf8.count) { out in
            var i = 0
            for c in name.utf8 {
                out[i] = c == UInt8(ascii: "_") ? UInt8(ascii: "-") : (c >= 0x41 && c <= 0x5A ? c | 0x20 : c)
                i += 1
            }
            return i
        }
    }
}

/// A configuration read and validated, its checks not built yet (`ConfigLoader.read`): values
/// only. Reading has no side effects — no key set loads, no store opens — so `gatehouse check`
/// and the CLI's store lookup read this; `provision` builds the checks for serving.
public struct ConfigDocument: Sendable {
    /// Every setting but the routes' checks (its router is empty).
    public var settings: GatewayConfig
    public var routes: [RouteDocument]
    /// What reading found that does not stop the configuration (e.g. SecLang directives a `crs`
    /// rule file asks for that the engine does not run), each with its place.
    public var warnings: [ConfigIssue] = []

    /// The directory relative paths in the file are resolved against.
    public var baseDirectory: String {
        let base = (settings.file as NSString).deletingLastPathComponent
        return base.isEmpty ? "." : base
    }

    /// Builds every route's checks with what the running gateway gives them (the credential
    /// directory, the JWKS refresher): the configuration to serve. Each route gets checks of its
    /// own, in its declared order.
    public func provision(_ context: BuildContext) -> GatewayConfig {
        var config = settings
        config.router = Router(
            routes: routes.map { r in
                CompiledRoute(
                    name: r.name, hosts: r.hosts, methods: r.methods, path: r.path, upstream: r.upstream,
                    chain: PolicyChain(r.policies.map { ChainLink($0.build(context), mode: $0.mode) }), exposure: r.exposure,
                    explicitDetailed: r.explicitDetailed, maxBufferedBody: r.maxBufferedBody, stripPrefix: r.stripPrefix)
            })
        return config
    }
}

/// A route as read: its match, upstream and the policies its checks will be built from.
public struct RouteDocument: Sendable {
    public var name: String
    public var hosts: [HostPattern]
    public var methods: [String]
    public var path: PathTemplate
    public var upstream: String
    public var policies: [PolicyLink]
    public var exposure: Exposure
    public var explicitDetailed: Bool
    public var maxBufferedBody: Int
    public var stripPrefix: String?
}

/// A policy on a route, as read: its name, mode and how its check is built.
public struct PolicyLink: Sendable {
    public var policy: String
    public var mode: CheckMode
    let build: CheckBuilder
}

/// Cluster mode: the shared PostgreSQL store and this node's name in it.
public struct ClusterSettings: Sendable, Equatable {
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…]`.
    public var postgres: String
    /// This node's id in `gatehouse cluster status` and in the call log (default: the host name).
    public var nodeID: String

    public static var defaultNodeID: String {
        let h = ProcessInfo.processInfo.hostName
        let id = String(h.filter { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }.prefix(64))
        return id.isEmpty ? "node" : id
    }
}

/// A validated configuration, ready to serve.
public struct GatewayConfig: Sendable {
    public var file: String
    public var listen: HostPort
    /// Admin listener (`/metrics`, `/healthz`, `/status`), if configured.
    public var admin: HostPort?
    /// The SQLite store; in cluster mode, this node's local snapshot and call-log spool.
    public var storePath: String
    /// Cluster mode (`store: { postgres: URL }`): the shared PostgreSQL store and this node's id.
    public var cluster: ClusterSettings? = nil
    public var log: LogSettings
    public var trustedProxies: [CIDRBlock]
    public var problemTypeBase: String
    public var upstreams: [String: UpstreamSpec]
    public var router: Router
    /// Policy names in the order they were declared, for `gatehouse check` output.
    public var policyNames: [String]
    /// HTTPS listener settings (`tls:`), nil for plain HTTP.
    public var tls: TLSSettings? = nil
    /// Time limits and caps on client connections.
    public var limits = ClientLimits()
    /// Fields removed from requests of untrusted peers before they go upstream.
    public var untrustedHeaders = HeaderNameSet(UntrustedHeaders.defaults)
    /// Request tracing (`tracing:`); nil, the default, creates no spans.
    public var tracing: TracingSettings? = nil
    /// The operator console on the admin listener (`console:`).
    public var console = ConsoleSettings()
    /// The developer portal's own listener (`portal: { listen: HOST:PORT }`), if configured: the
    /// only address to give developers. It serves `/portal/` alone; without it there is no portal.
    public var portal: PortalSettings? = nil
}

/// The `portal:` block: where the developer portal listens. The portal's sessions and sign-in
/// limits follow `console:` (read when the listener starts, like the listener itself).
public struct PortalSettings: Sendable, Equatable {
    public var listen: HostPort

    public init(listen: HostPort) { self.listen = listen }
}

/// The `console:` block: how the operator console on the admin listener behaves (read when the
/// admin listener starts, like the listener itself).
public struct ConsoleSettings: Sendable, Equatable {
    /// Origins besides the admin listener's own whose forms may post: the public `https://` origin
    /// of a TLS-terminating proxy in front of it.
    public var trustedOrigins: [OriginPattern] = []
    /// A session not used for this long ends.
    public var idleTimeout: Double = 30 * 60
    /// A session ends this long after sign-in.
    public var lifetime: Double = 12 * 3600
    /// Sign-in attempts a minute per user name and per client address.
    public var signInPerName = 5
    public var signInPerAddress = 20

    public init() {}
}

/// Loads and validates configuration files.
public enum ConfigLoader {
    static let topKeys = [
        "listen", "admin", "store", "log", "trusted_proxies", "problem_type_base", "upstreams", "routes", "policies", "tls",
        "limits", "untrusted_headers", "tracing", "console", "portal",
    ]

    /// Loads a file and builds its checks (`context` is given the file's directory). Throws
    /// ``ConfigError`` with every problem found, each with file:line:column.
    public static func load(file: String, context: (String) -> BuildContext) throws -> GatewayConfig {
        let document = try read(file: file)
        return document.provision(context(document.baseDirectory))
    }

    /// Reads and validates a file without building anything (`read(yaml:file:baseDirectory:)`).
    public static func read(file: String) throws -> ConfigDocument {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw ConfigError(issues: [
                ConfigIssue(file: file, line: 1, column: 1, path: "", message: "cannot read the file: \(error.localizedDescription)")
            ])
        }
        let base = (file as NSString).deletingLastPathComponent
        return try read(yaml: text, file: file, baseDirectory: base.isEmpty ? "." : base)
    }

    /// Parses YAML text (named `file` in messages) and builds its checks: `read` then
    /// `provision`.
    public static func parse(yaml text: String, file: String, context: BuildContext) throws -> GatewayConfig {
        try read(yaml: text, file: file, baseDirectory: context.baseDirectory).provision(context)
    }

    /// Reads and validates YAML text (named `file` in messages; relative paths resolved against
    /// `baseDirectory`): values only, no check built, nothing fetched or opened. Throws
    /// ``ConfigError`` with every problem found, each with file:line:column.
    public static func read(yaml text: String, file: String, baseDirectory: String) throws -> ConfigDocument {
        let root: Node
        do {
            guard let n = try Yams.compose(yaml: text) else {
                throw ConfigError(issues: [
                    ConfigIssue(
                        file: file, line: 1, column: 1, path: "",
                        message: "the file is empty; expected a mapping with listen, upstreams, routes and policies")
                ])
            }
            root = n
        } catch let e as YamlError {
            throw ConfigError(issues: [yamlIssue(e, file: file)])
        }
        let r = ConfigReader(file: file, baseDirectory: baseDirectory)
        let top = ConfigNode(node: root, path: "")
        guard let f = r.mapping(top, known: topKeys, required: ["routes"]) else { throw ConfigError(issues: r.issues) }

        let listen: HostPort =
            f["listen"].flatMap { n in
                guard let s = r.string(n) else { return nil }
                guard let hp = HostPort.parse(s) else {
                    r.error(n, "\"\(s)\" is not a listen address (expected host:port, e.g. 127.0.0.1:8080)"); return nil
                }
                return hp
            } ?? HostPort(host: "127.0.0.1", port: 8080)

        let admin: HostPort? = f["admin"].flatMap { n in
            guard let s = r.string(n) else { return nil }
            guard let hp = HostPort.parse(s) else {
                r.error(n, "\"\(s)\" is not a listen address (expected host:port, e.g. 127.0.0.1:9901)"); return nil
            }
            return hp
        }
        var storePath = "gatehouse.db"
        var cluster: ClusterSettings?
        if let s = f["store"], let sf = r.mapping(s, known: ["sqlite", "postgres", "node"]) {
            if let p = sf["sqlite"].flatMap(r.string) { storePath = p }
            if let n = sf["postgres"], let url = r.string(n) {
                if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
                    cluster = ClusterSettings(postgres: url, nodeID: ClusterSettings.defaultNodeID)
                } else {
                    r.error(n, "store.postgres is not a postgres:// URL (expected postgres://USER@HOST[:PORT]/DATABASE)")
                }
            }
            if let n = sf["node"], let id = r.string(n) {
                if id.isEmpty || id.count > 64 || !id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
                    r.error(n, "store.node \"\(id)\" is invalid: 1 to 64 letters, digits, - _ .")
                } else if cluster == nil {
                    r.error(n, "store.node names this node in a cluster: it needs store.postgres")
                } else {
                    cluster?.nodeID = id
                }
            }
        }
        if !storePath.hasPrefix("/") { storePath = (baseDirectory as NSString).appendingPathComponent(storePath) }

        var log = LogSettings(retention: 7 * 86400, queueCapacity: 50_000, batchSize: 512)
        if let l = f["log"], let lf = r.mapping(l, known: ["retention", "max_bytes", "queue", "queue_bytes", "batch"]) {
            if let v = lf["retention"].flatMap(r.duration) { log.retention = v }
            if let n = lf["max_bytes"], let v = r.size(n) {
                // An empty store's tables and indexes take about 1 MiB (a page each, 16 KiB pages): below
                // 4 MiB the call log would keep only a handful of records.
                if v < 4 << 20 {
                    r.error(n, "max_bytes must be at least 4MiB (an empty store's tables take about 1MiB)")
                } else {
                    log.maxBytes = v
                }
            }
            if let n = lf["queue_bytes"], let v = r.size(n) {
                if v < 1 << 20 { r.error(n, "queue_bytes must be at least 1MiB") } else { log.queueBytes = v }
            }
            if let v = lf["queue"].flatMap({ r.int($0, range: 1...10_000_000) }) { log.queueCapacity = v }
            if let v = lf["batch"].flatMap({ r.int($0, range: 1...100_000) }) { log.batchSize = v }
        }
        let trusted = f["trusted_proxies"].map(r.cidrs) ?? []
        var limits = ClientLimits()
        if let l = f["limits"],
            let lf = r.mapping(
                l,
                known: [
                    "header_timeout", "body_timeout", "keepalive_timeout", "send_timeout", "request_timeout",
                    "max_connections", "max_buffered_bodies",
                ])
        {
            if let v = lf["header_timeout"].flatMap(r.timeout) { limits.headerTimeout = v }
            if let v = lf["body_timeout"].flatMap(r.timeout) { limits.bodyTimeout = v }
            if let v = lf["keepalive_timeout"].flatMap(r.timeout) { limits.keepAliveTimeout = v }
            if let v = lf["send_timeout"].flatMap(r.timeout) { limits.sendTimeout = v }
            if let v = lf["request_timeout"].flatMap(r.timeout) { limits.requestTimeout = v }
            if let v = lf["max_buffered_bodies"].flatMap(r.size) { limits.maxBufferedBodies = v }
            if let v = lf["max_connections"].flatMap({ r.int($0, range: 1...10_000_000) }) { limits.maxConnections = v }
        }
        var untrusted = Set(UntrustedHeaders.defaults)
        if let u = f["untrusted_headers"] {
            // A list replaces the defaults; `{ add: [...], keep: [...] }` adjusts them.
            if case .mapping = u.node, let uf = r.mapping(u, known: ["add", "keep"]) {
                // Folded like the set's names, so `keep: [X_Real_IP]` keeps `x-real-ip`.
                for name in uf["add"].map(r.strings) ?? [] { untrusted.insert(HeaderNameSet.fold(name)) }
                for name in uf["keep"].map(r.strings) ?? [] { untrusted.remove(HeaderNameSet.fold(name)) }
            } else {
                untrusted = Set(r.strings(u).map(HeaderNameSet.fold))
            }
        }
        let tls = f["tls"].flatMap { TLSSettings.read($0, r, base: baseDirectory) }
        var tracing: TracingSettings?
        if let t = f["tracing"], let tf = r.mapping(t, known: ["otlp", "service_name", "sample_ratio", "protocol"], required: ["otlp"]),
            let on = tf["otlp"], let base = r.string(on)
        {
            switch TracingSettings.tracesEndpoint(forCollector: base) {
            case .failure(let m): r.error(on, m.text)
            case .success(let endpoint):
                var settings = TracingSettings(otlp: base, tracesEndpoint: endpoint)
                if let n = tf["service_name"], let v = r.string(n) {
                    if v.isEmpty { r.error(n, "service_name must not be empty") } else { settings.serviceName = v }
                }
                if let n = tf["sample_ratio"] {
                    if case .scalar(let sc) = n.node, let v = Double(sc.string), v >= 0, v <= 1 {
                        settings.sampleRatio = v
                    } else {
                        r.error(n, "sample_ratio must be a number from 0 to 1 (e.g. 0.1 keeps one trace in ten)")
                    }
                }
                if let n = tf["protocol"], let v = r.oneOf(n, ["http/protobuf", "http/json"]) {
                    settings.wireProtocol = TracingSettings.WireProtocol(rawValue: v)!
                }
                tracing = settings
            }
        }
        let typeBase = f["problem_type_base"].flatMap(r.string) ?? "docs/reasons.md#"
        var console = ConsoleSettings()
        if let cn = f["console"],
            let cf = r.mapping(cn, known: ["trusted_origins", "idle_timeout", "lifetime", "sign_in_per_name", "sign_in_per_address"])
        {
            if let tn = cf["trusted_origins"] {
                for item in r.list(tn) {
                    guard let s = r.string(item) else { continue }
                    switch OriginPattern.parse(s) {
                    case .success(let o): console.trustedOrigins.append(o)
                    case .failure(let e): r.error(item, e.description)
                    }
                }
            }
            if let n = cf["idle_timeout"], let d = r.timeout(n) { console.idleTimeout = d }
            if let n = cf["lifetime"], let d = r.timeout(n) { console.lifetime = d }
            for (key, path) in [
                ("sign_in_per_name", \ConsoleSettings.signInPerName), ("sign_in_per_address", \ConsoleSettings.signInPerAddress),
            ] {
                guard let n = cf[key], let text = r.string(n) else { continue }
                guard let v = Int(text), (1...10_000).contains(v) else {
                    r.error(n, "\(key) must be a number of attempts a minute from 1 to 10000"); continue
                }
                console[keyPath: path] = v
            }
        }

        var portal: PortalSettings?
        if let pn = f["portal"], let pf = r.mapping(pn, known: ["listen"], required: ["listen"]), let n = pf["listen"],
            let s = r.string(n)
        {
            if let hp = HostPort.parse(s) {
                portal = PortalSettings(listen: hp)
            } else {
                r.error(n, "\"\(s)\" is not a listen address (expected host:port, e.g. 0.0.0.0:9902)")
            }
        }

        // Upstreams
        var upstreams: [String: UpstreamSpec] = [:]
        if let u = f["upstreams"] {
            for (name, n) in r.namedEntries(u) {
                guard let uf = r.mapping(n, known: ["targets", "connect_timeout", "timeout", "max_idle"], required: ["targets"]) else {
                    continue
                }
                var targets: [HostPort] = []
                if let t = uf["targets"] {
                    for item in r.list(t) {
                        guard let s = r.string(item) else { continue }
                        if s.hasPrefix("https://") {
                            r.error(item, "\"\(s)\": TLS to upstreams is not supported yet (expected http://host:port)")
                        } else if let hp = HostPort.parse(s) {
                            targets.append(hp)
                        } else {
                            r.error(item, "\"\(s)\" is not an upstream target (expected http://host:port)")
                        }
                    }
                    if targets.isEmpty, r.issues.isEmpty { r.error(t, "an upstream needs at least one target") }
                }
                upstreams[name] = UpstreamSpec(
                    name: name, targets: targets,
                    connectTimeout: uf["connect_timeout"].flatMap(r.timeout) ?? 2,
                    readTimeout: uf["timeout"].flatMap(r.timeout) ?? 30,
                    maxIdle: uf["max_idle"].flatMap { r.int($0, range: 0...100_000) } ?? 64)
            }
        }

        // Policies
        var builders: [String: (CheckBuilder, CheckMode, Bool)] = [:]
        var policyNames: [String] = []
        /// Each policy's type, for checks of a route's order (a `subscription` after authentication).
        var policyTypeNames: [String: String] = [:]
        if let p = f["policies"] {
            for (name, n) in r.namedEntries(p) {
                policyNames.append(name)
                guard case .mapping = n.node else {
                    r.error(n, "expected a mapping with a type, e.g. { type: ip, allow: [10.0.0.0/8] }"); continue
                }
                let typeName = n.node["type"]?.string
                policyTypeNames[name] = typeName
                guard let typeName else {
                    r.error(n, "missing required key \"type\" (one of: \(PolicyTypes.all.map(\.name).joined(separator: ", ")))"); continue
                }
                guard let type = PolicyTypes.named(typeName) else {
                    let at = n.child("type", n.node["type"]!)
                    let hint = DidYouMean.suggest(typeName, from: PolicyTypes.all.map(\.name)).map { "; did you mean \"\($0)\"?" } ?? ""
                    r.error(
                        at,
                        "unknown policy type \"\(typeName)\" (expected one of: \(PolicyTypes.all.map(\.name).joined(separator: ", ")))\(hint)"
                    )
                    continue
                }
                guard var fields = r.mapping(n, known: ["type", "mode"] + type.keys, required: type.required) else { continue }
                var mode = CheckMode.enforce
                if let m = fields["mode"], let s = r.oneOf(m, ConfigLoader.modeWords) { mode = ConfigLoader.mode(s) }
                fields["type"] = nil
                fields["mode"] = nil
                let before = r.issues.count
                if let b = type.read(name, n, fields, r), r.issues.count == before {
                    builders[name] = (b, mode, true)
                }
            }
        }

        // Routes
        var routes: [RouteDocument] = []
        var routeNames = Set<String>()
        if let rs = f["routes"] {
            for (i, n) in r.list(rs).enumerated() {
                guard
                    let rf = r.mapping(
                        n, known: ["name", "match", "upstream", "policies", "exposure", "strip_prefix", "max_body_buffer"],
                        required: ["match", "upstream"])
                else { continue }
                let name = rf["name"].flatMap(r.string) ?? "route-\(i + 1)"
                if !routeNames.insert(name).inserted, let at = rf["name"] { r.error(at, "route name \"\(name)\" is used twice") }
                var hosts: [HostPattern] = []
                var methods: [String] = []
                var template: PathTemplate?
                if let m = rf["match"], let mf = r.mapping(m, known: ["host", "hosts", "methods", "path"], required: ["path"]) {
                    hosts = ((mf["host"].map(r.strings) ?? []) + (mf["hosts"].map(r.strings) ?? [])).map(HostPattern.init)
                    methods = (mf["methods"].map(r.strings) ?? []).map { $0.uppercased() }
                    if let pn = mf["path"], let ps = r.string(pn) {
                        switch PathTemplate.parse(ps) {
                        case .success(let t): template = t
                        case .failure(let e): r.error(pn, e.message)
                        }
                    }
                }
                var upstream = ""
                if let un = rf["upstream"], let us = r.string(un) {
                    if upstreams[us] == nil {
                        let hint = DidYouMean.suggest(us, from: Array(upstreams.keys)).map { "; did you mean \"\($0)\"?" } ?? ""
                        r.error(un, "unknown upstream \"\(us)\" (defined: \(upstreams.keys.sorted().joined(separator: ", ")))\(hint)")
                    }
                    upstream = us
                }
                var links: [PolicyLink] = []
                var identified = false
                if let pl = rf["policies"] {
                    for item in r.list(pl) {
                        var policyName: String?
                        var mode: CheckMode?
                        if case .mapping = item.node {
                            if let pf = r.mapping(item, known: ["policy", "mode"], required: ["policy"]) {
                                policyName = pf["policy"].flatMap(r.string)
                                if let m = pf["mode"], let s = r.oneOf(m, ConfigLoader.modeWords) { mode = ConfigLoader.mode(s) }
                            }
                        } else {
                            policyName = r.string(item)
                        }
                        guard let policyName else { continue }
                        guard let (builder, defaultMode, _) = builders[policyName] else {
                            if !policyNames.contains(policyName) {
                                let hint = DidYouMean.suggest(policyName, from: policyNames).map { "; did you mean \"\($0)\"?" } ?? ""
                                r.error(item, "unknown policy \"\(policyName)\" (defined: \(policyNames.joined(separator: ", ")))\(hint)")
                            }
                            continue
                        }
                        let typeName = policyTypeNames[policyName] ?? ""
                        if ["api_key", "basic", "jwt", "mtls"].contains(typeName) { identified = true }
                        if typeName == "subscription", !identified {
                            r.error(
                                item,
                                "policy \"\(policyName)\" (subscription) needs the calling application identified first: list an authenticating policy (api_key, basic, jwt or mtls) before it in this route"
                            )
                        }
                        links.append(PolicyLink(policy: policyName, mode: mode ?? defaultMode, build: builder))
                    }
                }
                var exposure = Exposure.detailed
                var explicitDetailed = false
                if let e = rf["exposure"], let s = r.oneOf(e, ["detailed", "minimal"]) {
                    exposure = Exposure(rawValue: s)!
                    explicitDetailed = exposure == .detailed
                }
                let strip = rf["strip_prefix"].flatMap(r.string)
                let maxBuffer = rf["max_body_buffer"].flatMap(r.size) ?? (1 << 20)
                if let template {
                    routes.append(
                        RouteDocument(
                            name: name, hosts: hosts, methods: methods, path: template, upstream: upstream, policies: links,
                            exposure: exposure, explicitDetailed: explicitDetailed, maxBufferedBody: maxBuffer, stripPrefix: strip))
                }
            }
        }
        if cluster == nil {
            for n in r.needsClusterStore {
                r.error(n, "scope: cluster shares counters through the cluster store: set store.postgres, or use scope: node")
            }
        }
        if !r.issues.isEmpty { throw ConfigError(issues: r.issues) }
        return ConfigDocument(
            settings: GatewayConfig(
                file: file, listen: listen, admin: admin, storePath: storePath, cluster: cluster, log: log, trustedProxies: trusted,
                problemTypeBase: typeBase, upstreams: upstreams, router: Router(routes: []), policyNames: policyNames, tls: tls,
                limits: limits, untrustedHeaders: HeaderNameSet(untrusted), tracing: tracing, console: console, portal: portal),
            routes: routes, warnings: r.warnings)
    }

    /// Modes: `enforce`/`shadow`, with the WAF's words `block`/`detect` as aliases.
    static let modeWords = ["enforce", "shadow", "block", "detect"]
    static func mode(_ word: String) -> CheckMode { word == "shadow" || word == "detect" ? .shadow : .enforce }

    static func yamlIssue(_ e: YamlError, file: String) -> ConfigIssue {
        switch e {
        case .scanner(let ctx, let problem, let mark, _), .parser(let ctx, let problem, let mark, _),
            .composer(let ctx, let problem, let mark, _):
            return ConfigIssue(
                file: file, line: mark.line, column: mark.column, path: "",
                message: "YAML syntax error: \(problem)\(ctx.map { " (\($0.text))" } ?? "")")
        case .duplicatedKeysInMapping(let dups, let ctx):
            return ConfigIssue(
                file: file, line: ctx.mark.line, column: ctx.mark.column, path: "",
                message: "duplicate keys: \(dups.joined(separator: ", "))")
        default:
            return ConfigIssue(file: file, line: 1, column: 1, path: "", message: "YAML error: \(e)")
        }
    }
}

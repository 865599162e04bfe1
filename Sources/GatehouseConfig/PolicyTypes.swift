import GatehouseChecks
import GatehouseCore
import GatehouseIdentity

/// What building a check may need from the running gateway (`ConfigDocument.provision`).
public struct BuildContext: Sendable {
    public var directory: any CredentialDirectory
    /// Directory of the configuration file, for relative paths (JWKS files, CA bundles).
    public var baseDirectory: String
    /// Runs the JWKS loads of `jwt` checks (the gateway's service); nil: each load is its own task.
    public var jwksRefresher: JWKSRefresher?
    /// The cluster's shared rate-limit counters (`scope: cluster`); nil without a cluster store.
    public var clusterRateLimits: (any ClusterRateLimits)?
    public init(
        directory: any CredentialDirectory, baseDirectory: String, jwksRefresher: JWKSRefresher? = nil,
        clusterRateLimits: (any ClusterRateLimits)? = nil
    ) {
        self.directory = directory
        self.baseDirectory = baseDirectory
        self.jwksRefresher = jwksRefresher
        self.clusterRateLimits = clusterRateLimits
    }
}

/// Builds a check once the configuration is valid.
public typealias CheckBuilder = @Sendable (BuildContext) -> any PolicyCheck

/// One policy `type:` the configuration accepts: its keys and how to read them.
///
/// To add a policy type, write a `PolicyType` value (usually in a `Policy+Name.swift` file) and
/// list it in ``PolicyTypes/all``.
public struct PolicyType: Sendable {
    public var name: String
    /// Keys besides `type` and `mode`.
    public var keys: [String]
    public var required: [String]
    /// Reads the settings; returns nil after reporting problems to the reader.
    public var read: @Sendable (_ id: String, _ node: ConfigNode, _ fields: [String: ConfigNode], _ reader: ConfigReader) -> CheckBuilder?

    public init(
        name: String, keys: [String], required: [String] = [],
        read: @escaping @Sendable (String, ConfigNode, [String: ConfigNode], ConfigReader) -> CheckBuilder?
    ) {
        self.name = name
        self.keys = keys
        self.required = required
        self.read = read
    }
}

/// The registry of policy types.
public enum PolicyTypes {
    public static let all: [PolicyType] = [
        ip, apiKey, request,
        jwt,
        basic,
        mtls,
        scopes,
        roles,
        owner,
        tenant,
        subscription,
        rateLimit, cors, csrf,
        waf,
    ]

    static func named(_ name: String) -> PolicyType? { all.first { $0.name == name } }

    static let ip = PolicyType(name: "ip", keys: ["allow", "deny"]) { id, node, f, r in
        let allow = f["allow"].map(r.cidrs) ?? []
        let deny = f["deny"].map(r.cidrs) ?? []
        if f["allow"] == nil, f["deny"] == nil {
            r.error(node, "an ip policy needs allow, deny or both")
        }
        return { _ in IPCheck(id: id, allow: allow, deny: deny) }
    }

    static let apiKey = PolicyType(name: "api_key", keys: ["header", "query", "forward_key"]) { id, node, f, r in
        let header = f["header"].flatMap(r.string)
        let query = f["query"].flatMap(r.string)
        let forward = f["forward_key"].flatMap(r.bool) ?? false
        let useHeader = header ?? (query == nil ? "X-API-Key" : nil)
        return { ctx in APIKeyCheck(id: id, header: useHeader, queryParameter: query, forwardKey: forward, directory: ctx.directory) }
    }

    /// `subscription`: `{ type: subscription, service: payments }`: the identified application needs
    /// an approved subscription to the named service (a service of the control plane's store).
    static let subscription = PolicyType(name: "subscription", keys: ["service"], required: ["service"]) { id, node, f, r in
        let service = f["service"].flatMap(r.string) ?? ""
        return { ctx in SubscriptionCheck(id: id, service: service, directory: ctx.directory as? any SubscriptionDirectory) }
    }

    static let request = PolicyType(name: "request", keys: ["methods", "content_types", "max_body", "max_headers"]) { id, node, f, r in
        let methods = f["methods"].map(r.strings)?.map { $0.uppercased() } ?? []
        let types = f["content_types"].map(r.strings) ?? []
        let maxBody = f["max_body"].flatMap(r.size)
        let maxHeaders = f["max_headers"].flatMap(r.size)
        return { _ in RequestShapeCheck(id: id, methods: methods, contentTypes: types, maxBodyBytes: maxBody, maxHeaderBytes: maxHeaders) }
    }
}

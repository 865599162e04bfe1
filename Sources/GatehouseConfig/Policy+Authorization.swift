import GatehouseChecks
import GatehouseCore

extension ConfigReader {
    /// A mapping of names to string lists, e.g. `{ GET: [orders:read], POST: [orders:write] }`.
    func stringLists(_ n: ConfigNode) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for (k, v) in namedEntries(n) { out[k] = strings(v) }
        return out
    }

    /// A mapping of names to strings.
    func stringMap(_ n: ConfigNode) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in namedEntries(n) { if let s = string(v) { out[k] = s } }
        return out
    }
}

extension PolicyTypes {
    /// `scopes`: `{ type: scopes, require: [orders:write], match: all | any, by_method: { GET: [orders:read] } }`.
    static let scopes = PolicyType(name: "scopes", keys: ["require", "match", "by_method"]) { id, node, f, r in
        let require = f["require"].map(r.strings) ?? []
        let byMethod = f["by_method"].map(r.stringLists) ?? [:]
        if require.isEmpty, byMethod.isEmpty { r.error(node, "a scopes policy needs require, by_method or both") }
        let match = f["match"].flatMap { r.oneOf($0, ["all", "any"]) }.flatMap(ScopesCheck.Match.init) ?? .all
        return { _ in ScopesCheck(id: id, require: require, byMethod: byMethod, match: match) }
    }

    /// `roles`: `{ type: roles, any_of: [admin], permissions: { admin: [orders:write] }, require: [orders:write], by_method: {…} }`.
    static let roles = PolicyType(name: "roles", keys: ["any_of", "permissions", "require", "by_method"]) { id, node, f, r in
        let anyOf = f["any_of"].map(r.strings) ?? []
        let permissions = f["permissions"].map(r.stringLists) ?? [:]
        let require = f["require"].map(r.strings) ?? []
        let byMethod = f["by_method"].map(r.stringLists) ?? [:]
        if anyOf.isEmpty, require.isEmpty, byMethod.isEmpty { r.error(node, "a roles policy needs any_of, require or by_method") }
        if (!require.isEmpty || !byMethod.isEmpty), permissions.isEmpty {
            r.error(node, "require and by_method name permissions: add a permissions mapping of roles to permissions")
        }
        return { _ in RolesCheck(id: id, anyRole: anyOf, permissions: permissions, require: require, byMethod: byMethod) }
    }

    /// `owner`: `{ type: owner, param: id | body_field: user_id, claim: sub }`.
    static let owner = PolicyType(name: "owner", keys: ["param", "body_field", "claim"]) { id, node, f, r in
        let param = f["param"].flatMap(r.string)
        let field = f["body_field"].flatMap(r.string)
        if param == nil, field == nil { r.error(node, "an owner policy needs param (a path parameter) or body_field (a JSON body field)") }
        let claim = f["claim"].flatMap(r.string) ?? "sub"
        return { _ in OwnerCheck(id: id, pathParam: param, bodyField: field, claim: claim) }
    }

    /// `tenant`: `{ type: tenant, tenant: acme | param: tenant | header: X-Tenant }`.
    static let tenant = PolicyType(name: "tenant", keys: ["tenant", "param", "header"]) { id, node, f, r in
        let t = f["tenant"].flatMap(r.string)
        let param = f["param"].flatMap(r.string)
        let header = f["header"].flatMap(r.string)
        if t == nil, param == nil, header == nil { r.error(node, "a tenant policy needs tenant (fixed), param or header") }
        return { _ in TenantCheck(id: id, tenant: t, pathParam: param, header: header) }
    }

    /// `basic`: `{ type: basic, realm: api }`.
    static let basic = PolicyType(name: "basic", keys: ["realm"]) { id, _, f, r in
        let realm = f["realm"].flatMap(r.string) ?? "gatehouse"
        return { ctx in BasicAuthCheck(id: id, realm: realm, directory: ctx.directory) }
    }

    /// `mtls`: `{ type: mtls, identity: cn | san, consumers: { "client.example": acme } }`.
    static let mtls = PolicyType(name: "mtls", keys: ["identity", "consumers"]) { id, _, f, r in
        let identity = f["identity"].flatMap { r.oneOf($0, ["cn", "san"]) }.flatMap(MTLSCheck.IdentitySource.init) ?? .cn
        let mapping = f["consumers"].map(r.stringMap) ?? [:]
        return { ctx in MTLSCheck(id: id, identity: identity, mapping: mapping, directory: ctx.directory) }
    }
}

import Foundation
import GatehouseCore

/// The denial an authorization check gives when no authenticating check ran before it.
func unauthenticated(_ request: PolicyRequest, check: String) -> Denial {
    Denial(code: .missingCredentials,
           detail: "\(request.summary) requires an authenticated caller before check \(check); no credential was accepted (is an authentication policy listed before it on this route?)",
           required: ["an authenticated caller"], presented: [],
           headers: [HeaderField("WWW-Authenticate", "Bearer realm=\"gatehouse\"")])
}

/// `scopes`: the principal must hold all (or any) of the required scopes, optionally per method.
public struct ScopesCheck: PolicyCheck {
    public enum Match: String, Sendable { case all, any }
    public let id: String
    public var type: String { "scopes" }
    /// Required scopes for every method not in `byMethod`.
    public let require: [String]
    /// Required scopes per uppercased method (GET needs orders:read, POST needs orders:write).
    public let byMethod: [String: [String]]
    public let match: Match

    public init(id: String, require: [String], byMethod: [String: [String]] = [:], match: Match = .all) {
        self.id = id
        self.require = require
        self.byMethod = Dictionary(uniqueKeysWithValues: byMethod.map { ($0.key.uppercased(), $0.value) })
        self.match = match
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        let needed = byMethod[request.method] ?? require
        if needed.isEmpty { return .skip(why: "no scopes required for \(request.method)") }
        guard let p = request.principal else { return .deny(unauthenticated(request, check: id)) }
        let granted = p.scopes
        let missing = needed.filter { !granted.contains($0) }
        let ok = match == .all ? missing.isEmpty : needed.contains { granted.contains($0) }
        let grantedText = granted.isEmpty ? "no scopes" : granted.joined(separator: " ")
        if ok {
            return .allow(note: "\(request.summary) needs \(match == .any ? "any of " : "")\(needed.joined(separator: " ")); granted \(grantedText)")
        }
        let want = match == .all ? missing : needed
        let needText = match == .all ? "scope\(want.count == 1 ? "" : "s") \(want.joined(separator: " "))" : "one of the scopes \(needed.joined(separator: " "))"
        let who = p.method.contains("jwt") ? "the token grants" : "the caller holds"
        return .deny(Denial(code: "insufficient_scope",
                            detail: "\(request.summary) needs \(needText); \(who) \(grantedText)",
                            required: needed, presented: granted,
                            hint: "Request a token that includes \(needText).",
                            headers: [HeaderField("WWW-Authenticate", "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", scope=\"\(needed.joined(separator: " "))\"")]))
    }
}

/// `roles`: role-based access. Either the principal holds one of `anyRole`, or one of its roles
/// grants every permission in `require` (per method when `byMethod` says so).
public struct RolesCheck: PolicyCheck {
    public let id: String
    public var type: String { "roles" }
    public let anyRole: [String]
    /// Role → permissions it grants.
    public let permissions: [String: [String]]
    public let require: [String]
    public let byMethod: [String: [String]]

    public init(id: String, anyRole: [String] = [], permissions: [String: [String]] = [:], require: [String] = [], byMethod: [String: [String]] = [:]) {
        self.id = id
        self.anyRole = anyRole
        self.permissions = permissions
        self.require = require
        self.byMethod = Dictionary(uniqueKeysWithValues: byMethod.map { ($0.key.uppercased(), $0.value) })
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        guard let p = request.principal else { return .deny(unauthenticated(request, check: id)) }
        let roles = p.roles
        let rolesText = roles.isEmpty ? "no roles" : roles.joined(separator: ", ")
        var notes: [String] = []
        if !anyRole.isEmpty {
            guard let hit = anyRole.first(where: { roles.contains($0) }) else {
                return .deny(Denial(code: "missing_role", detail: "\(request.summary) needs role \(anyRole.joined(separator: " or ")); the caller has \(rolesText)",
                                    required: anyRole, presented: roles,
                                    hint: "Ask an administrator to grant role \(anyRole.joined(separator: " or "))."))
            }
            notes.append("role \(hit)")
        }
        let needed = byMethod[request.method] ?? require
        if !needed.isEmpty {
            let granted = Set(roles.flatMap { permissions[$0] ?? [] })
            let missing = needed.filter { !granted.contains($0) }
            if !missing.isEmpty {
                let grantingRoles = permissions.filter { !Set($0.value).isDisjoint(with: missing) }.keys.sorted()
                return .deny(Denial(code: "missing_permission",
                                    detail: "\(request.summary) needs permission \(missing.joined(separator: ", ")); the caller's roles (\(rolesText)) grant \(granted.isEmpty ? "none" : granted.sorted().joined(separator: ", "))",
                                    required: needed, presented: roles.map { "role \($0)" } + granted.sorted(),
                                    hint: grantingRoles.isEmpty ? "No role grants \(missing.joined(separator: ", ")); ask the operator." : "Ask an administrator for role \(grantingRoles.joined(separator: " or ")), which grants it."))
            }
            notes.append("permissions \(needed.joined(separator: ", ")) granted by \(rolesText)")
        }
        return .allow(note: notes.isEmpty ? "no role constraints" : notes.joined(separator: "; "))
    }
}

/// `owner`: a path parameter or JSON body field must equal a principal claim (`/users/{id}` only
/// when `sub == id`).
public struct OwnerCheck: PolicyCheck {
    public let id: String
    public var type: String { "owner" }
    public let pathParam: String?
    public let bodyField: String?
    /// Principal claim to compare: `sub` (default), `consumer`, or any token claim path.
    public let claim: String
    public var needsBody: Bool { bodyField != nil }

    public init(id: String, pathParam: String? = nil, bodyField: String? = nil, claim: String = "sub") {
        self.id = id
        self.pathParam = pathParam
        self.bodyField = bodyField
        self.claim = claim
    }

    func principalValue(_ p: Principal) -> String? {
        if let v = ClaimPath.lookup(claim, in: p.claims)?.scalarString { return v }
        switch claim {
        case "sub": return p.subject
        case "consumer": return p.consumerName
        default: return nil
        }
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        guard let p = request.principal else { return .deny(unauthenticated(request, check: id)) }
        var owner: String?
        var source = ""
        if let pathParam {
            owner = request.pathParams[pathParam].map { PercentDecoding.decode($0) }
            source = "path parameter {\(pathParam)}"
        }
        if owner == nil, let bodyField {
            source = "body field \(bodyField)"
            if let body = request.body, let obj = try? JSONDecoder().decode([String: JSONValue].self, from: Data(body)) {
                owner = ClaimPath.lookup(bodyField, in: obj)?.scalarString
            }
        }
        guard let owner else {
            return .deny(Denial(code: "not_owner", detail: "\(request.summary): the resource owner could not be read from \(source), so ownership cannot be established",
                                required: ["\(source) equal to the caller's \(claim)"], presented: []))
        }
        guard let mine = principalValue(p) else {
            return .deny(Denial(code: "not_owner", detail: "\(request.summary) belongs to \(owner) (\(source)); the caller has no \(claim) claim to compare",
                                required: ["\(claim) = \(owner)"], presented: ["no \(claim)"]))
        }
        guard mine == owner else {
            return .deny(Denial(code: "not_owner", detail: "\(request.summary) belongs to \(owner) (\(source)); the caller's \(claim) is \(mine)",
                                required: ["\(claim) = \(owner)"], presented: ["\(claim) = \(mine)"]))
        }
        return .allow(note: "\(claim) \(mine) owns \(source) \(owner)")
    }
}

/// `tenant`: the caller's tenant must be the API's (fixed in the policy, or read from a path
/// parameter or header of the request).
public struct TenantCheck: PolicyCheck {
    public let id: String
    public var type: String { "tenant" }
    public let tenant: String?
    public let pathParam: String?
    public let header: String?

    public init(id: String, tenant: String? = nil, pathParam: String? = nil, header: String? = nil) {
        self.id = id
        self.tenant = tenant
        self.pathParam = pathParam
        self.header = header
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        guard let p = request.principal else { return .deny(unauthenticated(request, check: id)) }
        var expected = tenant
        var source = "this API"
        if expected == nil, let pathParam, let v = request.pathParams[pathParam] { expected = PercentDecoding.decode(v); source = "path parameter {\(pathParam)}" }
        if expected == nil, let header, let v = request.headers[header] { expected = String(v.trimmingSpaces); source = "header \(header)" }
        guard let expected else {
            return .deny(Denial(code: "wrong_tenant", detail: "\(request.summary): the target tenant could not be determined (\([pathParam.map { "path parameter {\($0)}" }, header.map { "header \($0)" }].compactMap { $0 }.joined(separator: " or ")) missing)",
                                required: ["a tenant"], presented: p.tenant.map { ["tenant \($0)"] } ?? []))
        }
        guard let mine = p.tenant else {
            return .deny(Denial(code: "wrong_tenant", detail: "\(request.summary) belongs to tenant \(expected) (\(source)); the caller belongs to no tenant",
                                required: ["tenant \(expected)"], presented: ["no tenant"]))
        }
        guard mine == expected else {
            return .deny(Denial(code: "wrong_tenant", detail: "\(request.summary) belongs to tenant \(expected) (\(source)); the caller belongs to tenant \(mine)",
                                required: ["tenant \(expected)"], presented: ["tenant \(mine)"]))
        }
        return .allow(note: "tenant \(mine) matches \(source)")
    }
}

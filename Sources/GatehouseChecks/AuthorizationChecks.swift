import Foundation
import GatehouseCore

/// The denial an authorization check gives when no authenticating check ran before it.
func unauthenticated(_ request: PolicyRequest, check: String) -> Denial {
    Denial(
        code: .missingCredentials,
        detail:
            "\(request.summary) requires an authenticated caller before check \(check); no credential was accepted (is an authentication policy listed before it on this route?)",
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
            return .allow(
                note: "\(request.summary) needs \(match == .any ? "any of " : "")\(needed.joined(separator: " ")); granted \(grantedText)")
        }
        let want = match == .all ? missing : needed
        let needText =
            match == .all
            ? "scope\(want.count == 1 ? "" : "s") \(want.joined(separator: " "))" : "one of the scopes \(needed.joined(separator: " "))"
        let who = p.method.contains("jwt") ? "the token grants" : "the caller holds"
        return .deny(
            Denial(
                code: .insufficientScope,
                detail: "\(request.summary) needs \(needText); \(who) \(grantedText)",
                required: needed, presented: granted,
                hint: "Request a token that includes \(needText).",
                headers: [
                    HeaderField(
                        "WWW-Authenticate",
                        "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", scope=\"\(needed.joined(separator: " "))\"")
                ]))
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

    public init(
        id: String, anyRole: [String] = [], permissions: [String: [String]] = [:], require: [String] = [],
        byMethod: [String: [String]] = [:]
    ) {
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
                return .deny(
                    Denial(
                        code: .missingRole,
                        detail: "\(request.summary) needs role \(anyRole.joined(separator: " or ")); the caller has \(rolesText)",
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
                return .deny(
                    Denial(
                        code: .missingPermission,
                        detail:
                            "\(request.summary) needs permission \(missing.joined(separator: ", ")); the caller's roles (\(rolesText)) grant \(granted.isEmpty ? "none" : granted.sorted().joined(separator: ", "))",
                        required: needed, presented: roles.map { "role \($0)" } + granted.sorted(),
                        hint: grantingRoles.isEmpty
                            ? "No role grants \(missing.joined(separator: ", ")); ask the operator."
                            : "Ask an administrator for role \(grantingRoles.joined(separator: " or ")), which grants it."))
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

    /// The principal's value to compare, as exact text: a token claim that is a string or an
    /// integer within ±(2^53 − 1); `sub` and `consumer` fall back to the principal's subject and
    /// consumer name for other authentication methods.
    func principalValue(_ p: Principal) -> ClaimText {
        if let v = ClaimPath.lookup(claim, in: p.claims) {
            if let t = v.exactText { return .text(t) }
            if case .number = v {
                return .notComparable(
                    "the number \(v.scalarString ?? "?"), which the gateway cannot compare exactly (it is not an integer within ±(2^53 − 1))"
                )
            }
            switch v {
            case .bool(let b): return .notComparable("the boolean \(b), not a string or integer")
            case .null: return .notComparable("null")
            case .array: return .notComparable("an array, not a string or integer")
            default: return .notComparable("an object, not a string or integer")
            }
        }
        switch claim {
        case "sub": return p.subject.map { .text($0) } ?? .absent
        case "consumer": return p.consumerName.map { .text($0) } ?? .absent
        default: return .absent
        }
    }

    enum ClaimText {
        case text(String)
        case absent
        case notComparable(String)
    }

    /// What the owner field of a body holds: its exact text, or why it cannot be compared.
    enum BodyOwner {
        case text(String)
        case missing
        case notComparable(String)
        case ambiguous(Denial)
    }

    /// Reads `bodyField` (a dotted path of member names) from a JSON body with the strict reader.
    /// A body that does not read exactly one way (duplicate names, invalid JSON, too deep) is
    /// `ambiguous_body`; so is a path that names two members (`"a.b"` and `"a": {"b"}`).
    func readBodyOwner(_ request: PolicyRequest, _ body: [UInt8], _ bodyField: String) -> BodyOwner {
        if let why = OwnerCheck.notPlainJSON(request.headers) {
            return .ambiguous(
                ambiguousBody(
                    request, why,
                    why:
                        "the upstream would not read the body as the UTF-8 JSON the check reads (a form body, say, can carry other fields than the JSON text)"
                ))
        }
        let paths = OwnerCheck.readings(of: bodyField)
        let found: [[String]: StrictJSONValue]
        do {
            found = try StrictJSON.values(at: Set(paths), in: body)
        } catch let e as StrictJSONError {
            return .ambiguous(
                ambiguousBody(
                    request, e.description,
                    why: e.kind == .duplicateKey
                        ? "JSON parsers disagree on which of two same-named members wins (Foundation keeps the first; Python, Node and Go the last), so the gateway could check another value than the upstream acts on"
                        : "the upstream's parser could read it differently, or not at all"))
        } catch {
            return .missing
        }
        let hits = paths.filter { found[$0] != nil }
        if hits.count > 1 {
            let shown = hits.map { "/" + $0.map(StrictJSON.pointerToken).joined(separator: "/") }
            return .ambiguous(
                ambiguousBody(
                    request, "body field \(bodyField) names both \(shown.joined(separator: " and "))",
                    why: "readers of a dotted path disagree on which member it means"))
        }
        guard let path = hits.first, let v = found[path] else { return .missing }
        let pointer = "/" + path.map(StrictJSON.pointerToken).joined(separator: "/")
        switch v {
        case .string(let s): return .text(s)
        case .number(let t):
            if let i = OwnerCheck.exactInteger(t) { return .text(i) }
            return .ambiguous(
                ambiguousBody(
                    request, "body field \(bodyField) (\(pointer)) is the number \(t.count > 40 ? String(t.prefix(40)) + "…" : t)",
                    why:
                        "a number with a fraction or exponent, or an integer beyond ±(2^53 − 1), is read as different values by different parsers (JavaScript rounds 9007199254740993 to 9007199254740992; Python reads 1.0 as 1.0, JavaScript as 1)"
                ))
        default:
            return .notComparable("\(v.kindText) at \(pointer)")
        }
    }

    func ambiguousBody(_ request: PolicyRequest, _ what: String, why: String) -> Denial {
        Denial(
            code: .ambiguousBody, detail: "\(request.summary): check \(id) refused the JSON body: \(what); \(why)",
            required: ["a strict JSON body (RFC 8259) with each member name once per object"], presented: [what],
            hint: "Send each member once, as strict UTF-8 JSON; send identifiers as strings.")
    }

    /// Why the body is not plainly UTF-8 JSON by its fields, or nil: its Content-Type must be
    /// `application/json` or `application/*+json`, well-formed (RFC 9110 §8.3.1, §5.6.6), with at
    /// most one `charset` parameter and that one UTF-8; and it must carry no Content-Encoding field
    /// at all (every field is looked at, not only the first).
    ///
    /// Parameters are read strictly, since upstream frameworks read sloppy ones their own ways:
    /// `charset = utf-7` (spaces around `=`) is no parameter to a strict reader, but Django and
    /// Spring trim it and decode the body as UTF-7, in which `+ACI-` is a quote. So each parameter
    /// must be `token=token` or `token="quoted string"` with no space around `=`; a parameter that
    /// is not, a repeated `charset`, or a `charset` other than `utf-8` (unquoted, any letter case)
    /// makes the body not plain.
    static func notPlainJSON(_ headers: HeaderList) -> String? {
        guard let type = headers["content-type"] else { return "the body has no Content-Type (application/json expected)" }
        let media = (type.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmingSpaces.lowercased()
        guard media == "application/json" || (media.hasPrefix("application/") && media.hasSuffix("+json")) else {
            return "the body is declared \(DisplayOwner.text(String(media.prefix(80)))), not application/json"
        }
        let parameters: [(name: String, value: String)]
        switch MediaTypeParameters.parse(type) {
        case .success(let p): parameters = p
        case .failure(let e):
            return
                "the Content-Type \(e.description); parsers disagree on what such a parameter says (Django and Spring trim `charset = utf-7` and decode the body as UTF-7)"
        }
        var charsets = 0
        for p in parameters where p.name.lowercased() == "charset" {
            charsets += 1
            if charsets > 1 { return "the Content-Type names a charset twice; parsers disagree on which one counts" }
            let cs = p.value.lowercased()
            if cs != "utf-8" { return "the body is declared charset \(DisplayOwner.text(String(cs.prefix(40)))); JSON is read as UTF-8" }
        }
        let codings = headers.values("content-encoding")
        if !codings.isEmpty {
            let shown = codings.prefix(4).map { DisplayOwner.text(String($0.prefix(40))) }.joined(separator: ", ")
            return
                "the body is content-encoded (Content-Encoding \(shown)\(codings.count > 1 ? " in \(codings.count) fields" : "")); the check reads it as sent, the upstream decoded"
        }
        return nil
    }

    /// Every way a dotted field path can be read as member names: `a.b` is ["a.b"] or ["a", "b"].
    static func readings(of field: String) -> [[String]] {
        let parts = field.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count > 1, parts.count <= 8 else { return [parts] }
        var out: [[String]] = []
        for mask in 0..<(1 << (parts.count - 1)) {
            var path: [String] = []
            var current = parts[0]
            for k in 1..<parts.count {
                if mask & (1 << (k - 1)) != 0 { current += "." + parts[k] } else { path.append(current); current = parts[k] }
            }
            path.append(current)
            out.append(path)
        }
        return out
    }

    /// A JSON number's text as a canonical decimal integer when it is one within ±(2^53 − 1)
    /// ("-0" is "0"); nil for fractions, exponents and larger integers.
    static func exactInteger(_ text: String) -> String? {
        var digits = Substring(text)
        let negative = digits.hasPrefix("-")
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        guard digits.count < 16 || (digits.count == 16 && digits <= "9007199254740991") else { return nil }
        if digits == "0" { return "0" }
        return negative ? "-" + digits : String(digits)
    }

    /// Exact comparison: the same Unicode scalars (not merely canonically equivalent), as the
    /// upstream compares.
    static func same(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        guard let p = request.principal else { return .deny(unauthenticated(request, check: id)) }
        var owner: String?
        var source = ""
        var unreadable: String?
        if let pathParam {
            // The router decoded the parameter once; it is used as it is (decoding again would
            // let %2561lice pass for alice while the upstream sees %61lice).
            owner = request.pathParams[pathParam]
            source = "path parameter {\(pathParam)}"
        }
        if owner == nil, let bodyField {
            source = "body field \(bodyField)"
            if let body = request.body {
                switch readBodyOwner(request, body, bodyField) {
                case .text(let t): owner = t
                case .missing: break
                case .notComparable(let what): unreadable = what
                case .ambiguous(let d): return .deny(d)
                }
            }
        }
        guard let owner else {
            let why =
                unreadable.map { "the resource owner in \(source) is \($0), not a string or integer" }
                ?? "the resource owner could not be read from \(source)"
            return .deny(
                Denial(
                    code: .notOwner, detail: "\(request.summary): \(why), so ownership cannot be established",
                    required: ["\(source) equal to the caller's \(claim)"], presented: []))
        }
        let shownOwner = DisplayOwner.text(owner)
        let mine: String
        switch principalValue(p) {
        case .text(let t): mine = t
        case .absent:
            return .deny(
                Denial(
                    code: .notOwner,
                    detail: "\(request.summary) belongs to \(shownOwner) (\(source)); the caller has no \(claim) claim to compare",
                    required: ["\(claim) = \(shownOwner)"], presented: ["no \(claim)"]))
        case .notComparable(let what):
            return .deny(
                Denial(
                    code: .notOwner, detail: "\(request.summary) belongs to \(shownOwner) (\(source)); the caller's \(claim) is \(what)",
                    required: ["\(claim) = \(shownOwner)"], presented: ["\(claim) not comparable"],
                    hint: "Issue the \(claim) claim as a string."))
        }
        guard OwnerCheck.same(mine, owner) else {
            return .deny(
                Denial(
                    code: .notOwner,
                    detail: "\(request.summary) belongs to \(shownOwner) (\(source)); the caller's \(claim) is \(DisplayOwner.text(mine))",
                    required: ["\(claim) = \(shownOwner)"], presented: ["\(claim) = \(DisplayOwner.text(mine))"]))
        }
        return .allow(note: "\(claim) \(DisplayOwner.text(mine)) owns \(source) \(shownOwner)")
    }
}

/// Request-supplied identifiers in denials: at most 128 characters, control characters escaped.
enum DisplayOwner {
    static func text(_ s: String) -> String {
        var out = ""
        var n = 0
        for u in s.unicodeScalars {
            n += 1
            if n > 128 { out += "…"; break }
            if u.value < 0x20 || (u.value >= 0x7F && u.value <= 0x9F) {
                out += "\\u{" + String(u.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }
}

/// Reads the parameters of a media type (RFC 9110 §8.3.1 and §5.6.6) strictly:
///
///     media-type = type "/" subtype *( OWS ";" OWS [ parameter ] )
///     parameter  = token "=" ( token / quoted-string )
///
/// Whitespace is allowed around `;` only; names are returned as sent (compare them ignoring
/// letter case), values unquoted (`\x` is `x` inside quotes).
enum MediaTypeParameters {
    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ text: String) -> Result<[(name: String, value: String)], Malformed> {
        let b = Array(text.utf8)
        var i = 0
        func skipOWS() { while i < b.count, b[i] == 0x20 || b[i] == 0x09 { i += 1 } }
        func token() -> String? {
            let start = i
            while i < b.count, isTokenByte(b[i]) { i += 1 }
            return i > start ? String(decoding: b[start..<i], as: UTF8.self) : nil
        }
        /// The parameter from `start` to the next `;` (or the end), for an explanation.
        func shown(from start: Int) -> String {
            var end = start
            while end < b.count, b[end] != 0x3B { end += 1 }
            return "\"" + DisplayOwner.text(String(decoding: b[start..<end], as: UTF8.self).trimmingSpaces.prefix(60).description) + "\""
        }
        skipOWS()
        guard token() != nil, i < b.count, b[i] == 0x2F else {
            return .failure(Malformed(description: "is not a media type (type/subtype)"))
        }
        i += 1
        guard token() != nil else { return .failure(Malformed(description: "is not a media type (type/subtype)")) }
        var out: [(name: String, value: String)] = []
        while true {
            skipOWS()
            if i == b.count { return .success(out) }
            guard b[i] == 0x3B else {
                return .failure(Malformed(description: "has \(shown(from: i)) where ';' and a parameter were expected"))
            }
            i += 1
            skipOWS()
            if i == b.count || b[i] == 0x3B { continue }  // an empty parameter is allowed
            let start = i
            guard let name = token(), i < b.count, b[i] == 0x3D else {
                return .failure(
                    Malformed(
                        description:
                            "parameter \(shown(from: start)) is not a well-formed name=value (RFC 9110 §5.6.6: a token, '=' with no space around it, a token or quoted string)"
                    ))
            }
            i += 1
            var value = ""
            if i < b.count, b[i] == 0x22 {
                i += 1
                var bytes: [UInt8] = []
                var closed = false
                while i < b.count {
                    let c = b[i]
                    if c == 0x22 { closed = true; i += 1; break }
                    if c == 0x5C {
                        guard i + 1 < b.count, isQuotable(b[i + 1]) else { break }
                        bytes.append(b[i + 1]); i += 2; continue
                    }
                    guard isQuotable(c) else { break }
                    bytes.append(c); i += 1
                }
                guard closed else {
                    return .failure(Malformed(description: "parameter \(shown(from: start)) has a malformed quoted string"))
                }
                value = String(decoding: bytes, as: UTF8.self)
            } else {
                guard let v = token() else {
                    return .failure(
                        Malformed(
                            description:
                                "parameter \(shown(from: start)) is not a well-formed name=value (RFC 9110 §5.6.6: a token, '=' with no space around it, a token or quoted string)"
                        ))
                }
                value = v
            }
            // What follows a value must be OWS and ';' or the end.
            let after = i
            skipOWS()
            if i < b.count, b[i] != 0x3B {
                return .failure(
                    Malformed(
                        description:
                            "parameter \(shown(from: start)) is not a well-formed name=value (RFC 9110 §5.6.6): \(shown(from: after)) follows its value"
                    ))
            }
            out.append((name, value))
        }
    }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenByte(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default: return false
        }
    }

    /// qdtext and the characters a quoted-pair may escape: HTAB, SP, VCHAR, obs-text.
    static func isQuotable(_ c: UInt8) -> Bool { c == 0x09 || (c >= 0x20 && c != 0x7F) }
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
        // The router decoded the parameter once; it is used as it is.
        if expected == nil, let pathParam, let v = request.pathParams[pathParam] { expected = v; source = "path parameter {\(pathParam)}" }
        if expected == nil, let header, let v = request.headers[header] {
            // One value only: with two fields (or a list) the check would read one and the
            // upstream might use the other.
            let count = request.headers.values(header).count
            if count > 1 || v.contains(",") {
                return .deny(
                    Denial(
                        code: .badRequest, status: 400,
                        detail:
                            "\(request.summary): header \(header) names the tenant \(count > 1 ? "in \(count) fields" : "as a list"); the upstream could read another tenant than check \(id) compares",
                        required: ["one \(header) field with one tenant"], presented: ["\(count) \(header) field\(count == 1 ? "" : "s")"]))
            }
            expected = String(v.trimmingSpaces); source = "header \(header)"
        }
        guard let expected else {
            return .deny(
                Denial(
                    code: .wrongTenant,
                    detail:
                        "\(request.summary): the target tenant could not be determined (\([pathParam.map { "path parameter {\($0)}" }, header.map { "header \($0)" }].compactMap { $0 }.joined(separator: " or ")) missing)",
                    required: ["a tenant"], presented: p.tenant.map { ["tenant \($0)"] } ?? []))
        }
        guard let mine = p.tenant else {
            return .deny(
                Denial(
                    code: .wrongTenant,
                    detail: "\(request.summary) belongs to tenant \(expected) (\(source)); the caller belongs to no tenant",
                    required: ["tenant \(expected)"], presented: ["no tenant"]))
        }
        guard OwnerCheck.same(mine, expected) else {
            return .deny(
                Denial(
                    code: .wrongTenant,
                    detail: "\(request.summary) belongs to tenant \(expected) (\(source)); the caller belongs to tenant \(mine)",
                    required: ["tenant \(expected)"], presented: ["tenant \(mine)"]))
        }
        return .allow(note: "tenant \(mine) matches \(source)")
    }
}

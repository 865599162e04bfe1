// The compiled form of a SecLang rule set: rules, targets, operators, actions. Built once by
// `SecLangLoader`; immutable afterwards and shared by every transaction. Written for this engine:
// no listed library models SecLang (libmodsecurity, the reference, is a C++ library that Debian
// ships only for its own connectors, and Coraza is Go).

import GatehouseCore

/// A load error with a stable code; equality is on the code alone.
package struct SecLangError: Error, Equatable, CustomStringConvertible {
    /// What went wrong, as a stable identifier.
    package enum Code: String, Sendable {
        case invalidRegex = "invalid_regex"
        case syntax
        case unsupported
        case missingFile = "missing_file"
        case invalidArgument = "invalid_argument"
    }
    package let code: Code
    package let message: String

    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    package var description: String { message }
    package static func == (a: SecLangError, b: SecLangError) -> Bool { a.code == b.code }
}

/// Where a directive was read from.
package struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    package let file: String
    package let line: Int
    package var description: String { "\(file):\(line)" }
}

/// Something the loader could not honour (an unknown directive, operator, action, variable or
/// transformation), reported with its place so an operator sees what a rule set asks for that the
/// engine does not do.
package struct SecLangDiagnostic: Sendable, CustomStringConvertible {
    package let location: SourceLocation
    package let message: String
    /// `.unsupported` for something the engine does not implement (the rest still runs);
    /// `.syntax` or `.invalidArgument` for a directive that is wrong as written (dropped).
    package var code: SecLangError.Code = .unsupported
    package var description: String { "\(location): \(message)" }
}

/// The variables (collections) the engine knows. Scalars are one-entry collections.
package enum Collection: String, Sendable, CaseIterable {
    case args = "ARGS", argsNames = "ARGS_NAMES", argsGet = "ARGS_GET", argsGetNames = "ARGS_GET_NAMES"
    case argsPost = "ARGS_POST", argsPostNames = "ARGS_POST_NAMES", argsCombinedSize = "ARGS_COMBINED_SIZE"
    case requestHeaders = "REQUEST_HEADERS", requestHeadersNames = "REQUEST_HEADERS_NAMES"
    case requestCookies = "REQUEST_COOKIES", requestCookiesNames = "REQUEST_COOKIES_NAMES"
    case requestFilename = "REQUEST_FILENAME", requestBasename = "REQUEST_BASENAME", requestURI = "REQUEST_URI"
    case requestURIRaw = "REQUEST_URI_RAW", requestLine = "REQUEST_LINE", requestMethod = "REQUEST_METHOD"
    case requestProtocol = "REQUEST_PROTOCOL", queryString = "QUERY_STRING", requestBody = "REQUEST_BODY"
    case requestBodyLength = "REQUEST_BODY_LENGTH"
    case files = "FILES", filesNames = "FILES_NAMES", filesSizes = "FILES_SIZES", filesCombinedSize = "FILES_COMBINED_SIZE"
    case xml = "XML", tx = "TX", ip = "IP", global = "GLOBAL", session = "SESSION", user = "USER", resource = "RESOURCE"
    case remoteAddr = "REMOTE_ADDR", remotePort = "REMOTE_PORT", uniqueID = "UNIQUE_ID", serverName = "SERVER_NAME"
    case matchedVar = "MATCHED_VAR", matchedVars = "MATCHED_VARS", matchedVarName = "MATCHED_VAR_NAME"
    case matchedVarsNames = "MATCHED_VARS_NAMES"
    case reqbodyError = "REQBODY_ERROR", reqbodyErrorMsg = "REQBODY_ERROR_MSG", reqbodyProcessor = "REQBODY_PROCESSOR"
    case multipartStrictError = "MULTIPART_STRICT_ERROR", multipartUnmatchedBoundary = "MULTIPART_UNMATCHED_BOUNDARY"
    case multipartBoundaryQuoted = "MULTIPART_BOUNDARY_QUOTED", multipartBoundaryWhitespace = "MULTIPART_BOUNDARY_WHITESPACE"
    case multipartDataBefore = "MULTIPART_DATA_BEFORE", multipartDataAfter = "MULTIPART_DATA_AFTER"
    case multipartHeaderFolding = "MULTIPART_HEADER_FOLDING", multipartLFLine = "MULTIPART_LF_LINE"
    case multipartMissingSemicolon = "MULTIPART_MISSING_SEMICOLON", multipartInvalidQuoting = "MULTIPART_INVALID_QUOTING"
    case multipartInvalidPart = "MULTIPART_INVALID_PART", multipartInvalidHeaderFolding = "MULTIPART_INVALID_HEADER_FOLDING"
    case multipartFileLimitExceeded = "MULTIPART_FILE_LIMIT_EXCEEDED", multipartCRLFLFLines = "MULTIPART_CRLF_LF_LINES"
    case multipartPartHeaders = "MULTIPART_PART_HEADERS", multipartFilename = "MULTIPART_FILENAME", multipartName = "MULTIPART_NAME"
    case fullRequest = "FULL_REQUEST", fullRequestLength = "FULL_REQUEST_LENGTH"
    case authType = "AUTH_TYPE", pathInfo = "PATH_INFO", duration = "DURATION"

    /// Collections whose entries have names (`ARGS:foo`); the rest are scalars.
    package var isKeyed: Bool {
        switch self {
        case .args, .argsNames, .argsGet, .argsGetNames, .argsPost, .argsPostNames, .requestHeaders, .requestHeadersNames,
            .requestCookies, .requestCookiesNames, .files, .filesNames, .filesSizes, .xml, .tx, .ip, .global, .session, .user,
            .resource, .matchedVars, .matchedVarsNames, .multipartPartHeaders:
            return true
        default: return false
        }
    }

    /// A small dense number per case (its declaration order), for tables indexed by collection:
    /// a fieldless enum is stored as that number, and hashing the raw String would cost more
    /// than the lookups it serves.
    package var ordinal: Int { Int(unsafeBitCast(self, to: UInt8.self)) }

    /// Collections written by setvar.
    package var isPersistent: Bool {
        switch self {
        case .tx, .ip, .global, .session, .user, .resource: return true
        default: return false
        }
    }
}

/// A value per collection, in an array indexed by `Collection.ordinal`.
package struct CollectionTable<Value> {
    private var slots: [Value?] = Array(repeating: nil, count: Collection.allCases.count)

    package init() {}

    package subscript(_ c: Collection) -> Value? {
        get { slots[c.ordinal] }
        _modify { yield &slots[c.ordinal] }
    }
}

/// Which entries of a collection a target selects.
extension CollectionTable: Sendable where Value: Sendable {}

package enum KeySelector: Sendable {
    case all
    /// A name, lowercased (names compare case-insensitively).
    case name(String)
    case regex(PCRERegex)

    func selects(_ lowerKey: String, scratch: RegexScratch) -> Bool {
        switch self {
        case .all: return true
        case .name(let n): return n == lowerKey
        case .regex(let r): return r.matches(lowerKey, scratch: scratch)
        }
    }
}

/// One target of a rule: `ARGS`, `ARGS:foo`, `&TX:x`, `REQUEST_COOKIES:/^__utm/`.
package struct Target: Sendable {
    package var collection: Collection
    package var key: KeySelector
    /// `&`: the number of selected entries instead of their values.
    package var count: Bool
    /// The name as written, for reports and ctl exclusions.
    package var text: String
}

/// A `!COLLECTION:key` exclusion.
package struct TargetExclusion: Sendable {
    package var collection: Collection
    package var key: KeySelector
}

/// A transformation function (`t:`).
package enum Transformation: String, Sendable, CaseIterable {
    case lowercase, uppercase, urlDecode, urlDecodeUni, htmlEntityDecode, jsDecode, cssDecode, cmdLine
    case compressWhitespace, removeWhitespace, removeNulls, replaceNulls, replaceComments, removeComments
    case removeCommentsChar, normalisePath, normalisePathWin, utf8toUnicode, base64Decode, base64DecodeExt
    case base64Encode, hexDecode, hexEncode, sha1, md5, length, trim, trimLeft, trimRight, escapeSeqDecode
    case urlEncode, sqlHexDecode

    /// Reads a `t:` name, with ModSecurity's alternative spellings.
    package static func named(_ name: String) -> Transformation? {
        switch name.lowercased() {
        case "normalizepath": return .normalisePath
        case "normalizepathwin": return .normalisePathWin
        default: return allCases.first { $0.rawValue.lowercased() == name.lowercased() }
        }
    }
}

/// A rule's operator, compiled.
package enum Operator: Sendable {
    case rx(PCRERegex)
    /// A pattern with macros (`^%{tx.allowed_charsets}$`), compiled per distinct expansion.
    case rxMacro(Macro, RegexCache)
    case pm(PhraseMatcher)
    case streq(Macro), contains(Macro), containsWord(Macro), beginsWith(Macro), endsWith(Macro), within(Macro)
    case eq(Macro), ge(Macro), gt(Macro), le(Macro), lt(Macro)
    case ipMatch([CIDRBlock])
    case detectSQLi, detectXSS
    case validateByteRange([Bool])
    case validateUrlEncoding, validateUtf8Encoding
    case unconditionalMatch, noMatch
}

/// The disruptive action a rule names.
package enum Disruptive: String, Sendable {
    case pass, block, deny, drop, allow, redirect
}

/// A `ctl:` action.
package enum Control: Sendable {
    case ruleRemoveByID([ClosedRange<Int>])
    case ruleRemoveByTag(PCRERegex)
    case ruleRemoveTargetByID([ClosedRange<Int>], TargetExclusion)
    case ruleRemoveTargetByTag(PCRERegex, TargetExclusion)
    case requestBodyProcessor(String)
    case ruleEngine(RuleEngineMode)
    /// Fill REQUEST_BODY whichever body processor runs.
    case forceRequestBodyVariable(Bool)
    /// A ctl the engine reads but has nothing to do for (audit log settings, body access, ...).
    case ignored(String)
}

/// SecRuleEngine.
package enum RuleEngineMode: String, Sendable {
    case on = "On", off = "Off", detectionOnly = "DetectionOnly"

    static func named(_ s: String) -> RuleEngineMode? {
        switch s.lowercased() {
        case "on": return .on
        case "off": return .off
        case "detectiononly": return .detectionOnly
        default: return nil
        }
    }
}

/// setvar: `=`, `=+`, `=-`, `!`.
package struct SetVar: Sendable {
    package enum Operation: Sendable { case set, add, subtract, delete }
    package var collection: Collection
    package var name: Macro
    package var operation: Operation
    package var value: Macro
}

/// A non-disruptive action run, in order, when a rule matches.
package enum Effect: Sendable {
    case setvar(SetVar)
    case ctl(Control)
}

/// One rule, or one link of a chain.
package final class Rule: Sendable {
    package let location: SourceLocation
    package let id: Int
    package let phase: Int
    package let targets: [Target]
    package let exclusions: [TargetExclusion]
    /// For each target, the exclusions of its collection (`exclusions` filtered once at load).
    let exclusionsByTarget: [[TargetExclusion]]
    /// For each target of one named setvar variable (`TX:foo`), the name a match reports
    /// (`TX:foo`), built once rather than per test; empty for other targets.
    let targetNames: [String]
    /// For those targets, the variable's name hashed once (`VariableStore.Name`); nil for others.
    let targetKeys: [VariableStore.Name?]
    package let op: Operator
    package let opName: String
    package let negated: Bool
    package let transformations: [Transformation]
    /// For each prefix of `transformations` (the first k of them), a number shared by every
    /// rule whose list starts the same way: the keys of the per-request transformation cache,
    /// so `t:urlDecodeUni,t:lowercase` reuses another rule's `t:urlDecodeUni`.
    package let transformationChains: [Int]
    /// The transformations' names, as matches report them.
    package let transformationNames: [String]
    package let multiMatch: Bool
    package let capture: Bool
    package let effects: [Effect]
    package let disruptive: Disruptive?
    package let status: Int?
    package let log: Bool
    package let msg: Macro?
    package let logdata: Macro?
    package let tags: [String]
    package let severity: String?
    package let skipAfter: String?
    package let skip: Int
    package let chained: Rule?
    /// SecMarker: a named place skipAfter jumps to; it matches nothing.
    package let marker: String?
    /// What any value this rule's operator matches must contain (`Prefilter.swift`); nil when
    /// the rule always runs (operators other than @rx, negated and multiMatch rules).
    package let requirement: Requirement?

    init(
        location: SourceLocation, id: Int, phase: Int, targets: [Target], exclusions: [TargetExclusion], op: Operator,
        opName: String, negated: Bool, transformations: [Transformation], transformationChains: [Int], multiMatch: Bool, capture: Bool,
        effects: [Effect], disruptive: Disruptive?, status: Int?, log: Bool, msg: Macro?, logdata: Macro?, tags: [String],
        severity: String?, skipAfter: String?, skip: Int, chained: Rule?, marker: String?
    ) {
        self.location = location
        self.id = id
        self.phase = phase
        self.targets = targets
        self.exclusions = exclusions
        exclusionsByTarget = targets.map { t in exclusions.filter { $0.collection == t.collection } }
        targetNames = targets.map { t in
            guard t.collection.isPersistent, case .name(let n) = t.key else { return "" }
            return t.collection.rawValue + ":" + n
        }
        targetKeys = targets.map { t in
            guard t.collection.isPersistent, case .name(let n) = t.key else { return nil }
            return VariableStore.Name(n)
        }
        self.op = op
        self.opName = opName
        self.negated = negated
        self.transformations = transformations
        self.transformationChains = transformationChains
        transformationNames = transformations.map(\.rawValue)
        self.multiMatch = multiMatch
        self.capture = capture
        self.effects = effects
        self.disruptive = disruptive
        self.status = status
        self.log = log
        self.msg = msg
        self.logdata = logdata
        self.tags = tags
        self.severity = severity
        self.skipAfter = skipAfter
        self.skip = skip
        self.chained = chained
        self.marker = marker
        if case .rx(let re) = op, !negated, !multiMatch {
            let r = PatternLiterals.requirement(of: re.pattern)
            requirement = r == .all ? nil : r
        } else {
            requirement = nil
        }
    }

    /// The same rule with `targets` and `exclusions` changed (SecRuleUpdateTargetById).
    func withTargets(_ targets: [Target], exclusions: [TargetExclusion]) -> Rule {
        Rule(
            location: location, id: id, phase: phase, targets: targets, exclusions: exclusions, op: op, opName: opName,
            negated: negated, transformations: transformations, transformationChains: transformationChains, multiMatch: multiMatch,
            capture: capture, effects: effects,
            disruptive: disruptive, status: status, log: log, msg: msg, logdata: logdata, tags: tags, severity: severity,
            skipAfter: skipAfter, skip: skip, chained: chained, marker: marker)
    }
}

/// A loaded rule set: rules in file order per phase, plus what the loader reported.
package struct RuleSet: Sendable {
    /// Rules of phases 1 and 2, in order; markers appear in both.
    package let phases: [[Rule]]
    package let diagnostics: [SecLangDiagnostic]
    package let engineMode: RuleEngineMode
    package let defaultDisruptive: [Int: Disruptive]
    package let componentSignatures: [String]
    /// The rules not run because they are of phases 3-5 (response) or logging.
    package let responseRuleCount: Int
    /// The literal prefilters of the @rx rules.
    package let prefilter: PrefilterIndex
    /// The number of distinct transformation chain prefixes (`Rule.transformationChains` are
    /// numbered 1 through this).
    package let chainCount: Int

    init(
        phases: [[Rule]], diagnostics: [SecLangDiagnostic], engineMode: RuleEngineMode, defaultDisruptive: [Int: Disruptive],
        componentSignatures: [String], responseRuleCount: Int
    ) {
        self.phases = phases
        self.diagnostics = diagnostics
        self.engineMode = engineMode
        self.defaultDisruptive = defaultDisruptive
        self.componentSignatures = componentSignatures
        self.responseRuleCount = responseRuleCount
        prefilter = PrefilterIndex(rules: phases.flatMap { $0 })
        var highest = 0
        for rule in phases.joined() {
            var link: Rule? = rule
            while let r = link {
                highest = max(highest, r.transformationChains.last ?? 0)
                link = r.chained
            }
        }
        chainCount = highest
    }

    /// All rules with an id, first link of each chain.
    package var ruleCount: Int { phases.reduce(0) { $0 + $1.filter { $0.marker == nil }.count } }
}

// Reads SecLang configuration text (Apache directive syntax: backslash continuations, quoted
// arguments, comma-separated actions) into a `RuleSet`. Hand-written: no listed library parses
// ModSecurity's configuration language.

import Foundation
import GatehouseCore

/// Loads SecLang files and text into a rule set. Everything the engine does not implement is
/// reported with its file and line; in strict mode it is an error instead.
package struct SecLangLoader {
    /// Reject anything unsupported instead of reporting it.
    package var strict: Bool
    package private(set) var diagnostics: [SecLangDiagnostic] = []
    private var rules: [Rule] = []
    private var responseRules = 0
    private var engineMode: RuleEngineMode = .on
    private var defaults: [Int: ActionDraft] = [:]
    private var signatures: [String] = []
    private var chains: [[Transformation]: Int] = [:]
    /// Links of a chain read so far, waiting for the last one.
    private var pendingChain: [RuleDraft] = []

    package init(strict: Bool = false) { self.strict = strict }

    /// Loads one file; `Include` inside it resolves relative to its directory.
    package mutating func load(file path: String) throws(SecLangError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SecLangError(.missingFile, "cannot read \(path)")
        }
        try load(text: String(decoding: data, as: UTF8.self), file: path)
    }

    /// Loads configuration text; `file` names it in reports and anchors relative paths.
    package mutating func load(text: String, file: String) throws(SecLangError) {
        for (line, directive) in SecLangLoader.logicalLines(text) {
            let location = SourceLocation(file: file, line: line)
            let args = SecLangLoader.words(directive)
            guard let name = args.first else { continue }
            do {
                try apply(name, Array(args.dropFirst()), at: location)
            } catch let error {
                if strict || error.code == .invalidRegex || error.code == .missingFile {
                    throw SecLangError(error.code, "\(location): \(error.message)")
                }
                diagnostics.append(SecLangDiagnostic(location: location, message: error.message, code: error.code))
            }
        }
    }

    /// The rule set loaded so far.
    package func build() -> RuleSet {
        var phases: [[Rule]] = [[], []]
        for rule in rules {
            if rule.marker != nil {
                phases[0].append(rule)
                phases[1].append(rule)
            } else if rule.phase == 1 || rule.phase == 2 {
                phases[rule.phase - 1].append(rule)
            }
        }
        var disruptive: [Int: Disruptive] = [:]
        for (phase, d) in defaults { disruptive[phase] = d.disruptive }
        var diagnostics = self.diagnostics
        if let open = pendingChain.first {
            diagnostics.append(
                SecLangDiagnostic(location: open.location, message: "chain never completed: the rule after it is missing", code: .syntax))
        }
        return RuleSet(
            phases: phases, diagnostics: diagnostics, engineMode: engineMode, defaultDisruptive: disruptive,
            componentSignatures: signatures, responseRuleCount: responseRules)
    }

    private mutating func report(_ location: SourceLocation, _ message: String) throws(SecLangError) {
        if strict { throw SecLangError(.unsupported, message) }
        diagnostics.append(SecLangDiagnostic(location: location, message: message))
    }

    // MARK: Directives

    /// Directives that only tune a web server module (limits, logs, temporary files): read and
    /// reported as having no effect here.
    static let serverSettings: Set<String> = [
        "secrequestbodyaccess", "secresponsebodyaccess", "secrequestbodylimit", "secrequestbodynofileslimit",
        "secrequestbodyinmemorylimit", "secrequestbodylimitaction", "secresponsebodylimit", "secresponsebodylimitaction",
        "secresponsebodymimetype", "secpcrematchlimit", "secpcrematchlimitrecursion", "secauditengine", "secauditlog",
        "secauditlogparts", "secauditlogtype", "secauditlogstoragedir", "secauditlogrelevantstatus", "secdebuglog",
        "secdebugloglevel", "sectmpdir", "secdatadir", "secuploaddir", "secargumentseparator", "seccookieformat",
        "secunicodemapfile", "secstatusengine", "sectmpsaveuploadedfiles", "secuploadkeepfiles", "secuploadfilemode",
        "secargumentslimit", "secxmlexternalentity",
    ]

    private mutating func apply(_ name: String, _ args: [String], at location: SourceLocation) throws(SecLangError) {
        switch name.lowercased() {
        case "secrule":
            guard args.count >= 2, args.count <= 3 else {
                throw SecLangError(.syntax, "SecRule takes variables, an operator and optional actions (\(args.count) arguments given)")
            }
            try addRule(targets: args[0], op: args[1], actions: args.count == 3 ? args[2] : "", at: location)
        case "secaction":
            guard args.count == 1 else { throw SecLangError(.syntax, "SecAction takes one argument (the actions)") }
            try addRule(targets: nil, op: "@unconditionalMatch", actions: args[0], at: location)
        case "secmarker":
            guard args.count == 1 else { throw SecLangError(.syntax, "SecMarker takes one argument (its name)") }
            try flushBrokenChain(location)
            rules.append(
                Rule(
                    location: location, id: 0, phase: 0, targets: [], exclusions: [], op: .noMatch, opName: "", negated: false,
                    transformations: [], transformationChains: [], multiMatch: false, capture: false, effects: [], disruptive: nil,
                    status: nil, log: false,
                    msg: nil, logdata: nil, tags: [], severity: nil, skipAfter: nil, skip: 0, chained: nil, marker: args[0]))
        case "secdefaultaction":
            guard args.count == 1 else { throw SecLangError(.syntax, "SecDefaultAction takes one argument (the actions)") }
            var draft = ActionDraft()
            try parseActions(args[0], into: &draft, at: location)
            defaults[draft.phase ?? 2] = draft
        case "secruleengine":
            guard let value = args.first, let mode = RuleEngineMode.named(value) else {
                throw SecLangError(.invalidArgument, "SecRuleEngine takes On, Off or DetectionOnly")
            }
            engineMode = mode
        case "seccomponentsignature":
            signatures.append(args.first ?? "")
        case "seccollectiontimeout":
            // Persistent collections live for one transaction here; the timeout has nothing to time.
            break
        case "secruleremovebyid":
            let ranges = try SecLangLoader.idRanges(args.joined(separator: " "))
            rules.removeAll { rule in rule.marker == nil && ranges.contains { $0.contains(rule.id) } }
        case "secruleremovebytag":
            let pattern = try PCRERegex(args.first ?? "")
            let scratch = RegexScratch()
            rules.removeAll { rule in rule.tags.contains { pattern.matches(Array($0.utf8), scratch: scratch) } }
        case "secruleremovebymsg":
            let pattern = try PCRERegex(args.first ?? "")
            let scratch = RegexScratch()
            rules.removeAll { rule in rule.msg.map { pattern.matches(Array($0.text.utf8), scratch: scratch) } ?? false }
        case "secruleupdatetargetbyid", "secruleupdatetargetbytag":
            guard args.count >= 2 else { throw SecLangError(.syntax, "\(name) takes a rule and the targets to add or exclude") }
            let byTag = name.lowercased() == "secruleupdatetargetbytag"
            let ranges = byTag ? [] : try SecLangLoader.idRanges(args[0])
            let tagPattern = byTag ? try PCRERegex(args[0]) : nil
            let scratch = RegexScratch()
            var problems: [String] = []
            let (targets, exclusions) = try parseTargets(args[1], problems: &problems)
            for p in problems { try report(location, p) }
            var found = false
            for (i, rule) in rules.enumerated() where rule.marker == nil {
                let hit =
                    byTag
                    ? rule.tags.contains { tagPattern!.matches(Array($0.utf8), scratch: scratch) }
                    : ranges.contains { $0.contains(rule.id) }
                if hit {
                    rules[i] = rule.withTargets(rule.targets + targets, exclusions: rule.exclusions + exclusions)
                    found = true
                }
            }
            if !found { try report(location, "\(name) \(args[0]): no rule loaded before it matches") }
        case "include":
            guard let pattern = args.first else { throw SecLangError(.syntax, "Include takes a path") }
            for path in SecLangLoader.expand(pattern, relativeTo: location.file) { try load(file: path) }
        default:
            if SecLangLoader.serverSettings.contains(name.lowercased()) {
                try report(location, "\(name) has no effect in this engine (a web server setting)")
            } else {
                try report(location, "unsupported directive \(name)")
            }
        }
    }

    private mutating func flushBrokenChain(_ location: SourceLocation) throws(SecLangError) {
        if !pendingChain.isEmpty {
            pendingChain = []
            try report(location, "a chained rule is followed by a directive that is not SecRule; the chain is dropped")
        }
    }

    static func expand(_ pattern: String, relativeTo file: String) -> [String] {
        let base = (file as NSString).deletingLastPathComponent
        let full = pattern.hasPrefix("/") ? pattern : (base as NSString).appendingPathComponent(pattern)
        guard full.contains("*") else { return [full] }
        let dir = (full as NSString).deletingLastPathComponent
        let glob = (full as NSString).lastPathComponent
        let parts = glob.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { name in
            guard name.hasPrefix(parts.first!), name.hasSuffix(parts.last!) else { return false }
            var rest = Substring(name.dropFirst(parts.first!.count))
            for p in parts.dropFirst().dropLast() {
                guard let r = rest.range(of: p) else { return false }
                rest = rest[r.upperBound...]
            }
            return rest.count >= parts.last!.count
        }.sorted().map { (dir as NSString).appendingPathComponent($0) }
    }

    // MARK: Rules

    private mutating func addRule(targets: String?, op: String, actions: String, at location: SourceLocation) throws(SecLangError) {
        var draft = RuleDraft(location: location)
        var problems: [String] = []
        if let targets {
            (draft.targets, draft.exclusions) = try parseTargets(targets, problems: &problems)
        }
        try parseActions(actions, into: &draft.actions, at: location)
        (draft.op, draft.opName, draft.negated) = try parseOperator(op, file: location.file, problems: &problems)
        // A response-phase rule is reported once, as not run; what it reads (RESPONSE_BODY, ...)
        // is not a gap of its own.
        let chainPhase = (pendingChain.first?.actions.phase ?? draft.actions.phase) ?? 2
        if chainPhase > 2 {
            if pendingChain.isEmpty {
                try report(
                    location,
                    "rule \(draft.actions.id ?? 0) is of phase \(chainPhase) (response or logging) and is not run: this engine inspects requests (phases 1 and 2)"
                )
            }
        } else {
            for p in problems { try report(location, p) }
        }

        let starter = pendingChain.first
        if starter == nil, draft.actions.id == nil {
            try report(location, "rule without an id")
        }
        pendingChain.append(draft)
        if draft.actions.chain { return }
        let links = pendingChain
        pendingChain = []
        let phase = links[0].actions.phase ?? 2
        if phase > 2 {
            responseRules += 1
            return
        }
        let defaultsForPhase = defaults[phase] ?? ActionDraft()
        var next: Rule? = nil
        for (k, link) in links.enumerated().reversed() {
            let head = links[0].actions
            let a = link.actions
            var transformations = a.resetTransformations ? [] : defaultsForPhase.transformations
            transformations += a.transformations
            let isStarter = k == 0
            next = Rule(
                location: link.location, id: head.id ?? 0, phase: phase, targets: link.targets, exclusions: link.exclusions,
                op: link.op, opName: link.opName, negated: link.negated, transformations: transformations,
                transformationChains: chainNumbers(transformations),
                multiMatch: a.multiMatch, capture: a.capture, effects: a.effects,
                disruptive: isStarter ? (head.disruptive ?? defaultsForPhase.disruptive) : nil,
                status: isStarter ? (head.status ?? defaultsForPhase.status) : nil,
                log: isStarter ? (head.log ?? defaultsForPhase.log ?? true) : false,
                msg: isStarter ? head.msg : nil, logdata: isStarter ? head.logdata : nil, tags: isStarter ? head.tags : [],
                severity: isStarter ? head.severity : nil, skipAfter: a.skipAfter, skip: a.skip, chained: next, marker: nil)
        }
        rules.append(next!)
    }

    private mutating func chainNumbers(_ t: [Transformation]) -> [Int] {
        (1...max(1, t.count)).prefix(t.count).map { k in
            let prefix = Array(t.prefix(k))
            if let n = chains[prefix] { return n }
            chains[prefix] = chains.count + 1
            return chains.count
        }
    }

    private func parseOperator(
        _ text: String, file: String, problems: inout [String]
    ) throws(SecLangError) -> (
        Operator, String, Bool
    ) {
        var s = Substring(text)
        var negated = false
        if s.hasPrefix("!") {
            negated = true
            s = s.dropFirst()
        }
        guard s.hasPrefix("@") else { return (try .rx(PCRERegex(String(s))), "rx", negated) }
        let name = String(s.dropFirst().prefix { !$0.isWhitespace })
        var arg = s.dropFirst(name.count + 1)
        if arg.first?.isWhitespace == true { arg = arg.dropFirst() }
        let param = String(arg)
        func macro() -> Macro { Macro(param, problems: &problems) }
        let op: Operator
        switch name.lowercased() {
        case "rx":
            if param.contains("%{") {
                op = .rxMacro(macro(), RegexCache())
            } else {
                op = .rx(try PCRERegex(param))
            }
        case "pm": op = .pm(PhraseMatcher(param.split(separator: " ").map { Array($0.utf8) }))
        case "pmfromfile", "pmf":
            var phrases: [[UInt8]] = []
            for path in param.split(separator: " ") {
                let full = SecLangLoader.expand(String(path), relativeTo: file).first ?? String(path)
                guard let data = FileManager.default.contents(atPath: full) else {
                    throw SecLangError(.missingFile, "@\(name): cannot read \(full)")
                }
                for line in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
                    let t = line.trimmingCharacters(in: .whitespaces)
                    if t.isEmpty || t.hasPrefix("#") { continue }
                    phrases.append(Array(t.utf8))
                }
            }
            op = .pm(PhraseMatcher(phrases))
        case "streq": op = .streq(macro())
        case "contains", "strmatch": op = .contains(macro())
        case "containsword": op = .containsWord(macro())
        case "beginswith": op = .beginsWith(macro())
        case "endswith": op = .endsWith(macro())
        case "within": op = .within(macro())
        case "eq": op = .eq(macro())
        case "ge": op = .ge(macro())
        case "gt": op = .gt(macro())
        case "le": op = .le(macro())
        case "lt": op = .lt(macro())
        case "ipmatch":
            var blocks: [CIDRBlock] = []
            for item in param.split(whereSeparator: { $0 == "," || $0 == " " }) {
                let text = item.contains("/") ? String(item) : String(item) + (item.contains(":") ? "/128" : "/32")
                switch CIDRBlock.parse(text) {
                case .success(let b): blocks.append(b)
                case .failure(let e): throw SecLangError(.invalidArgument, "@ipMatch: \(item): \(e)")
                }
            }
            op = .ipMatch(blocks)
        case "detectsqli": op = .detectSQLi
        case "detectxss": op = .detectXSS
        case "validatebyterange":
            var allowed = [Bool](repeating: false, count: 256)
            for item in param.split(separator: ",") {
                let bounds = item.trimmingCharacters(in: .whitespaces).split(separator: "-").compactMap { Int($0) }
                guard let lo = bounds.first, let hi = bounds.last, lo <= hi, hi < 256, lo >= 0 else {
                    throw SecLangError(.invalidArgument, "@validateByteRange: bad range \(item)")
                }
                for b in lo...hi { allowed[b] = true }
            }
            op = .validateByteRange(allowed)
        case "validateurlencoding": op = .validateUrlEncoding
        case "validateutf8encoding": op = .validateUtf8Encoding
        case "unconditionalmatch": op = .unconditionalMatch
        case "nomatch": op = .noMatch
        default:
            problems.append("unsupported operator @\(name): the rule never matches")
            op = .noMatch
        }
        return (op, name, negated)
    }

    // MARK: Targets

    private func parseTargets(_ text: String, problems: inout [String]) throws(SecLangError) -> ([Target], [TargetExclusion]) {
        var targets: [Target] = []
        var exclusions: [TargetExclusion] = []
        for item in SecLangLoader.splitTargets(text) {
            var s = Substring(item.trimmingCharacters(in: .whitespaces))
            var exclude = false, count = false
            if s.hasPrefix("!") {
                exclude = true
                s = s.dropFirst()
            }
            if s.hasPrefix("&") {
                count = true
                s = s.dropFirst()
            }
            let name = s.prefix { $0 != ":" }
            var keyText = s.dropFirst(name.count + 1)
            guard let collection = Collection(rawValue: name.uppercased()) else {
                problems.append("unsupported variable \(name)")
                continue
            }
            var key = KeySelector.all
            if s.contains(":") {
                if keyText.hasPrefix("'"), keyText.hasSuffix("'"), keyText.count >= 2 { keyText = keyText.dropFirst().dropLast() }
                if collection == .xml {
                    key = .name(keyText.hasPrefix("//@") ? "//@*" : "/*")
                    if keyText != "/*" && keyText != "//@*" {
                        problems.append(
                            "XPath \(keyText) is not evaluated: XML:\(keyText) reads all \(keyText.hasPrefix("//@") ? "attribute values" : "text")"
                        )
                    }
                } else if keyText.hasPrefix("/"), keyText.hasSuffix("/"), keyText.count >= 2 {
                    key = .regex(try PCRERegex(String(keyText.dropFirst().dropLast()), caseless: true))
                } else {
                    key = .name(keyText.lowercased())
                }
                if !collection.isKeyed {
                    problems.append("variable \(name) has no entries to select with :\(keyText)")
                }
            }
            if exclude {
                exclusions.append(TargetExclusion(collection: collection, key: key))
            } else {
                targets.append(Target(collection: collection, key: key, count: count, text: String(item)))
            }
        }
        return (targets, exclusions)
    }

    /// Splits `A|!B:/x|y/|C` on the bars outside regular-expression keys.
    static func splitTargets(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        var inRegex = false
        var afterColon = false
        var prev: Character = " "
        for ch in text {
            if ch == "|" && !inRegex {
                out.append(current)
                current = ""
                afterColon = false
                prev = ch
                continue
            }
            if ch == ":" && !inRegex { afterColon = true }
            // XML keys are XPath expressions (`XML://@*`), never regular expressions.
            if ch == "/" && afterColon && !current.uppercased().trimmingCharacters(in: CharacterSet(charactersIn: "!& ")).hasPrefix("XML:")
            {
                if !inRegex && prev == ":" {
                    inRegex = true
                } else if inRegex && prev != "\\" {
                    inRegex = false
                }
            }
            current.append(ch)
            prev = ch
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    // MARK: Actions

    private mutating func parseActions(_ text: String, into draft: inout ActionDraft, at location: SourceLocation) throws(SecLangError) {
        var problems: [String] = []
        for (name, value) in SecLangLoader.splitActions(text) {
            let v = value ?? ""
            switch name.lowercased() {
            case "id":
                guard let id = Int(v) else { throw SecLangError(.invalidArgument, "id:\(v) is not a number") }
                draft.id = id
            case "phase":
                switch v.lowercased() {
                case "request": draft.phase = 2
                case "response": draft.phase = 4
                case "logging": draft.phase = 5
                default:
                    guard let p = Int(v), (1...5).contains(p) else { throw SecLangError(.invalidArgument, "phase:\(v) is not a phase") }
                    draft.phase = p
                }
            case "t":
                if v.lowercased() == "none" {
                    draft.transformations = []
                    draft.resetTransformations = true
                } else if let t = Transformation.named(v) {
                    draft.transformations.append(t)
                } else {
                    problems.append("unsupported transformation t:\(v)")
                }
            case "chain": draft.chain = true
            case "capture": draft.capture = true
            case "multimatch": draft.multiMatch = true
            case "msg": draft.msg = Macro(v, problems: &problems)
            case "logdata": draft.logdata = Macro(v, problems: &problems)
            case "tag": draft.tags.append(v)
            case "severity": draft.severity = v
            case "ver", "rev", "maturity", "accuracy": break
            case "log": draft.log = true
            case "nolog": draft.log = false
            // Audit logging and its sanitising belong to ModSecurity's audit log, which this engine
            // does not write; `auditlog` does not make a rule log.
            case "auditlog", "noauditlog", "sanitisearg", "sanitisematched", "sanitiserequestheader", "sanitisematchedbytes": break
            case "pass", "block", "deny", "drop", "allow", "redirect":
                draft.disruptive = Disruptive(rawValue: name.lowercased())
            case "status":
                guard let s = Int(v) else { throw SecLangError(.invalidArgument, "status:\(v) is not a number") }
                draft.status = s
            case "skipafter": draft.skipAfter = v
            case "skip": draft.skip = Int(v) ?? 0
            case "setvar":
                if let sv = SecLangLoader.parseSetVar(v, problems: &problems) { draft.effects.append(.setvar(sv)) }
            case "ctl":
                if let c = try SecLangLoader.parseControl(v, loader: self, problems: &problems) { draft.effects.append(.ctl(c)) }
            case "expirevar", "initcol", "setuid", "setsid":
                // Collections live for one transaction: there is nothing to expire or open.
                break
            default:
                problems.append("unsupported action \(name)")
            }
        }
        for p in problems { try report(location, p) }
    }

    static func parseSetVar(_ text: String, problems: inout [String]) -> SetVar? {
        var s = Substring(text)
        var op = SetVar.Operation.set
        if s.hasPrefix("!") {
            op = .delete
            s = s.dropFirst()
        }
        var lhs = s
        var rhs: Substring = "1"
        if let eq = s.firstIndex(of: "=") {
            lhs = s[..<eq]
            rhs = s[s.index(after: eq)...]
            if rhs.hasPrefix("+") {
                op = .add
                rhs = rhs.dropFirst()
            } else if rhs.hasPrefix("-") {
                op = .subtract
                rhs = rhs.dropFirst()
            }
        }
        guard let dot = lhs.firstIndex(of: "."), let c = Collection(rawValue: lhs[..<dot].uppercased()), c.isPersistent else {
            problems.append("setvar:\(text): unknown collection")
            return nil
        }
        return SetVar(
            collection: c, name: Macro(String(lhs[lhs.index(after: dot)...]), problems: &problems), operation: op,
            value: Macro(String(rhs), problems: &problems))
    }

    static func parseControl(_ text: String, loader: SecLangLoader, problems: inout [String]) throws(SecLangError) -> Control? {
        guard let eq = text.firstIndex(of: "=") else {
            problems.append("ctl:\(text): expected name=value")
            return nil
        }
        let name = text[..<eq].lowercased()
        let value = String(text[text.index(after: eq)...])
        switch name {
        case "ruleremovebyid": return .ruleRemoveByID(try idRanges(value))
        case "ruleremovebytag": return .ruleRemoveByTag(try PCRERegex(value))
        case "ruleremovetargetbyid", "ruleremovetargetbytag":
            let parts = value.split(separator: ";", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                problems.append("ctl:\(text): expected rule;TARGET")
                return nil
            }
            let (targets, _) = try loader.parseTargets(parts[1], problems: &problems)
            guard let t = targets.first else { return nil }
            let exclusion = TargetExclusion(collection: t.collection, key: t.key)
            if name == "ruleremovetargetbyid" { return .ruleRemoveTargetByID(try idRanges(parts[0]), exclusion) }
            return .ruleRemoveTargetByTag(try PCRERegex(parts[0]), exclusion)
        case "requestbodyprocessor": return .requestBodyProcessor(value.uppercased())
        case "ruleengine":
            guard let mode = RuleEngineMode.named(value) else {
                problems.append("ctl:ruleEngine=\(value): expected On, Off or DetectionOnly")
                return nil
            }
            return .ruleEngine(mode)
        case "forcerequestbodyvariable": return .forceRequestBodyVariable(value.lowercased() == "on")
        case "auditengine", "auditlogparts", "requestbodyaccess", "debugloglevel":
            return .ignored(name)
        default:
            problems.append("unsupported ctl:\(name)")
            return nil
        }
    }

    static func idRanges(_ text: String) throws(SecLangError) -> [ClosedRange<Int>] {
        var out: [ClosedRange<Int>] = []
        for item in text.split(whereSeparator: { $0 == " " || $0 == "," }) {
            let parts = item.split(separator: "-").compactMap { Int($0) }
            if parts.count == 1 {
                out.append(parts[0]...parts[0])
            } else if parts.count == 2, parts[0] <= parts[1] {
                out.append(parts[0]...parts[1])
            } else {
                throw SecLangError(.invalidArgument, "\(item) is neither a rule id nor a range of ids")
            }
        }
        return out
    }

    /// Splits `a,b:'x, y',c:z` into (name, value) pairs; single quotes protect commas, and a
    /// backslash inside them escapes the next character.
    static func splitActions(_ text: String) -> [(String, String?)] {
        var out: [(String, String?)] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            while i < chars.count, chars[i].isWhitespace || chars[i] == "," { i += 1 }
            if i >= chars.count { break }
            var name = ""
            while i < chars.count, chars[i] != ":", chars[i] != "," { name.append(chars[i]); i += 1 }
            name = name.trimmingCharacters(in: .whitespaces)
            guard i < chars.count, chars[i] == ":" else {
                out.append((name, nil))
                continue
            }
            i += 1
            while i < chars.count, chars[i] == " " { i += 1 }
            var value = ""
            if i < chars.count, chars[i] == "'" {
                i += 1
                while i < chars.count, chars[i] != "'" {
                    if chars[i] == "\\", i + 1 < chars.count {
                        i += 1
                    }
                    value.append(chars[i])
                    i += 1
                }
                i += 1
                // Text after the closing quote up to the comma belongs to nothing.
                while i < chars.count, chars[i] != "," { i += 1 }
            } else {
                while i < chars.count, chars[i] != "," { value.append(chars[i]); i += 1 }
                value = value.trimmingCharacters(in: .whitespaces)
            }
            out.append((name, value))
        }
        return out
    }

    // MARK: Lexing

    /// Joins backslash continuations and drops comments and blank lines; each result carries the
    /// number of its first physical line.
    static func logicalLines(_ text: String) -> [(Int, String)] {
        var out: [(Int, String)] = []
        var current = ""
        var start = 0
        var lineNo = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            var line = Substring(raw)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if current.isEmpty {
                let trimmed = line.drop { $0 == " " || $0 == "\t" }
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                start = lineNo
            }
            var trimmedEnd = line
            while let last = trimmedEnd.last, last == " " || last == "\t" { trimmedEnd = trimmedEnd.dropLast() }
            if trimmedEnd.hasSuffix("\\") {
                current += trimmedEnd.dropLast()
                continue
            }
            current += line
            out.append((start, current))
            current = ""
        }
        if !current.isEmpty { out.append((start, current)) }
        return out
    }

    /// Apache's word splitting: whitespace-separated, double or single quotes group; `\\\\` and,
    /// inside quotes, an escaped quote lose their backslash (the rest are kept for the regex).
    static func words(_ line: String) -> [String] {
        var out: [String] = []
        let c = Array(line)
        var i = 0
        while i < c.count {
            while i < c.count, c[i] == " " || c[i] == "\t" { i += 1 }
            if i >= c.count { break }
            var word = ""
            if c[i] == "\"" || c[i] == "'" {
                let q = c[i]
                i += 1
                while i < c.count, c[i] != q {
                    if c[i] == "\\", i + 1 < c.count, c[i + 1] == q || c[i + 1] == "\\" {
                        i += 1
                    }
                    word.append(c[i])
                    i += 1
                }
                i += 1
            } else {
                while i < c.count, c[i] != " ", c[i] != "\t" {
                    if c[i] == "\\", i + 1 < c.count, c[i + 1] == "\\" { i += 1 }
                    word.append(c[i])
                    i += 1
                }
            }
            out.append(word)
        }
        return out
    }
}

/// Actions of one rule as read, before defaults are applied.
struct ActionDraft {
    var id: Int?
    var phase: Int?
    var transformations: [Transformation] = []
    var resetTransformations = false
    var chain = false
    var capture = false
    var multiMatch = false
    var effects: [Effect] = []
    var disruptive: Disruptive?
    var status: Int?
    var log: Bool?
    var msg: Macro?
    var logdata: Macro?
    var tags: [String] = []
    var severity: String?
    var skipAfter: String?
    var skip = 0
}

/// One SecRule as read.
struct RuleDraft {
    var location: SourceLocation
    var targets: [Target] = []
    var exclusions: [TargetExclusion] = []
    var op: Operator = .unconditionalMatch
    var opName = "unconditionalMatch"
    var negated = false
    var actions = ActionDraft()
}

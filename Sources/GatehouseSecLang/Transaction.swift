// Runs a rule set over one request: phase 1 on the request line and headers, the body
// processor, phase 2 on everything. ModSecurity 2's semantics, which the Core Rule Set's
// regression suite was recorded against: every target is inspected, non-disruptive actions run
// on each match (so a link of a chain acts even if a later link fails), the disruptive action
// only when the whole chain matches, and only when the engine is On.
// Hand-written for the same reason as the model: no listed library runs SecLang.

#if canImport(Glibc)
    import Glibc
#endif
import GatehouseCore
import GatehouseWAF

/// A rule that fired.
package struct RuleMatch: Sendable {
    package let id: Int
    package let phase: Int
    package let message: String
    package let logdata: String
    package let severity: String?
    package let tags: [String]
    /// The variable that matched, as `ARGS:foo`.
    package let variable: String
    /// Its value after the transformations (the excerpt for the log, never for the caller).
    package let value: [UInt8]
    /// The rule's transformations, in order (`t:` names).
    package let transformations: [String]
    /// Whether the rule writes to the log (`log`, or the default; not `nolog`).
    package let logged: Bool
    package let location: SourceLocation
    /// Every variable of the rule's first link that matched and ran the rule's actions (a rule
    /// scores once per such variable), with its transformed value.
    package let hits: [RuleHit]
}

/// One variable a rule matched: what a per-variable second opinion reads.
package struct RuleHit: Sendable {
    package let variable: String
    package let value: [UInt8]
}

/// What stopped a transaction, in a rule engine that is On.
package struct Interruption: Sendable, Equatable {
    package let ruleID: Int
    package let status: Int
    package let action: String
}

/// The result of running the rules over a request.
package struct SecLangOutcome: Sendable {
    package let matches: [RuleMatch]
    package let interruption: Interruption?
    /// TX at the end (anomaly scores and the like), kept as the transaction left it: a request
    /// reads one or two of its values, and a dictionary of all of them (CRS sets about a hundred)
    /// was built and freed for every request.
    let txStore: VariableStore?
    /// Why the body could not be parsed, when it could not.
    package let bodyError: String?

    init(matches: [RuleMatch], interruption: Interruption?, txStore: VariableStore?, bodyError: String?) {
        self.matches = matches
        self.interruption = interruption
        self.txStore = txStore
        self.bodyError = bodyError
    }

    /// TX at the end, lowercased names (for tools and tests; `txValue` reads one).
    package var tx: [String: [UInt8]] { txStore?.values ?? [:] }

    /// The value of TX variable `name` (lowercase) at the end.
    package func txValue(_ name: String) -> [UInt8]? { txStore?[name] }

    /// Nothing ran: a request refused before inspection.
    package static let empty = SecLangOutcome(matches: [], interruption: nil, txStore: nil, bodyError: nil)

    /// Whether the rule with `id` fired and logged.
    package func logged(_ id: Int) -> Bool { matches.contains { $0.id == id && $0.logged } }
}

/// A loaded rule set, ready to evaluate requests. Immutable and shareable.
package struct SecLangEngine: Sendable {
    package let rules: RuleSet
    /// The opening rules that read nothing from the request, run once at load (`Prologue`).
    let prologue: Prologue?

    package init(rules: RuleSet) {
        self.rules = rules
        prologue = Prologue(rules: rules)
    }

    /// Runs phases 1 and 2 over `request`; rules whose id is in `removing` do not run (as after
    /// `ctl:ruleRemoveById` at the start of the transaction). `plain` turns off the shortcuts
    /// that must not change any outcome (the prologue, and skipping a value whose own literals
    /// rule a regex out), so that tests can compare.
    package func evaluate(_ request: SecLangRequest, removing: [ClosedRange<Int>] = [], plain: Bool = false) -> SecLangOutcome {
        let t = Transaction(rules: rules, request: request)
        t.removedIDs = removing
        t.skipsByValue = !plain
        if !plain, let prologue, !prologue.ids.contains(where: { id in removing.contains { $0.contains(id) } }) {
            t.prologue = prologue
        }
        return t.run()
    }

    /// How many opening rules of phase 1 run once at load rather than per request.
    package var prologueRuleCount: Int { prologue.map { $0.end - $0.start } ?? 0 }
}

/// The opening rules of phase 1 that read nothing from the request, evaluated once when the rule
/// set loads; each transaction starts from their outcome instead of running them again. The Core
/// Rule Set opens with a few dozen of them: its setup's `SecAction`s and the initialisation rules
/// that default every `tx.` setting (`SecRule &TX:x "@eq 0" "setvar:tx.x=…"`).
///
/// The run is exact, not an approximation: it is `rules.phases[0][start..<end]` where every rule
/// reads only the setvar collections and the rule's own fields (no request variable, no
/// `MATCHED_VAR` left by an earlier rule), writes only those collections, skips nothing and
/// changes no body-processing setting; and every rule before `start` writes no setvar
/// collection (no `setvar`, no `capture`), skips nothing, changes no setting other than the body
/// processor and never stops the transaction. MATCHED_VAR is carried out of the prologue only
/// when an operator in it matched. So the state those rules start from is the same for every request (empty
/// collections), and nothing the earlier rules do can reach them.
struct Prologue: Sendable {
    let start: Int
    let end: Int
    let ids: [Int]
    let stores: CollectionTable<VariableStore>
    let matches: [RuleMatch]
    let interruption: Interruption?
    let allowed: Bool
    /// What its `ctl:` actions changed: the engine mode and the removals they added.
    let mode: RuleEngineMode
    let removedIDs: [ClosedRange<Int>]
    let removedTags: [PCRERegex]
    let targetRemovalsByID: [(ClosedRange<Int>, TargetExclusion)]
    let targetRemovalsByTag: [(PCRERegex, TargetExclusion)]
    /// MATCHED_VAR and its name after the run, when a rule of it matched.
    let matched: (value: [UInt8], name: String)?

    init?(rules: RuleSet) {
        guard let phase1 = rules.phases.first else { return nil }
        var start = 0
        while start < phase1.count, Prologue.isIndependent(phase1[start]) { start += 1 }
        var end = start
        while end < phase1.count, Prologue.readsNoRequest(phase1[end]) { end += 1 }
        guard end > start else { return nil }
        let t = Transaction(rules: rules, request: SecLangRequest(method: "GET", target: Array("/".utf8)))
        let before = t.matches.count
        t.runPhase(1, from: start, to: end)
        self.start = start
        self.end = end
        ids = phase1[start..<end].map(\.id)
        stores = t.stores
        matches = Array(t.matches[before...])
        interruption = t.interruption
        allowed = t.allowed
        mode = t.mode
        removedIDs = t.removedIDs
        removedTags = t.removedTags
        targetRemovalsByID = t.targetRemovalsByID
        targetRemovalsByTag = t.targetRemovalsByTag
        // MATCHED_VAR changes only when an operator matches (a SecAction leaves it alone).
        matched = t.operatorMatches > 0 ? (t.matchedVar, t.matchedVarName) : nil
    }

    /// A rule that may run before the prologue: it leaves the setvar collections, the flow and
    /// the engine's settings alone, whatever the request.
    static func isIndependent(_ rule: Rule) -> Bool {
        var link: Rule? = rule
        while let r = link {
            if r.marker != nil || r.skipAfter != nil || r.skip > 0 { return false }
            // `capture` writes TX:0-9 from the request.
            if r.capture { return false }
            // `block` is the default action, which may deny.
            if let d = r.disruptive, d != .pass { return false }
            for effect in r.effects {
                switch effect {
                case .setvar: return false
                case .ctl(let c):
                    switch c {
                    case .requestBodyProcessor, .forceRequestBodyVariable: break
                    default: return false
                    }
                }
            }
            link = r.chained
        }
        return true
    }

    /// A rule whose evaluation and effects depend on the setvar collections and its own fields only.
    static func readsNoRequest(_ rule: Rule) -> Bool {
        var link: Rule? = rule
        while let r = link {
            if r.marker != nil { return false }
            if r.skipAfter != nil || r.skip > 0 { return false }
            if !r.targets.allSatisfy({ $0.collection.isPersistent }) || !r.exclusions.isEmpty { return false }
            if !pure(r.op) || !pure(r.msg) || !pure(r.logdata) { return false }
            for effect in r.effects {
                switch effect {
                case .setvar(let sv):
                    if !sv.collection.isPersistent || !pure(sv.name) || !pure(sv.value) { return false }
                case .ctl(let c):
                    // Engine settings and removals are part of the outcome; the body processor
                    // is not, as a rule before the prologue may set it too.
                    switch c {
                    case .requestBodyProcessor, .forceRequestBodyVariable: return false
                    default: break
                    }
                }
            }
            link = r.chained
        }
        return true
    }

    static func pure(_ m: Macro?) -> Bool {
        guard let m else { return true }
        return m.parts.allSatisfy { part in
            switch part {
            case .literal, .rule: return true
            case .variable(let c, _): return c.isPersistent
            }
        }
    }

    static func pure(_ op: Operator) -> Bool {
        switch op {
        case .rxMacro(let m, _), .streq(let m), .contains(let m), .containsWord(let m), .beginsWith(let m), .endsWith(let m),
            .within(let m), .eq(let m), .ge(let m), .gt(let m), .le(let m), .lt(let m):
            return pure(m)
        default: return true
        }
    }
}

/// Per-request variable store for TX, IP and GLOBAL: names are compared as written, and every
/// name reaching the store is lowercased first (setvar keys, `%{tx.x}` macros and `TX:x` targets
/// are lowercased at load), so lookups are case-insensitive; entries keep their order of creation. The entry list is kept as values change (rather than rebuilt), so a
/// rule walking `TX:/.../` after each setvar does not list the whole collection again.
struct VariableStore: Sendable {
    /// Entries in order of creation; `position` maps a name to its place.
    private(set) var entries: [Entry] = []
    private var position: [Name: Int] = [:]

    /// A name with its (seeded) hash computed once: a probe that meets another name compares
    /// two integers, not two strings. Most lookups miss (TX:1 to TX:9 cleared after a capture,
    /// variables not set yet), and a miss meets several other names before an empty slot. The
    /// names a rule set spells out (`TX:foo` targets, `setvar:tx.foo`, `%{tx.foo}`, TX:0 to
    /// TX:9) are made once at load, so a lookup by one of them hashes no string. (The seed is
    /// fixed for the life of the process, and a rule set never leaves it.)
    struct Name: Hashable, Sendable {
        let text: String
        let hash: Int

        init(_ text: String) {
            self.text = text
            var h = Hasher()
            h.combine(text)
            hash = h.finalize()
        }

        static func == (a: Name, b: Name) -> Bool { a.hash == b.hash && a.text == b.text }
        func hash(into h: inout Hasher) { h.combine(hash) }
        /// The table's probe hash: the stored (already seeded) hash mixed with the table's own
        /// seed, without running the hasher again over an integer on every lookup and write.
        func _rawHashValue(seed: Int) -> Int { hash ^ seed }
    }

    /// How a write changed the entry list.
    enum Change {
        case none, inserted
        case updated(Int)
        case removed(Int)
    }

    subscript(_ name: String) -> [UInt8]? { self[Name(name)] }
    subscript(_ key: Name) -> [UInt8]? { position[key].map { entries[$0].value } }

    /// Writes (or, with nil, deletes) `name`.
    mutating func set(_ name: String, _ value: [UInt8]?) -> Change { set(Name(name), value) }

    /// Writes (or, with nil, deletes) the variable named by `key`.
    mutating func set(_ key: Name, _ value: [UInt8]?) -> Change {
        if let value {
            if let i = position[key] {
                entries[i].value = value
                return .updated(i)
            }
            position[key] = entries.count
            // Names are stored lowercased (setvar and TX:name lowercase them), so the name is
            // usually its own lowercase key.
            let bytes = Array(key.text.utf8)
            let lowered = bytes.contains { $0 &- 0x41 < 26 } ? Entry.lowered(bytes) : key.text
            entries.append(Entry(key: bytes, lowerKey: lowered, value: value))
            return .inserted
        }
        guard let i = position.removeValue(forKey: key) else { return .none }
        entries.remove(at: i)
        for (k, p) in position where p > i { position[k] = p - 1 }
        return .removed(i)
    }

    var values: [String: [UInt8]] { Dictionary(uniqueKeysWithValues: position.map { ($0.key.text, entries[$0.value].value) }) }
}

/// One request's evaluation state.
final class Transaction {
    let rules: RuleSet
    let request: SecLangRequest
    let scratch = RegexScratch()
    /// The request's collections. Written only through `store`, which forgets what was cached
    /// for the collection written.
    private(set) var vars = CollectionTable<[Entry]>()

    func store(_ c: Collection, _ entries: [Entry]) {
        vars[c] = entries
        stateBase[c.ordinal] = -1
        if !literalsPresent.isEmpty {
            let width = rules.chainCount + 1
            for i in (c.ordinal * width)..<((c.ordinal + 1) * width) { literalsPresent[i] = -1 }
        }
    }
    /// Per collection and transformation chain (`[ordinal * (chainCount + 1) + chain]`): where in
    /// `literalSets` the prefilter literals that occur in any of the collection's values after
    /// that chain (`PrefilterIndex`) are, -1 until a rule first asks. Empty until first used.
    var literalsPresent: [Int32] = []
    /// Every literal set of the transaction (`PrefilterIndex.words` words each), side by side:
    /// one buffer instead of an array per value form and per collection.
    var literalSets: [UInt64] = []
    /// Every entry's computed chain prefixes (`EntryState.slotBase`), side by side.
    var slots: [Int32] = []
    /// What the transaction has computed about each entry of a cached collection, side by side:
    /// the entries of collection `c` are at `stateBase[c.ordinal]` onwards, in their order.
    var states: [EntryState] = []
    /// Per collection, where its entries' states start in `states`; -1 until a rule first walks
    /// it after it was stored.
    var stateBase = [Int32](repeating: -1, count: Collection.allCases.count)
    /// Per value form (`EntryState.receivedForm`, `Prefix.form`), where its prefilter literals
    /// are in `literalSets`, -1 until first asked for. One buffer for the transaction rather than
    /// an array per entry.
    var forms: [Int32] = []
    var prefixes: [Prefix] = []
    /// TX, IP, GLOBAL and the other setvar collections. Changed only through `setVariable`.
    var stores = CollectionTable<VariableStore>()
    var mode: RuleEngineMode
    var bodyProcessor: String?
    var bodyError: String?
    var forceRequestBody = false
    var removedIDs: [ClosedRange<Int>] = []
    var removedTags: [PCRERegex] = []
    var targetRemovalsByID: [(ClosedRange<Int>, TargetExclusion)] = []
    var targetRemovalsByTag: [(PCRERegex, TargetExclusion)] = []
    var matchedVar: [UInt8] = []
    var matchedVarName = ""
    /// MATCHED_VARS of the current rule, by the names and values the matches recorded; built
    /// into entries only when a rule reads the collection (few do, and every operator match
    /// appends here).
    var matchedVars: [(name: String, value: [UInt8])] = []
    /// The current rule's first-link matches (`RuleMatch.hits`).
    var hits: [RuleHit] = []
    var matches: [RuleMatch] = []
    var interruption: Interruption?
    var allowed = false
    /// The prologue this transaction starts from, if any (`SecLangEngine.evaluate`).
    var prologue: Prologue?
    /// Whether a value whose own prefilter literals rule a regex out is skipped.
    var skipsByValue = true
    /// How many times an operator matched (and set MATCHED_VAR) in this transaction.
    var operatorMatches = 0

    /// Writes (or, with nil, deletes) a setvar collection entry.
    func setVariable(_ c: Collection, _ key: VariableStore.Name, _ value: [UInt8]?) {
        if stores[c] == nil { stores[c] = VariableStore() }
        _ = stores[c]!.set(key, value)
    }

    /// A value after a transformation chain prefix: which form of its entry's value it is (an
    /// index into the transaction's `forms`), and the kinds of bytes it holds.
    struct Prefix {
        let value: [UInt8]
        let form: Int32
        let summary: ByteSummary
    }

    /// What a transaction has computed about one entry of a cached collection: plain values in
    /// one array per transaction (`states`), so walking a collection for every rule retains
    /// nothing per entry.
    struct EntryState {
        /// The chain prefixes (`Rule.transformationChains` numbers) computed so far this request:
        /// the transaction's `slots[slotBase + chain]` is one more than the place of its value,
        /// form and byte summary in the transaction's `prefixes`, 0 while not computed. -1 until
        /// the entry is first transformed.
        var slotBase: Int32 = -1
        /// The value as received, as a form in the transaction's `forms` (-1 until first used).
        /// Each distinct form of the value has its literal set scanned once: a transformation
        /// that leaves the bytes unchanged or changes only letter case (the literal scan ignores
        /// ASCII case) keeps the form, so most chains leave ordinary text with a few forms, each
        /// scanned once rather than once per chain.
        var receivedForm: Int32 = -1
        /// The kinds of bytes in the value as received, once `summarised`.
        var summary = ByteSummary(rawValue: 0)
        var summarised = false
    }

    /// The name rules report an entry by (`ARGS:foo`, `REQUEST_METHOD`), built only when a rule
    /// matches it: most entries are tested without ever matching.
    static func displayName(_ c: Collection, _ key: [UInt8]) -> String {
        c.isKeyed ? c.rawValue + ":" + String(decoding: key, as: UTF8.self) : c.rawValue
    }

    /// Where the states of `c`'s `count` entries start in `states`, made on the first walk after
    /// the collection was stored.
    func stateBase(_ c: Collection, count: Int) -> Int {
        let base = stateBase[c.ordinal]
        if base >= 0 { return Int(base) }
        if states.isEmpty { states.reserveCapacity(128) }
        let at = states.count
        states.append(contentsOf: repeatElement(EntryState(), count: count))
        stateBase[c.ordinal] = Int32(truncatingIfNeeded: at)
        return at
    }

    /// Collections whose entries change while the rules run: never cached.
    static func isDynamic(_ c: Collection) -> Bool {
        switch c {
        case .tx, .ip, .global, .session, .user, .resource, .matchedVar, .matchedVars, .matchedVarName, .matchedVarsNames: return true
        default: return false
        }
    }

    init(rules: RuleSet, request: SecLangRequest) {
        self.rules = rules
        self.request = request
        self.mode = rules.engineMode
    }

    func run() -> SecLangOutcome {
        if mode != .off {
            populateRequestHeaders()
            runPhase(1)
            if interruption == nil && !allowed && mode != .off {
                populateBody()
                runPhase(2)
            }
        }
        return SecLangOutcome(
            matches: matches, interruption: interruption, txStore: stores[.tx], bodyError: bodyError)
    }

    // MARK: Variables

    func set(_ c: Collection, _ value: [UInt8]) {
        let name = Transaction.scalarNames[c.ordinal]
        store(c, [Entry(key: name.key, lowerKey: name.lowerKey, value: value)])
    }
    /// Each collection's name as the key of its single entry (`REQUEST_METHOD`), built once.
    static let scalarNames: [(key: [UInt8], lowerKey: String)] = Collection.allCases.map { c in
        let entry = Entry(c.rawValue, [])
        return (entry.key, entry.lowerKey)
    }
    func set(_ c: Collection, _ value: String) { set(c, Array(value.utf8)) }

    func populateRequestHeaders() {
        let r = request
        set(.requestMethod, r.method)
        set(.requestProtocol, r.httpVersion)
        set(.requestLine, Array(r.method.utf8) + [0x20] + r.target + [0x20] + Array(r.httpVersion.utf8))
        let (path, query, uri) = RequestParsing.splitTarget(r.target)
        set(.requestURIRaw, r.target)
        set(.requestURI, uri)
        // REQUEST_FILENAME and REQUEST_BASENAME are percent-decoded, as the web server hands the
        // path to the module; REQUEST_URI stays as sent.
        let filename = T.percentDecode(path)
        set(.requestFilename, filename)
        let base = filename.lastIndex(of: 0x2F).map { Array(filename[($0 + 1)...]) } ?? filename
        set(.requestBasename, base)
        set(.queryString, query ?? [])
        let getArgs = query.map { RequestParsing.arguments($0[...]) } ?? []
        store(.argsGet, getArgs)
        let headers = r.headers.map { Entry(key: $0.name, value: $0.value) }
        store(.requestHeaders, headers)
        store(.requestHeadersNames, headers.map(Entry.init(nameOf:)))
        var cookies: [Entry] = []
        for h in r.headers where String(decoding: h.name, as: UTF8.self).lowercased() == "cookie" {
            cookies += RequestParsing.cookies(h.value)
        }
        store(.requestCookies, cookies)
        store(.requestCookiesNames, cookies.map(Entry.init(nameOf:)))
        set(.remoteAddr, r.remoteAddress)
        set(.remotePort, String(r.remotePort))
        set(.uniqueID, Transaction.uniqueID())
        set(.serverName, r.header("Host") ?? [])
        set(.duration, "0")
        set(.reqbodyError, "0")
        set(.requestBodyLength, String(r.body.count))
        let ct = String(decoding: r.header("Content-Type") ?? [], as: UTF8.self).lowercased()
        if ct.hasPrefix("application/x-www-form-urlencoded") {
            bodyProcessor = "URLENCODED"
        } else if ct.hasPrefix("multipart/form-data") {
            bodyProcessor = "MULTIPART"
        }
        set(.reqbodyProcessor, bodyProcessor ?? "")
        rebuildArgs(post: [])
    }

    func rebuildArgs(post: [Entry]) {
        let get = vars[.argsGet] ?? []
        store(.argsPost, post)
        store(.argsGetNames, get.map(Entry.init(nameOf:)))
        store(.argsPostNames, post.map(Entry.init(nameOf:)))
        let all = get + post
        store(.args, all)
        store(.argsNames, all.map(Entry.init(nameOf:)))
        let size = all.reduce(0) { $0 + $1.key.count + $1.value.count }
        set(.argsCombinedSize, String(size))
    }

    func populateBody() {
        let body = request.body
        set(.reqbodyProcessor, bodyProcessor ?? "")
        var post: [Entry] = []
        for flag in Collection.allCases where flag.rawValue.hasPrefix("MULTIPART_") && !flag.isKeyed {
            if flag != .multipartFilename && flag != .multipartName { set(flag, Transaction.digitZero) }
        }
        set(.filesCombinedSize, Transaction.digitZero)
        switch bodyProcessor {
        case "URLENCODED":
            post = RequestParsing.arguments(body[...])
            set(.requestBody, body)
        case "MULTIPART":
            let m = MultipartResult.parse(body, contentType: request.header("Content-Type") ?? [])
            post = m.args
            store(.files, m.files)
            store(.filesNames, m.fileNames)
            store(.filesSizes, m.fileSizes)
            store(.multipartPartHeaders, m.partHeaders)
            set(.filesCombinedSize, String(m.fileSizes.reduce(0) { $0 + (Int(String(decoding: $1.value, as: UTF8.self)) ?? 0) }))
            for (flag, on) in m.flags { set(flag, on ? "1" : "0") }
            set(.multipartStrictError, m.strictError ? "1" : "0")
            if let e = m.error { bodyError = e }
        case "XML":
            let x = XMLText.parse(body)
            store(.xml, [Entry("/*", x.text)] + x.attributes.map { Entry("//@*", $0) })
            if let e = x.error { bodyError = e }
        case "JSON":
            do {
                let value = try StrictJSON.parse(body)
                Transaction.flatten(value, prefix: "json", into: &post)
            } catch {
                bodyError = "JSON parsing error: \(error)"
            }
        default: break
        }
        // REQUEST_BODY holds the raw body for form bodies, or for any body when forced (the Core
        // Rule Set forces it for bodies no processor reads).
        if bodyProcessor == "URLENCODED" || forceRequestBody { set(.requestBody, body) }
        if let bodyError {
            set(.reqbodyError, "1")
            set(.reqbodyErrorMsg, bodyError)
        }
        rebuildArgs(post: post)
    }

    static func flatten(_ v: StrictJSONValue, prefix: String, into out: inout [Entry]) {
        switch v {
        case .null: out.append(Entry(prefix, []))
        case .bool(let b): out.append(Entry(prefix, Array((b ? "true" : "false").utf8)))
        case .number(let t): out.append(Entry(prefix, Array(t.utf8)))
        case .string(let s): out.append(Entry(prefix, Array(s.utf8)))
        case .array(let a): for (i, e) in a.enumerated() { flatten(e, prefix: "\(prefix).array_\(i)", into: &out) }
        case .object(let members): for m in members { flatten(m.value, prefix: "\(prefix).\(m.name)", into: &out) }
        }
    }

    static let idAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    static func uniqueID() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<27).map { _ in idAlphabet[Int(g.next() % UInt64(idAlphabet.count))] }
    }

    func entries(_ c: Collection) -> [Entry] {
        switch c {
        case .tx, .ip, .global, .session, .user, .resource: return stores[c]?.entries ?? []
        case .matchedVar: return [Entry("MATCHED_VAR", matchedVar)]
        case .matchedVarName: return [Entry("MATCHED_VAR_NAME", Array(matchedVarName.utf8))]
        case .matchedVars: return matchedVars.map { Entry($0.name, $0.value) }
        case .matchedVarsNames: return matchedVars.map { Entry(key: Array($0.name.utf8), value: Array($0.name.utf8)) }
        default: return vars[c] ?? []
        }
    }

    // MARK: Phases

    /// Runs the rules of `phase` (those at `from..<to` of it, for the prologue); in phase 1, the
    /// prologue's rules are replaced by their outcome.
    func runPhase(_ phase: Int, from: Int = 0, to: Int? = nil) {
        var skipTo: String? = nil
        var skipCount = 0
        let list = rules.phases[phase - 1]
        var index = from
        let end = to ?? list.count
        while index < end {
            if phase == 1, let p = prologue, index == p.start {
                applyPrologue(p)
                index = p.end
                continue
            }
            let rule = list[index]
            index += 1
            if interruption != nil || allowed || mode == .off { return }
            if let m = rule.marker {
                if skipTo == m { skipTo = nil }
                continue
            }
            if skipTo != nil { continue }
            if skipCount > 0 {
                skipCount -= 1
                continue
            }
            if isRemoved(rule) { continue }
            // Emptied keeping their buffers: most rules match nothing, and those that do would
            // otherwise allocate a new array each. (A rule match takes `hits` and leaves an
            // empty array, so the buffer kept is never shared.)
            if !matchedVars.isEmpty { matchedVars.removeAll(keepingCapacity: true) }
            if !hits.isEmpty { hits.removeAll(keepingCapacity: true) }
            guard let first = evaluate(rule, starter: rule) else { continue }
            let logged = rule.log
            matches.append(
                RuleMatch(
                    id: rule.id, phase: phase, message: logged ? rule.msg.map { text(expand($0, rule: rule)) } ?? "" : "",
                    logdata: logged ? rule.logdata.map { text(expand($0, rule: rule)) } ?? "" : "", severity: rule.severity,
                    tags: rule.tags,
                    variable: first.0, value: first.1, transformations: rule.transformationNames, logged: logged,
                    location: rule.location, hits: hits))
            hits = []
            var action = rule.disruptive ?? .pass
            if action == .block { action = rules.defaultDisruptive[phase] ?? .pass }
            switch action {
            case .deny, .drop, .redirect:
                if mode == .on { interruption = Interruption(ruleID: rule.id, status: rule.status ?? 403, action: action.rawValue) }
            case .allow:
                if mode == .on { allowed = true }
            case .pass, .block: break
            }
            if let s = rule.skipAfter { skipTo = s }
            if rule.skip > 0 { skipCount = rule.skip }
        }
    }

    /// Takes the prologue's outcome as if its rules had just run.
    func applyPrologue(_ p: Prologue) {
        if interruption != nil || allowed || mode == .off { return }
        // The rules before it write no setvar collection (no setvar, no capture): these are still
        // empty here.
        stores = p.stores
        matches += p.matches
        if let m = p.matched {
            matchedVar = m.value
            matchedVarName = m.name
        }
        // The rules before it change neither the mode nor the removals: what the prologue
        // started from is what it saw at load, and what it added comes on top.
        mode = p.mode
        removedIDs += p.removedIDs
        removedTags += p.removedTags
        targetRemovalsByID += p.targetRemovalsByID
        targetRemovalsByTag += p.targetRemovalsByTag
        interruption = p.interruption
        allowed = p.allowed
    }

    func isRemoved(_ rule: Rule) -> Bool {
        if removedIDs.contains(where: { $0.contains(rule.id) }) { return true }
        if !removedTags.isEmpty {
            for tag in rule.tags where removedTags.contains(where: { $0.matches(tag, scratch: scratch) }) { return true }
        }
        return false
    }

    /// Evaluates one link and, when it matches, the rest of its chain. Returns the first matched
    /// variable of the starter when the whole chain matched.
    func evaluate(_ rule: Rule, starter: Rule) -> (String, [UInt8])? {
        var first: (String, [UInt8])? = nil
        if rule.targets.isEmpty {
            // SecAction, or a rule whose every target was unsupported.
            guard case .unconditionalMatch = rule.op, !rule.negated else { return nil }
            run(rule, starter: starter)
            first = ("", [])
        } else {
            // Without runtime target removals, each target's exclusions were listed at load.
            let runtime = targetRemovalsByID.isEmpty && targetRemovalsByTag.isEmpty ? nil : exclusionsFor(starter) + rule.exclusions
            // The rule's prefilter condition, looked up (a dictionary probe) once per link rather
            // than per target, and only for a rule that has one (an @rx rule with a requirement).
            var ruleCondition: PrefilterIndex.Condition? = nil
            var conditionLooked = rule.requirement == nil || rule.multiMatch
            targets: for (t, target) in rule.targets.enumerated() {
                let c = target.collection
                let relevant = runtime?.filter { $0.collection == c } ?? rule.exclusionsByTarget[t]
                // TX:name and the like: one dictionary lookup, without listing a collection that
                // changes with every setvar.
                if c.isPersistent, case .name(let n) = target.key, relevant.isEmpty {
                    let value = stores[c]?[rule.targetKeys[t] ?? VariableStore.Name(n)]
                    if target.count {
                        if test(rule, name: c.rawValue, value: value == nil ? Transaction.digitZero : Transaction.digitOne, state: -1) {
                            if first == nil { first = (matchedVarName, matchedVar) }
                            if rule === starter { hits.append(RuleHit(variable: matchedVarName, value: matchedVar)) }
                            run(rule, starter: starter)
                        }
                    } else if let value, test(rule, name: rule.targetNames[t], value: value, state: -1) {
                        if first == nil { first = (matchedVarName, matchedVar) }
                        if rule === starter { hits.append(RuleHit(variable: matchedVarName, value: matchedVar)) }
                        run(rule, starter: starter)
                    }
                    continue
                }
                let cacheable = !Transaction.isDynamic(c)
                // No value of the collection contains what the rule's regex needs: nothing to test.
                // Only for a whole collection: a target of one entry has a single test to save, and
                // its literals would take transforming every entry.
                let wantsCondition = cacheable && !target.count && !rule.multiMatch
                if wantsCondition && !conditionLooked {
                    ruleCondition = rules.prefilter.condition(for: rule)
                    conditionLooked = true
                }
                let condition = wantsCondition ? ruleCondition : nil
                if let condition, case .all = target.key, !holds(condition, at: literals(in: c, after: rule)) {
                    continue
                }
                let list = entries(c)
                let base = cacheable ? stateBase(c, count: list.count) : -1
                var count = 0
                // Most targets take every entry and exclude none: their walk reads no name.
                var everyEntry = relevant.isEmpty
                if case .all = target.key {} else { everyEntry = false }
                for i in list.indices {
                    if !everyEntry {
                        guard target.key.selects(list[i].lowerKey, scratch: scratch) else { continue }
                        if !relevant.isEmpty, relevant.contains(where: { $0.key.selects(list[i].lowerKey, scratch: scratch) }) { continue }
                    }
                    if target.count {
                        count += 1
                        continue
                    }
                    let matched: Bool
                    if let condition {
                        // The value's own literals, when known, can rule it out before the test.
                        let (value, form) = transformedForm(base + i, list[i].value, by: rule)
                        if skipsByValue, forms[form] >= 0, !holds(condition, at: forms[form]) { continue }
                        matched = check(rule, name: Transaction.displayName(c, list[i].key), value: value)
                    } else {
                        matched = test(
                            rule, name: Transaction.displayName(c, list[i].key), value: list[i].value, state: cacheable ? base + i : -1)
                    }
                    if matched {
                        if first == nil { first = (matchedVarName, matchedVar) }
                        if rule === starter { hits.append(RuleHit(variable: matchedVarName, value: matchedVar)) }
                        run(rule, starter: starter)
                        if interruption != nil { break targets }
                    }
                }
                if target.count, test(rule, name: c.rawValue, value: Array(String(count).utf8), state: -1) {
                    if first == nil { first = (matchedVarName, matchedVar) }
                    if rule === starter { hits.append(RuleHit(variable: matchedVarName, value: matchedVar)) }
                    run(rule, starter: starter)
                }
            }
        }
        guard let first else { return nil }
        if let next = rule.chained {
            guard evaluate(next, starter: starter) != nil else { return nil }
        }
        return first
    }

    func exclusionsFor(_ rule: Rule) -> [TargetExclusion] {
        var out: [TargetExclusion] = []
        for (range, e) in targetRemovalsByID where range.contains(rule.id) { out.append(e) }
        for (tag, e) in targetRemovalsByTag where rule.tags.contains(where: { tag.matches($0, scratch: scratch) }) {
            out.append(e)
        }
        return out
    }

    /// `&TX:x` counts of 0 and 1, shared instead of allocated per test.
    static let digitZero: [UInt8] = [0x30]
    static let digitOne: [UInt8] = [0x31]

    /// Transforms `value` and runs the operator; on a match, records MATCHED_VAR and captures.
    /// `name` is built only on a match (`TX:name` would otherwise be a new string per test).
    /// `state` is the entry's place in `states` when its transformed values are cached, or -1.
    func test(_ rule: Rule, name: @autoclosure () -> String, value: [UInt8], state: Int) -> Bool {
        var v = value
        if rule.multiMatch {
            if check(rule, name: name(), value: v) { return true }
            for t in rule.transformations {
                let next = t.apply(v)
                if next != v {
                    v = next
                    if check(rule, name: name(), value: v) { return true }
                }
            }
            return false
        }
        let ts = rule.transformations
        if !ts.isEmpty {
            if state >= 0 {
                v = transformedForm(state, value, by: rule).value
            } else {
                for t in ts { v = t.apply(v) }
            }
        }
        return check(rule, name: name(), value: v)
    }

    /// The value of the entry whose state is `states[state]` after the rule's transformations,
    /// from the longest prefix of the chain already computed for it this request, and the form it
    /// is (its index in `forms`). `received` is the entry's value as received.
    func transformedForm(_ state: Int, _ received: [UInt8], by rule: Rule) -> (value: [UInt8], form: Int) {
        let ts = rule.transformations
        guard !ts.isEmpty else { return (received, receivedForm(of: state)) }
        let chains = rule.transformationChains
        if states[state].slotBase < 0 {
            if slots.isEmpty { slots.reserveCapacity((rules.chainCount + 1) * 64) }
            states[state].slotBase = Int32(truncatingIfNeeded: slots.count)
            slots.append(contentsOf: repeatElement(0, count: rules.chainCount + 1))
        }
        let base = Int(states[state].slotBase)
        // The longest prefix of the chain already computed for this entry.
        var k = ts.count
        var at: Int? = nil
        while k > 0 {
            let n = Int(slots[base + chains[k - 1]])
            if n > 0 {
                at = n - 1
                break
            }
            k -= 1
        }
        var v: [UInt8]
        var form: Int
        var summary: ByteSummary
        if let at {
            let p = prefixes[at]
            if k == ts.count { return (p.value, Int(p.form)) }
            v = p.value
            form = Int(p.form)
            summary = p.summary
        } else {
            if !states[state].summarised {
                states[state].summary = ByteSummary(of: received)
                states[state].summarised = true
            }
            (v, form, summary) = (received, receivedForm(of: state), states[state].summary)
        }
        while k < ts.count {
            let t = ts[k]
            let next = t.apply(v, summary: summary)
            if !Transaction.sameBytes(next, v) {
                summary = ByteSummary(of: next)
                // A new form, unless the change cannot make a literal appear. (Unchanged results
                // keep the one buffer: some transformations copy without changing anything, such
                // as compressWhitespace over single spaces.)
                if !Transaction.keepsLiterals(t) {
                    form = newForm()
                }
                v = next
            }
            if prefixes.isEmpty { prefixes.reserveCapacity(256) }
            prefixes.append(Prefix(value: v, form: Int32(truncatingIfNeeded: form), summary: summary))
            slots[base + chains[k]] = Int32(truncatingIfNeeded: prefixes.count)
            k += 1
        }
        return (v, form)
    }

    /// The entry's value as received, as a form in `forms`.
    func receivedForm(of state: Int) -> Int {
        if states[state].receivedForm < 0 { states[state].receivedForm = Int32(truncatingIfNeeded: newForm()) }
        return Int(states[state].receivedForm)
    }

    /// A new form in `forms`, its literals not scanned yet.
    func newForm() -> Int {
        if forms.isEmpty { forms.reserveCapacity(256) }
        forms.append(-1)
        return forms.count - 1
    }

    /// Transformations after which the value holds exactly the prefilter literals it held
    /// before: case changes (the scan ignores ASCII case, and these change nothing else).
    static func keepsLiterals(_ t: Transformation) -> Bool { t == .lowercase || t == .uppercase }

    /// Whether a transformation's result holds the same bytes as its input (most often the very
    /// same buffer, handed back because there was nothing to decode).
    @inline(__always) static func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { y in
                x.baseAddress == y.baseAddress || x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0
            }
        }
    }

    /// Where the prefilter literals occurring in any value of `c` after `rule`'s transformations
    /// are in `literalSets`.
    func literals(in c: Collection, after rule: Rule) -> Int32 {
        let chain = rule.transformationChains.last ?? 0
        let width = rules.chainCount + 1
        if literalsPresent.isEmpty { literalsPresent = Array(repeating: -1, count: Collection.allCases.count * width) }
        let hit = literalsPresent[c.ordinal * width + chain]
        if hit >= 0 { return hit }
        let words = rules.prefilter.words
        let at = newLiteralSet()
        let list = entries(c)
        let base = stateBase(c, count: list.count)
        for i in list.indices {
            let (value, form) = transformedForm(base + i, list[i].value, by: rule)
            if forms[form] < 0 { forms[form] = scanLiterals(value) }
            let own = Int(forms[form])
            literalSets.withUnsafeMutableBufferPointer { sets in
                for w in 0..<words { sets[at + w] |= sets[own + w] }
            }
        }
        literalsPresent[c.ordinal * width + chain] = Int32(at)
        return Int32(at)
    }

    /// Scans `value` for the prefilter literals into a new set in `literalSets`; returns where.
    func scanLiterals(_ value: [UInt8]) -> Int32 {
        let words = rules.prefilter.words
        let at = newLiteralSet()
        literalSets.withUnsafeMutableBufferPointer { sets in
            rules.prefilter.scan(value, into: UnsafeMutableBufferPointer(rebasing: sets[at..<(at + words)]))
        }
        return Int32(at)
    }

    /// Appends an empty literal set to `literalSets`; returns where it starts.
    func newLiteralSet() -> Int {
        let words = rules.prefilter.words
        if literalSets.isEmpty { literalSets.reserveCapacity(words * 128) }
        let at = literalSets.count
        literalSets.append(contentsOf: repeatElement(0, count: words))
        return at
    }

    /// Whether `condition` holds for the literal set at `at` in `literalSets`.
    func holds(_ condition: PrefilterIndex.Condition, at: Int32) -> Bool {
        let words = rules.prefilter.words
        return literalSets.withUnsafeBufferPointer { condition.holds(UnsafeBufferPointer(rebasing: $0[Int(at)..<(Int(at) + words)])) }
    }

    func check(_ rule: Rule, name: @autoclosure () -> String, value: [UInt8]) -> Bool {
        var captures: [[UInt8]?]? = nil
        var matched = false
        switch rule.op {
        case .rx(let re):
            if let groups = re.match(value, captures: rule.capture, scratch: scratch) {
                matched = true
                captures = groups
            }
        case .rxMacro(let m, let cache):
            if let re = cache.regex(for: text(expand(m, rule: rule))),
                let groups = re.match(value, captures: rule.capture, scratch: scratch)
            {
                matched = true
                captures = groups
            }
        case .pm(let pm):
            if let phrase = pm.firstMatch(in: value) {
                matched = true
                captures = [phrase]
            }
        case .streq(let m): matched = expand(m, rule: rule) == value
        case .contains(let m): matched = T.find(expand(m, rule: rule), in: value) != nil || expand(m, rule: rule).isEmpty
        case .containsWord(let m): matched = Transaction.containsWord(expand(m, rule: rule), in: value)
        case .beginsWith(let m): matched = value.starts(with: expand(m, rule: rule))
        case .endsWith(let m):
            let p = expand(m, rule: rule)
            matched = value.count >= p.count && Array(value.suffix(p.count)) == p
        case .within(let m):
            matched = !value.isEmpty && T.find(value, in: expand(m, rule: rule)) != nil
        case .eq(let m): matched = Transaction.number(value) == Transaction.number(expand(m, rule: rule))
        case .ge(let m): matched = Transaction.number(value) >= Transaction.number(expand(m, rule: rule))
        case .gt(let m): matched = Transaction.number(value) > Transaction.number(expand(m, rule: rule))
        case .le(let m): matched = Transaction.number(value) <= Transaction.number(expand(m, rule: rule))
        case .lt(let m): matched = Transaction.number(value) < Transaction.number(expand(m, rule: rule))
        case .ipMatch(let blocks):
            if let ip = IPAddress(String(decoding: value, as: UTF8.self)) { matched = blocks.contains { $0.contains(ip) } }
        case .detectSQLi: matched = SQLInjectionDetector.detects(value)
        case .detectXSS: matched = XSSDetector.detects(value)
        case .validateByteRange(let allowed): matched = value.contains { !allowed[Int($0)] }
        case .validateUrlEncoding: matched = Transaction.invalidURLEncoding(value)
        case .validateUtf8Encoding: matched = String(validating: value, as: UTF8.self) == nil
        case .unconditionalMatch: matched = true
        case .noMatch: matched = false
        }
        if rule.negated { matched.toggle() }
        guard matched else { return false }
        if rule.capture, let captures, !rule.negated {
            for i in 0..<RegexScratch.groups {
                setVariable(.tx, Transaction.groupNames[i], i < captures.count ? captures[i] : nil)
            }
        }
        let name = name()
        matchedVar = value
        matchedVarName = name
        operatorMatches += 1
        matchedVars.append((name, value))
        return true
    }

    static let groupNames = (0..<RegexScratch.groups).map { VariableStore.Name(String($0)) }

    static func number(_ v: [UInt8]) -> Int {
        var i = 0
        while i < v.count, T.isSpace(v[i]) { i += 1 }
        var negative = false
        if i < v.count, v[i] == 0x2D || v[i] == 0x2B {
            negative = v[i] == 0x2D
            i += 1
        }
        var n = 0
        while i < v.count, v[i] &- 0x30 < 10 {
            n = n &* 10 &+ Int(v[i] - 0x30)
            i += 1
        }
        return negative ? -n : n
    }

    static func containsWord(_ word: [UInt8], in v: [UInt8]) -> Bool {
        if word.isEmpty { return true }
        func isWord(_ c: UInt8) -> Bool { (c | 0x20) &- 0x61 < 26 || c &- 0x30 < 10 || c == 0x5F }
        var from = 0
        while let i = T.find(word, in: v, from: from) {
            let before = i == 0 || !isWord(v[i - 1])
            let after = i + word.count == v.count || !isWord(v[i + word.count])
            if before && after { return true }
            from = i + 1
        }
        return false
    }

    static func invalidURLEncoding(_ v: [UInt8]) -> Bool {
        var i = 0
        while i < v.count {
            if v[i] == 0x25 {
                guard i + 2 < v.count, T.isHex(v[i + 1]), T.isHex(v[i + 2]) else { return true }
                i += 3
            } else {
                i += 1
            }
        }
        return false
    }

    // MARK: Actions

    /// Runs the actions of `link` (the starter or a later link of its chain); macros read the
    /// starter's fields (`%{rule.id}`).
    func run(_ link: Rule, starter rule: Rule) {
        for effect in link.effects {
            switch effect {
            case .setvar(let sv):
                let key = sv.name.constantKey ?? VariableStore.Name(text(expand(sv.name, rule: rule)).lowercased())
                let c = sv.collection
                switch sv.operation {
                case .set: setVariable(c, key, expand(sv.value, rule: rule))
                case .add, .subtract:
                    let old = Transaction.number(stores[c]?[key] ?? [])
                    let delta = Transaction.number(expand(sv.value, rule: rule))
                    setVariable(c, key, Array(String(sv.operation == .add ? old + delta : old - delta).utf8))
                case .delete: setVariable(c, key, nil)
                }
            case .ctl(let c):
                switch c {
                case .ruleRemoveByID(let ranges): removedIDs += ranges
                case .ruleRemoveByTag(let re): removedTags.append(re)
                case .ruleRemoveTargetByID(let ranges, let e): for r in ranges { targetRemovalsByID.append((r, e)) }
                case .ruleRemoveTargetByTag(let re, let e): targetRemovalsByTag.append((re, e))
                case .requestBodyProcessor(let p):
                    bodyProcessor = p
                    set(.reqbodyProcessor, p)
                case .forceRequestBodyVariable(let on): forceRequestBody = on
                case .ruleEngine(let m): mode = m
                case .ignored: break
                }
            }
        }
    }

    func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    func expand(_ m: Macro, rule: Rule) -> [UInt8] {
        if let c = m.constant { return c }
        // A single reference to a stored variable (`%{tx.max_num_args}`): its value as stored,
        // without copying it.
        if m.parts.count == 1, case .variable(let c, _) = m.parts[0] {
            switch c {
            case .tx, .ip, .global, .session, .user, .resource: return m.keys[0].flatMap { stores[c]?[$0] } ?? []
            case .matchedVar: return matchedVar
            default: break
            }
        }
        var out: [UInt8] = []
        for (i, part) in m.parts.enumerated() {
            switch part {
            case .literal(let b): out += b
            case .rule(let k):
                switch k {
                case "id": out += Array(String(rule.id).utf8)
                case "msg": out += rule.msg.map { Array($0.text.utf8) } ?? []
                case "severity": out += Array((rule.severity ?? "").utf8)
                case "logdata": out += rule.logdata.map { Array($0.text.utf8) } ?? []
                default: break
                }
            case .variable(let c, let key):
                switch c {
                case .matchedVar: out += matchedVar
                case .matchedVarName: out += Array(matchedVarName.utf8)
                case .tx, .ip, .global, .session, .user, .resource: out += m.keys[i].flatMap { stores[c]?[$0] } ?? []
                default:
                    let list = entries(c)
                    if let key {
                        out += list.first { $0.lowerKey == key }?.value ?? []
                    } else {
                        out += list.first?.value ?? []
                    }
                }
            }
        }
        return out
    }
}

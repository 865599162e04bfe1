// Hand-written: an SQL tokenizer and a small grammar check over its tokens. The input is read as
// SQL three ways, as the application may embed it: bare (a number or identifier), inside a
// '...' string and inside a "..." string. An injection is reported only when the text, read in
// one of those contexts, breaks out and continues as valid SQL of a known attack shape
// (tautology, UNION SELECT, stacked statement, comment truncation, time-delay or error-based
// function). Keywords alone never fire: "O'Reilly", "select a plan" and "union street" pass.
// The approach follows libinjection's idea (tokenize in each quote context); the shapes follow
// the OWASP Testing Guide's SQL injection chapter. No listed library tokenizes SQL.

/// Classes of SQL words the analysis distinguishes.
enum SQLWord: UInt8 {
    case none  // identifier
    case and, or, xor, not
    case compareWord  // like, rlike, regexp, is, in, between, sounds, div, mod
    case literal  // true, false, null
    case select, union, from, whereKw, order, group, by, having, limit, offset, into, outfile, procedure
    case all, distinct
    case insert, update, delete, drop, create, alter, truncate, exec, declare, shutdown, grant, rename, call, load, set, values
    case waitfor, delay
    case objectKind  // table, database, view, user, index, procedure, function, trigger, schema, column, login
    case asc, desc, top, asKw, caseKw, when, then, elseKw, end, exists
    case timeFunc  // sleep, benchmark, pg_sleep, randomblob, receive_message
    case errorFunc  // extractvalue, updatexml, name_const, gtid_subset, xmltype, ...
    case infoFunc  // version, user, database, current_user, @@-style functions, load_file
    case sysObject  // information_schema, sysobjects, pg_shadow, sqlite_master, xp_cmdshell, ...
    case sqlFunc  // ascii, substr, char, concat, …: functions blind extraction is built from
}

struct SQLToken {
    enum Kind: UInt8 {
        case string, number, word, variable, compare, arith, logicOp, lparen, rparen, comma, semicolon, comment, dot, other
    }
    var kind: Kind
    var word: SQLWord = .none
    var start: Int
    var end: Int
    /// Strings: closed by a quote. Comments: runs to the end of the input.
    var closed: Bool = true
    /// `@@name` system variable.
    var system: Bool = false
}

enum SQLLexicon {
    static func hash<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in bytes { h = (h ^ UInt64(Decoding.lower(b))) &* 0x100000001b3 }
        return h
    }

    static let wordLists: [(SQLWord, String)] = [
        (.and, "and"),
        (.or, "or"),
        (.xor, "xor"),
        (.not, "not"),
        (.compareWord, "like rlike regexp is in between sounds div mod glob ilike similar"),
        (.literal, "true false null unknown"),
        (.select, "select"),
        (.union, "union intersect except minus"),
        (.from, "from"),
        (.whereKw, "where"),
        (.order, "order"),
        (.group, "group"),
        (.by, "by"),
        (.having, "having"),
        (.limit, "limit"),
        (.offset, "offset"),
        (.into, "into"),
        (.outfile, "outfile dumpfile"),
        (.procedure, "procedure"),
        (.all, "all"),
        (.distinct, "distinct distinctrow"),
        (.insert, "insert replace"),
        (.update, "update"),
        (.delete, "delete"),
        (.drop, "drop"),
        (.create, "create"),
        (.alter, "alter"),
        (.truncate, "truncate"),
        (.exec, "exec execute"),
        (.declare, "declare"),
        (.shutdown, "shutdown"),
        (.grant, "grant revoke"),
        (.rename, "rename"),
        (.call, "call"),
        (.load, "load"),
        (.set, "set"),
        (.values, "values"),
        (.waitfor, "waitfor"),
        (.delay, "delay"),
        (.objectKind, "table tables database databases view user function index trigger schema column login role"),
        (.asc, "asc"),
        (.desc, "desc"),
        (.top, "top"),
        (.asKw, "as"),
        (.caseKw, "case"),
        (.when, "when"),
        (.then, "then"),
        (.elseKw, "else"),
        (.end, "end"),
        (.exists, "exists"),
        (.timeFunc, "sleep benchmark pg_sleep randomblob receive_message"),
        (
            .errorFunc,
            "extractvalue updatexml name_const gtid_subset gtid_subtract xmltype exp json_keys polygon multipoint geometrycollection linestring multilinestring multipolygon ctxsys utl_inaddr drithsx get_host_name get_host_address"
        ),
        (
            .infoFunc,
            "version current_user system_user session_user database db_name host_name suser_name suser_sname user_name load_file pg_read_file pg_ls_dir lo_import sys_eval sys_exec is_srvrolemember current_database"
        ),
        (
            .sqlFunc,
            "ascii substr substring mid ord hex unhex char chr nchar concat concat_ws group_concat length len count cast convert ifnull isnull nvl coalesce elt make_set instr locate position lpad rpad left right reverse md5 sha1 rand floor bin conv char_length unicode string_agg listagg"
        ),
        (
            .sysObject,
            "information_schema sysobjects syscolumns sysdatabases sys pg_shadow pg_catalog pg_user pg_tables sqlite_master sqlite_schema all_tables user_tables all_tab_columns xp_cmdshell xp_dirtree xp_regread sp_executesql sp_oacreate openrowset opendatasource dbms_pipe dbms_lock utl_http mysql msysobjects"
        ),
    ]

    static let words: WordTable = {
        var entries: [(UInt64, UInt8)] = []
        for (w, list) in wordLists {
            for s in list.split(separator: " ") { entries.append((hash(Array(s.utf8)), w.rawValue)) }
        }
        return WordTable(entries)
    }()

    /// For each lowercase first letter, a bit per word length present in the lexicon: most prose
    /// words are rejected without hashing.
    static let shapes: [UInt32] = {
        var m = [UInt32](repeating: 0, count: 256)
        for list in lexiconWords { let b = Array(list.utf8); m[Int(Decoding.lower(b[0]))] |= 1 << UInt32(min(b.count, 31)) }
        return m
    }()
    static var lexiconWords: [String] { wordLists.flatMap { $0.1.split(separator: " ").map(String.init) } }

    static func classify<C: Collection>(_ bytes: C) -> SQLWord where C.Element == UInt8 {
        classify(bytes, shapes: shapes, words: words)
    }

    /// `classify` with the tables passed in, so a tokenizer loop does not re-check their lazy
    /// initialisation on every word.
    @inline(__always)
    static func classify<C: Collection>(_ bytes: C, shapes: [UInt32], words: WordTable) -> SQLWord where C.Element == UInt8 {
        let count = bytes.count
        guard count <= 24, let f = bytes.first, shapes[Int(Decoding.lower(f))] & (1 << UInt32(count)) != 0 else { return .none }
        return words.lookup(hash(bytes)).flatMap(SQLWord.init(rawValue:)) ?? .none
    }
}

struct SQLTokenizer {
    @inline(__always) static func isWordByte(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x24 || c >= 0x80
    }
    @inline(__always) static func isSpace(_ c: UInt8) -> Bool {
        c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0B || c == 0x0C || c == 0xA0
    }

    /// Tokenizes `input`; when `quote` is set, the input is read as if it followed that opening quote.
    static func tokenize(_ bytes: [UInt8], quote: UInt8?, into tokens: inout [SQLToken]) {
        bytes.withUnsafeBufferPointer { tokenize($0, quote: quote, into: &tokens) }
    }

    static func tokenize(_ s: UnsafeBufferPointer<UInt8>, quote: UInt8?, into tokens: inout [SQLToken]) {
        tokens.removeAll(keepingCapacity: true)
        let shapes = SQLLexicon.shapes, words = SQLLexicon.words
        let n = s.count
        var i = 0
        if let q = quote {
            // The application's own opening quote: the value's first bytes are string content.
            var j = 0
            while j < n {
                if s[j] == q {
                    if j + 1 < n, s[j + 1] == q { j += 2; continue }  // '' stays inside the string
                    break
                }
                j += 1
            }
            tokens.append(SQLToken(kind: .string, start: 0, end: min(j + 1, n), closed: j < n))
            i = j + 1
        }
        while i < n, tokens.count < 512 {
            let c = s[i]
            if isSpace(c) { i += 1; continue }
            switch c {
            case 0x27, 0x22, 0x60:  // ' " `
                var j = i + 1
                while j < n {
                    if s[j] == c {
                        if j + 1 < n, s[j + 1] == c { j += 2; continue }
                        break
                    }
                    if s[j] == 0x5C, c != 0x60, j + 1 < n { j += 2; continue }
                    j += 1
                }
                if c == 0x60 {
                    tokens.append(SQLToken(kind: .word, start: i, end: min(j + 1, n)))
                } else {
                    tokens.append(SQLToken(kind: .string, start: i, end: min(j + 1, n), closed: j < n))
                }
                i = j + 1
            case 0x30...0x39:
                var j = i
                if c == 0x30, i + 1 < n, s[i + 1] | 0x20 == 0x78 || s[i + 1] | 0x20 == 0x62 {  // 0x.. 0b..
                    j = i + 2
                    while j < n, Decoding.hex(s[j]) != nil { j += 1 }
                } else {
                    while j < n, (s[j] >= 0x30 && s[j] <= 0x39) || s[j] == 0x2E { j += 1 }
                    if j < n, s[j] | 0x20 == 0x65, j + 1 < n, (s[j + 1] >= 0x30 && s[j + 1] <= 0x39) || s[j + 1] == 0x2D || s[j + 1] == 0x2B
                    {
                        j += 2
                        while j < n, s[j] >= 0x30, s[j] <= 0x39 { j += 1 }
                    }
                }
                if j < n, isWordByte(s[j]) {
                    // "1union" is a number then a keyword to MySQL; "2nd" is a word.
                    var k = j
                    while k < n, isWordByte(s[k]) { k += 1 }
                    let w = SQLLexicon.classify(s[j..<k], shapes: shapes, words: words)
                    if w == .none {
                        tokens.append(SQLToken(kind: .word, start: i, end: k))
                        i = k
                        continue
                    }
                }
                tokens.append(SQLToken(kind: .number, start: i, end: j))
                i = j
            case 0x2D where i + 1 < n && s[i + 1] == 0x2D:  // --
                tokens.append(SQLToken(kind: .comment, start: i, end: n))
                i = n
            case 0x23:  // #
                tokens.append(SQLToken(kind: .comment, start: i, end: n))
                i = n
            case 0x2F where i + 1 < n && s[i + 1] == 0x2A:  // /*
                if i + 2 < n, s[i + 2] == 0x21 {  // /*! MySQL executable comment: its content is code
                    i += 3
                    while i < n, s[i] >= 0x30, s[i] <= 0x39 { i += 1 }
                    continue
                }
                var j = i + 2
                while j + 1 < n, !(s[j] == 0x2A && s[j + 1] == 0x2F) { j += 1 }
                if j + 1 >= n {
                    tokens.append(SQLToken(kind: .comment, start: i, end: n))
                    i = n
                } else {
                    i = j + 2  // an inline comment separates tokens like a space
                }
            case 0x2A where i + 1 < n && s[i + 1] == 0x2F:  // */ closing an executable comment
                i += 2
            case 0x40:  // @ @@
                var j = i + 1
                let system = j < n && s[j] == 0x40
                if system { j += 1 }
                while j < n, isWordByte(s[j]) || s[j] == 0x2E { j += 1 }
                tokens.append(SQLToken(kind: .variable, start: i, end: j, system: system))
                i = j
            case 0x28: tokens.append(SQLToken(kind: .lparen, start: i, end: i + 1)); i += 1
            case 0x29: tokens.append(SQLToken(kind: .rparen, start: i, end: i + 1)); i += 1
            case 0x2C: tokens.append(SQLToken(kind: .comma, start: i, end: i + 1)); i += 1
            case 0x3B: tokens.append(SQLToken(kind: .semicolon, start: i, end: i + 1)); i += 1
            case 0x2E:
                if i + 1 < n, s[i + 1] >= 0x30, s[i + 1] <= 0x39 {
                    var j = i + 1
                    while j < n, s[j] >= 0x30, s[j] <= 0x39 { j += 1 }
                    tokens.append(SQLToken(kind: .number, start: i, end: j))
                    i = j
                } else {
                    tokens.append(SQLToken(kind: .dot, start: i, end: i + 1)); i += 1
                }
            case 0x3D, 0x3C, 0x3E, 0x21:  // = < > !
                var j = i + 1
                while j < n, j - i < 3, s[j] == 0x3D || s[j] == 0x3E || s[j] == 0x3C { j += 1 }
                if c == 0x21, j == i + 1 {
                    tokens.append(SQLToken(kind: .arith, start: i, end: j))  // unary !
                } else {
                    tokens.append(SQLToken(kind: .compare, start: i, end: j))
                }
                i = j
            case 0x7C, 0x26:  // | & || &&
                if i + 1 < n, s[i + 1] == c {
                    tokens.append(SQLToken(kind: .logicOp, start: i, end: i + 2)); i += 2
                } else {
                    tokens.append(SQLToken(kind: .arith, start: i, end: i + 1)); i += 1
                }
            case 0x2B, 0x2D, 0x2A, 0x2F, 0x25, 0x5E, 0x7E:
                tokens.append(SQLToken(kind: .arith, start: i, end: i + 1)); i += 1
            case 0x3A where i + 1 < n && s[i + 1] == 0x3D:
                tokens.append(SQLToken(kind: .compare, start: i, end: i + 2)); i += 2
            default:
                if isWordByte(c) {
                    var j = i
                    while j < n, isWordByte(s[j]) { j += 1 }
                    var t = SQLToken(kind: .word, start: i, end: j)
                    t.word = SQLLexicon.classify(s[i..<j], shapes: shapes, words: words)
                    if t.word == .and || t.word == .or || t.word == .xor { t.kind = .logicOp }
                    if t.word == .compareWord { t.kind = .compare }
                    tokens.append(t)
                    i = j
                } else {
                    tokens.append(SQLToken(kind: .other, start: i, end: i + 1)); i += 1
                }
            }
        }
    }
}

/// A match found by the SQL analysis.
struct SQLMatch {
    var rule: String
    var start: Int
    var end: Int
    var message: String
}

struct SQLAnalysis {
    let t: [SQLToken]
    let s: [UInt8]
    let context: UInt8?

    struct ExprInfo {
        var compare = false
        var call = false
        var subquery = false
        var literalOnly = true
        var operands = 0
        var lastWasUnclosedString = false
        var lastNumberOrBool = false
    }

    func word(_ i: Int) -> SQLWord { i < t.count && t[i].kind == .word ? t[i].word : .none }
    func kind(_ i: Int) -> SQLToken.Kind? { i < t.count ? t[i].kind : nil }
    func isKW(_ i: Int, _ w: SQLWord) -> Bool {
        i < t.count && t[i].word == w && (t[i].kind == .word || t[i].kind == .logicOp || t[i].kind == .compare)
    }

    /// Index after the parenthesised group opening at `i` (unclosed groups run to the end).
    func skipGroup(_ i: Int) -> Int {
        var depth = 0
        var j = i
        while j < t.count {
            if t[j].kind == .lparen { depth += 1 } else if t[j].kind == .rparen { depth -= 1; if depth == 0 { return j + 1 } }
            j += 1
        }
        return j
    }

    /// Whether the tokens in `range` read as an expression list: no two values side by side.
    func valuesSeparated(_ from: Int, _ to: Int) -> Bool {
        var prevValue = false
        var j = from
        while j < to {
            let k = t[j].kind
            let isValue =
                k == .number || k == .string || k == .variable
                || (k == .word && t[j].word != .asKw && t[j].word != .from && t[j].word != .select && t[j].word != .whereKw)
            if isValue && prevValue {
                // `CAST(x AS int)`, `CONVERT(int, x)` and `x alias` are fine in SQL; prose is not two words
                // twice in a row, so only reject value-value pairs that are not a keyword alias.
                if !(k == .word && t[j].word != .none) && !(t[j - 1].kind == .word && t[j - 1].word != .none) { return false }
            }
            prevValue = isValue || k == .rparen
            if k == .lparen || k == .comma || k == .compare || k == .arith || k == .logicOp || k == .dot { prevValue = false }
            j += 1
        }
        return true
    }

    /// Parses one operand at `i`; returns the index after it.
    func operand(_ i0: Int, _ info: inout ExprInfo) -> Int? {
        var i = i0
        // Unary prefixes.
        while i < t.count,
            (t[i].kind == .arith && (s[t[i].start] == 0x2D || s[t[i].start] == 0x2B || s[t[i].start] == 0x7E || s[t[i].start] == 0x21))
                || isKW(i, .not) || (t[i].kind == .word && t[i].word == .not)
        {
            i += 1
        }
        guard i < t.count else { return nil }
        info.operands += 1
        info.lastWasUnclosedString = false
        info.lastNumberOrBool = false
        let tok = t[i]
        switch tok.kind {
        case .number:
            info.lastNumberOrBool = true
            return i + 1
        case .string:
            if !tok.closed { info.lastWasUnclosedString = true }
            return i + 1
        case .variable:
            info.literalOnly = false
            if tok.system { info.call = true }
            return i + 1
        case .lparen:
            info.literalOnly = false
            if word(i + 1) == .select { info.subquery = true }
            let end = skipGroup(i)
            if valuesSeparated(i + 1, max(i + 1, end - 1)) || info.subquery {
                info.call = info.call || info.subquery
                // A group holding a comparison or a call is an expression, not prose in brackets.
                for k in (i + 1)..<max(i + 1, end - 1)
                where t[k].kind == .compare || (t[k].kind == .word && k + 1 < t.count && t[k + 1].kind == .lparen) {
                    if t[k].kind == .compare { info.compare = true } else { info.call = true }
                }
                return end
            }
            return nil
        case .word:
            if tok.word == .literal {
                info.lastNumberOrBool = true
                return i + 1
            }
            if tok.word == .caseKw || tok.word == .exists || tok.word == .select {
                info.literalOnly = false
                info.call = true
                var j = i + 1
                while j < t.count, t[j].kind != .semicolon, t[j].kind != .comment { j += 1 }
                return j
            }
            info.literalOnly = false
            var j = i + 1
            while j + 1 < t.count, t[j].kind == .dot, t[j + 1].kind == .word { j += 2 }
            if j < t.count, t[j].kind == .lparen {
                let end = skipGroup(j)
                guard valuesSeparated(j + 1, max(j + 1, end - 1)) else { return nil }
                info.call = true
                return end
            }
            if tok.word != .none && tok.word != .objectKind && tok.word != .infoFunc && tok.word != .sysObject && tok.word != .timeFunc
                && tok.word != .errorFunc && tok.word != .sqlFunc
            {
                return nil  // a keyword is not an operand
            }
            return j
        default:
            return nil
        }
    }

    /// Parses `(binary-op operand)+` from `i`; returns the end index and what the chain held.
    func chain(_ i0: Int, _ info: inout ExprInfo, sawLogic: inout Bool) -> Int? {
        var i = i0
        var steps = 0
        while i < t.count {
            let k = t[i].kind
            if k == .logicOp {
                sawLogic = true; i += 1
            } else if k == .compare {
                info.compare = true
                i += 1
                if t[i - 1].word == .compareWord, isKW(i, .not) { i += 1 }
                if i < t.count, t[i].kind == .compare, t[i].word == .compareWord { i += 1 }  // SOUNDS LIKE
            } else if k == .arith {
                i += 1
            } else if k == .word, t[i].word == .not, i + 1 < t.count, t[i + 1].kind == .compare {
                i += 1; continue
            } else {
                break
            }
            guard let e = operand(i, &info) else { return nil }
            i = e
            steps += 1
        }
        return steps > 0 ? i : nil
    }

    /// Whether the tokens from `i` may validly end an injected expression.
    func validTerminator(_ i0: Int) -> Bool {
        var i = i0
        while i < t.count, t[i].kind == .rparen { i += 1 }
        guard i < t.count else { return true }
        switch t[i].kind {
        case .comment, .semicolon: return true
        case .word:
            switch t[i].word {
            case .order, .group, .having, .limit, .union, .into, .procedure, .from, .offset: return true
            default: return false
            }
        default: return false
        }
    }

    func terminatorIsComment(_ i0: Int) -> Bool {
        var i = i0
        while i < t.count, t[i].kind == .rparen { i += 1 }
        return i < t.count && (t[i].kind == .comment || t[i].kind == .semicolon)
    }

    /// Where the injected SQL starts: after the closing quote (string contexts) or after the first
    /// operand (bare context).
    func breakoutIndex() -> Int? {
        if context != nil { return t.count > 1 && t[0].closed ? 1 : nil }
        guard let first = t.first else { return nil }
        switch first.kind {
        case .number, .string, .variable: return 1
        case .word:
            if first.word == .none || first.word == .literal { return 1 }
            return 0
        case .rparen, .logicOp, .semicolon: return 0
        case .arith where s[first.start] == 0x2D:
            return kind(1) == .number ? 2 : nil
        default: return nil
        }
    }

    func analyse(into out: inout [SQLMatch]) {
        if let p0 = breakoutIndex() {
            breakout(p0, into: &out)
        }
        anywhere(into: &out)
        charChain(into: &out)
    }

    func span(_ a: Int, _ b: Int) -> (Int, Int) {
        let start = t[min(a, t.count - 1)].start
        let end = b > a ? t[min(b, t.count) - 1].end : t[min(a, t.count - 1)].end
        return (start, max(start, end))
    }

    func breakout(_ p0: Int, into out: inout [SQLMatch]) {
        var p = p0
        while p < t.count, t[p].kind == .rparen { p += 1 }
        guard p < t.count else { return }
        let ctxName = context.map { "after closing a \(Character(Unicode.Scalar($0))) string" } ?? "after a value"
        let tok = t[p]
        // Logic or comparison right after the breakout: tautology / boolean / conditional shapes.
        if tok.kind == .logicOp || (context != nil && (tok.kind == .compare || tok.kind == .arith)) {
            var info = ExprInfo()
            var sawLogic = false
            if let e = chain(p, &info, sawLogic: &sawLogic), validTerminator(e) || info.lastWasUnclosedString && e == t.count {
                let strong = info.compare || info.call || info.subquery
                var weakOK = false
                if !strong, context == nil, e == t.count, t[0].kind == .number, sawLogic, info.operands == 1,
                    t[e - 1].kind == .word, t[e - 1].word == .literal, s[t[e - 1].start] | 0x20 == 0x74
                {
                    weakOK = true  // `7 or true`
                }
                if !strong, info.lastNumberOrBool || (!info.lastWasUnclosedString && info.literalOnly) {
                    // `' OR 1--`, `1 OR true#`: a constant condition needs the rest cut off, or a number in a
                    // string context (`' or 1`).
                    weakOK = weakOK || terminatorIsComment(e) || (context != nil && sawLogic && info.lastNumberOrBool && e == t.count)
                }
                if context != nil, !sawLogic, !strong {
                    // `'-'`, `'||'`: an operator on the broken-out string, closed by the application's quote.
                    weakOK = weakOK || (info.lastWasUnclosedString && info.operands == 1)
                }
                if strong || weakOK {
                    let (a, b) = span(max(0, p - 1), e)
                    out.append(
                        SQLMatch(
                            rule: "942100", start: a, end: b,
                            message: (sawLogic ? "boolean condition" : "operator expression") + " " + ctxName))
                    return
                }
            }
        }
        if context == nil, p > 0, tok.kind == .compare, t[0].kind == .number {
            // `1 RLIKE (SELECT …)`, `1 = (SELECT …)`: a number compared with a subquery.
            var info = ExprInfo()
            var sawLogic = false
            if let e = chain(p, &info, sawLogic: &sawLogic), info.subquery, validTerminator(e) || e == t.count {
                let (a, b) = span(0, e)
                out.append(SQLMatch(rule: "942100", start: a, end: b, message: "comparison with a subquery after a value"))
                return
            }
        }
        if tok.kind == .semicolon, context != nil, p + 1 == t.count || t[p + 1].kind == .comment {
            // `';--`: the string is closed and the statement ended; the rest of the query is cut off.
            let (a, b) = span(0, min(t.count, p + 2))
            out.append(SQLMatch(rule: "942110", start: a, end: b, message: "statement ended and truncated " + ctxName))
            return
        }
        if tok.kind == .comment, context != nil {
            let (a, b) = span(0, p + 1)
            out.append(SQLMatch(rule: "942110", start: a, end: b, message: "comment truncates the query " + ctxName))
            return
        }
        if tok.kind == .word {
            switch tok.word {
            case .order, .group:
                if isKW(p + 1, .by) {
                    var info = ExprInfo()
                    if let e = operand(p + 2, &info) {
                        var j = e
                        while j < t.count {
                            if t[j].word == .asc || t[j].word == .desc { j += 1; continue }
                            if t[j].kind == .comma, let e2 = operand(j + 1, &info) { j = e2; continue }
                            if t[j].kind == .comma, terminatorIsComment(j + 1) { j += 1; continue }
                            break
                        }
                        // Bare context: only after a number or a closing parenthesis (`1 ORDER BY 5--`).
                        let bareOK = context == nil && p > 0 && (t[0].kind == .number || t[p - 1].kind == .rparen)
                        if isKW(j, .having) || validTerminator(j) {
                            if bareOK || context != nil {
                                let (a, b) = span(p, j)
                                out.append(SQLMatch(rule: "942160", start: a, end: b, message: "ORDER/GROUP BY " + ctxName))
                            }
                        }
                    }
                }
            case .having:
                var info = ExprInfo()
                if p > 0, let e0 = operand(p + 1, &info) {
                    var sawLogic = false
                    let e = chain(e0, &info, sawLogic: &sawLogic) ?? e0
                    if info.compare, validTerminator(e) {
                        let (a, b) = span(p, e)
                        out.append(SQLMatch(rule: "942160", start: a, end: b, message: "HAVING clause " + ctxName))
                    }
                }
            case .into:
                if word(p + 1) == .outfile {
                    let (a, b) = span(p, p + 3)
                    out.append(SQLMatch(rule: "942160", start: a, end: b, message: "INTO OUTFILE " + ctxName))
                }
            case .procedure:
                let (a, b) = span(p, p + 2)
                if p > 0, word(p + 1) == .none, kind(p + 2) == .lparen {
                    out.append(SQLMatch(rule: "942160", start: a, end: b, message: "PROCEDURE " + ctxName))
                }
            case .limit:
                if p > 0, kind(p + 1) == .number {
                    var j = p + 2
                    if kind(j) == .comma, kind(j + 1) == .number { j += 2 }
                    if terminatorIsComment(j) || (j < t.count && t[j].word == .union) {
                        let (a, b) = span(p, j)
                        out.append(SQLMatch(rule: "942160", start: a, end: b, message: "LIMIT " + ctxName))
                    }
                }
            default:
                if context != nil, tok.word != .none {
                    let (a, b) = span(0, p + 1)
                    out.append(SQLMatch(rule: "942180", start: a, end: b, message: "SQL keyword " + ctxName))
                }
            }
            return
        }
        if context != nil, tok.kind == .compare || tok.kind == .logicOp || tok.kind == .arith {
            let (a, b) = span(0, p + 1)
            out.append(SQLMatch(rule: "942180", start: a, end: b, message: "SQL operator " + ctxName))
        }
    }

    /// A select list that is SQL, not prose: `null,null`, `1,2,3`, `*`, `@@version`, `user()`, `a FROM b`.
    func selectListLooksSQL(_ i0: Int) -> Int? {
        var i = i0
        if word(i) == .all || word(i) == .distinct || word(i) == .top { i += 1 }
        if kind(i) == .number, t[i - 1].word == .top { i += 1 }
        var j = i
        var signals = 0
        var words = 0
        while j < t.count {
            let tk = t[j]
            if tk.kind == .semicolon || tk.kind == .comment { break }
            if tk.kind == .word,
                tk.word == .from || tk.word == .whereKw || tk.word == .union || tk.word == .into || tk.word == .order || tk.word == .limit
            {
                signals += 1; break
            }
            switch tk.kind {
            case .comma, .number, .variable, .string, .lparen: signals += 1
            case .arith where s[tk.start] == 0x2A: signals += 1
            case .word:
                if tk.word == .literal || tk.word == .infoFunc || tk.word == .sysObject || tk.word == .caseKw { signals += 1 }
                words += 1
            default: break
            }
            j += 1
            if j - i > 64 { break }
        }
        guard j > i || signals > 0 else { return nil }
        guard signals > 0, valuesSeparated(i, j) || signals > 1 else { return nil }
        _ = words
        return max(j, i + 1)
    }

    func anywhere(into out: inout [SQLMatch]) {
        var i = 0
        while i < t.count {
            let tk = t[i]
            switch tk.kind {
            case .word:
                switch tk.word {
                case .union:
                    var j = i + 1
                    if word(j) == .all || word(j) == .distinct { j += 1 }
                    while kind(j) == .lparen { j += 1 }
                    if word(j) == .select, let e = selectListLooksSQL(j + 1) {
                        let (a, b) = span(i, e)
                        out.append(SQLMatch(rule: "942120", start: a, end: b, message: "UNION SELECT"))
                    }
                case .timeFunc:
                    if kind(i + 1) == .lparen, let e = callArgs(i + 1, wantLeadingNumber: tk.end - tk.start != 15), followsAsSQL(e) {
                        let (a, b) = span(i, e)
                        out.append(SQLMatch(rule: "942140", start: a, end: b, message: "time-delay function"))
                    }
                case .waitfor:
                    if word(i + 1) == .delay
                        || (i + 1 < t.count && SQLLexicon.hash(s[t[i + 1].start..<t[i + 1].end]) == SQLAnalysis.timeHash),
                        kind(i + 2) == .string
                    {
                        let (a, b) = span(i, i + 3)
                        out.append(SQLMatch(rule: "942140", start: a, end: b, message: "WAITFOR DELAY"))
                    }
                case .errorFunc:
                    if kind(i + 1) == .lparen, callArgs(i + 1, wantLeadingNumber: false) != nil {
                        let (a, b) = span(i, skipGroup(i + 1))
                        out.append(SQLMatch(rule: "942150", start: a, end: b, message: "error-based function"))
                    }
                case .infoFunc:
                    if kind(i + 1) == .lparen,
                        tk.end - tk.start >= 7
                            || (i > 0 && (t[i - 1].kind == .comma || t[i - 1].kind == .lparen || t[i - 1].word == .select))
                    {
                        let e = skipGroup(i + 1)
                        if valuesSeparated(i + 2, max(i + 2, e - 1)), i > 0 || e < t.count {
                            let (a, b) = span(i, e)
                            out.append(SQLMatch(rule: "942150", start: a, end: b, message: "database fingerprinting function"))
                        }
                    }
                case .sysObject:
                    let prevFrom = i > 0 && (t[i - 1].word == .from || t[i - 1].word == .exec || t[i - 1].kind == .dot)
                    let nextDot = kind(i + 1) == .dot || kind(i + 1) == .lparen
                    if prevFrom || nextDot || tk.end - tk.start >= 10 {
                        let (a, b) = span(i, min(t.count, i + 3))
                        out.append(SQLMatch(rule: "942150", start: a, end: b, message: "database system object"))
                    }
                case .select, .insert, .update, .delete, .drop, .create, .alter, .truncate, .exec, .declare, .shutdown, .grant, .set, .load,
                    .call, .rename:
                    if let e = statement(i) {
                        let stacked = i > 0 && t[i - 1].kind == .semicolon
                        let (a, b) = span(stacked ? i - 1 : i, e)
                        out.append(
                            SQLMatch(
                                rule: stacked ? "942130" : "942170", start: a, end: b,
                                message: stacked ? "stacked statement" : "SQL statement"))
                    }
                default: break
                }
            case .logicOp where i > 0:
                var info = ExprInfo()
                var sawLogic = false
                if let e = chain(i, &info, sawLogic: &sawLogic), info.compare, info.subquery || sqlCall(i + 1, e) {
                    let (a, b) = span(i, e)
                    out.append(SQLMatch(rule: "942100", start: a, end: b, message: "boolean condition on an SQL function or subquery"))
                }
            case .variable:
                if tk.system {
                    let (a, b) = span(i, i + 1)
                    out.append(SQLMatch(rule: "942150", start: a, end: b, message: "system variable"))
                }
            default: break
            }
            i += 1
        }
    }

    static let timeHash = SQLLexicon.hash(Array("time".utf8))
    static let charHashes: Set<UInt64> = [
        SQLLexicon.hash(Array("char".utf8)), SQLLexicon.hash(Array("chr".utf8)), SQLLexicon.hash(Array("nchar".utf8)),
    ]

    /// Whether a call to an SQL function (not a word that merely precedes brackets) sits in `from..<to`.
    func sqlCall(_ from: Int, _ to: Int) -> Bool {
        var k = from
        while k + 1 < min(to, t.count) {
            if t[k].kind == .word, t[k + 1].kind == .lparen,
                t[k].word == .sqlFunc || t[k].word == .infoFunc || t[k].word == .timeFunc || t[k].word == .errorFunc
            {
                return true
            }
            k += 1
        }
        return false
    }

    /// After a call: the end, a comment, an operator or punctuation; not prose ("sleep(8) in the loop").
    func followsAsSQL(_ e: Int) -> Bool {
        guard e < t.count else { return true }
        switch t[e].kind {
        case .comment, .semicolon, .rparen, .comma, .logicOp, .arith, .string: return true
        case .compare: return t[e].word != .compareWord
        case .word:
            return t[e].word == .from || t[e].word == .union || t[e].word == .end || t[e].word == .then || t[e].word == .elseKw
                || t[e].word == .asKw
        default: return false
        }
    }

    /// `CHAR(0x61)+CHAR(0x64)…`: a string assembled from character codes.
    func charChain(into out: inout [SQLMatch]) {
        var count = 0
        var first = -1
        var i = 0
        while i + 1 < t.count {
            if t[i].kind == .word, t[i + 1].kind == .lparen, SQLAnalysis.charHashes.contains(SQLLexicon.hash(s[t[i].start..<t[i].end])),
                i + 2 < t.count, t[i + 2].kind == .number
            {
                if first < 0 { first = i }
                count += 1
                i = skipGroup(i + 1)
                continue
            }
            i += 1
        }
        if count >= 3 {
            let (a, b) = span(first, min(t.count, first + 12))
            out.append(SQLMatch(rule: "942150", start: a, end: b, message: "string built from CHAR() codes"))
        }
    }

    /// The end of a call's argument group when its arguments read as SQL (and start with a number
    /// or expression when asked: `sleep(5)`, not "sleep(8 hours)").
    func callArgs(_ lp: Int, wantLeadingNumber: Bool) -> Int? {
        let e = skipGroup(lp)
        let inner = (lp + 1)..<max(lp + 1, e - 1)
        guard valuesSeparated(inner.lowerBound, inner.upperBound) else { return nil }
        if wantLeadingNumber {
            guard let f = inner.first, inner.count > 0 else { return nil }
            let k = t[f].kind
            guard k == .number || k == .lparen || k == .variable || (k == .word && t[f].word != .none) || k == .string && inner.count == 1
            else { return nil }
            if inner.count > 1, k == .number, t[f + 1].kind == .word, t[f + 1].word == .none { return nil }
        }
        return e
    }

    /// Validates a statement starting at `i`; returns its end when it reads as real SQL.
    func statement(_ i: Int) -> Int? {
        let w = t[i].word
        func ident(_ j: Int) -> Bool { j < t.count && (t[j].kind == .word || t[j].kind == .variable || t[j].kind == .string && w == .exec) }
        func ends(_ j: Int) -> Bool {
            guard j < t.count else { return true }
            return t[j].kind == .semicolon || t[j].kind == .comment || t[j].kind == .lparen || t[j].kind == .comma || t[j].kind == .compare
                || (t[j].kind == .word
                    && (t[j].word == .whereKw || t[j].word == .set || t[j].word == .values || t[j].word == .from || t[j].word == .select))
        }
        switch w {
        case .select:
            var j = i + 1
            if let e = selectListLooksSQL(j) {
                j = e
                if isKW(j, .from) || isKW(j, .into) {
                    if ident(j + 1) || kind(j + 1) == .lparen { return min(t.count, j + 2) }
                    return nil
                }
                // Without FROM: `SELECT 1`, `SELECT @@version`, `SELECT pg_sleep(5)`, `SELECT 1,2`.
                if j >= t.count || t[j].kind == .semicolon || t[j].kind == .comment || t[j].kind == .rparen {
                    return j
                }
            }
            return nil
        case .insert:
            if isKW(i + 1, .into), ident(i + 2) { return i + 3 }
            return nil
        case .update:
            if ident(i + 1), isKW(i + 2, .set), ident(i + 3), kind(i + 4) == .compare { return i + 5 }
            return nil
        case .delete:
            if isKW(i + 1, .from), ident(i + 2), ends(i + 3) { return i + 3 }
            return nil
        case .drop, .create, .alter, .truncate:
            var j = i + 1
            if w == .truncate, word(j) != .objectKind, ident(j), ends(j + 1) { return j + 1 }
            guard word(j) == .objectKind || word(j) == .procedure else { return nil }
            j += 1
            if word(j) == .none, j < t.count, SQLLexicon.hash(s[t[j].start..<t[j].end]) == SQLAnalysis.ifHash { j += 2 }
            if ident(j), ends(j + 1) || w == .alter || w == .create { return j + 1 }
            return nil
        case .exec:
            if ident(i + 1),
                (t[i + 1].word == .sysObject || t[i + 1].kind == .variable || kind(i + 2) == .lparen || kind(i + 1) == .string
                    || ends(i + 2))
            {
                return i + 2
            }
            if kind(i + 1) == .lparen { return skipGroup(i + 1) }
            return nil
        case .declare:
            if kind(i + 1) == .variable { return i + 2 }
            return nil
        case .shutdown:
            if i + 1 >= t.count || t[i + 1].kind == .comment || t[i + 1].kind == .semicolon
                || (kind(i + 1) == .word && SQLLexicon.hash(s[t[i + 1].start..<t[i + 1].end]) == SQLAnalysis.withHash)
            {
                return i + 1
            }
            return nil
        case .grant:
            if i + 3 < t.count, (0..<4).contains(where: { t[i + $0].word == .objectKind || t[i + $0].word == .all }),
                (1...4).contains(where: {
                    i + $0 < t.count && t[i + $0].word == .none && SQLLexicon.hash(s[t[i + $0].start..<t[i + $0].end]) == SQLAnalysis.toHash
                })
            {
                return i + 4
            }
            return nil
        case .set:
            if kind(i + 1) == .variable, kind(i + 2) == .compare { return i + 3 }
            return nil
        case .load:
            if i + 1 < t.count, t[i + 1].kind == .word, SQLLexicon.hash(s[t[i + 1].start..<t[i + 1].end]) == SQLAnalysis.dataHash {
                return i + 2
            }
            return nil
        case .call:
            if ident(i + 1), kind(i + 2) == .lparen { return skipGroup(i + 2) }
            return nil
        case .rename:
            if word(i + 1) == .objectKind, ident(i + 2) { return i + 3 }
            return nil
        default:
            return nil
        }
    }

    static let ifHash = SQLLexicon.hash(Array("if".utf8))
    static let withHash = SQLLexicon.hash(Array("with".utf8))
    static let toHash = SQLLexicon.hash(Array("to".utf8))
    static let dataHash = SQLLexicon.hash(Array("data".utf8))
}

/// The SQL injection detector: tokenizes a value in the bare, '-quoted and "-quoted contexts and
/// reports the injection shapes it finds.
package enum SQLInjectionDetector {
    /// Bytes without which no injection shape can form: separators between tokens, quotes,
    /// operators, comment starts, brackets.
    static let triggers: [UInt8] = Array(" \t\n\r'\"`();=<>|&#-/*+,!~^%".utf8) + [0x0B, 0x0C]

    static func scan(_ s: [UInt8], bytes set: ByteSet, tokens: inout [SQLToken], into out: inout [SQLMatch]) {
        let hasSingleQuote = set.has(0x27), hasDoubleQuote = set.has(0x22)
        let hasPlusNoSpace = set.has(0x2B) && !set.has(0x20), hasSlash = set.has(0x2F)
        guard s.count >= 2 else { return }
        // One word without operators ("team", "tim@example.com", a token) cannot be an injection.
        guard triggers.contains(where: { set.has($0) }) else { return }
        var hasSQ = hasSingleQuote
        let hasDQ = hasDoubleQuote
        // Apostrophes that are all English contractions ("we'd", "it's", "don't") cannot close an
        // application's string into SQL: the text after each is a word suffix, never an operator.
        if hasSQ, onlyContractions(s) { hasSQ = false }
        scanContexts(s, hasSQ, hasDQ, &tokens, &out)
        // Forms some filters and back ends produce: `+` as a space (`'+OR+1=1--` typed into a URL),
        // and inline comments removed rather than read as spaces (`UNI/**/ON SEL/**/ECT`).
        if hasPlusNoSpace {
            let spaced = s.map { $0 == 0x2B ? 0x20 : $0 }
            scanContexts(spaced, hasSQ, hasDQ, &tokens, &out)
        }
        if hasSlash, Decoding.find([0x2F, 0x2A], in: s) != nil {
            var joined: [UInt8] = []
            var i = 0
            while i < s.count {
                if s[i] == 0x2F, i + 1 < s.count, s[i + 1] == 0x2A, i + 2 < s.count, s[i + 2] != 0x21 {
                    var j = i + 2
                    while j + 1 < s.count, !(s[j] == 0x2A && s[j + 1] == 0x2F) { j += 1 }
                    i = j + 2
                    continue
                }
                joined.append(s[i])
                i += 1
            }
            if joined != s { scanContexts(joined, hasSQ, hasDQ, &tokens, &out) }
        }
    }

    static func onlyContractions(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { onlyContractions($0) }
    }

    static func onlyContractions(_ s: UnsafeBufferPointer<UInt8>) -> Bool {
        @inline(__always) func letter(_ c: UInt8) -> Bool { (c | 0x20) &- 0x61 < 26 }
        let n = s.count
        var i = 0
        while i < n {
            if s[i] == 0x27 {
                guard i > 0, letter(s[i - 1]), i + 1 < n, letter(s[i + 1]) else { return false }
                var j = i + 1
                while j < n, letter(s[j]) { j += 1 }
                let suffix = j - i - 1
                let a = s[i + 1] | 0x20
                let b: UInt8 = suffix == 2 ? s[i + 2] | 0x20 : 0
                let ok =
                    (suffix == 1 && (a == 0x73 || a == 0x64 || a == 0x74 || a == 0x6D))  // 's 'd 't 'm
                    || (suffix == 2 && ((a == 0x6C && b == 0x6C) || (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65)))  // 'll 're 've
                guard ok else { return false }
                i = j
                continue
            }
            i += 1
        }
        return true
    }

    static func scanContexts(_ s: [UInt8], _ hasSQ: Bool, _ hasDQ: Bool, _ tokens: inout [SQLToken], _ out: inout [SQLMatch]) {
        SQLTokenizer.tokenize(s, quote: nil, into: &tokens)
        SQLAnalysis(t: tokens, s: s, context: nil).analyse(into: &out)
        if hasSQ {
            SQLTokenizer.tokenize(s, quote: 0x27, into: &tokens)
            SQLAnalysis(t: tokens, s: s, context: 0x27).analyse(into: &out)
        }
        if hasDQ {
            SQLTokenizer.tokenize(s, quote: 0x22, into: &tokens)
            SQLAnalysis(t: tokens, s: s, context: 0x22).analyse(into: &out)
        }
    }
}

extension SQLInjectionDetector {
    /// Whether `value` reads as an SQL injection in any of the three quoting contexts: the
    /// SecLang engine's `@detectSQLi`.
    package static func detects(_ value: [UInt8]) -> Bool {
        var tokens: [SQLToken] = []
        var found: [SQLMatch] = []
        scan(value, bytes: ByteSet(value), tokens: &tokens, into: &found)
        return !found.isEmpty
    }
}

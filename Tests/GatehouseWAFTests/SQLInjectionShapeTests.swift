import Testing

@testable import GatehouseWAF

/// What `@detectSQLi` (the SQL tokenizer, `SQLInjectionDetector.detects`) answers on prose that
/// has an injection's punctuation but no SQL after the breakout, and on injections of the same
/// shapes, which must still be caught.
@Suite("SQL tokenizer: breakout shapes need SQL after them")
struct SQLInjectionShapeTests {
    /// Quotes, brackets, `--` and SQL words in changelogs, manuals and docstrings.
    static let prose: [String] = [
        // An operator after the breakout, then words side by side.
        #"To link against the threaded build, append "-mt"."#,
        "Remove the backslash from an escaped '%'. (Reported by Jane Doe). Don't touch the rest.",
        "The first line is 'x'. * Fix the build on older systems",
        #"A rule with priority ``10" in an organization policy with ID ``12", run:"#,
        // A comment marker that starts a sentence, not the end of a query.
        #"- Added coverage with the "--enable-coverage" configure flag and added reports to the site"#,
        "Add '--' after '-m <name>' to ignore additional arguments passed to a module.",
        // A value-like word after the breakout: an object kind, a literal, a function name
        // without brackets, a keyword followed by nothing but a string.
        #"list the backups with --format="table(name, database, state)""#,
        #"A service owned by "unknown" can be replaced by anyone."#,
        #"the highlighter marks "char" in the text view as a keyword"#,
        "Specify an integer or 'all' to print every line of the log.",
        "precedence is a string such as 'left' or 'right' naming the side it binds to.",
        #"Bug fix: "login.defs:MAX_UID has no effect on the list of users", thanks to Sam"#,
        "--member='user:someone@example.com' --role='roles/viewer'",
        // SELECT and CALL followed by prose.
        "Allow to select the threading model on Windows (MSVC), fix the build (Sam), cleanups (Kim)",
        "If not given, you may be asked to select a zone (interactive mode only). The tool then looks for one in your project.",
        "Select(what) This action selects the indicated nodes, as described in the menu section: nothing (all), parent, children.",
        "the openssl backend breaks if you call lib_init() again after a cleanup of the library",
        "configure.in - call AC_SUBST(LOCAL_FLAGS), since Makefile.in contains @LOCAL_FLAGS@",
        // Function and system-object names in prose and code.
        "Fixed the variable with a wrong address in the server version (BUG-337).",
        "Stop using the cleanup() logic to save and restore sys.modules contents between test cases.",
        "check this directly from sys.argv, config is not available yet",
        "if not isinstance(item, tuple) or len(item) != 2: pairs = False",
    ]

    /// Injections of the same shapes.
    static let injections: [String] = [
        "x' or 'a'='a", "1') or ('1'='1", #""-mt") union select password from users--"#,
        "admin'--", "guest'-- ", "admin' #", "x'-- -", "' or 1=1 -- and the rest of the query",
        "abc' like", #"mail@example.org" sleep(10) ""#, #"" | type %SystemDrive%\config.ini | ""#,
        "' and sleep(5)--", "1 and ascii(substr(user(),1,1))>64", "1) and length(database())=8--",
        "1; call cleanup(1)--", "x'; call p()", "1 and version()=5",
        "x' and exists(select 1 from sys.objects)--", "1 and 1=(select count(*) from sys.tables)",
        "x' union select name from sysobjects where xtype='U'--",
    ]

    @Test(arguments: prose)
    func proseIsNotAnInjection(_ text: String) {
        var tokens: [SQLToken] = []
        var found: [SQLMatch] = []
        let v = Array(text.utf8)
        SQLInjectionDetector.scan(v, bytes: ByteSet(v), tokens: &tokens, into: &found)
        let shown = found.map { "\($0.rule) \($0.message): " + String(decoding: v[$0.start..<$0.end], as: UTF8.self) }
        #expect(found.isEmpty, "flagged: \(shown)")
    }

    @Test(arguments: injections)
    func injectionIsCaught(_ text: String) {
        #expect(SQLInjectionDetector.detects(Array(text.utf8)))
    }

    /// The built-in WAF at paranoia 1 still blocks the whole injections among them.
    @Test(arguments: ["x' or 'a'='a", "1') or ('1'='1", #""-mt") union select password from users--"#, "admin'--", "' and sleep(5)--"])
    func builtInWAFBlocks(_ text: String) {
        #expect(engine.inspect(query("q", text)).blocked)
    }
}

// The nginx configuration grammar and location matching are written by hand: no listed library reads them.
import Foundation
import GatehouseCore
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One nginx directive with its block, if any, and where it was written.
/// The nginx configuration grammar is parsed by hand: no listed library reads it.
public struct NginxDirective: Sendable, Equatable {
    public var name: String
    public var args: [String]
    public var children: [NginxDirective]?
    public var file: String
    public var line: Int

    /// The directive as written (`deny all;`).
    public var text: String { ([name] + args).joined(separator: " ") + (children == nil ? ";" : " { … }") }
    public var position: String { "\(file):\(line)" }

    func all(_ n: String) -> [NginxDirective] { (children ?? []).filter { $0.name == n } }
    func first(_ n: String) -> NginxDirective? { (children ?? []).first { $0.name == n } }
}

/// Reads nginx configuration files, following `include` (with globs) relative to the config's directory.
public enum NginxConfigParser {
    public static func parse(file: String) throws -> [NginxDirective] {
        let prefix = (file as NSString).deletingLastPathComponent
        return try parse(file: file, prefix: prefix, depth: 0)
    }

    static func parse(file: String, prefix: String, depth: Int) throws -> [NginxDirective] {
        guard depth < 20 else { throw ServerAnalysisError(description: "\(file): include nesting deeper than 20 (an include loop?)") }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw ServerAnalysisError(description: "cannot read nginx config \(file)")
        }
        var tokens = tokenize(text)
        var index = 0
        return try block(&tokens, &index, file: file, prefix: prefix, depth: depth, closing: false)
    }

    struct Token { var text: String; var quoted: Bool; var line: Int }

    static func tokenize(_ text: String) -> [Token] {
        var out: [Token] = []
        var line = 1
        var chars = Array(text)
        chars.append("\n")
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "\n" { line += 1; i += 1; continue }
            if c.isWhitespace { i += 1; continue }
            if c == "#" { while i < chars.count, chars[i] != "\n" { i += 1 }; continue }
            if c == "{" || c == "}" || c == ";" { out.append(Token(text: String(c), quoted: false, line: line)); i += 1; continue }
            if c == "\"" || c == "'" {
                let startLine = line
                var s = ""
                i += 1
                while i < chars.count, chars[i] != c {
                    if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                    if chars[i] == "\n" { line += 1 }
                    s.append(chars[i]); i += 1
                }
                i += 1
                out.append(Token(text: s, quoted: true, line: startLine))
                continue
            }
            var s = ""
            while i < chars.count, !chars[i].isWhitespace, !";{}".contains(chars[i]) {
                if chars[i] == "\\", i + 1 < chars.count { s.append(chars[i]); i += 1 }
                s.append(chars[i]); i += 1
            }
            out.append(Token(text: s, quoted: false, line: line))
        }
        return out
    }

    static func block(
        _ t: inout [Token], _ i: inout Int, file: String, prefix: String, depth: Int, closing: Bool
    ) throws -> [NginxDirective] {
        var out: [NginxDirective] = []
        while i < t.count {
            let tok = t[i]
            if tok.text == "}" && !tok.quoted {
                guard closing else { throw ServerAnalysisError(description: "\(file):\(tok.line): unexpected '}'") }
                i += 1
                return out
            }
            let name = tok.text, line = tok.line
            i += 1
            var args: [String] = []
            while i < t.count, t[i].quoted || !(t[i].text == ";" || t[i].text == "{" || t[i].text == "}") { args.append(t[i].text); i += 1 }
            guard i < t.count else {
                throw ServerAnalysisError(description: "\(file):\(line): directive '\(name)' is not terminated by ';' or '{'")
            }
            if t[i].text == ";" {
                i += 1
                if name == "include", let pattern = args.first {
                    let full = pattern.hasPrefix("/") ? pattern : prefix + "/" + pattern
                    for path in glob(full) { out += try parse(file: path, prefix: prefix, depth: depth + 1) }
                } else {
                    out.append(NginxDirective(name: name, args: args, children: nil, file: file, line: line))
                }
            } else if t[i].text == "{" {
                i += 1
                let children = try block(&t, &i, file: file, prefix: prefix, depth: depth, closing: true)
                out.append(NginxDirective(name: name, args: args, children: children, file: file, line: line))
            } else {
                throw ServerAnalysisError(description: "\(file):\(line): directive '\(name)' is missing its ';'")
            }
        }
        if closing { throw ServerAnalysisError(description: "\(file): unexpected end of file, a '}' is missing") }
        return out
    }

    /// Expands a glob pattern, sorted, as nginx does.
    static func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        #if canImport(Glibc)
            guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        #else
            guard Darwin.glob(pattern, 0, nil, &g) == 0 else { return [] }
        #endif
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }.sorted()
    }
}

/// Works out what nginx answers for a URL path, and why, from its configuration and the file tree.
public struct NginxAnalyzer: Sendable {
    public var configFile: String
    public var worker: WorkerIdentity
    public var clientAddress: String = "127.0.0.1"
    public var host: String?

    public init(configFile: String, worker: WorkerIdentity) {
        self.configFile = configFile
        self.worker = worker
    }

    public func analyze(path rawPath: String) throws -> ServerVerdict {
        let top = try NginxConfigParser.parse(file: configFile)
        guard let http = top.first(where: { $0.name == "http" }) else {
            throw ServerAnalysisError(description: "\(configFile): no http { } block found")
        }
        let servers = http.all("server")
        guard !servers.isEmpty else { throw ServerAnalysisError(description: "\(configFile): the http block has no server { } block") }
        var trace: [String] = []
        let server = pickServer(servers, trace: &trace)
        let uri = rawPath.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
        var chain: [NginxDirective] = [http, server]
        var scope = server
        while let loc = matchLocation(in: scope, uri: uri) {
            trace.append("location \(loc.args.joined(separator: " ")) at \(loc.position) matches \(uri)")
            chain.append(loc)
            scope = loc
            if loc.all("location").isEmpty { break }
        }
        if chain.count == 2 { trace.append("no location matches \(uri): the server block's settings apply") }

        func innermost(_ name: String) -> NginxDirective? {
            for level in chain.reversed() { if let d = level.first(name) { return d } }
            return nil
        }

        // Rewrite phase: `return` in the server block, then in the location.
        for level in chain.dropFirst() {
            if let ret = level.first("return"), let code = Int(ret.args.first ?? ""), code >= 400 {
                return ServerVerdict(
                    status: code, cause: code == 403 ? .configDeny : .unknown, directive: ret.text, location: ret.position,
                    explanation: "`\(ret.text)` answers \(code) before any file is looked at",
                    fix: ["Remove or narrow `\(ret.text)` at \(ret.position) (e.g. move it into a more specific location)."], trace: trace)
            }
        }

        // Access phase: the innermost level with allow/deny rules decides; first matching rule wins.
        if let level = chain.reversed().first(where: { !$0.all("allow").isEmpty || !$0.all("deny").isEmpty }) {
            let rules = (level.children ?? []).filter { $0.name == "allow" || $0.name == "deny" }
            let client = IPAddress(clientAddress)
            for (i, rule) in rules.enumerated() {
                guard let target = rule.args.first, Self.matches(target, client) else { continue }
                trace.append("access rule `\(rule.text)` at \(rule.position) matches client \(clientAddress)")
                if rule.name == "allow" { break }
                let hadAllow = rules[..<i].contains { $0.name == "allow" }
                let allowList = rules[..<i].filter { $0.name == "allow" }.compactMap(\.args.first)
                if target == "all", hadAllow {
                    return ServerVerdict(
                        status: 403, cause: .ipNotAllowed, directive: rule.text, location: rule.position,
                        explanation:
                            "client \(clientAddress) is not in the allow list (\(allowList.joined(separator: ", "))), so `\(rule.text)` denies it",
                        fix: ["Add `allow \(clientAddress);` before `\(rule.text)` at \(rule.position), or call from an allowed address."],
                        trace: trace)
                }
                if target == "all" {
                    return ServerVerdict(
                        status: 403, cause: .configDeny, directive: rule.text, location: rule.position,
                        explanation: "`\(rule.text)` denies every client for this location",
                        fix: [
                            "Remove `\(rule.text)` at \(rule.position), or add `allow ADDRESS;` lines before it for the clients that need access."
                        ], trace: trace)
                }
                return ServerVerdict(
                    status: 403, cause: .ipNotAllowed, directive: rule.text, location: rule.position,
                    explanation: "client \(clientAddress) matches `\(rule.text)`",
                    fix: ["Remove \(target) from the deny rule at \(rule.position), or call from another address."], trace: trace)
            }
        }
        if let auth = innermost("auth_basic"), auth.args.first != "off" {
            trace.append("auth_basic \(auth.args.joined(separator: " ")) at \(auth.position) asks for a password")
            return ServerVerdict(
                status: 401, cause: .missingCredentials, directive: auth.text, location: auth.position,
                explanation: "`\(auth.text)` answers 401 until a user and password from auth_basic_user_file are sent",
                fix: ["Send the user name and password (curl -u USER URL), or remove auth_basic for this location."], trace: trace)
        }

        // Content phase: map the URI to the file system.
        let fsPath: String
        if let alias = chain.last.flatMap({ $0.name == "location" ? $0.first("alias") : nil }), let loc = chain.last,
            let base = alias.args.first
        {
            let prefix = loc.args.last ?? ""
            fsPath = base + String(uri.dropFirst(min(prefix.count, uri.count)))
            trace.append("alias \(base) (\(alias.position)) maps \(uri) to \(fsPath)")
        } else {
            let root = innermost("root")?.args.first ?? "html"
            let rootPath = root.hasPrefix("/") ? root : (configFile as NSString).deletingLastPathComponent + "/" + root
            fsPath = rootPath + uri
            trace.append("root \(rootPath)\(innermost("root").map { " (\($0.position))" } ?? " (default)") maps \(uri) to \(fsPath)")
        }
        let symlinkDirective = innermost("disable_symlinks")
        let symlinksAllowed = (symlinkDirective?.args.first ?? "off") == "off"
        let symlinkText = symlinkDirective.map { "`\($0.text)` (\($0.position))" } ?? ""
        let walker = FileSystemWalk(worker: worker)

        var target = fsPath
        if uri.hasSuffix("/") || FileSystemWalk.isDirectory(fsPath) {
            let dir = fsPath.hasSuffix("/") ? String(fsPath.dropLast()) : fsPath
            if let p = walker.check(dir, read: false, symlinksAllowed: symlinksAllowed, symlinkDirective: symlinkText) {
                return fsVerdict(p, trace: trace)
            }
            let indexes = innermost("index")?.args ?? ["index.html"]
            if let found = indexes.first(where: { FileSystemWalk.exists(dir + "/" + $0) }) {
                target = dir + "/" + found
                trace.append("index file \(found) exists in \(dir)")
            } else {
                let autoindex = innermost("autoindex")
                if autoindex?.args.first == "on" {
                    trace.append("no index file, autoindex on at \(autoindex!.position): nginx lists the directory")
                    if let p = walker.check(dir, read: true) { return fsVerdict(p, trace: trace) }
                    return ServerVerdict(
                        status: 200, cause: nil, directive: nil, location: nil, explanation: "the directory is listed (autoindex on)",
                        fix: [], trace: trace)
                }
                let indexDirective = innermost("index")
                return ServerVerdict(
                    status: 403, cause: .directoryListing, directive: autoindex?.text ?? "autoindex off; (default)",
                    location: autoindex?.position ?? indexDirective?.position,
                    explanation:
                        "\(uri) is a directory with none of its index files (\(indexes.joined(separator: ", "))) and autoindex is off: \"directory index of \(dir)/ is forbidden\"",
                    fix: [
                        "Create \(dir)/\(indexes.first ?? "index.html"), or link to a file inside the directory.",
                        "Only if listing is meant to be public: `autoindex on;` in the location.",
                    ], trace: trace)
            }
        }
        if let p = walker.check(target, read: true, symlinksAllowed: symlinksAllowed, symlinkDirective: symlinkText) {
            return fsVerdict(p, trace: trace)
        }
        guard FileSystemWalk.exists(target) else {
            trace.append("\(target) does not exist")
            return ServerVerdict(
                status: 404, cause: nil, directive: nil, location: target, explanation: "\(target) does not exist (404, not a denial)",
                fix: [], trace: trace)
        }
        trace.append("\(worker.name) can traverse every directory to \(target) and read it")
        return ServerVerdict(
            status: 200, cause: nil, directive: nil, location: nil,
            explanation: "nothing in the configuration or the file system denies it", fix: [], trace: trace)
    }

    func fsVerdict(_ p: FileSystemProblem, trace: [String]) -> ServerVerdict {
        var t = trace
        t.append(p.message)
        return ServerVerdict(status: 403, cause: p.cause, directive: nil, location: p.path, explanation: p.message, fix: p.fix, trace: t)
    }

    func pickServer(_ servers: [NginxDirective], trace: inout [String]) -> NginxDirective {
        if let host {
            if let s = servers.first(where: { $0.all("server_name").flatMap(\.args).contains { Self.hostMatches($0, host) } }) {
                trace.append("server block at \(s.position) has server_name matching \(host)")
                return s
            }
        }
        if let s = servers.first(where: { $0.all("listen").contains { $0.args.contains("default_server") || $0.args.contains("default") } })
        {
            trace.append("default_server block at \(s.position)")
            return s
        }
        trace.append("first server block at \(servers[0].position) (no --host given, no default_server)")
        return servers[0]
    }

    static func hostMatches(_ pattern: String, _ host: String) -> Bool {
        if pattern.hasPrefix("*.") { return host.hasSuffix(pattern.dropFirst(1)) }
        if pattern.hasPrefix(".") { return host == pattern.dropFirst() || host.hasSuffix(pattern) }
        if pattern.hasPrefix("~") { return host.range(of: String(pattern.dropFirst()), options: .regularExpression) != nil }
        return pattern == host
    }

    /// nginx's precedence: exact `=`, then the longest prefix (stop if `^~`), then the first regex in
    /// file order, else the longest prefix.
    func matchLocation(in scope: NginxDirective, uri: String) -> NginxDirective? {
        let locations = scope.all("location")
        var longest: NginxDirective?
        var longestLength = -1
        for loc in locations {
            let (mod, pattern) = Self.split(loc)
            if mod == "=" {
                if pattern == uri { return loc }
            } else if mod == "" || mod == "^~" {
                if uri.hasPrefix(pattern), pattern.count > longestLength { longest = loc; longestLength = pattern.count }
            }
        }
        if let l = longest, Self.split(l).0 == "^~" { return l }
        for loc in locations {
            let (mod, pattern) = Self.split(loc)
            guard mod == "~" || mod == "~*" else { continue }
            if uri.range(of: pattern, options: mod == "~*" ? [.regularExpression, .caseInsensitive] : [.regularExpression]) != nil {
                return loc
            }
        }
        return longest
    }

    static func split(_ loc: NginxDirective) -> (String, String) {
        if loc.args.count >= 2 { return (loc.args[0], loc.args[1]) }
        let a = loc.args.first ?? ""
        for m in ["^~", "~*", "=", "~"] where a.hasPrefix(m) && a.count > m.count { return (m, String(a.dropFirst(m.count))) }
        if a.hasPrefix("@") { return ("@", a) }
        return ("", a)
    }

    static func matches(_ target: String, _ client: IPAddress?) -> Bool {
        if target == "all" { return true }
        guard let client else { return false }
        if target.hasPrefix("unix:") { return false }
        if target.contains("/"), case .success(let block) = CIDRBlock.parse(target) { return block.contains(client) }
        return IPAddress(target) == client
    }
}

// Apache's configuration grammar and section merging are written by hand: no listed library reads them.
import Foundation
import GatehouseCore
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One Apache directive or section (`<Directory …>`), and where it was written.
/// Apache's configuration grammar is parsed by hand: no listed library reads it.
public struct ApacheNode: Sendable, Equatable {
    public var name: String
    public var args: [String]
    public var children: [ApacheNode]?
    public var file: String
    public var line: Int

    public var text: String { children == nil ? ([name] + args).joined(separator: " ") : "<\(([name] + args).joined(separator: " "))>" }
    public var position: String { "\(file):\(line)" }
    var lname: String { name.lowercased() }
}

/// Reads Apache configuration, following Include/IncludeOptional (with globs) relative to ServerRoot.
public enum ApacheConfigParser {
    public static func parse(file: String, serverRoot: String? = nil) throws -> [ApacheNode] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw ServerAnalysisError(description: "cannot read Apache config \(file)")
        }
        var root = serverRoot ?? (file as NSString).deletingLastPathComponent
        return try parse(text: text, file: file, serverRoot: &root, depth: 0)
    }

    public static func parse(text: String, file: String, serverRoot: inout String, depth: Int) throws -> [ApacheNode] {
        guard depth < 20 else { throw ServerAnalysisError(description: "\(file): Include nesting deeper than 20") }
        var stack: [(node: ApacheNode, items: [ApacheNode])] = [(ApacheNode(name: "", args: [], children: [], file: file, line: 0), [])]
        var logical = ""
        var startLine = 0
        for (n, raw) in text.components(separatedBy: "\n").enumerated() {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if logical.isEmpty { startLine = n + 1 }
            if line.hasSuffix("\\") { line.removeLast(); logical += line + " "; continue }
            logical += line
            let l = logical.trimmingCharacters(in: .whitespaces)
            logical = ""
            if l.isEmpty || l.hasPrefix("#") { continue }
            if l.hasPrefix("</") {
                let closing = String(l.dropFirst(2).dropLast()).trimmingCharacters(in: .whitespaces).lowercased()
                guard stack.count > 1, stack.last!.node.lname == closing else {
                    throw ServerAnalysisError(
                        description:
                            "\(file):\(n + 1): </\(closing)> does not close the open section \(stack.count > 1 ? "<\(stack.last!.node.name)>" : "(none)")"
                    )
                }
                var done = stack.removeLast()
                done.node.children = done.items
                stack[stack.count - 1].items.append(done.node)
                continue
            }
            if l.hasPrefix("<") {
                guard l.hasSuffix(">") else {
                    throw ServerAnalysisError(description: "\(file):\(n + 1): section '\(l)' lacks its closing '>'")
                }
                let words = words(String(l.dropFirst().dropLast()))
                stack.append(
                    (ApacheNode(name: words.first ?? "", args: Array(words.dropFirst()), children: [], file: file, line: startLine), []))
                continue
            }
            let w = words(l)
            let name = w[0], args = Array(w.dropFirst())
            switch name.lowercased() {
            case "serverroot":
                serverRoot = args.first ?? serverRoot
            case "include", "includeoptional":
                let pattern = args.first ?? ""
                let full = pattern.hasPrefix("/") ? pattern : serverRoot + "/" + pattern
                var paths = NginxConfigParser.glob(full)
                if paths.isEmpty, FileSystemWalk.isDirectory(full) { paths = NginxConfigParser.glob(full + "/*") }
                if paths.isEmpty, name.lowercased() == "include", !pattern.contains("*") {
                    throw ServerAnalysisError(description: "\(file):\(startLine): Include \(pattern) matches no file")
                }
                for p in paths {
                    guard let t = try? String(contentsOfFile: p, encoding: .utf8) else { continue }
                    stack[stack.count - 1].items += try parse(text: t, file: p, serverRoot: &serverRoot, depth: depth + 1)
                }
                continue
            default: break
            }
            stack[stack.count - 1].items.append(ApacheNode(name: name, args: args, children: nil, file: file, line: startLine))
        }
        guard stack.count == 1 else {
            throw ServerAnalysisError(
                description: "\(file): section <\(stack.last!.node.name)> opened at line \(stack.last!.node.line) is never closed")
        }
        return stack[0].items
    }

    static func words(_ s: String) -> [String] {
        var out: [String] = []
        var cur = ""
        var quote: Character?
        for c in s {
            if let q = quote {
                if c == q { quote = nil } else { cur.append(c) }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c.isWhitespace {
                if !cur.isEmpty { out.append(cur); cur = "" }
            } else {
                cur.append(c)
            }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }
}

/// Works out what Apache httpd answers for a URL path, and why: sections, .htaccess, Require,
/// Order/Deny/Allow, Options, DirectoryIndex, AllowOverride and the file system.
public struct ApacheAnalyzer: Sendable {
    public var configFile: String
    public var worker: WorkerIdentity
    public var clientAddress: String = "127.0.0.1"
    public var host: String?

    public init(configFile: String, worker: WorkerIdentity) {
        self.configFile = configFile
        self.worker = worker
    }

    /// Flattens transparent containers (<IfModule>, <IfDefine>, <IfVersion>, <IfFile>).
    static func flatten(_ nodes: [ApacheNode]) -> [ApacheNode] {
        nodes.flatMap { n -> [ApacheNode] in
            if n.children != nil, ["ifmodule", "ifdefine", "ifversion", "iffile", "ifdirective", "ifsection"].contains(n.lname) {
                return flatten(n.children ?? [])
            }
            var m = n
            if let c = n.children { m.children = flatten(c) }
            return [m]
        }
    }

    public func analyze(path rawPath: String) throws -> ServerVerdict {
        let top = Self.flatten(try ApacheConfigParser.parse(file: configFile))
        var trace: [String] = []
        let vhosts = top.filter { $0.lname == "virtualhost" }
        var serverLevel = top.filter { $0.lname != "virtualhost" }
        if let v = pickVhost(vhosts, trace: &trace) { serverLevel += v.children ?? [] }
        let uri = rawPath.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"

        // Map the URL to the file system: the longest Alias, else DocumentRoot.
        var fsPath = ""
        let aliases = serverLevel.filter { $0.lname == "alias" && $0.args.count == 2 }.sorted { $0.args[0].count > $1.args[0].count }
        if let a = aliases.first(where: { uri.hasPrefix($0.args[0]) }) {
            fsPath = a.args[1] + String(uri.dropFirst(a.args[0].count))
            trace.append("Alias \(a.args[0]) \(a.args[1]) (\(a.position)) maps \(uri) to \(fsPath)")
        } else {
            let docRoot = serverLevel.last { $0.lname == "documentroot" }
            let root = docRoot?.args.first ?? "/var/www/html"
            fsPath = (root.hasSuffix("/") ? String(root.dropLast()) : root) + uri
            trace.append("DocumentRoot \(root)\(docRoot.map { " (\($0.position))" } ?? " (default)") maps \(uri) to \(fsPath)")
        }
        let isDir = FileSystemWalk.isDirectory(fsPath)
        let dirPath = isDir ? (fsPath.hasSuffix("/") ? String(fsPath.dropLast()) : fsPath) : (fsPath as NSString).deletingLastPathComponent

        // Merge order: server level, <Directory> shortest first with each directory's .htaccess,
        // <DirectoryMatch>, <Files>/<FilesMatch>, <Location>/<LocationMatch>.
        var sections: [(label: String, nodes: [ApacheNode], isDirectory: Bool)] = [
            ("server config", serverLevel.filter { $0.children == nil }, false)
        ]
        let dirSections = serverLevel.filter { $0.lname == "directory" && $0.args.first != "~" }
        var walked = ""
        var allowOverride = "None"
        var accessFileName = serverLevel.last { $0.lname == "accessfilename" }?.args.first ?? ".htaccess"
        if accessFileName.isEmpty { accessFileName = ".htaccess" }
        let comps = [""] + dirPath.split(separator: "/").map(String.init)
        for (i, c) in comps.enumerated() {
            walked = i == 0 ? "/" : (walked == "/" ? "" : walked) + "/" + c
            for d in dirSections where Self.dirMatches(d.args.first ?? "", walked) {
                sections.append(("\(d.text) at \(d.position)", d.children ?? [], true))
                if let ao = (d.children ?? []).last(where: { $0.lname == "allowoverride" }) {
                    allowOverride = ao.args.joined(separator: " ")
                }
            }
            if allowOverride.lowercased() != "none" {
                let ht = (walked == "/" ? "" : walked) + "/" + accessFileName
                if FileSystemWalk.exists(ht) {
                    if let p = FileSystemWalk(worker: worker).check(ht, read: true) {
                        var t = trace
                        t.append("AllowOverride \(allowOverride) makes Apache read \(ht), which it cannot: \(p.message)")
                        return ServerVerdict(
                            status: 403, cause: .filesystemPermission, directive: nil, location: ht,
                            explanation: "Apache must read \(ht) (AllowOverride \(allowOverride)) but cannot: \(p.message)", fix: p.fix,
                            trace: t)
                    }
                    if let text = try? String(contentsOfFile: ht, encoding: .utf8) {
                        var sr = ""
                        let nodes = Self.flatten(try ApacheConfigParser.parse(text: text, file: ht, serverRoot: &sr, depth: 1))
                        sections.append((".htaccess \(ht)", nodes, true))
                        trace.append("AllowOverride \(allowOverride): read \(ht)")
                    }
                }
            }
        }
        for d in serverLevel where (d.lname == "directorymatch" || (d.lname == "directory" && d.args.first == "~")) {
            let pattern = d.args.last ?? ""
            if dirPath.range(of: pattern, options: .regularExpression) != nil {
                sections.append(("\(d.text) at \(d.position)", d.children ?? [], true))
            }
        }
        let base = (fsPath as NSString).lastPathComponent
        for d in serverLevel + dirSections.flatMap({ Self.dirMatches($0.args.first ?? "", dirPath) ? ($0.children ?? []) : [] })
        where d.lname == "files" || d.lname == "filesmatch" {
            let pattern = d.args.last ?? ""
            let hit =
                d.lname == "filesmatch" || d.args.first == "~"
                ? base.range(of: pattern, options: .regularExpression) != nil : fnmatch(pattern, base, 0) == 0
            if hit { sections.append(("\(d.text) at \(d.position)", d.children ?? [], false)) }
        }
        for d in serverLevel where d.lname == "location" || d.lname == "locationmatch" {
            let pattern = d.args.last ?? ""
            let hit =
                d.lname == "locationmatch" || d.args.first == "~"
                ? uri.range(of: pattern, options: .regularExpression) != nil
                : (uri.hasPrefix(pattern) || (pattern.hasSuffix("/") && uri + "/" == pattern))
            if hit { sections.append(("\(d.text) at \(d.position)", d.children ?? [], false)) }
        }
        trace.append("sections applied in order: " + sections.dropFirst().map(\.label).joined(separator: "; "))

        // Options (with +/- merging), DirectoryIndex.
        var options: Set<String> = ["followsymlinks"]
        var optionsNode: ApacheNode?
        var directoryIndex = ["index.html"]
        var directoryIndexNode: ApacheNode?
        for s in sections {
            for n in s.nodes where n.children == nil {
                switch n.lname {
                case "options":
                    let relative = n.args.allSatisfy { $0.hasPrefix("+") || $0.hasPrefix("-") }
                    if !relative { options = [] }
                    for a in n.args {
                        let name = a.trimmingCharacters(in: CharacterSet(charactersIn: "+-")).lowercased()
                        let names = name == "all" ? ["indexes", "includes", "followsymlinks", "execcgi"] : name == "none" ? [] : [name]
                        if a.hasPrefix("-") { names.forEach { options.remove($0) } } else { names.forEach { options.insert($0) } }
                    }
                    optionsNode = n
                case "directoryindex":
                    directoryIndex = n.args.first?.lowercased() == "disabled" ? [] : n.args
                    directoryIndexNode = n
                default: break
                }
            }
        }

        // The file system, as the worker reaches it (Apache checks search permission and links while
        // walking the directories, before access control).
        let walker = FileSystemWalk(worker: worker)
        let symlinksAllowed = options.contains("followsymlinks") || options.contains("symlinksifownermatch")
        let symText = optionsNode.map { "`\($0.text)` (\($0.position))" } ?? "Options"
        if let p = walker.check(isDir ? dirPath : fsPath, read: false, symlinksAllowed: symlinksAllowed, symlinkDirective: symText) {
            return fsVerdict(p, trace: trace)
        }

        // Authorization: the last section with Require lines replaces earlier ones (AuthMerging Off);
        // Order/Allow/Deny (mod_access_compat) must pass too.
        if let v = authorize(sections, trace: &trace) { return v }

        var target = fsPath
        if isDir {
            if let found = directoryIndex.first(where: { FileSystemWalk.exists(dirPath + "/" + $0) }) {
                target = dirPath + "/" + found
                trace.append("DirectoryIndex file \(found) exists")
            } else if options.contains("indexes") {
                trace.append("no DirectoryIndex file, Options Indexes: Apache lists the directory")
                if let p = walker.check(dirPath, read: true) { return fsVerdict(p, trace: trace) }
                return ServerVerdict(
                    status: 200, cause: nil, directive: nil, location: nil, explanation: "the directory is listed (Options Indexes)",
                    fix: [], trace: trace)
            } else {
                return ServerVerdict(
                    status: 403, cause: .directoryListing, directive: optionsNode?.text ?? "Options (Indexes not enabled)",
                    location: optionsNode?.position ?? directoryIndexNode?.position,
                    explanation:
                        "\(uri) is a directory with no DirectoryIndex file (\(directoryIndex.joined(separator: ", "))) and Options lacks Indexes (AH01276: Cannot serve directory)",
                    fix: [
                        "Create \(dirPath)/\(directoryIndex.first ?? "index.html"), or link to a file in the directory.",
                        "Only if the listing is meant to be public: `Options +Indexes` for this directory.",
                    ], trace: trace)
            }
        }
        if let p = walker.check(target, read: true, symlinksAllowed: symlinksAllowed, symlinkDirective: symText) {
            return fsVerdict(p, trace: trace)
        }
        guard FileSystemWalk.exists(target) else {
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

    enum AuthzResult { case granted, denied(ApacheNode), neutral, needsAuth(ApacheNode) }

    func authorize(_ sections: [(label: String, nodes: [ApacheNode], isDirectory: Bool)], trace: inout [String]) -> ServerVerdict? {
        let client = IPAddress(clientAddress)
        let isAuthz: (ApacheNode) -> Bool = { ["require", "requireall", "requireany", "requirenone"].contains($0.lname) }
        if let s = sections.last(where: { $0.nodes.contains(where: isAuthz) }) {
            let nodes = s.nodes.filter(isAuthz)
            trace.append("authorization from \(s.label): " + nodes.map(\.text).joined(separator: "; "))
            switch evalAny(nodes, client) {
            case .denied(let n):
                return denyVerdict(n, section: s.label, trace: trace)
            case .needsAuth(let n):
                return ServerVerdict(
                    status: 401, cause: .missingCredentials, directive: n.text, location: n.position,
                    explanation: "`\(n.text)` asks for an authenticated user (401 until credentials are sent)",
                    fix: ["Send the user name and password (AuthType configured for this path)."], trace: trace)
            case .granted, .neutral:
                break
            }
        }
        // mod_access_compat: Order/Allow/Deny, innermost setting of each wins.
        var order = "deny,allow"
        var allows: [ApacheNode] = [], denies: [ApacheNode] = []
        for s in sections {
            if let o = s.nodes.last(where: { $0.lname == "order" }) { order = o.args.joined().lowercased() }
            let a = s.nodes.filter { $0.lname == "allow" }, d = s.nodes.filter { $0.lname == "deny" }
            if !a.isEmpty || !d.isEmpty { allows = a; denies = d }
        }
        guard !allows.isEmpty || !denies.isEmpty else { return nil }
        let matchAllow = allows.first { Self.matchesHosts(Array($0.args.dropFirst()), client) }
        let matchDeny = denies.first { Self.matchesHosts(Array($0.args.dropFirst()), client) }
        let denied: ApacheNode?
        if order.hasPrefix("allow") {
            denied = matchAllow == nil ? (denies.first ?? allows.first) : matchDeny
        } else {
            denied = matchDeny != nil && matchAllow == nil ? matchDeny : nil
        }
        guard let n = denied else { return nil }
        let allowList = allows.flatMap { $0.args.dropFirst() }.filter { $0 != "all" }
        let cause: DenialCause = n.args.dropFirst().contains("all") && allowList.isEmpty ? .configDeny : .ipNotAllowed
        return ServerVerdict(
            status: 403, cause: cause, directive: n.text, location: n.position,
            explanation: cause == .configDeny
                ? "`\(n.text)` (Order \(order)) denies every client"
                : "client \(clientAddress) is not allowed by Order \(order) with Allow from \(allowList.joined(separator: " "))",
            fix: cause == .configDeny
                ? ["Remove `\(n.text)` at \(n.position) or replace the Order/Deny/Allow block with `Require all granted`."]
                : ["Add `Allow from \(clientAddress)` (or, better on Apache 2.4, `Require ip \(clientAddress)`) at \(n.position)."],
            trace: trace)
    }

    func denyVerdict(_ n: ApacheNode, section: String, trace: [String]) -> ServerVerdict {
        let a = n.args.map { $0.lowercased() }
        if a.first == "all" || (a.first == "not" && a.dropFirst().first == "all") {
            let where_ = section.hasPrefix(".htaccess") ? "the .htaccess file \(n.file)" : n.position
            return ServerVerdict(
                status: 403, cause: .configDeny, directive: n.text, location: n.position,
                explanation: "`\(n.text)` in \(section) refuses every client (AH01630: client denied by server configuration)",
                fix: [
                    "Remove or change `\(n.text)` at \(where_) (e.g. to `Require all granted`, or `Require ip ADDRESS` for specific clients)."
                ], trace: trace)
        }
        if a.first == "ip" || a.first == "local" || a.first == "host" || a.first == "not" {
            return ServerVerdict(
                status: 403, cause: .ipNotAllowed, directive: n.text, location: n.position,
                explanation: "client \(clientAddress) is not in `\(n.text)` (\(section))",
                fix: [
                    "Add the client address: `Require ip \(clientAddress)` next to `\(n.text)` at \(n.position), or call from an allowed address."
                ], trace: trace)
        }
        return ServerVerdict(
            status: 403, cause: .configDeny, directive: n.text, location: n.position,
            explanation: "`\(n.text)` in \(section) is not satisfied", fix: ["Relax `\(n.text)` at \(n.position)."], trace: trace)
    }

    /// Require lines side by side form an implicit RequireAny.
    func evalAny(_ nodes: [ApacheNode], _ client: IPAddress?) -> AuthzResult {
        var firstDenial: ApacheNode?
        var auth: ApacheNode?
        for n in nodes {
            switch eval(n, client) {
            case .granted: return .granted
            case .denied(let d): firstDenial = firstDenial ?? d
            case .needsAuth(let d): auth = auth ?? d
            case .neutral: break
            }
        }
        if let auth { return .needsAuth(auth) }
        return firstDenial.map { .denied($0) } ?? .neutral
    }

    func eval(_ n: ApacheNode, _ client: IPAddress?) -> AuthzResult {
        switch n.lname {
        case "requireany": return evalAny((n.children ?? []), client)
        case "requireall":
            for c in n.children ?? [] {
                let r = eval(c, client)
                if case .granted = r { continue }
                if case .neutral = r { continue }
                return r
            }
            return .granted
        case "requirenone":
            for c in n.children ?? [] { if case .granted = eval(c, client) { return .denied(c) } }
            return .neutral
        default: break
        }
        var args = n.args.map { $0.lowercased() }
        let negated = args.first == "not"
        if negated { args.removeFirst() }
        let granted: Bool
        switch args.first {
        case "all": granted = args.dropFirst().first == "granted"
        case "ip": granted = Self.matchesHosts(Array(n.args.dropFirst(negated ? 2 : 1)), client)
        case "local": granted = client.map { $0 == IPAddress("127.0.0.1") || $0 == IPAddress("::1") } ?? false
        case "valid-user", "user", "group": return .needsAuth(n)
        default: return .neutral
        }
        if negated { return granted ? .denied(n) : .neutral }
        return granted ? .granted : .denied(n)
    }

    /// Apache host lists: `all`, full or partial IPs (`10.1`), CIDR, `a.b.c.d/m.m.m.m`.
    static func matchesHosts(_ list: [String], _ client: IPAddress?) -> Bool {
        for h in list {
            if h.lowercased() == "all" { return true }
            guard let client else { continue }
            if h.contains("/"), case .success(let b) = CIDRBlock.parse(h) { if b.contains(client) { return true }; continue }
            if let ip = IPAddress(h), ip == client { return true }
            let parts = h.split(separator: ".")
            if parts.count < 4, parts.allSatisfy({ Int($0) != nil }) {
                let cidr = (parts + Array(repeating: "0", count: 4 - parts.count)).joined(separator: ".") + "/\(parts.count * 8)"
                if case .success(let b) = CIDRBlock.parse(cidr), b.contains(client) { return true }
            }
        }
        return false
    }

    static func dirMatches(_ pattern: String, _ dir: String) -> Bool {
        let p = pattern.hasSuffix("/") && pattern.count > 1 ? String(pattern.dropLast()) : pattern
        if p.contains("*") || p.contains("?") {
            return fnmatch(p, dir, FNM_PATHNAME) == 0
        }
        return p == dir
    }

    func pickVhost(_ vhosts: [ApacheNode], trace: inout [String]) -> ApacheNode? {
        guard !vhosts.isEmpty else { return nil }
        if let host,
            let v = vhosts.first(where: {
                ($0.children ?? []).contains { ["servername", "serveralias"].contains($0.lname) && $0.args.contains(host) }
            })
        {
            trace.append("<VirtualHost> at \(v.position) has ServerName/ServerAlias \(host)")
            return v
        }
        trace.append("first <VirtualHost> at \(vhosts[0].position) (the default for its address)")
        return vhosts[0]
    }
}

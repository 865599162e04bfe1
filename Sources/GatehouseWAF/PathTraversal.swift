// Hand-written: path traversal and local file inclusion. Works on the decoded value with
// backslashes read as slashes (Windows back ends do), so `..%2f`, `%252e%252e/`, `%c0%ae%c0%ae/`,
// `..\` and `....//` (what is left after a naive filter strips `../`) all count. Sensitive files
// are matched as path segments, and only where the value is a path (its start, after a traversal
// or a scheme), so prose that names "/etc/passwd" scores a warning, not a block.
// Ideas: OWASP Testing Guide (WSTG-ATHZ-01 directory traversal), PayloadsAllTheThings' traversal
// encodings (families only).

enum PathTraversalDetector {
    static let osFiles: [String] = [
        "etc/passwd", "etc/shadow", "etc/group", "etc/hosts", "etc/issue", "etc/hostname", "etc/crontab", "etc/sudoers",
        "etc/master.passwd", "etc/security/passwd", "etc/mysql/my.cnf", "etc/httpd/", "etc/apache2/", "etc/nginx/",
        "etc/ssh/", "proc/self/", "proc/version", "proc/cmdline", "proc/net/", "var/log/", "var/run/secrets",
        "root/.", "windows/win.ini", "win.ini", "boot.ini", "system.ini", "windows/system32", "system32/", "winnt/",
        "inetpub/", "windows/repair", ".ssh/id_", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".bash_history",
        ".bashrc", ".profile", ".aws/credentials", ".kube/config", ".docker/config.json", "authorized_keys", "known_hosts",
    ]
    static let appFiles: [String] = [
        ".git/", ".git", ".svn/", ".hg/", ".env", ".htaccess", ".htpasswd", "web.config", "web-inf/", "meta-inf/",
        "wp-config.php", ".ds_store", ".npmrc", ".pypirc", ".netrc", "config.php", "settings.py", "database.yml",
        "appsettings.json", "application.properties", ".dockerenv", "server.xml",
        "tomcat-users.xml", "phpinfo.php", ".bash_profile", "credentials.json", "secrets.yml", "id_rsa.pub", "docker-compose.yml",
    ]
    static let wrappers: [String] = [
        "php://", "phar://", "zip://", "expect://", "glob://", "compress.zlib://", "compress.bzip2://", "ogg://", "rar://", "jar:file:",
        "data://text",
    ]

    /// `value` is already ASCII-lowercased.
    static func scan(_ value: [UInt8], kind: FieldSource, bytes set: ByteSet, into out: inout [PatternMatch]) {
        let wide = set.hasWideLead
        let hasDot = set.has(0x2E) || wide, hasSlash = set.has(0x2F) || set.has(0x5C) || wide, hasColon = set.has(0x3A)
        guard hasDot || hasSlash || hasColon else { return }
        var s = wide ? foldLookalikes(value) : value
        if set.has(0x5C) || wide { for k in s.indices where s[k] == 0x5C { s[k] = 0x2F } }
        let n = s.count
        // Traversal segments: `..` (or more dots, or `..;`) bounded by slashes or the ends.
        var segments = 0
        var first = -1
        var i = 0
        var startsWithTraversal = false
        if !set.has(0x2E) && !wide || Decoding.find("..", in: s) == nil { i = n }
        while i + 1 < n {
            if s[i] == 0x2E, s[i + 1] == 0x2E, i == 0 || s[i - 1] == 0x2F || s[i - 1] == 0x3D || s[i - 1] == 0x2E || s[i - 1] <= 0x20 {
                var j = i
                while j < n, s[j] == 0x2E { j += 1 }
                if j < n, s[j] == 0x3B { j += 1 }  // Tomcat `..;/`
                if j == n || s[j] == 0x2F {
                    if i == 0 || s[i - 1] == 0x2F && i == 1 { startsWithTraversal = true }
                    segments += 1
                    if first < 0 { first = i }
                    while j < n, s[j] == 0x2F { j += 1 }
                    i = j
                    continue
                }
                i = j
                continue
            }
            i += 1
        }
        let pathLike =
            kind == .path || kind == .filename || startsWithTraversal || segments > 0
            || s.first == 0x2F || s.first == 0x7E || (n > 2 && s[1] == 0x3A && s[2] == 0x2F) || !set.has(0x20)
        // Two levels inside text with spaces ("import x from '../../lib'") is a code snippet unless it
        // reaches a sensitive file (checked below); three or more, or any in a bare path value, climbs.
        let inText = set.has(0x20) && kind != .path && kind != .filename
        if segments >= 3 || (segments == 2 && !inText) || (segments == 1 && (kind == .path || kind == .filename)) {
            out.append(
                PatternMatch(
                    rule: "930100", start: first, end: min(n, first + 60),
                    message: "path traversal (\(segments) `..` segment\(segments == 1 ? "" : "s"))"))
        } else if segments >= 1 {
            out.append(
                PatternMatch(
                    rule: "930110", start: first, end: min(n, first + 60),
                    message: segments == 1 ? "one `..` segment" : "`..` segments in text"))
        }
        if hasColon {
            for (k, w) in wrapperBytes.enumerated() {
                if let at = Decoding.find(w, in: s), at == 0 || !SQLTokenizer.isWordByte(s[at - 1]) {
                    out.append(PatternMatch(rule: "930140", start: at, end: min(n, at + 60), message: "stream wrapper \(wrappers[k])"))
                    break
                }
            }
        }
        if hasSlash || hasDot {
            if let (at, len, name) = segmentMatch(osTable, in: s, slashless: !hasSlash) {
                let rule = pathLike ? "930120" : "930125"
                out.append(PatternMatch(rule: rule, start: at, end: min(n, at + len + 20), message: "sensitive file \(name)"))
            }
            if pathLike, let (at, len, name) = segmentMatch(appTable, in: s, slashless: !hasSlash) {
                out.append(PatternMatch(rule: "930130", start: at, end: min(n, at + len + 20), message: "sensitive file \(name)"))
            }
        }
    }

    /// Folds the Unicode slashes and dots that IIS-era and some normalising back ends map to
    /// ASCII (U+2215 ∕, U+2044 ⁄, U+FF0F ／, U+FF3C ＼, U+FF0E ．, U+2024 ․, U+FE52 ﹒).
    static func foldLookalikes(_ v: [UInt8]) -> [UInt8] {
        guard v.contains(where: { $0 >= 0xE2 }) else { return v }
        var out: [UInt8] = []
        out.reserveCapacity(v.count)
        var i = 0
        while i < v.count {
            if i + 2 < v.count {
                let a = v[i], b = v[i + 1], c = v[i + 2]
                var rep: UInt8 = 0
                switch (a, b, c) {
                case (0xE2, 0x88, 0x95), (0xE2, 0x81, 0x84), (0xEF, 0xBC, 0x8F): rep = 0x2F
                case (0xEF, 0xBC, 0xBC), (0xE2, 0x88, 0x96): rep = 0x5C
                case (0xEF, 0xBC, 0x8E), (0xE2, 0x80, 0xA4), (0xEF, 0xB9, 0x92): rep = 0x2E
                default: break
                }
                if rep != 0 { out.append(rep); i += 3; continue }
            }
            out.append(v[i])
            i += 1
        }
        return out
    }

    struct NameTable {
        let names: [String]
        /// Names by their first byte, so a scan compares only plausible names at each boundary.
        let byFirst: [[(bytes: [UInt8], index: Int)]]
        init(_ names: [String]) {
            self.names = names
            var t = [[(bytes: [UInt8], index: Int)]](repeating: [], count: 256)
            for (k, n) in names.enumerated() {
                let b = Array(n.utf8)
                t[Int(b[0])].append((b, k))
            }
            byFirst = t
        }
    }
    static let osTable = NameTable(osFiles)
    static let appTable = NameTable(appFiles)
    static let wrapperBytes: [[UInt8]] = wrappers.map { Array($0.utf8) }

    /// Finds one of the table's names that starts a path segment (value start, after `/`, `=`,
    /// `:`, `~`, a quote or a space) and ends one (value end, `/`, `?`, `#`, `;`, `&`, a quote or a space).
    static func segmentMatch(_ table: NameTable, in bytes: [UInt8], slashless: Bool) -> (Int, Int, String)? {
        bytes.withUnsafeBufferPointer { segmentMatch(table, in: $0, slashless: slashless) }
    }

    static func segmentMatch(_ table: NameTable, in s: UnsafeBufferPointer<UInt8>, slashless: Bool) -> (Int, Int, String)? {
        let n = s.count
        var i = 0
        while i < n {
            // Without a slash in the value, only its start or a dot-file name can be a path segment.
            if slashless, i > 0, s[i] != 0x2E { i += 1; continue }
            let before: UInt8 = i == 0 ? 0x2F : s[i - 1]
            let boundary =
                before == 0x2F || before == 0x3D || before == 0x3A || before == 0x7E || before == 0x22 || before == 0x27 || before <= 0x20
            let bucket = table.byFirst[Int(s[i])]
            if boundary, !bucket.isEmpty {
                for (p, idx) in bucket where i + p.count <= n {
                    var k = 1
                    while k < p.count, s[i + k] == p[k] { k += 1 }
                    guard k == p.count else { continue }
                    let name = table.names[idx]
                    let spaceBefore = i > 0 && (before <= 0x20 || before == 0x22 || before == 0x27)
                    // "id_rsa" alone in prose is not a path; a segment after a slash or at the start is.
                    if p.first != 0x2E, spaceBefore, !p.contains(0x2F) { continue }  // names without a slash need a path context
                    let e = i + p.count
                    if p.last == 0x2F || e == n { return (i, p.count, name) }
                    let after = s[e]
                    if name == ".git" { if after == 0x2F { return (i, p.count, name) } else { continue } }
                    if name == ".env", after == 0x2E { return (i, p.count, name) }  // .env.local, .env.production
                    if after == 0x2F || after == 0x3F || after == 0x23 || after == 0x3B || after == 0x26 || after <= 0x20 || after == 0x22
                        || after == 0x27
                    {
                        return (i, p.count, name)
                    }
                }
            }
            i += 1
        }
        return nil
    }
}

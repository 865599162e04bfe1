// Hand-written: command injection. A small shell word reader finds command positions (after
// `;`, `|`, `&`, `&&`, `||`, a newline, inside `$(…)` or backticks, or the whole value) and reads
// the word there the way a shell would after quote removal (`w'h'o'am'i`, `c\at`, `$@`,
// `${IFS}`), then asks whether the words after it look like a command line (flags, paths,
// redirections, numbers) rather than prose. "Lunch at noon; cat was hungry" passes;
// "x; cat /etc/passwd" does not. Log4Shell lookups, Shellshock and code-execution calls are
// recognised by their syntax. Ideas: OWASP Testing Guide (WSTG-INPV-12 command injection),
// OWASP Command Injection Defense Cheat Sheet, CVE-2014-6271, CVE-2021-44228.

package enum CommandInjectionDetector {
    /// Programs whose name is not an English word: one after a separator is a command line.
    static let programs: Set<String> = [
        "whoami", "uname", "ifconfig", "ipconfig", "netstat", "wget", "curl", "nc", "ncat", "netcat", "socat", "telnet",
        "nslookup", "traceroute", "tracert", "chmod", "chown", "chgrp", "passwd", "useradd", "usermod", "crontab", "xxd",
        "base64", "printenv", "hostname", "busybox", "nohup", "tftp", "scp", "ssh", "rm", "mkdir", "rmdir", "cp", "mv", "dd",
        "awk", "gawk", "nawk", "sed", "grep", "egrep", "fgrep", "xargs", "nl", "tac", "od", "hexdump", "uniq", "wc", "systemctl",
        "pkill", "killall", "ps", "sudo", "su", "mkfifo", "mknod", "lsof", "getent", "ls", "pwd", "cat", "id", "env", "bash",
        "sh", "zsh", "ksh", "csh", "tcsh", "dash", "ash", "powershell", "pwsh", "cmd", "certutil", "bitsadmin", "wmic",
        "tasklist", "taskkill", "systeminfo", "reg", "schtasks", "netsh", "mshta", "rundll32", "regsvr32", "cscript",
        "wscript", "findstr", "icacls", "nmap", "dig", "host", "uptime", "lsb_release", "gcc", "cc", "chattr", "setfacl",
        "iptables", "mount", "umount", "fdisk", "openssl", "gpg", "tar", "gzip", "gunzip", "unzip", "bzip2", "zcat",
        "ping", "sleep", "echo", "printf", "eval", "exec", "expr", "timeout", "which", "whereis", "locate", "who", "w",
        "last", "finger", "groups", "find", "head", "tail", "less", "more", "sort", "cut", "tr", "strings", "kill", "touch",
        "tee", "type", "dir", "net", "del", "copy", "move", "start", "ver", "set", "python", "python2", "python3", "perl",
        "ruby", "php", "lua", "node", "java", "jrunscript", "irb", "tclsh", "nice", "chroot", "time", "date",
        "ln", "file", "stat", "df", "du", "free", "top", "arp", "route", "ip", "ss", "svc", "service", "vi", "vim", "nano", "ed", "man",
        "diff", "cmp", "shutdown", "reboot", "halt", "poweroff",
        "ftp", "sftp", "rsync", "at", "batch", "source", "unset", "export", "alias", "history", "readlink", "realpath",
        "basename", "dirname", "true", "false", "test", "yes", "sha1sum", "md5sum", "sha256sum", "rev", "column", "fold",
        "paste", "join", "split", "shuf", "seq", "bc", "dc", "getfacl", "whois", "arch", "dmesg", "lsmod", "modprobe", "insmod",
        "mail", "sendmail", "mailx", "logger", "script", "watch", "screen", "tmux", "xterm", "nc.traditional", "ncat.exe",
    ]
    /// Command names that are also English words or common values: they need shell-like arguments.
    static let wordlike: Set<String> = [
        "cat", "id", "env", "host", "ping", "sleep", "echo", "printf", "eval", "exec", "expr", "timeout", "which", "whereis",
        "locate", "who", "w", "last", "finger", "groups", "find", "head", "tail", "less", "more", "sort", "cut", "tr",
        "strings", "kill", "touch", "tee", "type", "dir", "net", "del", "copy", "move", "start", "ver", "set", "python",
        "python2", "python3", "perl", "ruby", "php", "lua", "node", "java", "nice", "time", "date", "ln", "file", "stat", "free",
        "top", "route", "ip", "ss", "service", "make", "man", "diff", "ed", "at", "batch", "source", "unset", "export", "alias",
        "history", "true", "false", "test", "yes", "rev", "column", "fold", "paste", "join", "split", "seq", "bc", "dc",
        "mail", "script", "watch", "screen", "su", "ps", "dd", "cp", "mv", "rm", "ls", "nl", "od", "sh", "cc", "tar",
        "reg", "cmd", "arch", "svc", "vi", "shutdown", "reboot", "halt", "sed", "uniq", "wc", "dig", "mount", "nano", "host",
    ]

    @inline(__always) static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0B || c == 0x0C }
    @inline(__always) static func isMeta(_ c: UInt8) -> Bool {
        c == 0x3B || c == 0x7C || c == 0x26 || c == 0x0A || c == 0x0D || c == 0x60 || c == 0x28 || c == 0x29 || c == 0x3C || c == 0x3E
    }

    /// Reads one shell word from `i` with quote removal; returns the word and the index after it.
    static func shellWord(_ s: [UInt8], _ i0: Int) -> (word: [UInt8], end: Int, obfuscated: Bool) {
        var i = i0
        var w: [UInt8] = []
        var obf = false
        let n = s.count
        while i < n {
            let c = s[i]
            if isSpace(c) || isMeta(c) || c == 0x7B || c == 0x7D || c == 0x2C && !w.isEmpty && w.first != 0x2D { break }
            if c == 0x27 || c == 0x22 {
                // Quote removal: `w'h'o'am'i` is whoami; a quoted argument is one word. An apostrophe
                // that is never closed ("can't") is prose, not quoting.
                guard let close = s[(i + 1)...].firstIndex(of: c) else { break }
                w.append(contentsOf: s[(i + 1)..<close])
                i = close + 1
                obf = true
                continue
            }
            if c == 0x5C, i + 1 < n { w.append(s[i + 1]); i += 2; obf = true; continue }
            if c == 0x24, i + 1 < n {
                // $@ $* ${x} $IFS: empty or whitespace expansions used to split keywords.
                if s[i + 1] == 0x40 || s[i + 1] == 0x2A || (s[i + 1] >= 0x30 && s[i + 1] <= 0x39) { i += 2; obf = true; continue }
                if s[i + 1] == 0x7B, let close = s[(i + 2)...].firstIndex(of: 0x7D) {
                    let inner = Decoding.lowercased(Array(s[(i + 2)..<close]))
                    if inner == Array("ifs".utf8) { break }
                    // `${PATH:0:1}`, `${HOME:0:1}`: a substring of a path variable, i.e. "/".
                    if inner.starts(with: "path:0:1".utf8) || inner.starts(with: "home:0:1".utf8) || inner.starts(with: "pwd:0:1".utf8) {
                        w.append(0x2F)
                    }
                    i = close + 1; obf = true; continue
                }
                let ifs = Array("ifs".utf8)
                if i + 3 < n, Decoding.lowercased(Array(s[(i + 1)...(i + 3)])) == ifs { break }
            }
            w.append(Decoding.lower(c))
            i += 1
            if w.count > 64 { break }
        }
        return (w, i, obf)
    }

    static let programHashes = WordTable(programs.map { (SQLLexicon.hash(Array($0.utf8)), 1) })

    /// The program a word names: `/bin/cat` → `cat`, `cmd.exe` → `cmd`, `/???/c?t` stays a glob.
    /// Returns an empty name, without building a string, for words that name no known program.
    static func programName(_ w: [UInt8]) -> (name: String, path: Bool, glob: Bool) {
        if !w.contains(0x2F), !w.contains(0x5C), !w.contains(0x2E), !w.contains(0x3F), !programHashes.contains(SQLLexicon.hash(w)) {
            return ("", false, false)
        }
        var base = w
        var path = false
        if let slash = w.lastIndex(where: { $0 == 0x2F || $0 == 0x5C }) {
            // Only program directories make a path a program: `/bin/cat`, `/usr/bin/id`, `C:\Windows\System32\cmd.exe`.
            let dir = Array(w[...slash])
            let programDir =
                Decoding.find("bin/", in: dir) != nil || Decoding.find("bin\\", in: dir) != nil
                || Decoding.find("system32", in: dir) != nil || (w.first == 0x2F && (w.contains(0x3F) || w.contains(0x2A)))
            guard programDir else { return ("", false, false) }
            base = Array(w[(slash + 1)...]); path = true
        }
        if base.count > 4, base.suffix(4).elementsEqual(".exe".utf8) { base.removeLast(4) }
        // `/???/c?t`, `/b*/ca*`: a path of letters and wildcards only, with at least two wildcards.
        let wildcards = w.reduce(0) { $0 + ($1 == 0x3F || $1 == 0x2A ? 1 : 0) }
        let glob =
            wildcards >= 2
            && w.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2F || $0 == 0x3F || $0 == 0x2A || ($0 >= 0x30 && $0 <= 0x39) }
        return (String(decoding: base, as: UTF8.self), path, glob)
    }

    /// Whether the words after a command read as a command line: a flag, a path, a redirection,
    /// a variable, a number ending the value, a URL or an address.
    /// Subcommands that make an English-looking program a command line: `net user`, `type con`.
    static let subcommands: [String: Set<String>] = [
        "net": ["user", "users", "localgroup", "group", "view", "share", "use", "start", "stop", "accounts", "config", "session"],
        "service": ["start", "stop", "restart", "status", "--status-all"],
        "ip": ["addr", "a", "route", "link", "neigh"],
        "find": ["/", ".", "~"],
    ]

    static func argumentsLookShell(_ s: [UInt8], _ i0: Int, program: String) -> (shellish: Bool, empty: Bool, end: Int, plain: Int) {
        var i = i0
        let n = s.count
        // `sleep(1000)`: a function call in code or prose, not a command line.
        if i < n, s[i] == 0x28 { return (false, false, i, 1) }
        var words = 0
        var plain = 0
        var shellish = false
        while i < n {
            while i < n, isSpace(s[i]) { i += 1 }
            guard i < n else { break }
            let c = s[i]
            if c == 0x3B || c == 0x7C || c == 0x26 || c == 0x0A || c == 0x0D || c == 0x60 || c == 0x29 {
                if words == 0 { return (false, true, i, 0) }; shellish = shellish || c != 0x0A && c != 0x0D; break
            }
            if c == 0x3E || c == 0x3C { shellish = true; break }
            let (w, e, obf) = shellWord(s, i)
            if e == i { i += 1; continue }
            words += 1
            if obf && !w.isEmpty && (s[i] != 0x22 && s[i] != 0x27) { shellish = true }
            var neutral = false
            if words == 1, let subs = subcommands[program], subs.contains(String(decoding: w, as: UTF8.self)) {
                shellish = true; neutral = true
            }
            if w.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) || s[i] == 0x22 || s[i] == 0x27 { neutral = true }
            let before = shellish
            shellish = false
            if let f = w.first {
                if f == 0x2D, w.count >= 2, w.count <= 24 {
                    shellish = true
                }  // -la, --help
                else if f == 0x2F, w.count >= 2 {
                    shellish = true
                }  // /etc/passwd
                else if f == 0x7E || f == 0x24 || f == 0x2A || f == 0x2E && w.count > 1 {
                    shellish = true
                } else if w.contains(0x2F) || w.contains(0x5C) || w.contains(0x3D) && program != "set" {
                    shellish = true
                } else if w.contains(0x2E), w.contains(where: { $0 >= 0x30 && $0 <= 0x39 }) || w.count >= 3 && w.last != 0x2E {
                    shellish = true
                }  // 10.0.0.1, file.txt
                else if w.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), words == 1 {
                    var k = e
                    while k < n, isSpace(s[k]) { k += 1 }
                    if k == n || isMeta(s[k]) { shellish = true }  // `sleep 5`, `ping 3` then end or separator
                } else if f == 0x22 || f == 0x27 || s[i] == 0x22 || s[i] == 0x27 {
                    shellish = shellish || program == "echo" || program == "printf"
                }
            }
            if !shellish && !neutral { plain += 1 }
            shellish = shellish || before
            i = e
            if words >= 8 { break }
        }
        return (shellish, words == 0, i, plain)
    }

    static func scan(_ s0: [UInt8], kind: FieldSource, bytes set: ByteSet, into out: inout [PatternMatch]) {
        guard s0.count >= 2 else { return }
        let hasMeta =
            set.has(0x3B) || set.has(0x7C) || set.has(0x26) || set.has(0x0A) || set.has(0x0D) || set.has(0x60) || set.has(0x28)
            || set.has(0x29) || set.has(0x3C) || set.has(0x3E)
        let hasDollar = set.has(0x24), hasParen = set.has(0x28), hasLT = set.has(0x3C)
        let low = s0  // the engine passes the lowercased form
        if !hasMeta, !hasDollar, !hasParen, !hasLT, !set.has(0x2F), !set.has(0x7B) {
            // No separator, substitution, call or path: only a command line as the whole value is
            // possible, and that starts with a known program.
            var i = 0
            while i < s0.count, isSpace(s0[i]) { i += 1 }
            var j = i
            while j < s0.count, !isSpace(s0[j]), !isMeta(s0[j]) { j += 1 }
            if j == i || j - i > 16 || !programHashes.contains(SQLLexicon.hash(s0[i..<j])) { return }
        }
        if hasDollar || set.has(0x25) { scanLookups(low, into: &out) }
        if hasParen { scanShellshock(low, into: &out); scanCode(low, into: &out) }
        // `${IFS}` / `$IFS` stand for whitespace; their presence is itself shell syntax.
        var s = s0
        var ifs = false
        if hasDollar, let _ = Decoding.find("$ifs", in: low) ?? Decoding.find("${ifs}", in: low) {
            ifs = true
            var t: [UInt8] = []
            var i = 0
            while i < low.count {
                if low[i] == 0x24, i + 5 < low.count, low[i + 1] == 0x7B, low[(i + 2)...(i + 5)].elementsEqual("ifs}".utf8) {
                    t.append(0x20); i += 6; continue
                }
                if low[i] == 0x24, i + 3 < low.count, low[(i + 1)...(i + 3)].elementsEqual("ifs".utf8) { t.append(0x20); i += 4; continue }
                t.append(s0[i])
                i += 1
            }
            s = t
        }
        let n = s.count
        if hasLT, let at = Decoding.find("<?php", in: low) ?? Decoding.find("<?=", in: low) {
            out.append(PatternMatch(rule: "932160", start: at, end: min(n, at + 40), message: "PHP code block"))
        }
        if set.has(0x2F), let at = Decoding.find("/dev/tcp/", in: low) ?? Decoding.find("/dev/udp/", in: low) {
            out.append(PatternMatch(rule: "932100", start: at, end: min(n, at + 40), message: "shell network redirection /dev/tcp"))
            return
        }
        // Command positions.
        var positions: [(Int, String)] = []
        if kind != .userAgent && kind != .header { positions.append((0, "value start")) }
        s.withUnsafeBufferPointer { s in
            var i = 0
            while i < n {
                let c = s[i]
                switch c {
                case 0x3B: positions.append((i + 1, ";"))
                case 0x0A, 0x0D: positions.append((i + 1, "newline"))
                case 0x7C:
                    if i + 1 < n, s[i + 1] == 0x7C { positions.append((i + 2, "||")); i += 1 } else { positions.append((i + 1, "|")) }
                case 0x26:
                    if i + 1 < n, s[i + 1] == 0x26 { positions.append((i + 2, "&&")); i += 1 } else { positions.append((i + 1, "&")) }
                case 0x60:
                    // Markdown code fences (```) are not substitutions.
                    if !(i + 1 < n && s[i + 1] == 0x60) && !(i > 0 && s[i - 1] == 0x60) { positions.append((i + 1, "`")) }
                case 0x24 where i + 1 < n && s[i + 1] == 0x28: positions.append((i + 2, "$(")); i += 1
                case 0x28 where i + 1 < n: positions.append((i + 1, "("))
                case 0x7B where i + 1 < n: positions.append((i + 1, "{"))
                default: break
                }
                i += 1
                if positions.count > 64 { break }
            }
        }
        for (pos, sep) in positions {
            var j = pos
            while j < n, isSpace(s[j]) { j += 1 }
            guard j < n else { continue }
            // Fast path: a plain word (letters, digits, `_`, `-`) that names no program ends here
            // without building the shell word.
            var k = j
            while k < n, (s[k] >= 0x61 && s[k] <= 0x7A) || (s[k] >= 0x30 && s[k] <= 0x39) || s[k] == 0x5F || s[k] == 0x2D { k += 1 }
            if k > j,
                k == n || isSpace(s[k]) || isMeta(s[k]) || s[k] == 0x2C
                    || s[k] == 0x2E && !(k + 1 < n && (s[k + 1] >= 0x61 && s[k + 1] <= 0x7A)) || s[k] == 0x21 || s[k] == 0x3F
                    || s[k] == 0x3A
                    || s[k] == 0x27 && contraction(s, k),
                !programHashes.contains(SQLLexicon.hash(s[j..<k]))
            {
                continue
            }
            let (w, e, obf) = shellWord(s, j)
            guard !w.isEmpty, w.count <= 40 else { continue }
            let (name, isPath, glob) = programName(w)
            if glob, isPath, w.first == 0x2F, w.count >= 4 {
                out.append(
                    PatternMatch(
                        rule: "932100", start: max(0, pos - 1), end: min(n, e + 30),
                        message: "globbed program path \(String(decoding: w, as: UTF8.self))"))
                return
            }
            guard programs.contains(name) else { continue }
            // A command word ends at a space, a separator or the end; `;base64,iVBOR…` (a data: URL) is not one.
            if e < n, sep != "{", !(isSpace(s[e]) || isMeta(s[e]) || s[e] == 0x7D || s[e] == 0x0A) { continue }
            // `{cat,/etc/passwd}`: brace expansion is a command line.
            if sep == "{", e < n, s[e] == 0x2C {
                out.append(PatternMatch(rule: "932100", start: pos - 1, end: min(n, e + 30), message: "brace-expanded command \(name)"))
                return
            }
            if sep == "(" || sep == "{" { continue }  // only `$(` and backticks substitute
            let args = argumentsLookShell(s, e, program: name)
            let english = wordlike.contains(name) && !isPath && !obf && !ifs
            let rule: String
            switch sep {
            case "value start": rule = "932140"
            case "`", "$(": rule = "932120"
            default: rule = windowsOnly.contains(name) ? "932110" : "932100"
            }
            let start = sep == "value start" ? 0 : max(0, pos - sep.utf8.count)
            let excerptEnd = min(n, max(args.end, e) + 8)
            if sep == "value start" {
                // The whole value as a command line: a program that fetches, spawns or reports on the
                // host, with arguments that are all shell-like ("npm install --save x" and "cat /proc/x is
                // handy" are not), or one that is never a plain value ("whoami").
                let dangerous = startPrograms.contains(name) || isPath
                if dangerous && args.shellish && args.plain == 0 || (!english && args.empty && startBare.contains(name) && e >= n) {
                    if kind == .path { continue }
                    out.append(PatternMatch(rule: rule, start: start, end: excerptEnd, message: "command line \(name)"))
                    return
                }
                continue
            }
            if sep == "`", !obf, !isPath,
                precededByProse(s, pos - 1)
                    || pos >= 2 && s[pos - 2] == 0x20 && pos - 2 > 0 && (s[pos - 3] | 0x20) >= 0x61 && (s[pos - 3] | 0x20) <= 0x7A
            {
                // Markdown inline code in prose ("run `ls -la` here") is not a substitution.
                out.append(PatternMatch(rule: "932170", start: start, end: excerptEnd, message: "inline code `\(name)` in text"))
                continue
            }
            if sep == "`" || sep == "$(" {
                if !english || args.shellish || args.empty || isPath || obf {
                    out.append(PatternMatch(rule: rule, start: start, end: excerptEnd, message: "command substitution \(sep) \(name)"))
                    return
                }
                continue
            }
            if sep == "|", filters.contains(name), !obf, !isPath, startsWithProgram(s) || leftIsCommandLine(s, pos - 1) {
                // `echo "x" | grep x`: a pipeline typed as a whole (a snippet), not one appended to a value.
                out.append(PatternMatch(rule: "932170", start: start, end: excerptEnd, message: "pipeline into \(name)"))
                continue
            }
            if !english || isPath || obf {
                if args.shellish || args.empty || !english {
                    out.append(PatternMatch(rule: rule, start: start, end: excerptEnd, message: "command \(name) after \(sep)"))
                    return
                }
            } else if args.shellish || (args.empty && (args.end >= n || s[args.end] != 0x7C) && !precededByProse(s, pos - sep.utf8.count)) {
                out.append(PatternMatch(rule: rule, start: start, end: excerptEnd, message: "command \(name) after \(sep)"))
                return
            } else if !args.empty {
                out.append(PatternMatch(rule: "932170", start: start, end: excerptEnd, message: "word \(name) after \(sep)"))
            }
        }
    }

    static let startPrograms: Set<String> = [
        "wget", "curl", "nc", "ncat", "netcat", "socat", "telnet", "bash", "sh", "zsh", "ksh", "csh", "tcsh", "dash", "ash",
        "python", "python2", "python3", "perl", "ruby", "php", "lua", "node", "powershell", "pwsh", "cmd", "certutil",
        "bitsadmin", "mshta", "rundll32", "regsvr32", "cscript", "wscript", "whoami", "uname", "ifconfig", "ipconfig",
        "systeminfo", "id", "cat", "rm", "chmod", "chown", "nslookup", "ping", "sleep", "busybox", "tftp", "base64", "xxd",
        "ls", "dir", "type", "net", "tasklist", "netstat", "nohup", "crontab", "useradd", "passwd", "sudo", "su",
        "head", "tail", "more", "less", "nl", "tac", "od", "strings", "find", "awk", "sed", "printenv", "env", "hostname",
    ]
    /// `'d`, `'s`, `'ll` after a word and before a space or the end: an English contraction, not quoting.
    static func contraction(_ s: [UInt8], _ q: Int) -> Bool {
        var j = q + 1
        while j < s.count, s[j] >= 0x61 && s[j] <= 0x7A { j += 1 }
        return j - q - 1 >= 1 && j - q - 1 <= 2 && (j == s.count || isSpace(s[j]) || s[j] == 0x2E || s[j] == 0x2C)
    }

    static let filters: Set<String> = [
        "grep", "egrep", "fgrep", "sort", "head", "tail", "wc", "awk", "sed", "cut", "tr", "uniq", "less", "more", "xargs", "tee", "jq",
        "column",
    ]

    /// The segment before a pipe at `bar` (back to a backtick, separator or the start) holds
    /// several words and a flag: `git log --oneline | head`.
    static func leftIsCommandLine(_ s: [UInt8], _ bar: Int) -> Bool {
        var b = bar - 1
        var words = 0, flag = false, inWord = false
        while b >= 0, s[b] != 0x60, s[b] != 0x3B, s[b] != 0x0A, s[b] != 0x7C, s[b] != 0x26 {
            if isSpace(s[b]) {
                inWord = false
            } else {
                if !inWord { words += 1; inWord = true }
                if s[b] == 0x2D, b == 0 || isSpace(s[b - 1]) { flag = true }
            }
            b -= 1
        }
        return words >= 2 && flag
    }

    static func startsWithProgram(_ s: [UInt8]) -> Bool {
        var i = 0
        while i < s.count, isSpace(s[i]) { i += 1 }
        let (w, _, _) = shellWord(s, i)
        let (name, _, _) = programName(w)
        return programs.contains(name)
    }

    static let startBare: Set<String> = ["whoami", "ifconfig", "ipconfig", "systeminfo", "netstat", "printenv", "tasklist"]

    static let windowsOnly: Set<String> = [
        "cmd", "powershell", "pwsh", "certutil", "bitsadmin", "wmic", "tasklist", "taskkill", "systeminfo", "reg", "schtasks", "netsh",
        "mshta", "rundll32", "regsvr32", "cscript", "wscript", "findstr", "icacls", "ipconfig", "dir", "type", "del", "copy", "move", "ver",
        "net", "tracert",
    ]

    /// "Wait; sleep" ends prose with a word; "x;sleep" and "1; sleep" are injections.
    static func precededByProse(_ s: [UInt8], _ sepAt: Int) -> Bool {
        guard sepAt > 0 else { return false }
        var b = sepAt - 1
        if !isSpace(s[b]), sepAt + 1 < s.count, !isSpace(s[sepAt + 1]) { return false }
        // Two words of text before the separator: "Bring snacks; sleep" is prose, "localhost; ls" is not.
        var words = 0
        while words < 2 {
            while b >= 0, isSpace(s[b]) || s[b] == 0x2C { b -= 1 }
            var letters = 0
            while b >= 0, (s[b] | 0x20) >= 0x61 && (s[b] | 0x20) <= 0x7A || s[b] == 0x27 { letters += 1; b -= 1 }
            guard letters >= 1, b < 0 || isSpace(s[b]) || s[b] == 0x2C else { return false }
            words += 1
            if b < 0 { break }
        }
        return words >= 2
    }

    /// `${jndi:ldap://…}` and its nested obfuscations (`${${lower:j}ndi:…}`, `${::-j}`), OGNL and
    /// Spring expression forms that reach the runtime.
    static func scanLookups(_ s: [UInt8], into out: inout [PatternMatch]) {
        let n = s.count
        guard let first = Decoding.find([0x24, 0x7B], in: s) ?? Decoding.find([0x25, 0x7B], in: s) else { return }
        // Collapse `${lower:x}`, `${upper:x}`, `${::-x}`, `${env:NAME:-x}` to x, innermost first.
        var t = s
        var changed = true
        var rounds = 0
        while changed, rounds < 16 {
            changed = false
            rounds += 1
            var i = 0
            while i + 1 < t.count {
                // The closing brace is looked for within 256 bytes: nested lookups are short, and an
                // unbounded search would make `${${${…` quadratic.
                if t[i] == 0x24, t[i + 1] == 0x7B, let close = t[(i + 2)..<min(t.count, i + 258)].firstIndex(of: 0x7D),
                    !t[(i + 2)..<close].contains(0x24)
                {
                    let inner = Array(t[(i + 2)..<close])
                    var rep: [UInt8]? = nil
                    if let d = Decoding.find([0x3A, 0x2D], in: inner) {
                        rep = Array(inner[(d + 2)...])
                    } else if inner.starts(with: "lower:".utf8) {
                        rep = Array(inner.dropFirst(6))
                    } else if inner.starts(with: "upper:".utf8) {
                        rep = Decoding.lowercased(Array(inner.dropFirst(6)))
                    }
                    if let rep {
                        t.replaceSubrange(i...close, with: rep)
                        changed = true
                        continue
                    }
                }
                i += 1
            }
        }
        for key in ["${jndi:", "${ctx:", "${spring:", "${script:", "${main:", "${k8s:", "${docker:"] {
            if Decoding.find(Array(key.utf8), in: t) != nil {
                out.append(PatternMatch(rule: "932150", start: first, end: min(n, first + 60), message: "lookup \(key)…}"))
                return
            }
        }
        if rounds > 1, Decoding.find("${", in: s) != nil, t != s, Decoding.find("jndi", in: t) != nil {
            out.append(PatternMatch(rule: "932150", start: first, end: min(n, first + 60), message: "obfuscated JNDI lookup"))
            return
        }
        for key in [
            "#_memberaccess", "@java.lang.runtime@", "getruntime()", "t(java.lang", "new java.lang.processbuilder", "#context[", "(#cmd=",
            "ognlcontext",
        ] {
            if let at = Decoding.find(Array(key.utf8), in: s) {
                out.append(
                    PatternMatch(
                        rule: "932150", start: min(first, at), end: min(n, at + 60), message: "expression language reaching the runtime"))
                return
            }
        }
    }

    /// `() { :; };` at the start of a value (or after `=`): a bash function definition that
    /// vulnerable bash runs on import. `function () {` in a code snippet is not this shape.
    static func scanShellshock(_ s: [UInt8], into out: inout [PatternMatch]) {
        guard let at = Decoding.find([0x28, 0x29], in: s) else { return }
        var b = at - 1
        while b >= 0, isSpace(s[b]) { b -= 1 }
        guard b < 0 || s[b] == 0x3D || s[b] == 0x3A || s[b] == 0x22 || s[b] == 0x27 else { return }
        var k = at + 2
        while k < s.count, isSpace(s[k]) { k += 1 }
        guard k < s.count, s[k] == 0x7B, let close = s[k...].firstIndex(of: 0x7D),
            s[k..<close].contains(0x3B) || s[k..<close].contains(0x3A)
        else { return }
        out.append(PatternMatch(rule: "932130", start: at, end: min(s.count, close + 40), message: "function definition () { …; }"))
    }

    static let codeCalls: [String] = [
        "system(", "exec(", "shell_exec(", "passthru(", "popen(", "proc_open(", "pcntl_exec(", "assert(", "create_function(",
        "os.system(", "os.popen(", "subprocess.", "__import__(", "runtime.getruntime(", "processbuilder(", "child_process",
        "process.mainmodule", "require('child_process')", "kernel.exec", "io.popen(", "eval(base64_decode(", "eval($_",
        "call_user_func(", "preg_replace('/.*/e", "$_get[", "$_post[", "$_request[", "$_cookie[", "$_server[", "file_put_contents(",
    ]

    static let codeCallBytes: [[UInt8]] = codeCalls.map { Array($0.utf8) }

    static func scanCode(_ s: [UInt8], into out: inout [PatternMatch]) {
        for (ci, call) in codeCalls.enumerated() {
            let p = codeCallBytes[ci]
            if let at = Decoding.find(p, in: s),
                at == 0 || !SQLTokenizer.isWordByte(s[at - 1]) || call.hasPrefix("$") || call.hasPrefix("os.")
            {
                // Arguments must be code: a quote, a variable or a call inside, not prose in brackets.
                let e = at + p.count
                if call.hasSuffix("("), e < s.count {
                    let c = s[e]
                    guard
                        c == 0x22 || c == 0x27 || c == 0x24 || c == 0x60 || SQLTokenizer.isWordByte(c) && s[e...].prefix(40).contains(0x28)
                            || c == 0x29 && call.hasPrefix("runtime")
                    else { continue }
                }
                out.append(PatternMatch(rule: "932160", start: at, end: min(s.count, at + 50), message: "code execution \(call)"))
                return
            }
        }
    }
}

extension CommandInjectionDetector {
    /// Whether `value`, read as a form field, holds a command line, a code-execution call or a
    /// lookup: the second opinion on the Core Rule Set's command injection rules.
    package static func detects(_ value: [UInt8]) -> Bool {
        let low = Decoding.lowercased(value)
        var found: [PatternMatch] = []
        scan(low, kind: .bodyValue, bytes: ByteSet(low), into: &found)
        return !found.isEmpty
    }
}

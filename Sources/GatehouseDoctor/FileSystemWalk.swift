import Foundation
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The user a web server's workers run as: uid and every group it belongs to.
public struct WorkerIdentity: Sendable, Equatable {
    public var name: String
    public var uid: UInt32
    public var gids: [UInt32]

    public init(name: String, uid: UInt32, gids: [UInt32]) {
        self.name = name
        self.uid = uid
        self.gids = gids
    }

    /// Looks a user up in the system's user database (getpwnam + getgrouplist).
    public static func lookup(_ name: String) throws -> WorkerIdentity {
        guard let pw = getpwnam(name) else {
            throw ServerAnalysisError(
                description: "user '\(name)' does not exist on this machine (expected the web server's worker user, e.g. www-data)")
        }
        let uid = pw.pointee.pw_uid, gid = pw.pointee.pw_gid
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        #if canImport(Darwin)
            var signedGroups = [Int32](repeating: 0, count: Int(count))
            _ = getgrouplist(name, Int32(gid), &signedGroups, &count)
            groups = signedGroups.prefix(Int(count)).map { gid_t(bitPattern: $0) }
        #else
            if getgrouplist(name, gid, &groups, &count) < 0 {
                groups = [gid_t](repeating: 0, count: Int(count))
                _ = getgrouplist(name, gid, &groups, &count)
            }
            groups = Array(groups.prefix(Int(count)))
        #endif
        return WorkerIdentity(name: name, uid: uid, gids: Array(Set(groups.map { UInt32($0) } + [gid])).sorted())
    }
}

/// A failure to analyse a server setup (bad config file, unknown user, …).
public struct ServerAnalysisError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(description: String) { self.description = description }
}

/// What the permission walk found wrong on the way to a file.
public struct FileSystemProblem: Sendable, Equatable {
    public var cause: DenialCause
    public var path: String
    public var message: String
    public var fix: [String]
}

/// Walks a path the way a worker process opens it: execute on every directory, read on the file.
public struct FileSystemWalk: Sendable {
    public let worker: WorkerIdentity

    public init(worker: WorkerIdentity) { self.worker = worker }

    struct Entry {
        var mode: UInt32
        var uid: UInt32
        var gid: UInt32
        var isDir: Bool
        var isLink: Bool
    }

    static func lstatEntry(_ path: String) -> Entry? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        let type = UInt32(st.st_mode) & UInt32(S_IFMT)
        return Entry(
            mode: UInt32(st.st_mode) & 0o7777, uid: st.st_uid, gid: st.st_gid, isDir: type == UInt32(S_IFDIR),
            isLink: type == UInt32(S_IFLNK))
    }

    static func statEntry(_ path: String) -> Entry? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let type = UInt32(st.st_mode) & UInt32(S_IFMT)
        return Entry(mode: UInt32(st.st_mode) & 0o7777, uid: st.st_uid, gid: st.st_gid, isDir: type == UInt32(S_IFDIR), isLink: false)
    }

    /// The permission bits (rwx as 0…7) that apply to the worker for this entry, and which class.
    func bits(_ e: Entry) -> (bits: UInt32, who: String) {
        if worker.uid == 0 { return (7, "root") }
        if e.uid == worker.uid { return ((e.mode >> 6) & 7, "u") }
        if worker.gids.contains(e.gid) { return ((e.mode >> 3) & 7, "g") }
        return (e.mode & 7, "o")
    }

    static func owner(_ e: Entry) -> String {
        let user = getpwuid(e.uid).map { String(cString: $0.pointee.pw_name) } ?? String(e.uid)
        let group = getgrgid(e.gid).map { String(cString: $0.pointee.gr_name) } ?? String(e.gid)
        return "\(user):\(group) mode \(String(e.mode, radix: 8))"
    }

    /// Existence of a path (following links), as the server would see it.
    public static func exists(_ path: String) -> Bool { statEntry(path) != nil }
    public static func isDirectory(_ path: String) -> Bool { statEntry(path)?.isDir ?? false }
    public static func isSymlink(_ path: String) -> Bool { lstatEntry(path)?.isLink ?? false }

    /// Checks search (x) permission on every directory above `path` and, when `read` is set,
    /// read permission on `path` itself (plus x when it is a directory to be listed).
    /// `symlinksAllowed` false reports the first symbolic link on the way as the problem.
    public func check(_ path: String, read: Bool, symlinksAllowed: Bool = true, symlinkDirective: String = "") -> FileSystemProblem? {
        let comps = path.split(separator: "/").map(String.init)
        var current = ""
        for (i, comp) in comps.enumerated() {
            let parent = current.isEmpty ? "/" : current
            current += "/" + comp
            let isLast = i == comps.count - 1
            // Searching the parent is what lets the worker reach this entry.
            if let p = Self.statEntry(parent) {
                let b = bits(p)
                if b.bits & 1 == 0 {
                    return FileSystemProblem(
                        cause: .filesystemPermission, path: parent,
                        message:
                            "directory \(parent) (\(Self.owner(p))) has no execute (search) permission for \(worker.name), so nothing below it can be reached",
                        fix: fixes(parent, entry: p, bit: "x"))
                }
            }
            guard let l = Self.lstatEntry(current) else {
                return nil  // Missing: the server answers 404, not a permission problem.
            }
            if l.isLink {
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: current)) ?? "?"
                if Self.statEntry(current) == nil {
                    return FileSystemProblem(
                        cause: .filesystemPermission, path: current,
                        message:
                            "\(current) is a broken symbolic link: its target \(target) does not exist\(symlinksAllowed ? "" : " (and \(symlinkDirective) forbids following links)")",
                        fix: ["Point the link at an existing file: `ln -sfn /path/to/real/file \(current)`, or remove it: `rm \(current)`."]
                    )
                }
                if !symlinksAllowed {
                    return FileSystemProblem(
                        cause: .configDeny, path: current,
                        message: "\(current) is a symbolic link (to \(target)) and \(symlinkDirective) forbids following it",
                        fix: [
                            "Replace the link with the real file, or allow links (\(symlinkDirective.isEmpty ? "symlink option" : symlinkDirective) → allow)."
                        ])
                }
            }
            if isLast, read, let e = Self.statEntry(current) {
                let b = bits(e)
                if b.bits & 4 == 0 {
                    return FileSystemProblem(
                        cause: .filesystemPermission, path: current,
                        message: "\(e.isDir ? "directory" : "file") \(current) (\(Self.owner(e))) is not readable by \(worker.name)",
                        fix: fixes(current, entry: e, bit: "r"))
                }
                if e.isDir, b.bits & 1 == 0 {
                    return FileSystemProblem(
                        cause: .filesystemPermission, path: current,
                        message: "directory \(current) (\(Self.owner(e))) has no execute permission for \(worker.name)",
                        fix: fixes(current, entry: e, bit: "x"))
                }
            }
        }
        return nil
    }

    /// The exact commands: widen the class that applies to the worker, or hand the entry to its group.
    func fixes(_ path: String, entry: Entry, bit: String) -> [String] {
        let who = bits(entry).who
        let primaryGroup = getgrgid(worker.gids.first ?? 0).map { String(cString: $0.pointee.gr_name) } ?? worker.name
        var out = ["`chmod \(who == "root" ? "o" : who)+\(bit) \(path)` (lets \(worker.name) \(bit == "x" ? "traverse" : "read") it)"]
        if who == "o" {
            out.append("or, to keep it private from other users: `chgrp \(primaryGroup) \(path) && chmod g+\(bit) \(path)`")
        }
        return out
    }
}

import GatehouseCore
import Yams

/// A YAML node with the key path that led to it, for error messages.
public struct ConfigNode {
    public let node: Node
    public let path: String

    var line: Int { node.mark?.line ?? 1 }
    var column: Int { node.mark?.column ?? 1 }

    func child(_ key: String, _ node: Node) -> ConfigNode { ConfigNode(node: node, path: path.isEmpty ? key : path + "." + key) }
    func element(_ i: Int, _ node: Node) -> ConfigNode { ConfigNode(node: node, path: path + "[\(i)]") }
}

/// Reads typed values out of YAML nodes, collecting every problem instead of stopping at the first.
public final class ConfigReader {
    public let file: String
    /// The directory relative paths in the file are resolved against.
    public var baseDirectory: String
    public private(set) var issues: [ConfigIssue] = []
    /// Things that do not stop the configuration from loading but that the operator should see
    /// (`gatehouse check` prints them, the server logs them).
    public private(set) var warnings: [ConfigIssue] = []

    /// Where policies asked for the cluster's shared store (`scope: cluster`): an error unless the
    /// configuration names one (`store.postgres`), checked once the whole file is read.
    public internal(set) var needsClusterStore: [ConfigNode] = []

    public init(file: String, baseDirectory: String = ".") {
        self.file = file
        self.baseDirectory = baseDirectory
    }

    public func error(_ at: ConfigNode, _ message: String) {
        issues.append(ConfigIssue(file: file, line: at.line, column: at.column, path: at.path, message: message))
    }

    public func warning(_ at: ConfigNode, _ message: String) {
        warnings.append(ConfigIssue(file: file, line: at.line, column: at.column, path: at.path, message: message))
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return "\"\(s.string)\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// The mapping's entries by key; unknown keys are reported with a suggestion, missing required ones too.
    public func mapping(_ n: ConfigNode, known: [String], required: [String] = []) -> [String: ConfigNode]? {
        guard case .mapping(let m) = n.node else {
            error(n, "expected a mapping with keys \(known.joined(separator: ", ")), found \(describe(n.node))")
            return nil
        }
        var out: [String: ConfigNode] = [:]
        for (k, v) in m {
            guard let key = k.string else { error(n, "keys must be strings"); continue }
            let child = n.child(key, v)
            if !known.contains(key) {
                let at = ConfigNode(node: k, path: child.path)
                if let s = DidYouMean.suggest(key, from: known) {
                    error(at, "unknown key \"\(key)\"; did you mean \"\(s)\"? (expected one of: \(known.joined(separator: ", ")))")
                } else {
                    error(at, "unknown key \"\(key)\" (expected one of: \(known.joined(separator: ", ")))")
                }
                continue
            }
            out[key] = child
        }
        for r in required where out[r] == nil {
            error(n, "missing required key \"\(r)\"")
        }
        return out
    }

    /// Entries of a mapping whose keys are names chosen by the user (policies, upstreams).
    public func namedEntries(_ n: ConfigNode) -> [(String, ConfigNode)] {
        guard case .mapping(let m) = n.node else {
            error(n, "expected a mapping of names to definitions, found \(describe(n.node))")
            return []
        }
        return m.compactMap { k, v in
            guard let key = k.string, !key.isEmpty else { error(n, "names must be non-empty strings"); return nil }
            return (key, n.child(key, v))
        }
    }

    public func list(_ n: ConfigNode) -> [ConfigNode] {
        switch n.node {
        case .sequence(let s): return s.enumerated().map { n.element($0.offset, $0.element) }
        default:
            error(n, "expected a list, found \(describe(n.node))")
            return []
        }
    }

    public func string(_ n: ConfigNode) -> String? {
        guard case .scalar(let s) = n.node else {
            error(n, "expected a string, found \(describe(n.node))")
            return nil
        }
        return s.string
    }

    public func strings(_ n: ConfigNode) -> [String] {
        if case .scalar = n.node, let s = string(n) { return [s] }
        return list(n).compactMap { string($0) }
    }

    public func int(_ n: ConfigNode, range: ClosedRange<Int>? = nil) -> Int? {
        guard case .scalar(let s) = n.node, let v = Int(s.string) else {
            error(n, "expected a whole number, found \(describe(n.node))")
            return nil
        }
        if let range, !range.contains(v) {
            error(n, "\(v) is out of range (expected \(range.lowerBound)...\(range.upperBound))")
            return nil
        }
        return v
    }

    public func bool(_ n: ConfigNode) -> Bool? {
        guard case .scalar(let s) = n.node else { error(n, "expected true or false, found \(describe(n.node))"); return nil }
        switch s.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            error(n, "expected true or false, found \"\(s.string)\"")
            return nil
        }
    }

    /// The longest duration any key takes: 100 years, which still fits in nanoseconds as an Int64.
    public static let maxDuration: Double = 36500 * 86400
    /// The longest timeout (`limits:` and upstream timeouts): 7 days.
    public static let maxTimeout: Double = 7 * 86400

    /// Durations like "5s", "250ms", "30d", from 0 to ``maxDuration``.
    public func duration(_ n: ConfigNode) -> Double? {
        guard let s = string(n) else { return nil }
        guard let d = TimeText.parseDuration(s), d >= 0 else {
            error(n, "\"\(s)\" is not a duration (expected e.g. 250ms, 5s, 10m, 12h, 30d)")
            return nil
        }
        guard d <= Self.maxDuration else {
            error(n, "\"\(s)\" is too long (expected a duration of at most 36500d)")
            return nil
        }
        return d
    }

    /// A timeout: a duration of more than 0 (a zero timeout would end every wait at once) and at
    /// most ``maxTimeout``, so that deadlines computed from it stay far from overflowing.
    public func timeout(_ n: ConfigNode) -> Double? {
        guard let s = string(n) else { return nil }
        guard let d = TimeText.parseDuration(s), d >= 0 else {
            error(n, "\"\(s)\" is not a duration (expected e.g. 250ms, 5s, 10m, 12h)")
            return nil
        }
        guard d >= 0.001, d <= Self.maxTimeout else {
            error(n, "\"\(s)\" is out of range (expected a timeout from 1ms to 7d, e.g. 250ms, 30s, 5m)")
            return nil
        }
        return d
    }

    /// Sizes like "1MiB", "8KiB", "512", "10MB".
    public func size(_ n: ConfigNode) -> Int? {
        guard let s = string(n) else { return nil }
        let units: [(String, Int)] = [
            ("KiB", 1024), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000),
            ("k", 1024), ("m", 1 << 20), ("g", 1 << 30), ("B", 1), ("", 1),
        ]
        for (suffix, mult) in units where s.hasSuffix(suffix) {
            if let v = Int(s.dropLast(suffix.count).trimmingSpaces), v >= 0 { return v * mult }
        }
        error(n, "\"\(s)\" is not a size (expected e.g. 512, 8KiB, 1MiB, 10MB)")
        return nil
    }

    public func oneOf(_ n: ConfigNode, _ choices: [String]) -> String? {
        guard let s = string(n) else { return nil }
        guard choices.contains(s) else {
            let hint = DidYouMean.suggest(s, from: choices).map { "; did you mean \"\($0)\"?" } ?? ""
            error(n, "\"\(s)\" is not valid (expected one of: \(choices.joined(separator: ", ")))\(hint)")
            return nil
        }
        return s
    }

    public func cidrs(_ n: ConfigNode) -> [CIDRBlock] {
        list(n).compactMap { item in
            guard let s = string(item) else { return nil }
            switch CIDRBlock.parse(s) {
            case .success(let b): return b
            case .failure(let e):
                error(item, "\"\(s)\" \(e)")
                return nil
            }
        }
    }
}

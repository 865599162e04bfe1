import GatehouseCore

/// A compiled path template: `/orders/{id}`, `/static/*`, `/files/{path*}`.
public struct PathTemplate: Sendable, CustomStringConvertible {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case param(String)
        /// Matches the rest of the path (zero or more segments).
        case rest(String?)
    }
    let segments: [Segment]
    public let description: String

    /// Parses a template; returns an error message when it is not valid.
    public static func parse(_ text: String) -> Result<PathTemplate, PathTemplateError> {
        guard text.hasPrefix("/") else {
            return .failure(PathTemplateError(message: "\"\(text)\" is not a path template (it must start with /)"))
        }
        var segs: [Segment] = []
        let parts = text.split(separator: "/", omittingEmptySubsequences: true)
        for (i, p) in parts.enumerated() {
            let isLast = i == parts.count - 1
            if p == "*" || (p.hasPrefix("{") && p.hasSuffix("*}")) {
                guard isLast else { return .failure(PathTemplateError(message: "\"\(text)\": a wildcard must be the last segment")) }
                segs.append(.rest(p == "*" ? nil : String(p.dropFirst().dropLast(2))))
            } else if p.hasPrefix("{") && p.hasSuffix("}") {
                let name = String(p.dropFirst().dropLast())
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                    return .failure(PathTemplateError(message: "\"\(text)\": parameter name \"\(name)\" must be letters, digits or _"))
                }
                segs.append(.param(name))
            } else if p.contains("{") || p.contains("}") {
                return .failure(PathTemplateError(message: "\"\(text)\": a parameter must be a whole segment, like /orders/{id}"))
            } else {
                // Compared with request segments once decoded (see `match`).
                segs.append(.literal(PercentDecoding.decode(p)))
            }
        }
        return .success(PathTemplate(segments: segs, description: text))
    }

    /// Matches a canonical request path (`CanonicalTarget`); returns the captured parameters.
    ///
    /// The normaliser has already decoded unreserved escapes; the escapes left are decoded here,
    /// once, for parameter values (`{id}` of `/orders/a%20b` is `a b`; `%2F` never reaches here).
    /// Checks use the values as they are and do not decode them again. A literal segment matches
    /// once decoded, and also with `;parameters` after it (`/admin;x` meets the checks of `/admin`,
    /// as Tomcat and Spring resolve it there).
    func match(_ path: Substring) -> [String: String]? {
        var params: [String: String] = [:]
        // Walks the path's segments in place (empty segments are skipped, as `//` collapses).
        var at = path.startIndex
        func next() -> Substring? {
            while at < path.endIndex, path.utf8[at] == UInt8(ascii: "/") { at = path.utf8.index(after: at) }
            guard at < path.endIndex else { return nil }
            let start = at
            while at < path.endIndex, path.utf8[at] != UInt8(ascii: "/") { at = path.utf8.index(after: at) }
            return path[start..<at]
        }
        for seg in segments {
            switch seg {
            case .literal(let l):
                guard let first = next(), first == l || CanonicalTarget.segment(first, matchesLiteral: l) else { return nil }
            case .param(let name):
                guard let first = next() else { return nil }
                params[name] = PercentDecoding.decode(first)
            case .rest(let name):
                if let name {
                    var parts: [Substring] = []
                    while let part = next() { parts.append(part) }
                    params[name] = parts.map { PercentDecoding.decode($0) }.joined(separator: "/")
                }
                return params
            }
        }
        return next() == nil ? params : nil
    }

    /// Higher is more specific: literals beat parameters beat wildcards, longer beats shorter.
    var specificity: Int {
        segments.reduce(0) { acc, s in
            switch s {
            case .literal: return acc + 100
            case .param: return acc + 10
            case .rest: return acc + 1
            }
        }
    }
}

/// Why a path template is invalid.
public struct PathTemplateError: Error, Sendable { public var message: String }

/// Host patterns: exact (`api.example.com`) or wildcard subdomain (`*.example.com`).
public struct HostPattern: Sendable, CustomStringConvertible {
    let exact: String?
    let suffix: String?
    public var description: String { exact ?? ("*" + (suffix ?? "")) }

    public init(_ text: String) {
        let lower = text.lowercased()
        if lower.hasPrefix("*.") {
            exact = nil
            suffix = String(lower.dropFirst())
        } else {
            exact = lower
            suffix = nil
        }
    }

    func matches(_ host: String) -> Bool {
        if let exact { return host == exact }
        if let suffix { return host.hasSuffix(suffix) && host.count > suffix.count }
        return false
    }
}

/// The outcome of routing one request.
public enum RouteMatch: Sendable {
    case matched(CompiledRoute, params: [String: String])
    /// The path matched routes, but none accepts this method.
    case methodNotAllowed(allowed: [String], candidates: [String])
    case notFound
}

/// Routes in match order; picks the most specific route for host, path and method.
public struct Router: Sendable {
    public let routes: [CompiledRoute]

    public init(routes: [CompiledRoute]) { self.routes = routes }

    /// Routes a request. `path` is the canonical path (`CanonicalTarget`); `host` is lowercased,
    /// without port; a trailing dot (`admin.example.com.`, the same DNS name) is ignored.
    public func route(host: String, method: String, path: Substring) -> RouteMatch {
        var host = host
        while host.utf8.last == UInt8(ascii: ".") { host.removeLast() }
        var best: (CompiledRoute, [String: String], Int)?
        var methodsSeen: [String] = []
        var candidates: [String] = []
        for route in routes {
            if !route.hosts.isEmpty, !route.hosts.contains(where: { $0.matches(host) }) { continue }
            guard let params = route.path.match(path) else { continue }
            if !route.methods.isEmpty, !route.methods.contains(method) {
                methodsSeen.append(contentsOf: route.methods)
                candidates.append(route.name)
                continue
            }
            let score = route.path.specificity * 2 + (route.hosts.isEmpty ? 0 : 1)
            if best == nil || score > best!.2 { best = (route, params, score) }
        }
        if let best { return .matched(best.0, params: best.1) }
        if !methodsSeen.isEmpty {
            var seen = Set<String>()
            return .methodNotAllowed(allowed: methodsSeen.filter { seen.insert($0).inserted }, candidates: candidates)
        }
        return .notFound
    }
}

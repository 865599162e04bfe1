import GatehouseConfig
import GatehouseCore
import GatehouseHTTP1

/// Where a request is decided.
///
/// `Gatekeeper.decide` takes a parsed request head, what the gateway knows about the connection
/// and the running configuration, and returns a `Decision`: refuse, answer locally, read the body
/// first, or forward. It does no I/O and touches no channel: the data plane (`GatewayHandler`)
/// acts on the decision. The checks it runs may keep state of their own (a rate limiter's buckets,
/// a JWKS cache), as checks do wherever they run.
///
/// The steps, in order, each of which can end the decision:
/// 1. the request target is made canonical (`CanonicalTarget`); a target back ends could read
///    differently is refused (400 `bad_request`);
/// 2. the Host field must be a name, an address or an `[IPv6]` literal with an optional port
///    (400 `bad_request`); it is lowercased and a trailing dot removed;
/// 3. the client address is resolved (`X-Forwarded-For` only from `trusted_proxies`);
/// 4. the request is routed (404 `route_not_found`, 405 `method_not_allowed`); a CORS preflight
///    is routed as the method it announces only when that route's chain answers preflights;
/// 5. the route's chain runs: all of it, or, when a check reads the body, the checks before that
///    one (`decideBody` runs the rest once the body has arrived).
struct Gatekeeper {
    /// The connection a request arrived on.
    struct Connection {
        var peer: IPAddress?
        /// The peer is one of `trusted_proxies`.
        var peerTrusted: Bool
        var isTLS: Bool
        var identity: PeerIdentity?
    }

    /// What to do with the request.
    enum Action {
        /// Refuse it: `Decision.decidingCheck` names the check (nil when refused before any check ran).
        case deny(Denial)
        /// A check answered it itself (a CORS preflight, say).
        case answer(LocalAnswer)
        /// Read the body (up to `maxBytes`, else 413), then call `decideBody`.
        case bufferBody(maxBytes: Int)
        /// Send it upstream. `streamLimit`: a `max_body` to enforce on a streamed body as it passes.
        case forward(upstream: String, streamLimit: StreamedBodyLimit?)
    }

    /// A decision and what it was made on (the call log and `explain` read all of it).
    struct Decision {
        var action: Action
        /// The canonical target (path and query), forwarded as is; nil when the target was refused.
        var target: String?
        var route: CompiledRoute?
        /// The request as the checks saw and completed it (principal, response headers).
        var request: PolicyRequest
        var trace = DecisionTrace()
        var decidingCheck: String?
        /// Denials shadow-mode checks would have made (counted, logged, never enforced).
        var shadowDenials: [(check: String, denial: Denial)] = []
        /// The head checks' result, when the body is read before the rest of the chain runs.
        var headResult: ChainResult?
    }

    /// The configuration snapshot (read through the reference: the configuration is never copied
    /// per request).
    let state: RuntimeState
    /// Trace timings; nil records none.
    let clock: (any MicroClock)?

    /// Decides a request from its head.
    func decide(_ head: RequestHead, requestID: String, connection c: Connection, now: Double) -> Decision {
        let target: CanonicalTarget
        switch CanonicalTarget.parse(head.uri) {
        case .success(let t):
            target = t
        case .failure(let refusal):
            let request = PolicyRequest(
                requestID: requestID, method: head.method, path: String(head.uri.prefix(2048)),
                headers: HeaderList(head.headers), clientAddress: c.peer, peerAddress: c.peer, now: now)
            return Decision(
                action: .deny(
                    Denial(
                        code: .badRequest,
                        detail: "the request target is refused: \(refusal)",
                        required: ["a request target every back end resolves to the same path"],
                        presented: [refusal.excerpt.isEmpty ? String(head.uri.prefix(256)) : refusal.excerpt],
                        hint:
                            "Send the path as a browser would: no fragment, backslash, encoded slash or backslash, control or raw 8-bit bytes, double encoding, or ../ above the root."
                    )),
                target: nil, route: nil, request: request)
        }
        let canonical = target.target
        let pathPart = Substring(target.path)
        let hostField = head.first("host") ?? ""
        guard var host = Self.hostName(hostField) else {
            // A Host that is not a name, an address or a port (`a%2Eb`, `x@a`, `a/x`, `a:80:x`) is
            // read differently by different back ends (URL parsers, nginx's server_name): refused.
            let request = PolicyRequest(
                requestID: requestID, method: head.method, path: target.path, query: target.query,
                headers: HeaderList(head.headers), clientAddress: c.peer, peerAddress: c.peer, now: now)
            return Decision(
                action: .deny(
                    Denial(
                        code: .badRequest,
                        detail:
                            "the Host field \"\(DisplayText.escaped(String(hostField.prefix(256))))\" is not a host name, an IP address or an [IPv6] literal with an optional port",
                        required: ["Host: name[:port]"], presented: [DisplayText.escaped(String(hostField.prefix(256)))])),
                target: canonical, route: nil, request: request)
        }
        if host.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) { host = host.lowercased() }
        // "admin.example.com." is the same DNS name as "admin.example.com": it meets the same routes.
        while host.utf8.last == UInt8(ascii: ".") { host.removeLast() }
        let method = head.method
        let client =
            !c.peerTrusted
            ? c.peer
            : ClientAddressResolver.resolve(
                peer: c.peer, forwardedFor: head.values("x-forwarded-for"), trusted: state.config.trustedProxies)

        var request = PolicyRequest(
            requestID: requestID, method: method, path: target.path, query: target.query,
            headers: HeaderList(head.headers), host: host,
            clientAddress: client, peerAddress: c.peer, isTLS: c.isTLS, peerIdentity: c.identity,
            contentLength: head.contentLength, routeName: "", now: now)

        // A CORS preflight is routed as the request it announces only when that route's chain
        // answers it (an enforced `cors` check answers every preflight, 204 or 403, and nothing
        // after it runs): it is never forwarded upstream under another method's route. Otherwise
        // it is routed as the OPTIONS request it is.
        var routed: RouteMatch?
        if method == "OPTIONS", head.first("origin") != nil,
            let announced = head.first("access-control-request-method"), !announced.isEmpty
        {
            let asPreflight = state.config.router.route(host: host, method: announced.trimmingSpaces.uppercased(), path: pathPart)
            if case .matched(let route, _) = asPreflight,
                route.chain.links.contains(where: { $0.mode == .enforce && $0.check.type == "cors" })
            {
                routed = asPreflight
            }
        }
        switch routed ?? state.config.router.route(host: host, method: method, path: pathPart) {
        case .notFound:
            return Decision(
                action: .deny(
                    Denial(
                        code: .routeNotFound, detail: "no route matches \(method) \(pathPart) on host \(host.isEmpty ? "(none)" : host)",
                        presented: ["\(method) \(pathPart)", "host \(host)"])),
                target: canonical, route: nil, request: request)
        case .methodNotAllowed(let allowed, let candidates):
            let allow = allowed.joined(separator: ", ")
            let s = candidates.count > 1
            return Decision(
                action: .deny(
                    Denial(
                        code: .methodNotAllowed,
                        detail:
                            "\(method) is not allowed on \(pathPart); route\(s ? "s" : "") \(candidates.joined(separator: ", ")) accept\(s ? "" : "s") \(allow)",
                        required: allowed, presented: [method], headers: [HeaderField("Allow", allow)])),
                target: canonical, route: nil, request: request)
        case .matched(let route, let params):
            request.routeName = route.name
            request.pathParams = params
            guard route.chain.needsBody && head.hasBody else {
                let result = route.chain.evaluate(&request, clock: clock)
                return Self.conclude(result, route: route, target: canonical, request: request)
            }
            // The checks that need no body decide first: a caller they refuse never makes the
            // gateway hold its body.
            let before = route.chain.evaluateHead(&request, clock: clock)
            if before.denial != nil || request.localAnswer != nil {
                return Self.conclude(before, route: route, target: canonical, request: request)
            }
            if let length = head.contentLength, length > route.maxBufferedBody {
                return Decision(
                    action: .deny(
                        Denial(
                            code: .bodyTooLarge,
                            detail: "route \(route.name) inspects bodies up to \(route.maxBufferedBody) bytes; this one is \(length)",
                            required: ["body <= \(route.maxBufferedBody) bytes"], presented: ["\(length) bytes"])),
                    target: canonical, route: route, request: request, trace: before.trace, shadowDenials: before.shadowDenials)
            }
            return Decision(
                action: .bufferBody(maxBytes: route.maxBufferedBody), target: canonical, route: route, request: request,
                trace: before.trace, shadowDenials: before.shadowDenials, headResult: before)
        }
    }

    /// Decides a request whose body has arrived (after `.bufferBody`): the rest of `route`'s chain
    /// runs on `request`, which now holds the body, after the head checks' `before`.
    func decideBody(_ request: PolicyRequest, route: CompiledRoute, after before: ChainResult, target: String?) -> Decision {
        var request = request
        let result = route.chain.evaluateBody(&request, after: before, clock: clock)
        return Self.conclude(result, route: route, target: target, request: request)
    }

    /// A chain's result as a decision: deny, answer, or forward.
    static func conclude(_ result: ChainResult, route: CompiledRoute, target: String?, request: PolicyRequest) -> Decision {
        let action: Action
        if let d = result.denial {
            action = .deny(d)
        } else if let answer = request.localAnswer {
            action = .answer(answer)
        } else {
            action = .forward(upstream: route.upstream, streamLimit: request.streamedBodyLimit)
        }
        return Decision(
            action: action, target: target, route: route, request: request, trace: result.trace,
            decidingCheck: result.decidingCheck, shadowDenials: result.shadowDenials)
    }

    /// The host part of a Host field, or nil when the field is not `reg-name[:port]`,
    /// `IPv4[:port]` or `[IPv6][:port]`. Names may hold letters, digits, `-`, `.` and `_` (seen in
    /// internal names); a port is 1 to 5 digits. Anything else (escapes, `@`, `/`, `?`, `#`, a
    /// second colon) is read differently by different back ends.
    static func hostName(_ field: String) -> String? {
        var field = field
        return field.withUTF8 { hostName(utf8: $0) }
    }

    private static func hostName(utf8 u: UnsafeBufferPointer<UInt8>) -> String? {
        guard !u.isEmpty else { return "" }
        var i = 0
        let name: Slice<UnsafeBufferPointer<UInt8>>
        if u[0] == UInt8(ascii: "[") {
            guard let close = u.firstIndex(of: UInt8(ascii: "]")), close > 1 else { return nil }
            for c in u[1..<close] {
                let ok =
                    (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x66) || c == UInt8(ascii: ":") || c == UInt8(ascii: ".")
                if !ok { return nil }
            }
            name = u[1..<close]
            i = close + 1
        } else {
            while i < u.count, u[i] != UInt8(ascii: ":") {
                let c = u[i]
                let ok =
                    (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
                    || c == UInt8(ascii: "_")
                if !ok { return nil }
                i += 1
            }
            name = u[0..<i]
            if name.isEmpty { return nil }
        }
        if i < u.count {
            guard u[i] == UInt8(ascii: ":") else { return nil }
            let digits = u[(i + 1)..<u.count]
            guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: name), as: UTF8.self)
    }
}

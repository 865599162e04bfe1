import Foundation

/// Facts the classifier computes from a response before matching signatures.
public enum DerivedFacts {
    /// Names usable in a signature's `fact` condition.
    public static let known: Set<String> = [
        "ratelimit_exhausted", "ratelimit_remaining", "oauth_scope_mismatch", "request_carried_credentials",
        "request_without_credentials", "json_body", "html_body", "empty_body", "url_known",
    ]

    static func compute(_ r: ObservedResponse, json: Any?) -> Set<String> {
        var facts = Set<String>()
        let remaining = ["x-ratelimit-remaining", "ratelimit-remaining", "x-rate-limit-remaining", "x-ratelimit-remaining-requests"]
            .flatMap { r.values($0) }
        if remaining.contains(where: { $0.trimmingCharacters(in: .whitespaces) == "0" }) { facts.insert("ratelimit_exhausted") }
        // Quota left on the primary counter: a denial now is a secondary limit, abuse detection or no limit at all.
        if remaining.contains(where: { (Int($0.trimmingCharacters(in: .whitespaces)) ?? 0) > 0 }) { facts.insert("ratelimit_remaining") }
        if r.host != nil { facts.insert("url_known") }
        // IETF RateLimit field: `limit=100, remaining=0, reset=30` (draft 7) or `"default";r=0;t=30` (draft 8+).
        if r.values("ratelimit").contains(where: { $0.range(of: #"(remaining=0\b|;\s*r=0\b)"#, options: .regularExpression) != nil }) {
            facts.insert("ratelimit_exhausted")
        }
        if scopeMismatch(r) != nil { facts.insert("oauth_scope_mismatch") }
        if let sent = r.request?.carriedCredentials ?? r.credentialsSent {
            facts.insert(sent ? "request_carried_credentials" : "request_without_credentials")
        }
        if json != nil { facts.insert("json_body") }
        if r.body.range(of: "<html|<!doctype html|<body", options: [.regularExpression, .caseInsensitive]) != nil {
            facts.insert("html_body")
        }
        if r.body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { facts.insert("empty_body") }
        return facts
    }

    /// Scopes an endpoint accepts that the token lacks, from `X-Accepted-OAuth-Scopes` / `X-OAuth-Scopes`.
    static func scopeMismatch(_ r: ObservedResponse) -> (granted: [String], accepted: [String])? {
        guard let acceptedRaw = r.value("x-accepted-oauth-scopes") else { return nil }
        let split: (String) -> [String] = {
            $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        let accepted = split(acceptedRaw)
        let granted = split(r.value("x-oauth-scopes") ?? "")
        guard !accepted.isEmpty else { return nil }
        // A broader granted scope covers its sub-scopes (`repo` covers `repo:status`, `admin:org` covers `read:org`).
        let covered = accepted.contains { a in
            granted.contains { g in
                a == g || a.hasPrefix(g + ":") || (g.hasPrefix("admin:") && a.hasSuffix(":" + g.dropFirst(6)))
                    || (g.hasPrefix("write:") && a == "read:" + g.dropFirst(6))
            }
        }
        return covered ? nil : (granted, accepted)
    }
}

/// Matches a response against the knowledge base and weighs the evidence into a `Diagnosis`.
public struct ResponseClassifier: Sendable {
    public let knowledge: KnowledgeBase

    public init(knowledge: KnowledgeBase) { self.knowledge = knowledge }

    struct Hit {
        let system: SystemKnowledge
        let signature: Signature
        let evidence: String
    }

    /// How strongly independent marks together identify their system: `1 - Π(1 - identifies)`.
    static func identification(_ hits: [Hit]) -> Double {
        1 - hits.reduce(1.0) { $0 * (1 - ($1.signature.identifies ?? 0)) }
    }

    struct Candidate {
        let system: SystemKnowledge
        let identity: Double
        let hits: [Hit]
        let bestCause: Hit?
        /// A system that explains the denial specifically outranks one that was merely on the path
        /// (a CDN header on a response whose body comes from the origin).
        var rank: Double { identity * (0.5 + 0.5 * (bestCause?.signature.strength ?? 0.3)) }
    }

    /// What matching needs from one response, computed once.
    struct Observation {
        let response: ObservedResponse
        let json: Any?
        let facts: Set<String>
        let words: BodyWords
        let host: String?
        /// The request URL, when known (never for a 407, like `host`).
        let url: String?
        /// The path of the request URL, without query or fragment, when the URL is known.
        let path: String?
        /// Hosts of the URLs written in the body (the first 20).
        let linkedHosts: [String]
        /// Hosts of the pages the body cites: its URLs that have a path (documentation, a console).
        let citedHosts: [String]
        /// The reason phrase when it is a sentence of the server's rather than a standard phrase.
        var sentencePhrase: String? {
            response.reasonPhrase.split(separator: " ").count > 3 ? response.reasonPhrase : nil
        }
    }

    /// Diagnoses one response.
    public func diagnose(_ response: ObservedResponse) -> Diagnosis {
        let json = Self.parseJSON(response)
        let facts = DerivedFacts.compute(response, json: json)
        let links = Self.links(response.body)
        let o = Observation(
            response: response, json: json, facts: facts,
            words: BodyWords(response.reasonPhrase + "\n" + response.body, isHTML: facts.contains("html_body")),
            // A 407 comes from a proxy on the way, never from the host the request was for.
            host: response.status == 407 ? nil : response.host.map(Self.hostName), url: response.status == 407 ? nil : response.requestURL,
            path: response.status == 407 ? nil : response.requestURL.map(Self.requestPath),
            linkedHosts: links.hosts, citedHosts: links.cited)
        var genericHits: [Hit] = []
        var candidates: [Candidate] = []
        var frontDoors: [Candidate] = []
        // Systems whose only marks are those of a response passing through them, on a denial another wrote.
        var passedThrough: [(system: SystemKnowledge, identity: Double, hits: [Hit])] = []
        let matched = knowledge.systems.map { system in
            (
                system,
                system.signatures.compactMap { sig -> Hit? in
                    guard sig.when.allSatisfy({ matches($0, o) }) else { return nil }
                    return Hit(system: system, signature: sig, evidence: render(sig.evidence, response, json: json))
                }
            )
        }
        // How strongly the response itself marks a system (a header, a body shape, a cookie, a host),
        // before any discount: never by a link to its site or a shape many systems write; by marks of
        // passage (a front door's request id or `Server` header) and by the request path only when asked.
        func marks(_ hits: [Hit], passage: Bool, path: Bool) -> Double {
            Self.identification(
                hits.filter { h in
                    let s = h.signature
                    return s.common != true && !s.when.allSatisfy { $0.link != nil } && (passage || s.passage != true)
                        && (path || !Self.isPathEvidence(s))
                })
        }
        // Marks that could name their vendor on their own (0.3, the naming threshold): S3's XML error and
        // headers, Google's error object. OpenResty's bare default page (0.25) is not one.
        let ownMarked = Set(matched.filter { $0.0.generic != true && marks($0.1, passage: false, path: false) >= 0.3 }.map(\.0.system))
        let marked = Set(matched.filter { $0.0.generic != true && marks($0.1, passage: true, path: false) > 0 }.map(\.0.system))
        let sifted = matched.map { system, hits in
            var hits = hits
            // A request path names the software only when no other vendor's own header or body shape is on
            // the response (a path says where the request went, not who answered it).
            if !ownMarked.subtracting([system.system]).isEmpty { hits.removeAll { Self.isPathEvidence($0.signature) } }
            // A shape many systems write names its system only when no other system's mark is there.
            if !marked.subtracting([system.system]).isEmpty { hits.removeAll { $0.signature.common == true } }
            return (system, hits)
        }
        // Systems with evidence of their own writing (a page, an error object, a host), not only marks of
        // passage, a link to their site or a shape many systems write.
        let writers = Set(sifted.filter { $0.0.generic != true && marks($0.1, passage: false, path: true) >= 0.25 }.map(\.0.system))
        for (system, hits) in sifted {
            if system.generic == true {
                genericHits += hits
                continue
            }
            var identity = Self.identification(hits)
            guard identity > 0 else { continue }
            // A CDN's, proxy's or web server's marks (a request id, a `Server` header) say the response
            // passed through it; they do not say it wrote the denial. With none of its own evidence (its
            // page, its error object, its own host) and a denial that is another's (a body that is not its
            // page, an application's content type, a request host that is not its own), the service
            // behind it answered: it is reported as the way the response came, not as the writer.
            let passage = hits.filter { $0.signature.passage == true }
            // Its own evidence: an identifying mark that is not one of passage, or its own wording of the
            // denial (a cause signature that reads the body: Fastly's Next-Gen WAF `406 Not Acceptable`).
            let ownEvidence = hits.contains { h in
                ((h.signature.identifies ?? 0) > 0 && h.signature.passage != true)
                    || (h.signature.cause != nil && h.signature.when.contains { $0.body != nil || $0.words != nil || $0.json != nil })
            }
            if !passage.isEmpty, !ownEvidence, Self.writtenBehindFrontDoor(o) || !writers.subtracting([system.system]).isEmpty {
                if identity >= 0.1 { passedThrough.append((system, identity, passage)) }
                identity *= 0.25
            }
            let best = hits.filter { $0.signature.cause != nil }.max { ($0.signature.strength ?? 0) < ($1.signature.strength ?? 0) }
            // A shared front end's error shape on a host that is not its own: the service behind it
            // answered. With the host unknown, the shape alone names nobody either (OpenAI-compatible
            // APIs copy OpenAI's error object, S3-compatible stores S3's XML): only the system's own
            // headers confirm it. `locatedByRequest`: a mark read from the request (its host, URL or path),
            // which puts the response at the system's own address.
            let locatedByRequest = hits.contains { h in h.signature.when.contains { $0.host != nil || $0.url != nil || $0.path != nil } }
            // The system's own headers, or wording only its own decision engine writes (IAM's policy
            // evaluation message), confirm it; a bare shape does not.
            let ownHeaders = hits.contains { h in
                let weight = h.signature.identifies ?? 0
                return (h.signature.when.contains { $0.header != nil || $0.link != nil } && weight >= 0.5)
                    || (h.signature.cause != nil && weight >= 0.7)
            }
            let behindFrontDoor = system.sharedFormat == true && !locatedByRequest && (o.host != nil || !ownHeaders)
            // A known host that is not the system's own says another service answered; an unknown host
            // leaves the shape as weaker evidence of its owner, unless the body links to a site that is
            // not the format owner's (Square's `errors[]` list pointing at developer.squareup.com): the
            // service whose documentation it cites wrote it, as a foreign host would say.
            if behindFrontDoor { identity *= o.host != nil || linksElsewhere(system, o) ? 0.25 : 0.5 }
            // A shared error format names its causes even when it does not name the system.
            if system.sharedFormat == true, behindFrontDoor || identity < 0.3 {
                frontDoors.append(Candidate(system: system, identity: identity, hits: hits, bestCause: best))
            }
            candidates.append(Candidate(system: system, identity: identity, hits: hits, bestCause: best))
        }
        candidates.sort { $0.rank > $1.rank }
        var bestGeneric = genericHits.filter { $0.signature.cause != nil }.max {
            ($0.signature.strength ?? 0) < ($1.signature.strength ?? 0)
        }

        guard let top = candidates.first, top.identity >= 0.3 else {
            // The front end's error vocabulary still tells the cause of the service behind it.
            // The closest front end that names a cause (a weaker one, say a documentation link alone, names none).
            let door = frontDoors.filter { $0.bestCause != nil }.max { $0.rank < $1.rank }
            if let door, let hit = door.bestCause, (hit.signature.strength ?? 0) > (bestGeneric?.signature.strength ?? 0) {
                bestGeneric = hit
            }
            return unknownSystem(
                o, genericHits: genericHits, bestGeneric: bestGeneric, candidates: candidates, frontDoors: frontDoors,
                passedThrough: passedThrough.sorted { $0.identity > $1.identity })
        }

        // The system's own cause signature, unless vendor-neutral evidence is stronger
        // (an exhausted rate-limit counter outweighs whatever the body says).
        var causeHit = top.bestCause
        // A system named by the request path alone keeps the cause the response tells: the path says which
        // software it is, not why it refused.
        let pathOnly = top.hits.filter { ($0.signature.identifies ?? 0) > 0 }.allSatisfy { Self.isPathEvidence($0.signature) }
        let defaultCause = pathOnly ? nil : top.system.defaultCause
        // A system's documented default cause stands unless vendor-neutral evidence is stronger.
        var strength = top.bestCause?.signature.strength ?? (defaultCause != nil ? 0.45 : 0)
        if let g = bestGeneric, (g.signature.strength ?? 0) > strength {
            causeHit = g
            strength = g.signature.strength ?? 0
        }
        // Wording that makes the system's broad cause precise wins over it.
        if let precise = Self.refinement(of: causeHit?.signature.cause ?? defaultCause, genericHits: genericHits) {
            causeHit = precise
            strength = max(strength, precise.signature.strength ?? 0)
        }
        let cause: DenialCause
        var fix: [String]
        if let hit = causeHit, let c = hit.signature.cause {
            cause = c
            // A system's default fix speaks of its default cause; any other cause gets the generic advice.
            let systemFix = hit.system.generic != true && c == top.system.defaultCause ? top.system.defaultFix : nil
            fix = hit.signature.fix ?? systemFix ?? Self.defaultFix(c)
        } else if let c = defaultCause {
            cause = c
            strength = 0.45
            fix = top.system.defaultFix ?? Self.defaultFix(c)
        } else {
            cause = .unknown
            strength = 0.25
            fix = Self.defaultFix(.unknown)
        }
        if fix.isEmpty { fix = Self.defaultFix(cause) }
        var evidence: [String] = []
        if let h = causeHit { evidence.append(h.evidence) }
        evidence += top.hits.map(\.evidence)
        evidence += genericHits.filter { ($0.signature.strength ?? 0) >= 0.5 && $0.signature.cause == cause }.map(\.evidence)
        let doors = passedThrough.filter { $0.system.system != top.system.system }.sorted { $0.identity > $1.identity }
        evidence += doors.map { Self.servedThroughEvidence($0.system, $0.hits, o) }
        evidence = Self.unique(evidence)

        var alternatives: [Alternative] = []
        // Weak vendor-neutral hunches (a bare status, the word "forbidden") are not worth listing.
        let otherCauses = (top.hits + genericHits.filter { ($0.signature.strength ?? 0) >= 0.5 })
            .filter { $0.signature.cause != nil && $0.signature.cause != cause }
        for h in otherCauses {
            alternatives.append(
                Alternative(
                    deniedBy: top.system.system, cause: h.signature.cause!, confidence: top.identity * (h.signature.strength ?? 0) * 0.8))
        }
        for c in candidates.dropFirst() where c.rank > 0.15 {
            let altCause = c.bestCause?.signature.cause ?? c.system.defaultCause ?? cause
            alternatives.append(
                Alternative(
                    deniedBy: c.system.system, cause: altCause, confidence: c.rank * (c.bestCause?.signature.strength ?? 0.45) * 0.9))
        }
        // A path names the software, not the cause: the cause is no surer than the response alone makes it.
        let confidence =
            pathOnly
            ? min(Self.calibrated(top.identity * strength, systemNamed: true), Self.calibrated(strength * 0.85, systemNamed: false))
            : Self.calibrated(top.identity * strength, systemNamed: true)
        return Diagnosis(
            deniedBy: top.system.system, layer: top.system.layer, cause: cause, confidence: confidence,
            evidence: evidence, fix: fix, alternatives: Self.tidy(alternatives, excluding: (top.system.system, cause), below: confidence),
            servedThrough: doors.map(\.system.system))
    }

    /// Whether the denial is an application's rather than a front door's page: an error object (a JSON
    /// body, or a JSON, XML or vendor media type declared for it) or a message that is not a page (plain
    /// text). A front door's own pages are HTML, and an HTML page or an empty answer is left to the
    /// front door's marks unless another system's own evidence is in it (the classifier checks that).
    static func writtenBehindFrontDoor(_ o: Observation) -> Bool {
        if o.facts.contains("json_body") { return true }
        let type = o.response.value("content-type")?.lowercased() ?? ""
        let mediaType = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        let xml =
            mediaType == "application/xml" || mediaType == "text/xml"
            || (mediaType.hasSuffix("+xml") && mediaType != "application/xhtml+xml")
        if mediaType.contains("json") || xml || mediaType.hasPrefix("application/vnd.") { return true }
        if o.facts.contains("empty_body") || o.facts.contains("html_body") { return false }
        // A bare status phrase (`Forbidden`, `403 Forbidden`) is what any server writes, a front door as
        // much as an application: it is not an application's message.
        let body = o.response.body
        return PatternCache.shared.regex(Self.barePhrase).firstMatch(in: body, range: NSRange(body.startIndex..., in: body)) == nil
    }

    static let barePhrase =
        #"(?i)^\s*(\d{3}\s*)?(Forbidden|Unauthorized|Access Denied|Too Many Requests|Proxy Authentication Required)\.?\s*$"#

    /// Whether a signature is evidence of the request path alone (a documented path of the software, on
    /// its default port or with its documented parameters): no header or body of the response is in it.
    static func isPathEvidence(_ s: Signature) -> Bool {
        s.when.contains { $0.path != nil && $0.not != true }
            && s.when.allSatisfy { $0.path != nil || $0.url != nil || $0.status != nil || $0.fact != nil }
    }

    /// The evidence line for a front door the response passed through.
    static func servedThroughEvidence(_ door: SystemKnowledge, _ hits: [Hit], _ o: Observation) -> String {
        let marks = hits.map(\.evidence).prefix(2).joined(separator: "; ")
        return "served through \(door.name) (\(marks)): the denial is not \(door.name)'s own page, so the service behind it wrote it"
    }

    /// The vendor-neutral hit that makes a broad cause precise ("secondary rate limit" for a permission
    /// error, "credits used up" for a 429), unless stronger vendor-neutral evidence states the broad
    /// cause itself (a `WWW-Authenticate` error code). A bare status code states no cause: a 429 is
    /// a rate limit only until the words say the credits ran out.
    static func refinement(of broad: DenialCause?, genericHits: [Hit]) -> Hit? {
        guard let broad else { return nil }
        let support =
            genericHits.filter { h in h.signature.cause == broad && !h.signature.when.allSatisfy { $0.status != nil } }
            .map { $0.signature.strength ?? 0 }.max() ?? 0
        guard
            let precise = genericHits.filter({ $0.signature.refines?.contains(broad) == true })
                .max(by: { ($0.signature.strength ?? 0) < ($1.signature.strength ?? 0) }), (precise.signature.strength ?? 0) >= support
        else { return nil }
        return precise
    }

    func unknownSystem(
        _ o: Observation, genericHits: [Hit], bestGeneric: Hit?, candidates: [Candidate], frontDoors: [Candidate],
        passedThrough: [(system: SystemKnowledge, identity: Double, hits: [Hit])] = []
    )
        -> Diagnosis
    {
        let r = o.response
        // The same refinement as for a named system: precise wording wins over the broad reading.
        let bestGeneric = Self.refinement(of: bestGeneric?.signature.cause, genericHits: genericHits) ?? bestGeneric
        let cause = bestGeneric?.signature.cause ?? .unknown
        let strength = bestGeneric?.signature.strength ?? 0.2
        var evidence = ([bestGeneric].compactMap { $0 } + genericHits.filter { $0.signature.cause == cause }).map(\.evidence)
        if evidence.isEmpty { evidence = ["status \(r.status) with no vendor-specific or generic denial evidence"] }
        if !passedThrough.isEmpty {
            evidence.append("unknown service, served through \(passedThrough.map(\.system.name).joined(separator: " and "))")
            evidence += passedThrough.map { Self.servedThroughEvidence($0.system, $0.hits, o) }
        }
        evidence += Self.whatIsKnown(o, frontDoors: frontDoors)
        let confidence = Self.calibrated(strength * 0.85, systemNamed: false)
        var alternatives = genericHits.compactMap { h -> Alternative? in
            guard let c = h.signature.cause, c != cause, (h.signature.strength ?? 0) >= 0.5 else { return nil }
            return Alternative(deniedBy: "unknown", cause: c, confidence: (h.signature.strength ?? 0) * 0.7)
        }
        for c in candidates where c.rank > 0.1 {
            alternatives.append(
                Alternative(
                    deniedBy: c.system.system, cause: c.bestCause?.signature.cause ?? c.system.defaultCause ?? cause,
                    confidence: c.rank * 0.5))
        }
        return Diagnosis(
            deniedBy: "unknown", layer: "unknown", cause: cause, confidence: confidence, evidence: Self.unique(evidence),
            fix: bestGeneric?.signature.fix ?? Self.defaultFix(cause),
            alternatives: Self.tidy(alternatives, excluding: ("unknown", cause), below: confidence),
            servedThrough: passedThrough.map(\.system.system))
    }

    /// Maps the evidence score (identification × cause strength) to the probability that the cause is
    /// right. Two monotone curves, one for a named system and one for `unknown` (a named system's cause
    /// is right more often than its raw score says, an unknown system's less often), fitted by isotonic
    /// regression on all six corpora together, with the scores first pooled into 20 bins of equal count
    /// so that no knot rests on a handful of cases (`scripts/doctor-calibrate` refits them and reports
    /// ECE per corpus, in sample and with each corpus left out of the fit). Between knots the curve is
    /// linear; outside them it is flat. Monotone, so the ranking of readings is unchanged.
    /// `GATEHOUSE_DOCTOR_UNCALIBRATED=1` reports the raw score instead, for refitting.
    static func calibrated(_ score: Double, systemNamed: Bool) -> Double {
        let s = min(1, max(0, score))
        if Self.reportsRawScore { return s }
        let p = Self.interpolate(systemNamed ? Self.namedCurve : Self.unknownCurve, at: s)
        return min(0.97, max(0.05, (p * 100).rounded() / 100))
    }

    /// Whether `GATEHOUSE_DOCTOR_UNCALIBRATED=1` asks for the raw score (read once).
    static let reportsRawScore = ProcessInfo.processInfo.environment["GATEHOUSE_DOCTOR_UNCALIBRATED"] == "1"

    /// Knots (raw score, share of right causes) for a named system, ascending in both.
    static let namedCurve: [(score: Double, p: Double)] = [
        (0.276, 0.649), (0.358, 0.684), (0.411, 0.684), (0.464, 0.791), (0.704, 0.791), (0.742, 0.875), (0.762, 0.888),
        (0.813, 0.888), (0.835, 0.935), (0.884, 0.935), (0.905, 0.946), (0.934, 0.97),
    ]

    /// Knots (raw score, share of right causes) for `unknown`, ascending in both.
    static let unknownCurve: [(score: Double, p: Double)] = [
        (0.208, 0.314), (0.271, 0.314), (0.369, 0.343), (0.474, 0.629), (0.508, 0.641), (0.613, 0.641), (0.643, 0.838),
        (0.666, 0.868), (0.686, 0.868), (0.696, 0.912), (0.725, 0.941), (0.729, 0.941), (0.739, 0.963), (0.79, 0.963),
    ]

    /// The piecewise-linear curve through `knots` at `x`, flat beyond the first and last knot.
    static func interpolate(_ knots: [(score: Double, p: Double)], at x: Double) -> Double {
        guard let first = knots.first, let last = knots.last else { return x }
        if x <= first.score { return first.p }
        if x >= last.score { return last.p }
        let i = knots.firstIndex { $0.score >= x }!
        let (a, b) = (knots[i - 1], knots[i])
        return b.score == a.score ? b.p : a.p + (b.p - a.p) * (x - a.score) / (b.score - a.score)
    }

    /// What the generic evidence says about a system the knowledge base does not know: the server
    /// software, the host's domain, the shared front end it answered through, the layer the body suggests.
    static func whatIsKnown(_ o: Observation, frontDoors: [Candidate]) -> [String] {
        var out = ["system not in the knowledge base: no vendor-specific evidence identifies it"]
        if let host = o.host { out.append("host: \(host) (domain \(registrableDomain(host)))") }
        if let door = frontDoors.first, o.host != nil {
            out.append(
                "\(door.system.name)'s error format on a host that is not \(door.system.name)'s: a service using that format answered, and the knowledge base does not know it"
            )
        }
        if let server = o.response.value("server"), !server.isEmpty { out.append("server software: \(server) (Server header)") }
        if let powered = o.response.value("x-powered-by"), !powered.isEmpty { out.append("framework: \(powered) (X-Powered-By header)") }
        let layer: String? =
            o.facts.contains("json_body") || o.response.value("content-type")?.contains("json") == true
            ? "an application or API (JSON error body)"
            : o.facts.contains("html_body")
                ? "a web server, proxy or WAF page (HTML body)"
                : o.facts.contains("empty_body") ? "a proxy or server that sent no body" : nil
        if let layer { out.append("layer suggested by the body: \(layer)") }
        return out
    }

    /// The request host as the host-name rules read it. A placeholder a person wrote in place of the
    /// real host (`<minio-host>`, `$gitea_url`, `ARTIFACTORY_URL`, `{keycloak_url}`) loses its brackets
    /// and sigils, and an underscore reads as a hyphen, so the software it names is read as a host
    /// named after it would be (`minio-host`, `gitea-url`, `artifactory-url`).
    static func hostName(_ host: String) -> String {
        String(host.lowercased().filter { !"<>{}[]$".contains($0) }.map { $0 == "_" || $0 == " " ? "-" : $0 })
    }

    /// The last two labels of a host name (three under a two-letter country second level such as `co.uk`).
    static func registrableDomain(_ host: String) -> String {
        let labels = host.split(separator: ".")
        guard labels.count > 2 else { return host }
        if host.allSatisfy({ $0.isNumber || $0 == "." }) { return host }
        let keep = labels[labels.count - 2].count <= 3 && labels.last!.count == 2 ? 3 : 2
        return labels.suffix(keep).joined(separator: ".")
    }

    static func tidy(_ alts: [Alternative], excluding: (String, DenialCause), below: Double) -> [Alternative] {
        var seen = Set<String>()
        var out: [Alternative] = []
        for a in alts.sorted(by: { $0.confidence > $1.confidence }) {
            let key = "\(a.deniedBy)/\(a.cause.rawValue)"
            if (a.deniedBy == excluding.0 && a.cause == excluding.1) || !seen.insert(key).inserted { continue }
            out.append(Alternative(deniedBy: a.deniedBy, cause: a.cause, confidence: min(a.confidence, below * 0.95)))
        }
        return Array(out.prefix(4))
    }

    static func unique(_ list: [String]) -> [String] {
        var seen = Set<String>()
        return list.filter { seen.insert($0).inserted }
    }

    // MARK: Matching

    func matches(_ c: SignatureCondition, _ o: Observation) -> Bool {
        let r = o.response, json = o.json, facts = o.facts
        let result: Bool
        if let name = c.header {
            let values = r.values(name)
            if let p = c.value { result = values.contains { test(p, $0) } } else { result = !values.isEmpty }
        } else if let statuses = c.status {
            result = statuses.contains(r.status)
        } else if let p = c.body {
            // A reason phrase that is a sentence (`403 No valid crumb was included in the request`) is
            // the server's own text as much as the body is; a standard phrase is not.
            result = test(p, r.body) || (o.sentencePhrase.map { test(p, $0) } ?? false)
        } else if let path = c.json {
            let values = Self.jsonValues(json, path: path)
            if let p = c.value { result = values.contains { test(p, $0) } } else { result = !values.isEmpty }
        } else if let p = c.cookie {
            result = r.setCookies.contains { test(p, $0.name) }
        } else if let f = c.fact {
            result = facts.contains(f)
        } else if let p = c.host {
            result = o.host.map { test(p, $0) } ?? false
        } else if let p = c.url {
            result = o.url.map { test(p, $0) } ?? false
        } else if let p = c.path {
            result = o.path.map { test(p, $0) } ?? false
        } else if let p = c.link {
            result = o.linkedHosts.contains { test(p, $0) }
        } else if let groups = c.words {
            result = WordMatcher.matches(groups, within: c.within ?? 12, in: o.words)
        } else {
            result = false
        }
        return c.not == true ? !result : result
    }

    /// The path of a request URL: what follows the scheme and host, up to a query (`?`) or fragment (`#`).
    /// A URL written without a scheme (`host/path`) loses its first segment; one that is a path already
    /// (`/a/b`) is kept; a URL with no path has the empty path.
    public static func requestPath(_ url: String) -> String {
        var rest = Substring(url)
        if let cut = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) { rest = rest[..<cut] }
        if rest.hasPrefix("/") { return String(rest) }
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        guard let slash = rest.firstIndex(of: "/") else { return "" }
        return String(rest[slash...])
    }

    /// Whether the body cites a page (a link with a path: documentation, a console) on a site none of
    /// the system's `host` or `link` conditions claims. A bare origin (`Requests from referer
    /// https://app.example/ are blocked`) echoes the request rather than citing its writer; hosts of
    /// markup and schema namespaces (`www.w3.org`) and placeholders (`localhost`) name no vendor.
    func linksElsewhere(_ system: SystemKnowledge, _ o: Observation) -> Bool {
        guard !o.citedHosts.isEmpty else { return false }
        let own = system.signatures.flatMap { $0.when.compactMap { $0.not == true ? nil : ($0.host ?? $0.link) } }
        let noVendor = PatternCache.shared.regex(#"(^|\.)(w3\.org|xmlsoap\.org|json-schema\.org|localhost)$|^[0-9.]+$"#)
        return o.citedHosts.contains { h in
            noVendor.firstMatch(in: h, range: NSRange(h.startIndex..., in: h)) == nil && h.contains(".") && !own.contains { test($0, h) }
        }
    }

    func test(_ pattern: String, _ text: String) -> Bool {
        knowledge.regex(pattern).firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    static func parseJSON(_ r: ObservedResponse) -> Any? {
        let t = r.body.trimmingCharacters(in: .whitespacesAndNewlines)
        if t.hasPrefix("{") || t.hasPrefix("["),
            let strict = try? JSONSerialization.jsonObject(with: Data(t.utf8), options: [.fragmentsAllowed])
        {
            return strict
        }
        return LenientJSON.parse(t)
    }

    /// Hosts of the `http(s)://` URLs in a body, lowercased: the first 20 (trailing dots trimmed),
    /// and those of every URL with at least one path segment (a cited page), as written.
    static func links(_ body: String) -> (hosts: [String], cited: [String]) {
        guard body.contains("://") else { return ([], []) }
        let re = PatternCache.shared.regex(#"https?://([A-Za-z0-9.-]+)(/[A-Za-z0-9_~%-]+)?"#)
        let ns = body as NSString
        let matches = re.matches(in: body, range: NSRange(location: 0, length: ns.length))
        let hosts = matches.prefix(20).map {
            ns.substring(with: $0.range(at: 1)).lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        }
        let cited = matches.filter { $0.range(at: 2).location != NSNotFound }.map { ns.substring(with: $0.range(at: 1)).lowercased() }
        return (hosts, cited)
    }

    /// Leaf values at a dotted path; `name[]` walks every element of an array.
    static func jsonValues(_ root: Any?, path: String) -> [String] {
        var current: [Any] = root.map { [$0] } ?? []
        for part in path.split(separator: ".") {
            let walkArray = part.hasSuffix("[]")
            let key = walkArray ? String(part.dropLast(2)) : String(part)
            var next: [Any] = []
            for node in current {
                let value: Any?
                if key.isEmpty { value = node } else { value = (node as? [String: Any])?[key] }
                guard let v = value, !(v is NSNull) else { continue }
                if walkArray { next += (v as? [Any]) ?? [] } else { next.append(v) }
            }
            current = next
        }
        return current.map { v in
            if let s = v as? String { return s }
            if let n = v as? NSNumber {
                if String(cString: n.objCType) == "c" { return n.boolValue ? "true" : "false" }
                return n.doubleValue == n.doubleValue.rounded() ? String(n.intValue) : n.stringValue
            }
            if let b = v as? Bool { return b ? "true" : "false" }
            if let data = try? JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]) {
                return String(decoding: data, as: UTF8.self)
            }
            return "\(v)"
        }
    }

    /// Fills `{header:Name}`, `{json:path}` and `{scopes}` placeholders in evidence text.
    func render(_ template: String, _ r: ObservedResponse, json: Any?) -> String {
        guard template.contains("{") else { return template }
        var out = template
        let re = try! NSRegularExpression(pattern: #"\{(header|json):([^}]+)\}|\{scopes\}"#)
        let ns = template as NSString
        for m in re.matches(in: template, range: NSRange(location: 0, length: ns.length)).reversed() {
            let whole = ns.substring(with: m.range)
            var replacement = ""
            if whole == "{scopes}" {
                if let s = DerivedFacts.scopeMismatch(r) {
                    replacement =
                        "token has [\(s.granted.joined(separator: ", "))], endpoint accepts [\(s.accepted.joined(separator: ", "))]"
                }
            } else {
                let kind = ns.substring(with: m.range(at: 1)), arg = ns.substring(with: m.range(at: 2))
                replacement = (kind == "header" ? r.value(arg) : Self.jsonValues(json, path: arg).first) ?? ""
            }
            if replacement.count > 200 { replacement = String(replacement.prefix(200)) + "…" }
            out = (out as NSString).replacingCharacters(in: m.range, with: replacement)
        }
        return out
    }

    /// What to do when the knowledge file gives no cause-specific fix.
    public static func defaultFix(_ cause: DenialCause) -> [String] {
        switch cause {
        case .missingCredentials:
            [
                "Send the credentials the API expects (Authorization header, API key header or session cookie); the WWW-Authenticate header, if any, names the scheme."
            ]
        case .invalidCredentials:
            [
                "Check that the key or token is the current one for this environment and account, copied whole, and sent in the expected header.",
                "Create a new credential if it was revoked or rotated.",
            ]
        case .expiredCredentials:
            [
                "Obtain a fresh token (refresh it or log in again) and check the client's clock.",
                "Decode a JWT with `gatehouse doctor token` to see its `exp`.",
            ]
        case .insufficientScope: ["Request a token with the scope the endpoint needs (re-authorize or create a token with that scope)."]
        case .insufficientPermissions:
            ["Grant the caller the role or policy permission for this action, or call as an identity that has it."]
        case .explicitDeny:
            [
                "Find the deny statement or deny policy named in the error and exclude this caller or action from it; an allow elsewhere cannot override an explicit deny."
            ]
        case .ipNotAllowed:
            ["Add the client's public IP address (or its NAT/egress range) to the allow list, or call from an allowed network."]
        case .geoBlocked: ["Call from an allowed country, or ask the site owner to allow yours."]
        case .wafBlocked:
            [
                "Find the request id or incident id in the response in the WAF's event log to see the matched rule.",
                "Remove the part of the request that triggers the rule (`gatehouse doctor probe --bisect` finds it), or add a narrowly scoped exception for this path.",
            ]
        case .rateLimited:
            [
                "Wait until the limit resets (Retry-After or the reset header says when), then retry with backoff.",
                "Reduce the request rate or concurrency, or ask for a higher quota.",
            ]
        case .csrf:
            [
                "Send the CSRF token from the form or cookie with the request (hidden field or X-CSRF-Token/X-XSRF-TOKEN header) and keep the same session cookie."
            ]
        case .cors:
            [
                "Add the calling page's origin to the server's allowed origins and answer the OPTIONS preflight with the Access-Control-Allow-* headers."
            ]
        case .signatureMismatch:
            ["Check the secret key, the region and the clock, and sign exactly the request you send (same headers, query and body)."]
        case .expiredURL: ["Generate a new pre-signed or signed URL; choose a longer expiry if the link must live longer."]
        case .directoryListing:
            [
                "Add an index file (index.html) to the directory, or link to a file directly; enable directory listing only if it is meant to be public."
            ]
        case .filesystemPermission:
            [
                "Let the server's worker user traverse every parent directory (x bit) and read the file (r bit); `gatehouse doctor nginx|apache` prints the exact chmod."
            ]
        case .configDeny: ["Find the deny rule for this path in the server configuration and relax it, or use the path it allows."]
        case .accountSuspended: ["Check the account, subscription or billing status with the provider and resolve it."]
        case .resourceState:
            ["Change the resource's state first (enable the service, restore the object, unarchive the repository), then retry."]
        case .botChallenge:
            [
                "Open the URL in a browser to pass the challenge, or for automated clients use the provider's API with credentials instead of scraping the site."
            ]
        case .unknown:
            [
                "Compare with a request that works: `gatehouse doctor probe --bisect` finds the difference.",
                "Look up the response's request id in the server's logs.",
            ]
        }
    }
}

import GatehouseCore

/// A check with a fixed verdict, for tests of what runs checks (chains, the Gatekeeper): it
/// allows or denies as told, can answer the request itself (as a CORS preflight does) and can ask
/// for the body.
public struct StubCheck: PolicyCheck {
    public let id: String
    public let type: String
    public let verdict: Verdict
    public let answer: LocalAnswer?
    public let needsBody: Bool

    public init(id: String, type: String = "stub", verdict: Verdict, answer: LocalAnswer? = nil, needsBody: Bool = false) {
        self.id = id
        self.type = type
        self.verdict = verdict
        self.answer = answer
        self.needsBody = needsBody
    }

    /// Allows, with `note` in the trace.
    public static func allowing(_ id: String, note: String? = nil) -> StubCheck { StubCheck(id: id, verdict: .allow(note: note)) }

    /// Denies with `denial`.
    public static func denying(_ id: String, _ denial: Denial) -> StubCheck { StubCheck(id: id, verdict: .deny(denial)) }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        if let answer { request.localAnswer = answer }
        return verdict
    }
}

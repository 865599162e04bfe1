/// How much a denial tells the caller.
public enum Exposure: String, Sendable, Codable, CaseIterable {
    /// Title, detail, required, presented and hint.
    case detailed
    /// Reason code and request id only; the rest stays in the call log.
    case minimal
}

/// A rendered problem response: the one place denials become HTTP.
public struct RenderedProblem: Sendable {
    public var status: Int
    public var headers: [HeaderField]
    public var body: [UInt8]
}

/// Renders denials as RFC 9457 `application/problem+json`.
public struct ProblemRenderer: Sendable {
    /// Prefix for the problem `type` URI; the reason code is appended as a fragment.
    public var typeBase: String

    public init(typeBase: String = "docs/reasons.md#") { self.typeBase = typeBase }

    /// - Parameter revealOperatorDetail: also show the operator-only detail (a WAF excerpt); only
    ///   when the route explicitly asks for `detailed` exposure.
    public func render(
        _ denial: Denial, requestID: String, instance: String, exposure: Exposure, checkID: String?,
        revealOperatorDetail: Bool = false
    ) -> RenderedProblem {
        var w = JSONWriter()
        w.beginObject()
        w.field("type", typeBase + denial.code.rawValue)
        w.field("title", denial.title)
        w.field("status", denial.status)
        if exposure == .detailed {
            if revealOperatorDetail, let extra = denial.operatorDetail {
                w.field("detail", denial.detail + " (" + extra + ")")
            } else {
                w.field("detail", denial.detail)
            }
        }
        w.field("instance", instance)
        w.field("reason", denial.code.rawValue)
        if exposure == .detailed {
            if let checkID { w.field("check", checkID) }
            w.field("required", denial.required)
            w.field("presented", denial.presented)
            w.field("hint", denial.hint)
        }
        for key in denial.extensions.keys.sorted() { w.field(key, denial.extensions[key]!) }
        w.field("request_id", requestID)
        w.endObject()
        var headers = denial.headers
        headers.append(HeaderField("Content-Type", "application/problem+json"))
        return RenderedProblem(status: denial.status, headers: headers, body: w.bytes)
    }
}

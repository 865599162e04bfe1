/// Renders the reason catalogue as `docs/reasons.md` (kept in step by a test).
public enum ReasonsMarkdown {
    public static func render() -> String {
        var out = """
            # Reason codes

            Every 401, 403, 404, 405, 413, 415, 429, 431, 502, 503 and 504 that Gatehouse sends is an RFC 9457
            `application/problem+json` body whose `reason` is one of the codes below, and whose `type` is
            this page's anchor for it (`docs/reasons.md#<code>`; set `problem_type_base` in the
            configuration to point at where you publish this page). The same string appears in the call
            log, in `gatehouse logs --reason`, in `gatehouse explain`, and in metric labels.

            Generated from the reason catalogue (`Sources/GatehouseCore/ReasonCatalogue.swift`) by
            `gatehouse reasons --markdown`; a test fails when this file and the catalogue disagree.

            | code | status | title |
            |---|---|---|

            """
        for r in ReasonCatalogue.all {
            out += "| [`\(r.code)`](#\(r.code)) | \(r.status) | \(r.title) |\n"
        }
        for r in ReasonCatalogue.all {
            out += "\n## \(r.code)\n\n"
            out += "**Status \(r.status)** — \(r.title).\n\n"
            out += "\(r.meaning)\n\n"
            out += "Typical fix: \(r.fix)\n"
        }
        return out
    }
}

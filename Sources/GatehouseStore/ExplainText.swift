import Foundation
import GatehouseCore

/// The person-readable explanation of one call-log record: what `gatehouse explain` prints and
/// the console's request page shows (one renderer for both). Every line has its control
/// characters escaped (`DisplayText.escaped`): paths and user names come from requests.
public enum ExplainText {
    public static func render(_ r: CallRecord) -> String {
        var out: [String] = []
        let verdict: String
        if let reason = r.reason {
            verdict = r.status >= 500 ? "FAILED \(r.status) \(reason)" : "DENIED \(r.status) \(reason)"
        } else {
            verdict = "ALLOWED \(r.status)"
        }
        out.append("Request \(r.requestID): \(verdict)")
        out.append("  \(r.method) \(r.path)\(r.host.map { " (host \($0))" } ?? "")")
        out.append(
            "  at \(TimeText.iso(r.time)) from \(r.client ?? "unknown")\(r.consumer.map { ", consumer \($0)" } ?? "")\(r.keyID.map { ", key \($0)" } ?? "")"
        )
        out.append("  route: \(r.route ?? "none matched")\(r.upstreamTarget.map { ", upstream \($0)" } ?? "")")
        var timing = "  total \(fmt(r.totalMillis)) ms"
        if let u = r.upstreamMillis { timing += ", upstream \(fmt(u)) ms" }
        out.append(timing)
        if !r.trace.entries.isEmpty {
            out.append("")
            out += traceLines(r.trace)
        }
        if let reason = r.reason {
            out.append("")
            out += denialLines(
                reason: reason, status: r.status, decidingCheck: r.decidingCheck, detail: r.detail, required: r.required,
                presented: r.presented, hint: r.hint)
        } else {
            let shadows = r.trace.entries.filter { $0.outcome == .shadowDeny }
            if !shadows.isEmpty {
                out.append("")
                out.append(
                    "Allowed, but \(shadows.count) shadow check\(shadows.count == 1 ? "" : "s") would have denied it: \(shadows.map { "\($0.check) (\($0.reason?.rawValue ?? "?"))" }.joined(separator: ", "))."
                )
            }
        }
        return out.map(DisplayText.escaped).joined(separator: "\n")
    }

    /// "Checks, in order:" and one line (or two, with its note) per trace entry.
    /// `timings`: show each check's microseconds (a simulation measures none).
    public static func traceLines(_ trace: DecisionTrace, timings: Bool = true) -> [String] {
        var out = ["Checks, in order:"]
        for (i, e) in trace.entries.enumerated() {
            let mark: String
            switch e.outcome {
            case .allow: mark = "allow"
            case .deny: mark = "DENY"
            case .skip: mark = "skip"
            case .shadowDeny: mark = "shadow-deny"
            case .notReached: mark = "not reached"
            }
            var line = "  \(i + 1). \(e.check) [\(e.type)\(e.mode == .shadow ? ", shadow" : "")] \(mark)"
            if timings, e.outcome != .notReached { line += " (\(e.micros) µs)" }
            out.append(line)
            if !e.note.isEmpty { out.append("       \(e.note)") }
            if let reason = e.reason, e.outcome != .deny { out.append("       reason: \(reason)") }
        }
        return out
    }

    /// Who decided, the reason, what was required against what was presented, and the fix.
    public static func denialLines(
        reason: String, status: Int, decidingCheck: String?, detail: String?, required: [String], presented: [String], hint: String?
    ) -> [String] {
        var out: [String] = []
        out.append(decidingCheck.map { "Decided by: check \($0)" } ?? "Decided by: the gateway (\(status >= 500 ? "upstream" : "routing"))")
        out.append("Reason: \(reason)\(ReasonCatalogue.entry(ReasonCode(reason)).map { " — \($0.title)" } ?? "")")
        if let d = detail { out.append("Detail: \(d)") }
        if !required.isEmpty { out.append("Required: \(required.joined(separator: ", "))") }
        if !presented.isEmpty { out.append("Presented: \(presented.joined(separator: ", "))") }
        if let h = hint, !h.isEmpty { out.append("Fix (for the caller): \(h)") }
        if let entry = ReasonCatalogue.entry(ReasonCode(reason)) {
            out.append("About this reason: \(entry.meaning) See docs/reasons.md#\(reason).")
        }
        return out
    }

    /// "Audit entry 42: subscription revoked by alice@acme at 2026-12-07T14:02:00Z: 'contract ended'".
    public static func citation(_ id: Int64, _ entry: AuditEntry?) -> String {
        guard let entry else { return "Audit entry \(id): not found in this store." }
        let verbs = [
            "subscription.revoke": "subscription revoked", "subscription.reject": "subscription rejected",
            "subscription.cancel": "application cancelled", "subscription.expire": "subscription expired",
            "subscription.approve": "subscription approved", "subscription.apply": "subscription applied for",
        ]
        var text = "Audit entry \(id): \(verbs[entry.action] ?? entry.action) by \(entry.actor) at \(TimeText.iso(entry.time))"
        if let after = entry.after, let data = after.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        {
            if let opinion = object["opinion"] as? String, entry.action != "subscription.apply" && entry.action != "subscription.cancel" {
                text += ": '\(opinion)'"
            } else if let reason = object["reason"] as? String, entry.action == "subscription.cancel" {
                text += ": '\(reason)'"
            }
        }
        return text
    }

    public static func fmt(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        return String(r)
    }
}

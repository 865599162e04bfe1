import GatehouseCore
import GatehouseIdentity

/// `subscription`: the calling application needs an approved, unexpired subscription to the
/// route's service. Each other state is its own explained 403: `subscription_required` (none, or
/// cancelled), `subscription_pending`, `subscription_rejected`, `subscription_revoked`,
/// `subscription_expired`.
///
/// Runs after the authenticating check, which identifies the application; the decision is a lookup
/// in the in-memory snapshot (no store read per request). A denial that follows an admin's
/// decision carries that decision's audit entry for `gatehouse explain`.
public struct SubscriptionCheck: PolicyCheck {
    public let id: String
    public var type: String { "subscription" }
    /// The service the route belongs to.
    public let service: String
    public let directory: (any SubscriptionDirectory)?

    public init(id: String, service: String, directory: (any SubscriptionDirectory)?) {
        self.id = id
        self.service = service
        self.directory = directory
    }

    var howToApply: String {
        "Apply for a subscription to service \(service): POST /admin/v1/subscriptions {\"application\": …, \"service\": \"\(service)\", \"reason\": …}, or ask an operator of your tenant."
    }

    func approvers(_ svc: ServiceRecord) -> String {
        "an owner or admin" + (svc.tenant.map { ", or an operator or admin of tenant \($0)" } ?? "")
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        guard let principal = request.principal else {
            return .deny(
                Denial(
                    code: .missingCredentials,
                    detail:
                        "\(request.summary) needs an identified application for its subscription to service \(service); no check before this one identified the caller",
                    required: ["an application's credentials"],
                    hint: "Send the application's credentials (an API key, a password or a client certificate)."))
        }
        guard let directory, directory.isAvailable else {
            return .deny(
                Denial(
                    code: .checkUnavailable,
                    detail: "the subscription store could not be read, so the subscription to service \(service) cannot be verified",
                    hint: "Retry shortly."))
        }
        guard let svc = directory.service(named: service) else {
            return .deny(
                Denial(
                    code: .checkUnavailable,
                    detail: "service \(service) is not defined in the store, so no subscription to it can be verified",
                    hint: "Retry later; operators: create the service (POST /admin/v1/services or `gatehouse services create \(service)`).")
            )
        }
        var app = principal.consumerName ?? principal.subject ?? "unknown"
        // The application: the principal's consumer, or the one a JWT subject is mapped to.
        var appID: String?
        if let id = principal.consumerID {
            if directory.consumer(id: id) != nil {
                appID = id
            } else if let mapped = directory.application(identity: id), let record = directory.consumer(id: mapped) {
                // A token acting as an application is held to the application's status, like its
                // keys, password and certificates: a suspended application is stopped whatever the
                // caller presents.
                guard record.status == "active" else {
                    return .deny(
                        Denial(
                            code: .consumerSuspended,
                            detail:
                                "application \(record.name), which this token's issuer and subject act as, is \(record.status)",
                            required: ["an active application"], presented: ["application \(record.name) (\(record.status))"],
                            hint: "The application was suspended by an operator; ask its owners to reactivate it."))
                }
                appID = mapped
                app = record.name
            }
        }
        guard let appID else {
            return .deny(
                Denial(
                    code: .subscriptionRequired,
                    detail:
                        "service \(service) needs a subscription, which belongs to an application; the caller (\(app), authenticated by \(principal.method)) is not a registered application",
                    required: ["an application subscribed to service \(service)"], presented: ["subject \(app)"],
                    hint:
                        "Call with the credentials of a registered application subscribed to service \(service) (an API key, a password or a client certificate), or ask an operator to map this token's issuer and subject to one."
                ))
        }
        let presented = ["application \(app)"]
        guard let sub = directory.subscription(application: appID, service: service) else {
            return .deny(
                Denial(
                    code: .subscriptionRequired, detail: "application \(app) has no subscription to service \(service)",
                    required: ["an approved subscription to service \(service)"], presented: presented, hint: howToApply))
        }
        let who = sub.actor ?? "an admin"
        let opinion = sub.opinion.map { ": '\($0)'" } ?? ""
        switch sub.effectiveState(at: request.now) {
        case "approved":
            var note = "subscription \(sub.id) of \(app) to \(service) approved"
            if let e = sub.expiresAt { note += " until \(TimeText.iso(e))" }
            return .allow(note: note)
        case "pending":
            return .deny(
                Denial(
                    code: .subscriptionPending,
                    detail:
                        "application \(app) applied for service \(service) at \(TimeText.iso(sub.appliedAt)) (\(TimeText.duration(request.now - sub.appliedAt)) ago); the application awaits approval by \(approvers(svc))",
                    required: ["an approved subscription to service \(service)"], presented: presented + ["subscription \(sub.id) pending"],
                    hint: "Wait for the approval, or ask \(approvers(svc)) to approve subscription \(sub.id)."))
        case "rejected":
            return .deny(
                Denial(
                    code: .subscriptionRejected,
                    detail:
                        "application \(app)'s subscription to service \(service) was rejected by \(who) at \(TimeText.iso(sub.changedAt))\(opinion)",
                    required: ["an approved subscription to service \(service)"],
                    presented: presented + ["subscription \(sub.id) rejected"],
                    hint: "Address the opinion and apply again. " + howToApply, auditEntry: sub.auditEntry))
        case "revoked":
            return .deny(
                Denial(
                    code: .subscriptionRevoked,
                    detail:
                        "application \(app)'s subscription to service \(service) was revoked by \(who) at \(TimeText.iso(sub.changedAt))\(opinion)",
                    required: ["an approved subscription to service \(service)"], presented: presented + ["subscription \(sub.id) revoked"],
                    hint: "Contact the owners of service \(service)\(svc.tenant.map { " (tenant \($0))" } ?? ""), then apply again.",
                    auditEntry: sub.auditEntry))
        case "expired":
            let at = sub.expiresAt ?? sub.changedAt
            return .deny(
                Denial(
                    code: .subscriptionExpired,
                    detail:
                        "application \(app)'s subscription to service \(service) expired at \(TimeText.iso(at)) (\(TimeText.duration(max(0, request.now - at))) ago)",
                    required: ["an unexpired subscription to service \(service)"],
                    presented: presented + ["subscription \(sub.id) expired"],
                    hint: "Apply again for a renewed subscription. " + howToApply, auditEntry: sub.auditEntry))
        default:
            // cancelled: the applicant withdrew; as if there were none.
            return .deny(
                Denial(
                    code: .subscriptionRequired,
                    detail:
                        "application \(app)'s application for service \(service) was cancelled by \(who) at \(TimeText.iso(sub.changedAt))",
                    required: ["an approved subscription to service \(service)"],
                    presented: presented + ["subscription \(sub.id) cancelled"],
                    hint: howToApply, auditEntry: sub.auditEntry))
        }
    }
}

import GatehouseCore

/// `ip`: allow and deny lists of CIDR blocks against the resolved client address.
/// Deny wins over allow; an empty allow list allows every address not denied.
public struct IPCheck: PolicyCheck {
    public let id: String
    public var type: String { "ip" }
    public let allow: [CIDRBlock]
    public let deny: [CIDRBlock]
    /// The allow list's blocks as text, made once (the allow note names the block that matched).
    let allowText: [String]

    public init(id: String, allow: [CIDRBlock], deny: [CIDRBlock] = []) {
        self.id = id
        self.allow = allow
        self.deny = deny
        self.allowText = allow.map(\.description)
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        guard let addr = request.clientAddress else {
            return .deny(
                Denial(
                    code: .ipNotAllowed, detail: "the client address is unknown, so it cannot be in allow list \(id)",
                    required: allow.map(\.description), presented: []))
        }
        if let hit = deny.first(where: { $0.contains(addr) }) {
            return .deny(
                Denial(
                    code: .ipDenied, detail: "\(addr) is in deny list \(id) (\(hit))",
                    required: ["not in " + deny.map(\.description).joined(separator: ", ")], presented: [addr.description]))
        }
        if allow.isEmpty { return .allow(note: "\(addr) not in deny list \(id)") }
        if let hit = allow.firstIndex(where: { $0.contains(addr) }) {
            var note = addr.description
            note.reserveCapacity(note.utf8.count + allowText[hit].utf8.count + id.utf8.count + 20)
            note += " in "; note += allowText[hit]; note += " (allow list "; note += id; note += ")"
            return .allow(note: note)
        }
        return .deny(
            Denial(
                code: .ipNotAllowed,
                detail: "\(addr) is not in allow list \(id) (\(allow.map(\.description).joined(separator: ", ")))",
                required: allow.map(\.description), presented: [addr.description]))
    }
}

import GatehouseCore

/// Removes a check's credential from what goes upstream (see `PolicyCheck.credentialFields`).
enum CredentialStripping {
    /// `query` without the parameters named in `names` (lowercased). Parameters are split on `&`
    /// and `;` and their names compared percent-decoded and case-insensitively, as the upstreams
    /// that might read them do. Returns nil when nothing is left.
    static func query(_ query: String, removing names: Set<String>) -> String? {
        guard !names.isEmpty else { return query }
        var kept: [Substring] = []
        var removed = false
        for part in query.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "&" || $0 == ";" }) {
            let rawName = part.firstIndex(of: "=").map { part[..<$0] } ?? part
            let name = PercentDecoding.decode(rawName, plusAsSpace: true).lowercased()
            if names.contains(name) {
                removed = true
                continue
            }
            kept.append(part)
        }
        guard removed else { return query }
        let joined = kept.filter { !$0.isEmpty }.joined(separator: "&")
        return joined.isEmpty ? nil : joined
    }
}

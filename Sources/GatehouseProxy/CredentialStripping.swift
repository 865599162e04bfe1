import GatehouseCore
import GatehouseHTTP1

/// Removes a check's credential from what goes upstream (see `PolicyCheck.credentialFields`).
enum CredentialStripping {
    /// `query` without the parameters named in `names` (lowercased). Parameters are split on `&`
    /// and `;` and their names compared percent-decoded and case-insensitively, as the upstreams
    /// that might read them do. Everything else is kept byte for byte, separators included, so the
    /// upstream reads the same parameters the checks did. Returns nil when nothing is left.
    static func query(_ query: String, removing names: Set<String>) -> String? {
        guard !names.isEmpty else { return query }
        let u = Array(query.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(u.count)
        var removed = false
        var start = 0
        // Each part with the separator that precedes it (none for the first).
        while start <= u.count {
            var end = start
            while end < u.count, u[end] != UInt8(ascii: "&"), u[end] != UInt8(ascii: ";") { end += 1 }
            let part = u[start..<end]
            let nameEnd = part.firstIndex(of: UInt8(ascii: "=")) ?? end
            let name = PercentDecoding.decode(String(decoding: u[start..<nameEnd], as: UTF8.self), plusAsSpace: true).lowercased()
            if names.contains(name) {
                removed = true
            } else if !part.isEmpty {
                if !out.isEmpty, start > 0 { out.append(u[start - 1]) }
                out.append(contentsOf: part)
            }
            if end >= u.count { break }
            start = end + 1
        }
        guard removed else { return query }
        return out.isEmpty ? nil : String(decoding: out, as: UTF8.self)
    }
}

import Foundation
import GatehouseTestSupport

/// A raw HTTP/1.1 response as the attacker's socket read it.
struct RawReply {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: String

    init(_ text: String) {
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        body = parts.dropFirst().joined(separator: "\r\n\r\n")
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.isEmpty ? "" : lines.removeFirst()
        status = statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        headers = lines.compactMap { l in
            guard let c = l.firstIndex(of: ":") else { return nil }
            return (String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces))
        }
    }

    func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    var reason: String? {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else { return nil }
        return obj["reason"] as? String
    }
}

/// Sends raw bytes to the gateway and parses the first response.
func attack(_ gw: GatewayProcess, _ bytes: String) throws -> RawReply {
    RawReply(try rawExchange(port: gw.port, bytes))
}

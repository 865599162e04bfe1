import GatehouseCore
import GatehouseIdentity

/// `api_key`: authenticates the caller by an API key from a header or a query parameter.
public struct APIKeyCheck: PolicyCheck {
    public let id: String
    public var type: String { "api_key" }
    public let header: String?
    public let queryParameter: String?
    public let directory: any CredentialDirectory
    public var secretQueryParameters: [String] { queryParameter.map { [$0] } ?? [] }
    /// Whether the key is forwarded to the upstream (`forward_key: true`); by default it is removed.
    public let forwardKey: Bool
    public var credentialFields: CredentialFields {
        forwardKey
            ? CredentialFields()
            : CredentialFields(
                headers: Set(header.map { [$0.lowercased()] } ?? []), queryParameters: Set(queryParameter.map { [$0.lowercased()] } ?? []))
    }

    public init(
        id: String, header: String? = "X-API-Key", queryParameter: String? = nil, forwardKey: Bool = false,
        directory: any CredentialDirectory
    ) {
        self.forwardKey = forwardKey
        self.id = id
        self.header = header
        self.queryParameter = queryParameter
        self.directory = directory
    }

    var whereToSend: String {
        [header.map { "header \($0)" }, queryParameter.map { "query parameter \($0)" }].compactMap { $0 }.joined(separator: " or ")
    }

    var challenge: HeaderField {
        var params = "realm=\"gatehouse\""
        if let header { params += ", header=\"\(header)\"" }
        if let queryParameter { params += ", query=\"\(queryParameter)\"" }
        return HeaderField("WWW-Authenticate", "APIKey " + params)
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        var presentedKey: String?
        if let header, let v = request.headers[header], !v.isEmpty {
            // Field values arrive trimmed from the HTTP parser; trim only what still has spaces.
            presentedKey =
                v.utf8.first == 0x20 || v.utf8.last == 0x20 || v.utf8.first == 0x09 || v.utf8.last == 0x09 ? String(v.trimmingSpaces) : v
        }
        if presentedKey == nil, let queryParameter, let v = request.queryValue(queryParameter), !v.isEmpty { presentedKey = v }
        guard let key = presentedKey else {
            return .deny(
                Denial(
                    code: .missingCredentials, detail: "\(request.summary) requires an API key in \(whereToSend); none was sent",
                    required: ["API key in \(whereToSend)"], presented: [], headers: [challenge]))
        }
        let keyID: String
        switch APIKeyFormat.parse(key) {
        case .failure(let why):
            return .deny(
                Denial(
                    code: .malformedCredentials, detail: "the API key is malformed: \(why)",
                    required: ["a \(APIKeyFormat.length)-character key starting \(APIKeyFormat.prefix)"],
                    presented: ["\(key.utf8.count)-character value"], headers: [challenge]))
        case .success(let id): keyID = id
        }
        guard directory.isAvailable else {
            return .deny(
                Denial(
                    code: .checkUnavailable, detail: "the credential store could not be read, so key \(keyID) cannot be verified",
                    presented: ["key id \(keyID)"], hint: "Retry shortly."))
        }
        guard let record = directory.key(id: keyID), APIKeyFormat.hashMatches(key, record.hash) else {
            return .deny(
                Denial(
                    code: .invalidCredentials, detail: "API key \(keyID) is not a known key",
                    required: ["a key issued by this gateway"], presented: ["key id \(keyID)"],
                    headers: [HeaderField("WWW-Authenticate", challenge.value + ", error=\"invalid_key\"")]))
        }
        if let revoked = record.revokedAt, revoked <= request.now {
            return .deny(
                Denial(
                    code: .revokedCredentials, detail: "API key \(keyID) was revoked at \(TimeText.iso(revoked))",
                    presented: ["key id \(keyID)"],
                    headers: [HeaderField("WWW-Authenticate", challenge.value + ", error=\"invalid_key\"")]))
        }
        if let expires = record.expiresAt, expires <= request.now {
            return .deny(
                Denial(
                    code: .expiredCredentials,
                    detail: "API key \(keyID) expired \(TimeText.iso(expires)), \(TimeText.duration(request.now - expires)) ago",
                    required: ["an unexpired key"], presented: ["key id \(keyID)", "expired \(TimeText.iso(expires))"],
                    headers: [HeaderField("WWW-Authenticate", challenge.value + ", error=\"invalid_key\"")]))
        }
        guard let consumer = directory.consumer(id: record.consumerID) else {
            return .deny(
                Denial(
                    code: .invalidCredentials, detail: "API key \(keyID) belongs to no existing consumer",
                    presented: ["key id \(keyID)"]))
        }
        if consumer.status != "active" {
            return .deny(
                Denial(
                    code: .consumerSuspended, detail: "consumer \(consumer.name) (key \(keyID)) is \(consumer.status)",
                    required: ["an active consumer"], presented: ["consumer \(consumer.name)", "key id \(keyID)"]))
        }
        var principal = Principal(
            method: "api_key", consumerID: consumer.id, consumerName: consumer.name, keyID: keyID,
            subject: consumer.name, scopes: consumer.scopes, roles: consumer.roles, tenant: consumer.tenant)
        if let existing = request.principal {
            var merged = existing
            merged.merge(principal)
            principal = merged
        }
        request.principal = principal
        var note = "key "
        note.reserveCapacity(keyID.utf8.count + consumer.name.utf8.count + 17)
        note += keyID; note += " of consumer "; note += consumer.name
        return .allow(note: note)
    }
}

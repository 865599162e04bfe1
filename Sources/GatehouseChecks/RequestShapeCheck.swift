import GatehouseCore

/// `request`: allowed methods (405), body content types (415), body and header size limits (413, 431).
public struct RequestShapeCheck: PolicyCheck {
    public let id: String
    public var type: String { "request" }
    /// Uppercased; empty means any.
    public let methods: [String]
    /// Lowercased media types (`application/json`, or `text/*`); empty means any.
    public let contentTypes: [String]
    public let maxBodyBytes: Int?
    public let maxHeaderBytes: Int?

    public init(id: String, methods: [String] = [], contentTypes: [String] = [], maxBodyBytes: Int? = nil, maxHeaderBytes: Int? = nil) {
        self.id = id
        self.methods = methods.map { $0.uppercased() }
        self.contentTypes = contentTypes.map { $0.lowercased() }
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes
    }

    public func evaluate(_ request: inout PolicyRequest) -> Verdict {
        if !methods.isEmpty, !methods.contains(request.method) {
            let allowHeader = methods.joined(separator: ", ")
            return .deny(
                Denial(
                    code: .methodNotAllowed, detail: "\(request.method) is not allowed on \(request.path); allowed: \(allowHeader)",
                    required: methods, presented: [request.method], headers: [HeaderField("Allow", allowHeader)]))
        }
        if let maxHeaderBytes, request.headers.byteSize > maxHeaderBytes {
            return .deny(
                Denial(
                    code: .headersTooLarge,
                    detail: "the request headers are \(request.headers.byteSize) bytes; the limit is \(maxHeaderBytes)",
                    required: ["headers <= \(maxHeaderBytes) bytes"], presented: ["\(request.headers.byteSize) bytes"]))
        }
        let length = request.contentLength ?? request.body?.count
        if let maxBodyBytes, let length, length > maxBodyBytes {
            return .deny(
                Denial(
                    code: .bodyTooLarge, detail: "the request body is \(length) bytes; the limit is \(maxBodyBytes)",
                    required: ["body <= \(maxBodyBytes) bytes"], presented: ["\(length) bytes"]))
        }
        if let maxBodyBytes, length == nil, request.streamedBodyLimit.map({ $0.bytes > maxBodyBytes }) ?? true {
            // A streamed (chunked) body: the data plane counts its bytes as they arrive.
            request.streamedBodyLimit = StreamedBodyLimit(bytes: maxBodyBytes, check: id)
        }
        let hasBody = (length ?? 0) > 0 || request.headers.contains("transfer-encoding")
        if !contentTypes.isEmpty, hasBody {
            let raw = request.headers["content-type"] ?? ""
            let media = raw.split(separator: ";", maxSplits: 1).first.map { String($0.trimmingSpaces).lowercased() } ?? ""
            let ok = contentTypes.contains { allowed in
                allowed == media || (allowed.hasSuffix("/*") && media.hasPrefix(allowed.dropLast()))
            }
            if !ok {
                return .deny(
                    Denial(
                        code: .unsupportedMediaType,
                        detail: media.isEmpty
                            ? "the request has a body but no Content-Type; expected \(contentTypes.joined(separator: " or "))"
                            : "Content-Type \(media) is not accepted; expected \(contentTypes.joined(separator: " or "))",
                        required: contentTypes, presented: media.isEmpty ? [] : [media]))
            }
        }
        // What was compared, built in one string (this runs on every request the route takes).
        var note = ""
        note.reserveCapacity(96)
        if !methods.isEmpty { note += "method "; note += request.method; note += " allowed" }
        if let maxBodyBytes {
            if !note.isEmpty { note += "; " }
            note += "body "; note += length.map(String.init) ?? "streamed"; note += " <= "; note += String(maxBodyBytes)
        }
        if maxHeaderBytes != nil {
            if !note.isEmpty { note += "; " }
            note += "headers "; note += String(request.headers.byteSize); note += " bytes within limit"
        }
        return .allow(note: note.isEmpty ? "no constraints" : note)
    }
}

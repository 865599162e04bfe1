import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The console's stylesheet and script, served from memory at `/console/static/NAME-HASH.EXT`
/// (and, for the portal's pages, at `/portal/static/NAME-HASH.EXT`): the name carries the first 12 hex digits of the content's SHA-256, so an asset can be cached
/// for a year (`immutable`) and a new build's pages name new files. The `ETag` is the same hash.
public struct StaticAsset: Sendable {
    /// `console-HASH.css`: the file name under either interface's `static/`.
    public let file: String
    /// The console's path, `/console/static/console-HASH.css`.
    public let path: String
    public let contentType: String
    public let bytes: [UInt8]
    public let etag: String

    init(name: String, ext: String, contentType: String, text: String) {
        bytes = Array(text.utf8)
        let hash = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        etag = "\"" + hash.prefix(32) + "\""
        file = "\(name)-\(hash.prefix(12)).\(ext)"
        path = "/console/static/" + file
        self.contentType = contentType
    }

    /// The asset, or 304 when the browser already has it.
    func response(_ request: Request) -> Response {
        var headers: HTTPFields = [
            .contentType: contentType, .cacheControl: "public, max-age=31536000, immutable", .eTag: etag,
        ]
        if request.headers[.ifNoneMatch] == etag {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// The assets the layout links.
public enum StaticAssets {
    public static let css = StaticAsset(name: "console", ext: "css", contentType: "text/css; charset=utf-8", text: ConsoleCSS.text)
    public static let js = StaticAsset(name: "console", ext: "js", contentType: "text/javascript; charset=utf-8", text: ConsoleJS.text)
    public static let all = [css, js]
}

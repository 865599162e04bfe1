import GatehouseCore
import NIOCore
import Testing

@testable import GatehouseHTTP1
@testable import GatehouseProxy

/// One Content-Type; a Connection header that nominates no field the checks read (S23).
@Suite struct RequestFieldRulesTests {
    func request(_ fields: String) throws -> RequestHead {
        let bytes = Array("POST /x HTTP/1.1\r\nHost: a\r\n\(fields)Content-Length: 0\r\n\r\n".utf8)
        return try bytes.withUnsafeBytes { p in
            guard let len = HTTP1Parse.headLength(p) else { throw HTTP1Error.malformed("incomplete") }
            return try HTTP1Parse.request(p, length: len)
        }
    }

    func refusal(_ fields: String) -> String? {
        do {
            _ = try request(fields)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func oneContentTypeHoldingOneMediaType() throws {
        #expect(refusal("Content-Type: application/json\r\nCONTENT-TYPE: text/plain\r\n")?.contains("more than one Content-Type") == true)
        #expect(refusal("Content-Type: application/json,text/plain\r\n")?.contains("list of media types") == true)
        #expect(refusal("Content-Type: application/json; a=\"x\\\"\", b=c\r\n")?.contains("list of media types") == true)
        #expect(refusal("Content-Type: multipart/form-data; boundary=\"a,b\"\r\n") == nil)
        #expect(refusal("Content-Type: application/json;charset=utf-16\r\n") == nil)
        // Other fields may repeat as before.
        #expect(refusal("Accept: a\r\nAccept: b\r\nContent-Typo: x\r\nContent-Typo: y\r\n") == nil)
    }

    @Test func connectionMayNotNominateAProtectedField() throws {
        for name in [
            "Content-Type", "authorization", "Cookie", "Host", "Content-Length", "Transfer-Encoding", "X-API-Key",
            "X-Forwarded-For", "Origin", "Proxy-Authorization",
        ] {
            #expect(refusal("Connection: keep-alive, \(name)\r\n")?.contains("nominates \(name.lowercased())") == true, "\(name)")
        }
    }

    @Test func otherNominatedFieldsAreGoneBeforeTheChecks() throws {
        let h = try request(
            "X-Partner-Key: k\r\nX-Keep: 1\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings, x-partner-key\r\n"
        )
        #expect(h.first("x-partner-key") == nil)
        #expect(h.first("http2-settings") == nil)
        #expect(h.first("x-keep") == "1")
        #expect(h.first("upgrade") == "h2c")
        #expect(h.connectionNames == ["upgrade", "http2-settings", "x-partner-key"])
    }
}

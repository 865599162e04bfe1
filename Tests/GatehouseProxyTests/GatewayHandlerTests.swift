import Foundation
import GatehouseConfig
import GatehouseCore
import GatehouseIdentity
import GatehouseStore
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import GatehouseProxy

/// The connection handler in an `EmbeddedChannel`: bytes in, bytes out, records in the call log;
/// no sockets, no child process.
@Suite struct GatewayHandlerTests {
    struct NoCredentials: CredentialDirectory {
        func key(id: String) -> KeyRecord? { nil }
        func consumer(id: String) -> ConsumerRecord? { nil }
        var isAvailable: Bool { true }
    }

    static let yaml = """
        upstreams:
          app: { targets: ["http://127.0.0.1:9"] }
        routes:
          - name: office
            match: { path: "/office/{rest*}" }
            upstream: app
            policies: [office-ip]
        policies:
          office-ip: { type: ip, allow: [10.0.0.0/8] }
        """

    let channel = EmbeddedChannel()
    let store: SQLiteStore
    let callLog: CallLogWriter
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "gatehouse-handler-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        store = try SQLiteStore(path: directory + "/store.db")
        callLog = CallLogWriter(store: store)
        let config = try ConfigLoader.parse(
            yaml: Self.yaml, file: "t.yaml", context: BuildContext(directory: NoCredentials(), baseDirectory: directory))
        let services = GatewayServices(
            runtime: RuntimeState(config: config, generation: 1), callLog: callLog, logger: Logger(label: "test"))
        let peer = try SocketAddress(ipAddress: "127.0.0.1", port: 40000)
        channel.remoteAddress = peer
        try channel.pipeline.syncOperations.addHandler(GatewayHandler(services: services))
        try channel.connect(to: peer).wait()
    }

    /// Everything the handler wrote, as text.
    func written() throws -> String {
        var out = ""
        while let buf = try channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: buf) }
        return out
    }

    func send(_ text: String) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    /// The call-log records, once the writer has written them.
    func records() async throws -> [CallRecord] {
        await callLog.closeAndWait()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try store.calls(CallFilter()).map(\.record)
    }

    static func field(_ name: String, in response: Substring) -> String? {
        for line in response.split(separator: "\r\n") where line.lowercased().hasPrefix(name.lowercased() + ":") {
            return line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    @Test func aDenialIsAnsweredExplainedAndLoggedAndTheConnectionStaysOpen() async throws {
        try send("GET /office/report HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
        let out = try written()
        #expect(out.hasPrefix("HTTP/1.1 403 "))
        #expect(out.contains("ip_not_allowed"))
        let id = Self.field("X-Request-Id", in: Substring(out))
        #expect(id != nil)
        #expect(Self.field("Connection", in: Substring(out)) == nil)
        #expect(channel.isActive)
        let records = try await records()
        #expect(records.count == 1)
        #expect(records.first?.requestID == id)
        #expect(records.first?.reason == "ip_not_allowed")
        #expect(records.first?.status == 403)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try send(
            "GET /office/a HTTP/1.1\r\nHost: x\r\n\r\nGET /nowhere HTTP/1.1\r\nHost: x\r\n\r\nGET /office/c HTTP/1.1\r\nHost: x\r\n\r\n")
        let out = try written()
        let statuses = out.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
        #expect(statuses == ["403", "404", "403"])
        let records = try await records()
        #expect(records.map(\.status).sorted() == [403, 403, 404])
    }

    @Test func aDeniedRequestsBodyIsDrainedAndTheNextRequestServed() async throws {
        try send("POST /office/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
        #expect(try written().hasPrefix("HTTP/1.1 403 "))
        // The rest of the body, then the next request on the same connection.
        try send("worldGET /office/next HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try written().hasPrefix("HTTP/1.1 403 "))
        #expect(channel.isActive)
        #expect(try await records().count == 2)
    }

    @Test func bytesThatAreNotHTTPGetA400AndTheConnectionCloses() async throws {
        try send("GET /office/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n")
        let out = try written()
        #expect(out.hasPrefix("HTTP/1.1 400 "))
        #expect(out.contains("bad_request"))
        #expect(Self.field("Connection", in: Substring(out))?.lowercased() == "close")
        #expect(!channel.isActive)
        let records = try await records()
        #expect(records.first?.reason == "bad_request")
    }
}

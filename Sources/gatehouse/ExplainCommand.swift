import GatehouseChecks
import ArgumentParser
import Foundation
import GatehouseCore
import GatehouseStore

struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain why a request was allowed or denied, from its call-log record.",
        discussion: "The request id is in every response's X-Request-Id header and in the problem body's request_id."
    )

    @Argument(
        help: "The request id. Without a ~N suffix, records of its repeats (ID~2, ID~3, …) are shown too; --json then prints an array.")
    var requestID: String

    @OptionGroup var storeOptions: StoreOptions

    @Flag(help: "Print the record as JSON.")
    var json = false

    func run() throws {
        let store = try storeOptions.callLog()
        // A request id a trusted proxy repeated is stored as ID~2, ID~3, …: all are shown, oldest first.
        let records = try store.calls(requestID: requestID)
        guard let record = records.first else {
            printError(
                "no call-log record with request id \(requestID) in \(store.logLocation). Records are written within a second of the response; they are kept for the configured retention."
            )
            throw ExitCode(1)
        }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = records.count == 1 ? try enc.encode(record) : try enc.encode(records)
            print(TerminalSafe.json(String(decoding: data, as: UTF8.self)))
            return
        }
        if records.count > 1 {
            print(
                TerminalSafe.line(
                    "\(records.count) records for request id \(requestID): a trusted proxy sent it more than once; each repeat is stored as \(requestID)~N."
                ) + "\n")
        }
        print(
            records.map { r in
                var text = ExplainText.render(r)
                if let id = r.auditEntry {
                    let entry = try? store.auditEntry(id: id)
                    text += "\n" + TerminalSafe.line(ExplainText.citation(id, entry))
                }
                return text
            }.joined(separator: "\n\n"))
    }
}

/// What `explain` and `logs` print comes partly from requests (paths, user names, token kids): no
/// control character reaches the terminal raw.
enum TerminalSafe {
    /// One line of text output: every control character (newline included) escaped as `\u{XX}`,
    /// so a value can neither drive the terminal nor start a line of its own.
    static func line(_ text: String) -> String { DisplayText.escaped(text) }

    /// JSON output: JSONEncoder already escapes C0; DEL, C1 and the bidi and line-separator
    /// characters (which can only occur inside strings) are written as `\uXXXX` too.
    static func json(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { DisplayText.isControl($0.value) }) else { return text }
        var out = String.UnicodeScalarView()
        for u in text.unicodeScalars {
            if DisplayText.isControl(u.value), u.value >= 0x20 {
                let hex = String(u.value, radix: 16)
                out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
            } else {
                out.append(u)
            }
        }
        return String(out)
    }
}

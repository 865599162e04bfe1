import GatehouseChecks
import ArgumentParser
import Foundation
import GatehouseCore
import GatehousePostgres
import GatehouseStore

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "List call-log records, filtered; --follow to keep printing new ones."
    )

    @Option(help: "Only this status, e.g. 403.") var status: Int?
    @Option(help: "Only this reason code, e.g. insufficient_scope.") var reason: String?
    @Option(help: "Only this route.") var route: String?
    @Option(help: "Only this consumer.") var consumer: String?
    @Option(help: "Only records newer than this, e.g. 15m, 1h, 2d.") var since: String?
    @Option(help: "At most this many records (the newest).") var limit: Int = 50
    @Flag(help: "Keep printing new records as they are written.") var follow = false
    @Flag(help: "One JSON object per line.") var json = false
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        var sinceTime: Double?
        if let since {
            guard let d = TimeText.parseDuration(since) else {
                throw ValidationError("--since \"\(since)\" is not a duration (e.g. 15m, 1h, 2d)")
            }
            sinceTime = Date().timeIntervalSince1970 - d
        }
        let store = try storeOptions.callLog()
        var filter = CallFilter(status: status, reason: reason, route: route, consumer: consumer, since: sinceTime, limit: limit)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var printed = 0
        // A cluster's call log takes its ids when each node's delivery commits, and deliveries
        // from several nodes commit out of id order: following re-reads, oldest first and page by
        // page, from a little before the newest id printed, and skips what it printed already.
        let lookBack: Int64 = store is PGStore ? 20_000 : 0
        var seen = Set<Int64>()
        var newest: Int64 = 0
        while true {
            var rows = try store.calls(filter)
            while true {
                for (row, r) in rows {
                    if lookBack > 0 {
                        guard seen.insert(row).inserted else { continue }
                        if seen.count > 200_000 { seen = seen.filter { $0 > newest - lookBack } }
                    } else {
                        filter.afterRow = row
                    }
                    newest = max(newest, row)
                    if json {
                        print(TerminalSafe.json(String(decoding: try enc.encode(r), as: UTF8.self)))
                    } else {
                        print(line(r))
                    }
                    printed += 1
                }
                // The next page of a cluster's re-read, until it comes back short.
                guard lookBack > 0, filter.afterRow != nil, rows.count >= filter.limit, let last = rows.last?.row else { break }
                var next = filter
                next.afterRow = last
                rows = try store.calls(next)
            }
            if !follow { break }
            fflush(nil)
            filter.limit = 1000
            if lookBack > 0 { filter.afterRow = max(0, newest - lookBack) }
            Thread.sleep(forTimeInterval: 0.5)
        }
        if printed == 0 && !json { printError("no matching records") }
    }

    func line(_ r: CallRecord) -> String {
        var s = "\(TimeText.iso(r.time))  \(r.requestID)  \(r.status)  \(r.method) \(r.path)"
        s += "  route=\(r.route ?? "-")"
        if let c = r.consumer { s += "  consumer=\(c)" }
        if let reason = r.reason { s += "  reason=\(reason)" }
        if let check = r.decidingCheck { s += "  check=\(check)" }
        s += "  \(ExplainText.fmt(r.totalMillis))ms"
        return TerminalSafe.line(s)
    }
}

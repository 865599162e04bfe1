import Foundation
import GatehouseCore

/// How the `calls.trace` column holds a `DecisionTrace`: a JSON array with one short-keyed object
/// per check, e.g.
///
///     [{"c":"office-ip","t":"ip","o":"allow","n":"127.0.0.1 in 127.0.0.0/8 (allow list office-ip)","u":1},
///      {"c":"api-key","t":"api_key","m":"shadow","o":"shadow_deny","n":"…","r":"key_unknown","u":2}]
///
/// Keys: c check, t type, m mode (absent for `enforce`), o outcome, n note (absent when empty),
/// r reason (absent when none), u micros (absent when 0). The trace is most of a record's bytes,
/// and the call log's cost on disk (and in page writes) grows with them; this form is about a
/// third smaller than the `Codable` shape. Records written before it (`{"entries":[…]}`, the
/// `Codable` shape) are still read.
enum StoredTrace {
    static func maximumBytes(_ trace: borrowing DecisionTrace) -> Int {
        trace.entries.withUnsafeBufferPointer { entries in
            var n = 2
            for i in entries.indices {
                n +=
                    6
                    * (entries[i].check.utf8.count + entries[i].type.utf8.count + entries[i].note.utf8.count
                        + (entries[i].reason?.rawValue.utf8.count ?? 0)) + 96
            }
            return n
        }
    }

    /// Appends the trace in the stored form. `inout` only to read the entries without copying
    /// them: each is moved out of the array and back in (read in place it would be copied, a
    /// retain and release of each of its strings); the trace is the same afterwards. When the
    /// entries' storage is shared, `withUnsafeMutableBufferPointer` copies it first.
    static func write(_ trace: inout DecisionTrace, to out: inout RowBuffer) {
        out.append(UInt8(ascii: "["))
        trace.entries.withUnsafeMutableBufferPointer { entries in
            for i in entries.indices {
                out.append(i == 0 ? #"{"c":"# : #",{"c":"#)
                let slot = entries.baseAddress! + i
                let e = slot.move()
                write(e, to: &out)
                slot.initialize(to: consume e)
            }
        }
        out.append(UInt8(ascii: "]"))
    }

    private static func write(_ e: borrowing TraceEntry, to out: inout RowBuffer) {
        out.appendQuoted(e.check)
        out.append(#","t":"#)
        out.appendQuoted(e.type)
        if e.mode != .enforce {
            out.append(#","m":"#)
            out.appendQuoted(e.mode.rawValue)
        }
        out.append(#","o":"#)
        out.appendQuoted(e.outcome.rawValue)
        if !e.note.isEmpty {
            out.append(#","n":"#)
            out.appendQuoted(e.note)
        }
        if let r = e.reason {
            out.append(#","r":"#)
            out.appendQuoted(r.rawValue)
        }
        if e.micros != 0 {
            out.append(#","u":"#)
            out.appendDecimal(e.micros)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// The trace as stored (either form); nil when the text is not a trace.
    static func read(_ text: String, decoder: JSONDecoder) -> DecisionTrace? {
        let data = Data(text.utf8)
        if text.utf8.first == UInt8(ascii: "[") {
            guard let entries = try? decoder.decode([Entry].self, from: data) else { return nil }
            return DecisionTrace(
                entries: entries.map {
                    TraceEntry(
                        check: $0.c, type: $0.t, mode: $0.m ?? .enforce, outcome: $0.o, note: $0.n ?? "", reason: $0.r, micros: $0.u ?? 0)
                })
        }
        return try? decoder.decode(DecisionTrace.self, from: data)
    }

    private struct Entry: Decodable {
        var c: String
        var t: String
        var m: CheckMode?
        var o: TraceEntry.Outcome
        var n: String?
        var r: ReasonCode?
        var u: Int?
    }
}

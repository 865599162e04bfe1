// Hand-written Aho-Corasick automaton for @pm / @pmFromFile. None of the listed packages has a
// multi-pattern matcher (swift-algorithms searches one pattern at a time), and @pm lists run to a
// few thousand phrases (scanner user agents, PHP function names) matched against every argument,
// so one pass over the input per value is what keeps them affordable. ASCII case-insensitive, as
// ModSecurity's @pm is.

/// A case-insensitive set of phrases, found anywhere in an input in one pass.
package final class PhraseMatcher: Sendable {
    /// Byte → column of the transition table. Bytes that occur in no phrase share column 0, so
    /// a state takes as many entries as the phrases have distinct (lowercased) bytes, plus one.
    private let column: [UInt8]
    private let width: Int
    /// Dense transition table, `width` entries per state (goto and failure links folded in).
    private let next: [Int32]
    /// For each state, the length of the longest phrase ending there (0: none).
    private let output: [Int32]
    package let phraseCount: Int

    package init(_ phrases: [[UInt8]]) {
        var column = [UInt8](repeating: 0, count: 256)
        var width = 1
        for phrase in phrases {
            for c in phrase where column[Int(PhraseMatcher.lower(c))] == 0 {
                // More than 255 distinct bytes cannot occur: lowercase leaves at most 230.
                column[Int(PhraseMatcher.lower(c))] = UInt8(width)
                width += 1
            }
        }
        for c in 0..<256 { column[c] = column[Int(PhraseMatcher.lower(UInt8(c)))] }
        var goto: [[Int32]] = [[Int32](repeating: -1, count: width)]
        var out: [Int32] = [0]
        var count = 0
        for phrase in phrases where !phrase.isEmpty {
            count += 1
            var s = 0
            for c in phrase {
                let k = Int(column[Int(c)])
                if goto[s][k] < 0 {
                    goto.append([Int32](repeating: -1, count: width))
                    out.append(0)
                    goto[s][k] = Int32(goto.count - 1)
                }
                s = Int(goto[s][k])
            }
            out[s] = max(out[s], Int32(phrase.count))
        }
        // Breadth-first: failure links, then fold them into a complete transition table.
        var fail = [Int32](repeating: 0, count: goto.count)
        var queue: [Int] = []
        for k in 0..<width {
            if goto[0][k] < 0 {
                goto[0][k] = 0
            } else {
                fail[Int(goto[0][k])] = 0
                queue.append(Int(goto[0][k]))
            }
        }
        var head = 0
        while head < queue.count {
            let s = queue[head]
            head += 1
            if out[s] == 0 { out[s] = out[Int(fail[s])] }
            for k in 0..<width {
                let t = goto[s][k]
                if t < 0 {
                    goto[s][k] = goto[Int(fail[s])][k]
                } else {
                    fail[Int(t)] = goto[Int(fail[s])][k]
                    queue.append(Int(t))
                }
            }
        }
        // Column 0 (bytes in no phrase) always leads back to the root.
        self.column = column
        self.width = width
        next = goto.flatMap { $0 }
        output = out
        phraseCount = count
    }

    @inline(__always) static func lower(_ c: UInt8) -> UInt8 { c &- 0x41 < 26 ? c | 0x20 : c }

    /// The first phrase found in `input` (its bytes as they appear there), or nil.
    package func firstMatch(in input: [UInt8]) -> [UInt8]? {
        var s = 0
        for (i, c) in input.enumerated() {
            s = Int(next[s &* width &+ Int(column[Int(c)])])
            let n = Int(output[s])
            if n > 0 { return Array(input[(i + 1 - n)...i]) }
        }
        return nil
    }
}

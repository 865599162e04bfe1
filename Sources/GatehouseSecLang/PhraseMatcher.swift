// Hand-written Aho-Corasick automaton for @pm / @pmFromFile. None of the listed packages has a
// multi-pattern matcher (swift-algorithms searches one pattern at a time), and @pm lists run to a
// few thousand phrases (scanner user agents, PHP function names) matched against every argument,
// so one pass over the input per value is what keeps them affordable. ASCII case-insensitive, as
// ModSecurity's @pm is.

/// A case-insensitive set of phrases, found anywhere in an input in one pass.
package final class PhraseMatcher: Sendable {
    /// Dense transition table: 256 entries per state (goto and failure links folded in at build).
    private let next: [Int32]
    /// For each state, the length of the longest phrase ending there (0: none).
    private let output: [Int32]
    package let phraseCount: Int

    package init(_ phrases: [[UInt8]]) {
        var goto: [[Int32]] = [[Int32](repeating: -1, count: 256)]
        var out: [Int32] = [0]
        var count = 0
        for phrase in phrases where !phrase.isEmpty {
            count += 1
            var s = 0
            for c in phrase {
                let c = Int(PhraseMatcher.lower(c))
                if goto[s][c] < 0 {
                    goto.append([Int32](repeating: -1, count: 256))
                    out.append(0)
                    goto[s][c] = Int32(goto.count - 1)
                }
                s = Int(goto[s][c])
            }
            out[s] = max(out[s], Int32(phrase.count))
        }
        // Breadth-first: failure links, then fold them into a complete transition table.
        var fail = [Int32](repeating: 0, count: goto.count)
        var queue: [Int] = []
        for c in 0..<256 {
            if goto[0][c] < 0 {
                goto[0][c] = 0
            } else {
                fail[Int(goto[0][c])] = 0
                queue.append(Int(goto[0][c]))
            }
        }
        var head = 0
        while head < queue.count {
            let s = queue[head]
            head += 1
            if out[s] == 0 { out[s] = out[Int(fail[s])] }
            for c in 0..<256 {
                let t = goto[s][c]
                if t < 0 {
                    goto[s][c] = goto[Int(fail[s])][c]
                } else {
                    fail[Int(t)] = goto[Int(fail[s])][c]
                    queue.append(Int(t))
                }
            }
        }
        next = goto.flatMap { $0 }
        output = out
        phraseCount = count
    }

    @inline(__always) static func lower(_ c: UInt8) -> UInt8 { c &- 0x41 < 26 ? c | 0x20 : c }

    /// The first phrase found in `input` (its bytes as they appear there), or nil.
    package func firstMatch(in input: [UInt8]) -> [UInt8]? {
        var s = 0
        for (i, c) in input.enumerated() {
            s = Int(next[s &* 256 &+ Int(PhraseMatcher.lower(c))])
            let n = Int(output[s])
            if n > 0 { return Array(input[(i + 1 - n)...i]) }
        }
        return nil
    }
}

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
        let table = AhoCorasickTable(phrases)
        column = table.column
        width = table.width
        next = table.next
        output = table.outputs.map { ends in Int32(ends.map { phrases[Int($0)].count }.max() ?? 0) }
        phraseCount = phrases.filter { !$0.isEmpty }.count
    }

    @inline(__always) static func lower(_ c: UInt8) -> UInt8 { c &- 0x41 < 26 ? c | 0x20 : c }

    /// The first phrase found in `input` (its bytes as they appear there), or nil.
    package func firstMatch(in input: [UInt8]) -> [UInt8]? {
        let width = width
        let found: ClosedRange<Int>? = input.withUnsafeBufferPointer { input in
            next.withUnsafeBufferPointer { next in
                column.withUnsafeBufferPointer { column in
                    output.withUnsafeBufferPointer { output in
                        var s = 0
                        for i in 0..<input.count {
                            s = Int(next[s &* width &+ Int(column[Int(input[i])])])
                            let n = Int(output[s])
                            if n > 0 { return (i + 1 - n)...i }
                        }
                        return nil
                    }
                }
            }
        }
        return found.map { Array(input[$0]) }
    }
}

/// A case-insensitive (ASCII) Aho-Corasick automaton over byte strings: a dense transition table
/// with the failure links folded in, and for each state the strings (by index) that end there,
/// those of its failure chain included. Empty strings are left out.
struct AhoCorasickTable {
    /// Byte → column of the table. Bytes that occur in no string share column 0, so a state
    /// takes as many entries as the strings have distinct (lowercased) bytes, plus one.
    let column: [UInt8]
    let width: Int
    /// `width` entries per state.
    let next: [Int32]
    let outputs: [[Int32]]

    init(_ strings: [[UInt8]]) {
        var column = [UInt8](repeating: 0, count: 256)
        var width = 1
        for s in strings {
            for c in s where column[Int(PhraseMatcher.lower(c))] == 0 {
                // More than 255 distinct bytes cannot occur: lowercase leaves at most 230.
                column[Int(PhraseMatcher.lower(c))] = UInt8(width)
                width += 1
            }
        }
        for c in 0..<256 { column[c] = column[Int(PhraseMatcher.lower(UInt8(c)))] }
        var goto: [[Int32]] = [[Int32](repeating: -1, count: width)]
        var out: [[Int32]] = [[]]
        for (n, string) in strings.enumerated() where !string.isEmpty {
            var state = 0
            for c in string {
                let k = Int(column[Int(c)])
                if goto[state][k] < 0 {
                    goto.append([Int32](repeating: -1, count: width))
                    out.append([])
                    goto[state][k] = Int32(goto.count - 1)
                }
                state = Int(goto[state][k])
            }
            out[state].append(Int32(n))
        }
        // Breadth-first: failure links, then fold them into a complete transition table.
        var fail = [Int32](repeating: 0, count: goto.count)
        var queue: [Int] = []
        for k in 0..<width {
            if goto[0][k] < 0 {
                goto[0][k] = 0
            } else {
                queue.append(Int(goto[0][k]))
            }
        }
        var head = 0
        while head < queue.count {
            let state = queue[head]
            head += 1
            out[state] += out[Int(fail[state])]
            for k in 0..<width {
                let t = goto[state][k]
                if t < 0 {
                    goto[state][k] = goto[Int(fail[state])][k]
                } else {
                    fail[Int(t)] = goto[Int(fail[state])][k]
                    queue.append(Int(t))
                }
            }
        }
        self.column = column
        self.width = width
        next = goto.flatMap { $0 }
        outputs = out
    }
}

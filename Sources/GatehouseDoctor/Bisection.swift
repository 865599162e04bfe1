// Delta debugging is written by hand: no listed library provides it.

/// Delta debugging (Zeller's ddmin) over a list of items: finds a 1-minimal subset for which
/// `test` still holds. Written here because none of the project's libraries provides it.
public struct DeltaDebugger<Item: Sendable>: Sendable {
    /// How many tests may run before giving up (each test is one HTTP request in the probe).
    public var budget: Int

    public init(budget: Int) { self.budget = budget }

    /// The outcome: the minimal subset found and whether the search finished within budget.
    public struct Outcome: Sendable {
        public var minimal: [Item]
        public var tests: Int
        public var conclusive: Bool
    }

    /// `test(subset)` returns true when the subset still shows the behaviour (e.g. "gets a 403").
    public func minimize(_ items: [Item], test: ([Item]) async -> Bool) async -> Outcome {
        var cache: [[Int]: Bool] = [:]
        var tests = 0
        var current = Array(items.indices)
        func check(_ idx: [Int]) async -> Bool? {
            if let hit = cache[idx] { return hit }
            guard tests < budget else { return nil }
            tests += 1
            let r = await test(idx.map { items[$0] })
            cache[idx] = r
            return r
        }
        var n = 2
        while current.count >= 2 {
            let chunks = Self.split(current, into: n)
            var reduced = false
            for chunk in chunks {
                guard let r = await check(chunk) else {
                    return Outcome(minimal: current.map { items[$0] }, tests: tests, conclusive: false)
                }
                if r { current = chunk; n = 2; reduced = true; break }
            }
            if !reduced, n > 2 {
                for chunk in chunks {
                    let complement = current.filter { !chunk.contains($0) }
                    guard let r = await check(complement) else {
                        return Outcome(minimal: current.map { items[$0] }, tests: tests, conclusive: false)
                    }
                    if r { current = complement; n = max(n - 1, 2); reduced = true; break }
                }
            }
            if !reduced {
                if n >= current.count { break }
                n = min(current.count, n * 2)
            }
        }
        return Outcome(minimal: current.map { items[$0] }, tests: tests, conclusive: true)
    }

    static func split(_ list: [Int], into n: Int) -> [[Int]] {
        var out: [[Int]] = []
        var start = 0
        for i in 0..<n {
            let size = (list.count - start) / (n - i)
            guard size > 0 else { continue }
            out.append(Array(list[start..<(start + size)]))
            start += size
        }
        return out
    }
}

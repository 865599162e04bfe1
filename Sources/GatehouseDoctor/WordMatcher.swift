import Foundation

/// The words of a response body, for wording rules that survive rephrasing: markup, scripts and
/// URLs are dropped, `camelCase` is split, everything is lowercased. A `snake_case` code stays one
/// word (`invalid_request_error` is a code, not the word "invalid"; codes are matched as JSON values).
public struct BodyWords: Sendable {
    public let words: [String]

    public init(_ body: String, isHTML: Bool) {
        var text = body
        if isHTML {
            for pattern in [#"(?is)<script\b.*?</script>"#, #"(?is)<style\b.*?</style>"#, #"(?s)<[^>]*>"#] {
                text = text.replacingOccurrences(of: pattern, with: " ", options: .regularExpression)
            }
            text = text.replacingOccurrences(of: "&#39;", with: "'").replacingOccurrences(of: "&nbsp;", with: " ")
        }
        text = text.replacingOccurrences(of: #"(?i)\b(https?|ftp)://\S+"#, with: " ", options: .regularExpression)
        // Cap the work on very large pages: wording that explains a denial sits near the top.
        if text.utf8.count > 200_000 { text = String(text.prefix(200_000)) }
        var words: [String] = []
        var current = ""
        var previousLower = false
        var previousUpper = false
        let chars = Array(text)
        for (i, ch) in chars.enumerated() {
            if ch.isLetter || ch.isNumber || ch == "_" {
                // `tokenExpired` → token, expired; after an acronym, `JWSInvalidSignature` → jws,
                // invalid, signature (a word of two lowercase letters or more follows: `APIs` stays one).
                let acronymEnds =
                    ch.isUppercase && previousUpper && i + 2 < chars.count && chars[i + 1].isLowercase && chars[i + 2].isLowercase
                if ch.isUppercase, previousLower || acronymEnds, !current.isEmpty {
                    words.append(current)
                    current = ""
                }
                previousUpper = ch.isUppercase
                current.append(contentsOf: ch.lowercased())
                previousLower = ch.isLowercase || ch.isNumber || ch == "_"
            } else {
                if !current.isEmpty { words.append(current) }
                current = ""
                // An apostrophe inside a word (`don't`) keeps the pieces apart: `don`, `t`.
                previousLower = false
                previousUpper = false
            }
        }
        if !current.isEmpty { words.append(current) }
        self.words = words
        var index: [String: [Int]] = [:]
        for (i, w) in words.enumerated() { index[w, default: []].append(i) }
        self.index = index
        self.distinct = index.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Positions of each distinct word, in order, and the distinct words in byte order: a word pattern
    /// is looked up (an inflection) or found by binary search (a prefix) instead of compared with every
    /// word, so matching costs what the matches cost, not the length of the text times the patterns.
    let index: [String: [Int]]
    let distinct: [String]

    /// Positions of the words `pattern` matches (itself or an inflection; any word it begins, for `pattern*`), unsorted.
    func positions(of pattern: String) -> [Int] {
        guard pattern.hasSuffix("*") else {
            return ([pattern] + WordMatcher.suffixes.map { pattern + $0 }).flatMap { index[$0] ?? [] }
        }
        let prefix = Array(pattern.dropLast().utf8)
        var lo = 0
        var hi = distinct.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if distinct[mid].utf8.lexicographicallyPrecedes(prefix) { lo = mid + 1 } else { hi = mid }
        }
        var out: [Int] = []
        while lo < distinct.count, distinct[lo].utf8.starts(with: prefix) {
            out += index[distinct[lo]] ?? []
            lo += 1
        }
        return out
    }
}

/// Matches `words` conditions: every group must have an alternative in the text, all within a window.
/// The work is linear in the text (tokenised once) plus the matches: each alternative's first word is
/// looked up in the text's index, and the window is checked by binary search over sorted positions.
public enum WordMatcher {
    /// The alternatives of one group, each as its words: `"rate limit|throttl*"` → [[rate, limit], [throttl*]].
    static func alternatives(_ group: String) -> [[String]] {
        group.lowercased().split(separator: "|").map { alt in
            alt.split(whereSeparator: { $0 == " " || $0 == "-" || $0 == "_" }).map(String.init)
        }.filter { !$0.isEmpty }
    }

    static let suffixes = ["s", "es", "d", "ed", "ing", "n"]

    /// True when `word` is `pattern` or one of its inflections (or begins with it, for `pattern*`).
    static func wordMatches(_ word: String, _ pattern: String) -> Bool {
        if pattern.hasSuffix("*") { return word.hasPrefix(pattern.dropLast()) }
        if word == pattern { return true }
        guard word.hasPrefix(pattern), word.count <= pattern.count + 3 else { return false }
        return suffixes.contains(String(word.dropFirst(pattern.count)))
    }

    /// Sorted positions in `text` where one of a group's alternatives begins; with `negation`, an
    /// alternative it negates does not count where a negator stands just before it (`not blocked`).
    static func positions(_ group: [[String]], in text: BodyWords, negation: WordNegation? = nil) -> [Int] {
        var found = Set<Int>()
        for alt in group {
            guard let head = alt.first else { continue }
            let negatable = negation?.negates(alt) ?? false
            for i in text.positions(of: head) where i + alt.count <= text.words.count && !found.contains(i) {
                guard alt.indices.dropFirst().allSatisfy({ wordMatches(text.words[i + $0], alt[$0]) }) else { continue }
                if negatable, let negation, negation.negated(at: i, in: text) { continue }
                found.insert(i)
            }
        }
        return found.sorted()
    }

    /// True when every group occurs within `window` words of an occurrence of the first group.
    public static func matches(_ groups: [String], within window: Int, in text: BodyWords) -> Bool {
        matches(groups, within: window, in: text, negation: nil)
    }

    /// `matches`, where an alternative `negation` negates does not count after a negator.
    static func matches(_ groups: [String], within window: Int, in text: BodyWords, negation: WordNegation?) -> Bool {
        var found: [[Int]] = []
        for g in groups {
            let ps = positions(alternatives(g), in: text, negation: negation)
            if ps.isEmpty { return false }
            found.append(ps)
        }
        guard let anchors = found.first else { return false }
        return anchors.contains { a in
            found.dropFirst().allSatisfy { ps in
                // The first position at or after a − window (ps is sorted), then whether it is within a + window.
                var lo = 0
                var hi = ps.count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if ps[mid] < a - window { lo = mid + 1 } else { hi = mid }
                }
                return lo < ps.count && ps[lo] <= a + window
            }
        }
    }
}

/// Words that cancel a denial's wording: a negator just before a word it negates (`not blocked`,
/// `no longer banned`, `wasn't denied`), and release wording (`unbanned`, `removed from the
/// blocklist`, `access granted`) that says a block ended or did not happen. Data: `negation` in
/// LogKnowledge/generic.json.
public struct WordNegation: Codable, Sendable {
    /// Words or phrases that negate what follows: `not`, `no longer`, `never`, `t` (of `wasn't`).
    public var negators: [String] { didSet { negatorWords = Self.split(negators) } }
    /// How many words before a negated word a negator may end.
    public var within: Int
    /// Word patterns a negator cancels when an alternative begins with them (`block*`, `den*`, `banned`).
    public var negates: [String]
    /// Release wording: a message that says this (without a negator before it) records no block by its words.
    public var release: [String] { didSet { releaseWords = Self.split(release) } }
    public var source: String
    /// Each negator and each release phrase as its words, split once when the lists are set (or
    /// decoded), not on every look-up: `negated(at:in:)` runs for every match of a negatable word.
    public private(set) var negatorWords: [[String]]
    public private(set) var releaseWords: [[String]]

    enum CodingKeys: String, CodingKey { case negators, within, negates, release, source }

    public init(negators: [String], within: Int, negates: [String], release: [String], source: String) {
        self.negators = negators
        self.within = within
        self.negates = negates
        self.release = release
        self.source = source
        negatorWords = Self.split(negators)
        releaseWords = Self.split(release)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            negators: try c.decode([String].self, forKey: .negators), within: try c.decode(Int.self, forKey: .within),
            negates: try c.decode([String].self, forKey: .negates), release: try c.decode([String].self, forKey: .release),
            source: try c.decode(String.self, forKey: .source))
    }

    /// Phrases as their words, as `WordMatcher.alternatives` splits a group (empty phrases dropped).
    static func split(_ phrases: [String]) -> [[String]] { phrases.flatMap(WordMatcher.alternatives) }

    func negates(_ alternative: [String]) -> Bool {
        guard let head = alternative.first else { return false }
        return negates.contains { WordMatcher.wordMatches(head.hasSuffix("*") ? String(head.dropLast()) : head, $0) }
    }

    /// True when a negator ends within `within` words before position `i`.
    func negated(at i: Int, in text: BodyWords) -> Bool {
        for parts in negatorWords {
            for end in max(0, i - within)..<i where end + 1 >= parts.count {
                let start = end + 1 - parts.count
                if parts.indices.allSatisfy({ text.words[start + $0] == parts[$0] }) { return true }
            }
        }
        return false
    }

    /// True when the text says a block was released or did not happen (no negator before the release).
    func releases(_ text: BodyWords) -> Bool {
        WordMatcher.positions(releaseWords, in: text).contains { !negated(at: $0, in: text) }
    }
}

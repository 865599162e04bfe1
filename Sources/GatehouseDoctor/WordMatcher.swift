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
    }
}

/// Matches `words` conditions: every group must have an alternative in the text, all within a window.
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

    /// Positions in `words` where one of a group's alternatives begins.
    static func positions(_ group: [[String]], in words: [String]) -> [Int] {
        var out: [Int] = []
        guard !words.isEmpty else { return out }
        for i in 0..<words.count {
            for alt in group where i + alt.count <= words.count {
                if alt.indices.allSatisfy({ wordMatches(words[i + $0], alt[$0]) }) {
                    out.append(i)
                    break
                }
            }
        }
        return out
    }

    /// True when every group occurs within `window` words of an occurrence of the first group.
    public static func matches(_ groups: [String], within window: Int, in text: BodyWords) -> Bool {
        let found = groups.map { positions(alternatives($0), in: text.words) }
        guard let anchors = found.first, !found.contains(where: \.isEmpty) else { return false }
        return anchors.contains { a in
            found.dropFirst().allSatisfy { ps in ps.contains { abs($0 - a) <= window } }
        }
    }
}

import Foundation
import GatehouseCore

/// A scoped exclusion for a false positive of the Core Rule Set, proposed from a logged block
/// (`gatehouse waf exclude`): for each rule that fired, its removal from the one variable it
/// matched, on the one path the request went to: the narrowest change that lets that request
/// through, written as ModSecurity users write it (a `ctl:ruleRemoveTargetById` rule in phase 1).
public struct ExclusionProposal: Sendable, Equatable {
    /// One rule that fired on one variable, as the log names them.
    public struct Finding: Sendable, Equatable {
        public let ruleID: Int
        /// `ARGS:comment`, `REQUEST_COOKIES:session`, `REQUEST_FILENAME`.
        public let variable: String
        public init(ruleID: Int, variable: String) {
            self.ruleID = ruleID
            self.variable = variable
        }
    }

    /// The SecLang text to add to a file the policy's `crs.include` lists.
    public let text: String
    /// What could not be scoped as asked, and was scoped more widely or left out.
    public let warnings: [String]

    /// The operator detail of a CRS block, as the call log keeps it: `942100 "ARGS:id" matched
    /// "…"` items joined with ` | ` (strings JSON-quoted, so a variable name cannot pose as the
    /// separator). Records written before the names were quoted (`942100 ARGS:id matched "…"`)
    /// are read too, when the name has no space.
    public static func findings(inLogDetail detail: String) -> [Finding] {
        var out: [Finding] = []
        let bytes = Array(detail.utf8)
        var i = 0
        func digits(at start: Int) -> (Int, Int)? {
            var j = start
            var value = 0
            while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39, j - start < 9 {
                value = value * 10 + Int(bytes[j] - 0x30)
                j += 1
            }
            return j > start ? (value, j) : nil
        }
        /// A JSON string starting at `start` (a quote): its value and the index after it.
        func quoted(at start: Int) -> (String, Int)? {
            guard start < bytes.count, bytes[start] == UInt8(ascii: "\"") else { return nil }
            var j = start + 1
            while j < bytes.count, bytes[j] != UInt8(ascii: "\"") { j += bytes[j] == UInt8(ascii: "\\") ? 2 : 1 }
            guard j < bytes.count, let s = try? JSONDecoder().decode(String.self, from: Data(bytes[start...j])) else { return nil }
            return (s, j + 1)
        }
        let matched = Array(" matched ".utf8)
        while i < bytes.count {
            // An item starts at the beginning or after "(" or " | ", with a rule id and a space.
            let atItem = i == 0 || bytes[i - 1] == UInt8(ascii: "(") || (i >= 3 && Array(bytes[(i - 3)..<i]) == Array(" | ".utf8))
            if atItem, let (id, afterID) = digits(at: i), afterID < bytes.count, bytes[afterID] == 0x20 {
                var variable: String?
                var next = afterID + 1
                if let (v, after) = quoted(at: next) {
                    variable = v
                    next = after
                } else {
                    var j = next
                    while j < bytes.count, bytes[j] != 0x20 { j += 1 }
                    variable = String(decoding: bytes[next..<j], as: UTF8.self)
                    next = j
                }
                if let variable, next + matched.count <= bytes.count, Array(bytes[next..<(next + matched.count)]) == matched,
                    let (_, after) = quoted(at: next + matched.count)
                {
                    let f = Finding(ruleID: id, variable: variable)
                    if !out.contains(f) { out.append(f) }
                    i = after
                    continue
                }
            }
            i += 1
        }
        return out
    }

    /// Bytes a variable's key or a path may hold to be written into a rule as they are.
    static func isPlain(_ s: Substring, extra: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { c in PatternLiterals.isAlphanumeric(c) || extra.utf8.contains(c) }
    }

    /// Text from the request (names, the path) made safe for a `#` comment line: only printable
    /// ASCII, no backslash (a line continuation), anything else as `?`.
    static func commentSafe(_ s: String) -> String {
        String(decoding: s.utf8.map { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }

    /// The exclusion for `findings` on requests to `path` (the logged path: percent-encoded,
    /// without its query), rule ids from `firstID`.
    public static func propose(
        findings: [Finding], path: String, method: String, requestID: String, firstID: Int
    ) -> ExclusionProposal {
        var warnings: [String] = []
        var controls: [String] = []
        for f in findings {
            let parts = f.variable.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let collection = parts[0]
            guard isPlain(collection, extra: "_") else {
                warnings.append("rule \(f.ruleID): variable \(f.variable) is not a plain collection name; left out")
                continue
            }
            if parts.count == 2 {
                if isPlain(parts[1], extra: "_.-[]") {
                    controls.append("ctl:ruleRemoveTargetById=\(f.ruleID);\(collection):\(parts[1])")
                } else {
                    // A key with characters a target cannot carry as written: the rule is removed
                    // from the whole collection on this path, never from a wider guess at the key.
                    warnings.append(
                        "rule \(f.ruleID): the key of \(f.variable) has characters a rule target cannot name; the proposal removes the rule from all of \(collection) on this path"
                    )
                    controls.append("ctl:ruleRemoveTargetById=\(f.ruleID);\(collection)")
                }
            } else {
                // REQUEST_FILENAME, REQUEST_BODY and the like: the rule off for this path.
                controls.append("ctl:ruleRemoveById=\(f.ruleID)")
            }
        }
        let decoded = String(decoding: T.percentDecode(Array(path.utf8)), as: UTF8.self)
        var text = "# A false positive of request " + commentSafe("\(requestID) (\(method) \(decoded)): ")
        text += commentSafe(findings.map { "\($0.ruleID) on \($0.variable)" }.joined(separator: ", ")) + ".\n"
        text += "# Every caller of this path may now send the same text in these variables: review before use.\n"
        guard !controls.isEmpty else {
            return ExclusionProposal(text: "", warnings: warnings + ["nothing to propose: no rule and variable could be named"])
        }
        if isPlain(Substring(decoded), extra: "/._~-!$&'()*+,;=:@") {
            text += "SecRule REQUEST_FILENAME \"@streq \(decoded)\" \\\n"
        } else {
            warnings.append("the path has characters a rule cannot hold as written: the exclusion applies to every path")
            text += "SecAction \\\n"
        }
        text += "    \"id:\(firstID),phase:1,pass,nolog,t:none,\(controls.joined(separator: ","))\"\n"
        return ExclusionProposal(text: text, warnings: warnings)
    }
}

// Thin wrapper over Debian's libpcre2 (8-bit, JIT): SecLang's @rx patterns are PCRE, and the Core
// Rule Set's expressions use PCRE syntax (possessive quantifiers, \K-free lookarounds, inline
// flags) that neither Swift's Regex nor NSRegularExpression reads the same way.

import CPCRE2
import Synchronization

/// A compiled PCRE2 pattern, matched against bytes. Compiled once at load, JIT where the platform
/// has it; immutable afterwards, so one instance serves every request concurrently (each match
/// brings its own `RegexScratch`).
package final class PCRERegex: @unchecked Sendable {
    let code: OpaquePointer
    /// The pattern as written, for reports.
    package let pattern: String
    /// The pattern as a plain string when it is one (`^header_name_`, `__utm`): matched by
    /// comparing bytes, without entering PCRE2. Rule keys and exclusions (`TX:/^header_name_/`,
    /// `!REQUEST_COOKIES:/__utm/`) are mostly of this shape and are tested on every entry.
    package let literal: LiteralPattern?

    /// Compiles `pattern` as ModSecurity does for @rx: dot matches newline, `$` only at the very
    /// end, bytes rather than UTF-8 code points.
    package init(_ pattern: String, caseless: Bool = false, literalShortcut: Bool = true) throws(SecLangError) {
        self.pattern = pattern
        var options = UInt32(PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY)
        if caseless { options |= UInt32(PCRE2_CASELESS) }
        // The byte comparison reads `^`, `$` and case as these options do (no multiline, `$` at
        // the very end only, ASCII case folding without UTF): with any other options, PCRE2 decides.
        let readsAsLiteral = options & ~UInt32(PCRE2_CASELESS) == UInt32(PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY)
        literal = literalShortcut && readsAsLiteral ? LiteralPattern(pattern, caseless: caseless) : nil
        var errorCode: Int32 = 0
        var errorOffset = 0
        let bytes = Array(pattern.utf8)
        let compiled = bytes.withUnsafeBufferPointer { buffer in
            pcre2_compile_8(buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!, buffer.count, options, &errorCode, &errorOffset, nil)
        }
        guard let compiled else {
            var message = [UInt8](repeating: 0, count: 256)
            let n = pcre2_get_error_message_8(errorCode, &message, message.count)
            let text = n > 0 ? String(decoding: message[0..<Int(n)], as: UTF8.self) : "error \(errorCode)"
            throw SecLangError(.invalidRegex, "regular expression does not compile at offset \(errorOffset): \(text)")
        }
        code = compiled
        // JIT is an optimisation: where it is unavailable the interpreter runs the same pattern.
        _ = pcre2_jit_compile_8(compiled, UInt32(PCRE2_JIT_COMPLETE))
    }

    deinit { pcre2_code_free_8(code) }

    /// Matches `subject`; on a match, returns the capture groups 0...9 (nil where a group did not
    /// take part) when `captures` is set, or an empty array.
    package func match(_ subject: [UInt8], captures: Bool, scratch: RegexScratch) -> [[UInt8]?]? {
        if let literal {
            let found = subject.withUnsafeBufferPointer { literal.find(in: $0) }
            guard let found else { return nil }
            return captures ? [Array(subject[found..<(found + literal.bytes.count)])] : []
        }
        let rc = subject.withUnsafeBufferPointer { buffer in
            pcre2_match_8(code, buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!, buffer.count, 0, 0, scratch.data, scratch.context)
        }
        // A match-limit error counts as no match, as in ModSecurity (the rule does not fire).
        guard rc >= 0 else { return nil }
        guard captures else { return [] }
        let ovector = pcre2_get_ovector_pointer_8(scratch.data)!
        let pairs = rc == 0 ? RegexScratch.groups : min(Int(rc), RegexScratch.groups)
        var groups: [[UInt8]?] = []
        groups.reserveCapacity(pairs)
        for i in 0..<pairs {
            // PCRE2_UNSET (all bits set) reads as -1: a group that did not take part.
            let start = ovector[2 * i], end = ovector[2 * i + 1]
            if start < 0 || end < 0 || start > end || end > subject.count {
                groups.append(nil)
            } else {
                groups.append(Array(subject[start..<end]))
            }
        }
        return groups
    }

    /// Whether `subject` matches.
    package func matches(_ subject: [UInt8], scratch: RegexScratch) -> Bool {
        match(subject, captures: false, scratch: scratch) != nil
    }

    /// Whether the UTF-8 bytes of `subject` match, without copying them into an array.
    package func matches(_ subject: String, scratch: RegexScratch) -> Bool {
        var subject = subject
        return subject.withUTF8 { buffer in
            if let literal { return literal.find(in: buffer) != nil }
            let rc = pcre2_match_8(
                code, buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!, buffer.count, 0, 0, scratch.data, scratch.context)
            return rc >= 0
        }
    }
}

/// A pattern that is a plain string, optionally anchored with `^` and `$`: letters, digits,
/// `_`, `-`, `:`, `,`, `;`, `=`, `@`, `%`, `/`, `<`, `>`, `!`, `'`, `"`, `~`, space, and the
/// escapes `\.`, `\-`, `\/`, `\_`, `\:`, `\@`. Anything else is left to PCRE2. Under `caseless`
/// only ASCII letters fold, as in PCRE2 without UTF mode.
package struct LiteralPattern: Sendable {
    let bytes: [UInt8]
    let anchoredStart: Bool
    let anchoredEnd: Bool
    let caseless: Bool

    init?(_ pattern: String, caseless: Bool) {
        var p = Array(pattern.utf8)[...]
        anchoredStart = p.first == UInt8(ascii: "^")
        if anchoredStart { p = p.dropFirst() }
        // `$` at the very end (DOLLAR_ENDONLY): an escaped `\$` is not an anchor, and is not
        // accepted below either.
        anchoredEnd = p.last == UInt8(ascii: "$") && (p.count < 2 || p[p.index(before: p.endIndex - 1)] != UInt8(ascii: "\\"))
        if anchoredEnd { p = p.dropLast() }
        var out: [UInt8] = []
        var i = p.startIndex
        while i < p.endIndex {
            let c = p[i]
            if c == UInt8(ascii: "\\") {
                let n = p.index(after: i)
                guard n < p.endIndex, Array(".-/_:@".utf8).contains(p[n]) else { return nil }
                out.append(p[n])
                i = p.index(after: n)
                continue
            }
            guard LiteralPattern.plain(c) else { return nil }
            out.append(caseless ? PatternLiterals.lower(c) : c)
            i = p.index(after: i)
        }
        guard !out.isEmpty else { return nil }
        bytes = out
        self.caseless = caseless
    }

    static func plain(_ c: UInt8) -> Bool {
        PatternLiterals.isAlphanumeric(c) || Array("_-:,;=@%/<>!'\"~ ".utf8).contains(c)
    }

    /// Where the first match starts, or nil.
    func find(in s: UnsafeBufferPointer<UInt8>) -> Int? {
        let n = bytes.count
        guard s.count >= n else { return nil }
        let last = s.count - n
        let first = anchoredEnd ? last : 0
        let stop = anchoredStart ? 0 : last
        if anchoredStart && anchoredEnd && s.count != n { return nil }
        guard first <= stop else { return nil }
        var at = first
        while at <= stop {
            if equal(at: at, in: s) { return at }
            at += 1
        }
        return nil
    }

    @inline(__always) func equal(at: Int, in s: UnsafeBufferPointer<UInt8>) -> Bool {
        for j in 0..<bytes.count {
            let c = s[at + j]
            if (caseless ? PatternLiterals.lower(c) : c) != bytes[j] { return false }
        }
        return true
    }
}

/// Per-transaction PCRE2 match state (match data for ten groups and a match limit), so a
/// request allocates it once rather than per match.
package final class RegexScratch {
    /// TX:0 to TX:9, as ModSecurity captures.
    static let groups = 10
    /// Backtracking budget per match: a pathological pattern stops with no match rather than
    /// holding the request.
    static let matchLimit: UInt32 = 1_000_000
    let data: OpaquePointer
    let context: OpaquePointer?

    package init() {
        data = pcre2_match_data_create_8(UInt32(RegexScratch.groups), nil)!
        context = pcre2_match_context_create_8(nil)
        if let context { _ = pcre2_set_match_limit_8(context, RegexScratch.matchLimit) }
    }

    deinit {
        pcre2_match_data_free_8(data)
        if let context { pcre2_match_context_free_8(context) }
    }
}

/// Patterns compiled from macro expansions, kept for the life of the rule set (the expansions
/// come from configuration variables, so there are few). A pattern that does not compile is
/// remembered as such and never matches.
package final class RegexCache: Sendable {
    private let compiled = Mutex<[String: PCRERegex?]>([:])
    /// Expansions beyond this many are compiled for the request and not kept.
    static let limit = 256

    package init() {}

    func regex(for pattern: String) -> PCRERegex? {
        if let hit = compiled.withLock({ $0[pattern] }) { return hit }
        let re = try? PCRERegex(pattern)
        compiled.withLock { if $0.count < RegexCache.limit { $0[pattern] = re } }
        return re
    }
}

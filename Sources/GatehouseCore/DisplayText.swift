/// Makes text from requests safe to store, log and print on an operator's terminal.
///
/// Token headers (kid, alg, jti), Basic user names and the like are attacker-chosen: raw they could
/// carry ESC sequences (set the window title, clear the screen, draw a forged line), BEL, or a
/// newline that forges a new line in `gatehouse explain` and `gatehouse logs`. Every control
/// character is written as a visible escape instead (`\u{1b}`), so nothing is lost and nothing acts.
public enum DisplayText {
    /// Whether printing this scalar raw could move the cursor, start an escape sequence, break the
    /// line or reorder the text: C0 (tab and newline included), DEL, C1, the Unicode line and
    /// paragraph separators, and the bidirectional formatting characters.
    @inline(__always)
    public static func isControl(_ v: UInt32) -> Bool {
        if v < 0x20 || (v >= 0x7F && v <= 0x9F) { return true }
        if v < 0x200E { return false }
        return v == 0x200E || v == 0x200F || (v >= 0x2028 && v <= 0x202E) || (v >= 0x2066 && v <= 0x2069)
    }

    /// `text` with every control character (see `isControl`) written as `\u{XX}`.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { isControl($0.value) }) else { return text }
        var out = String.UnicodeScalarView()
        for u in text.unicodeScalars {
            if isControl(u.value) {
                let hex = String(u.value, radix: 16)
                out.append(contentsOf: ("\\u{" + (hex.count < 2 ? "0" + hex : hex) + "}").unicodeScalars)
            } else {
                out.append(u)
            }
        }
        return String(out)
    }

    /// Untrusted text for a denial's detail, `presented` or a trace note: at most `limit` Unicode
    /// scalars (the rest is counted, not kept), then escaped.
    public static func untrusted(_ text: String, limit: Int = 128) -> String {
        var scalars = text.unicodeScalars
        var suffix = ""
        if text.utf8.count > limit {
            let total = scalars.count
            if total > limit {
                scalars = String.UnicodeScalarView(scalars.prefix(limit))
                suffix = "…(\(total - limit) more characters)"
            }
        }
        return escaped(String(scalars)) + suffix
    }
}

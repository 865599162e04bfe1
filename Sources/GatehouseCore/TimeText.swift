/// Human and RFC 3339 renderings of times and durations, for denial details and reports.
public enum TimeText {
    /// The earliest time `iso` renders: 0001-01-01T00:00:00Z.
    public static let earliest: Double = -62_135_596_800
    /// The latest time `iso` renders: 9999-12-31T23:59:59Z.
    public static let latest: Double = 253_402_300_799

    /// "2026-11-20T10:00:03Z" for seconds since 1970 (UTC, whole seconds).
    ///
    /// Total: a time before year 1 or after year 9999 (±infinity included) is clamped to that
    /// bound, and NaN renders as "NaN"; no value traps.
    public static func iso(_ t: Double) -> String {
        guard !t.isNaN else { return "NaN" }
        let secs = Int64(min(max(t, earliest), latest).rounded(.down))
        var days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400
        let rem = secs - days * 86400
        // Civil-from-days (H. Hinnant's algorithm).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        var y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        if m <= 2 { y += 1 }
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let year = String(y)
        return
            "\(String(repeating: "0", count: max(0, 4 - year.count)))\(year)-\(two(m))-\(two(d))T\(two(rem / 3600)):\(two(rem / 60 % 60)):\(two(rem % 60))Z"
    }

    /// "3 h 12 min", "45 s", "2 d 4 h": the two largest units.
    ///
    /// Total: NaN renders as "NaN", and anything beyond 10^6 years is clamped to that.
    public static func duration(_ seconds: Double) -> String {
        guard !seconds.isNaN else { return "NaN" }
        var s = Int64(min(abs(seconds), 3.2e13).rounded())
        if s < 60 { return "\(s) s" }
        let units: [(Int64, String)] = [(86400, "d"), (3600, "h"), (60, "min"), (1, "s")]
        var parts: [String] = []
        for (size, name) in units where s >= size {
            parts.append("\(s / size) \(name)")
            s %= size
            if parts.count == 2 { break }
        }
        return parts.joined(separator: " ")
    }

    /// Parses durations like "30d", "12h", "90s", "500ms", "1h30m" into seconds.
    public static func parseDuration(_ text: String) -> Double? {
        var total = 0.0
        var number = ""
        var unit = ""
        var any = false
        func flush() -> Bool {
            guard let n = Double(number) else { return false }
            let mult: Double
            switch unit {
            case "ms": mult = 0.001
            case "s", "": mult = 1
            case "m", "min": mult = 60
            case "h": mult = 3600
            case "d": mult = 86400
            case "w": mult = 604_800
            default: return false
            }
            total += n * mult
            any = true
            number = ""
            unit = ""
            return true
        }
        for c in text.trimmingSpaces {
            if c.isNumber || c == "." {
                if !unit.isEmpty { guard flush() else { return nil } }
                number.append(c)
            } else if c.isLetter {
                guard !number.isEmpty else { return nil }
                unit.append(c)
            } else {
                return nil
            }
        }
        if !number.isEmpty { guard flush() else { return nil } }
        return any && total.isFinite ? total : nil
    }
}

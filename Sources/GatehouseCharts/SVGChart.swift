import Foundation

/// Charts rendered on the server as SVG text: readable without JavaScript, safe to embed in a
/// page (every label is escaped), and deterministic (the same data gives the same bytes, with no
/// locale, clock or random number involved).
///
/// Colours are presentation attributes, not `style`, so a Content-Security-Policy without
/// `unsafe-inline` allows them.
public enum SVGChart {
    /// The series colours, in order (a colour-blind-safe palette).
    public static let palette = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb", "#332288"]

    /// Escapes text for an XML text node or a double- or single-quoted attribute.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            // Characters XML 1.0 does not allow, even escaped: replaced.
            case "\u{0}"..."\u{8}", "\u{B}", "\u{C}", "\u{E}"..."\u{1F}", "\u{FFFE}", "\u{FFFF}": out += "\u{FFFD}"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// A coordinate or number with at most `decimals` decimals, trailing zeros dropped ("12",
    /// "12.5"): the same text on every platform and locale.
    public static func number(_ x: Double, decimals: Int = 1) -> String {
        guard x.isFinite else { return "0" }
        var scale: UInt64 = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (x * Double(scale)).rounded()
        guard abs(scaled) < 9e15 else { return String(format: "%.0f", x) }
        let n = Int64(scaled)
        var text = (n < 0 ? "-" : "") + String(n.magnitude / scale)
        let fraction = n.magnitude % scale
        if fraction != 0 {
            var digits = String(fraction)
            digits = String(repeating: "0", count: decimals - digits.count) + digits
            while digits.hasSuffix("0") { digits.removeLast() }
            text += "." + digits
        }
        return text
    }

    /// A value for an axis label: thousands as "k", millions as "M" ("1.5k", "12M").
    public static func compact(_ x: Double) -> String {
        let a = abs(x)
        if a >= 1_000_000 { return number(x / 1_000_000, decimals: 1) + "M" }
        if a >= 10_000 { return number(x / 1000, decimals: 0) + "k" }
        if a >= 1000 { return number(x / 1000, decimals: 1) + "k" }
        return number(x, decimals: a < 10 ? 2 : 1)
    }

    /// Round tick values (1, 2 or 5 times a power of ten apart) covering 0...max, at most about
    /// `count` of them; the last is at or above `max`.
    public static func ticks(upTo max: Double, count: Int = 5) -> [Double] {
        guard max > 0, max.isFinite else { return [0, 1] }
        let raw = max / Double(Swift.max(1, count))
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var out: [Double] = []
        var v = 0.0
        while v < max - step * 1e-9 {
            out.append(v)
            v = Double(out.count) * step
        }
        out.append(v)
        return out
    }

    /// Tick times (seconds since 1970, on whole UTC steps) for a span, at most about `count`.
    public static func timeTicks(from: Double, to: Double, count: Int = 6) -> (times: [Double], step: Double) {
        let steps: [Double] = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400, 30 * 86400]
        let span = Swift.max(60, to - from)
        let step = steps.first { span / $0 <= Double(count) } ?? (span / Double(count) / 86400).rounded(.up) * 86400
        var t = (from / step).rounded(.up) * step
        var out: [Double] = []
        while t <= to {
            out.append(t)
            t += step
        }
        return (out, step)
    }

    /// A tick time's label in UTC: "HH:MM" for steps under a day, "MM-DD" from a day.
    public static func timeLabel(_ t: Double, step: Double) -> String {
        let secs = Int64(t.rounded(.down))
        let days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400
        let inDay = secs - days * 86400
        func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        if step < 86400 { return two(inDay / 3600) + ":" + two((inDay % 3600) / 60) }
        // Civil date from days since 1970 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return two(m) + "-" + two(d)
    }

    /// Cuts a label to at most `max` characters, ending with "…" when cut.
    static func shorten(_ s: String, _ max: Int) -> String {
        s.count <= max ? s : String(s.prefix(Swift.max(1, max - 1))) + "…"
    }

    static func header(width: Int, height: Int, title: String, kind: String) -> String {
        let t = escape(title)
        return """
            <svg xmlns="http://www.w3.org/2000/svg" class="chart chart-\(kind)" viewBox="0 0 \(width) \(height)" \
            width="\(width)" height="\(height)" role="img" aria-label="\(t)" font-family="sans-serif" font-size="11">\
            <title>\(t)</title>
            """
    }
}

/// Lines or areas over time: one series per line (requests, denials), or stacked areas (denials
/// by reason).
public struct TimeSeriesChart: Sendable {
    /// One line or area.
    public struct Series: Sendable {
        public var name: String
        /// One value per point of `times`.
        public var values: [Double]
        public init(name: String, values: [Double]) {
            self.name = name
            self.values = values
        }
    }

    public enum Style: String, Sendable {
        /// Each series a line.
        case line
        /// Series stacked as filled areas, each on top of the ones before it.
        case stackedArea = "stacked-area"
    }

    public var title: String
    /// The points' times, seconds since 1970, ascending.
    public var times: [Double]
    public var series: [Series]
    public var style: Style
    public var width: Int
    public var height: Int

    public init(title: String, times: [Double], series: [Series], style: Style = .line, width: Int = 640, height: Int = 240) {
        self.title = title
        self.times = times
        self.series = series
        self.style = style
        self.width = width
        self.height = height
    }

    /// The chart as an `<svg>` element.
    public func svg() -> String {
        typealias C = SVGChart
        let left = 48.0, right = 12.0, top = 12.0
        let legendRows = series.isEmpty ? 0 : 1
        let bottom = 24.0 + Double(legendRows) * 18
        let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
        var out = C.header(width: width, height: height, title: title, kind: style.rawValue)

        // The values drawn: stacked, each series' line is the sum of it and those before.
        var drawn = series.map { s in times.indices.map { i in i < s.values.count && s.values[i].isFinite ? Swift.max(0, s.values[i]) : 0 }
        }
        if style == .stackedArea {
            for k in drawn.indices.dropFirst() { for i in drawn[k].indices { drawn[k][i] += drawn[k - 1][i] } }
        }
        let maxValue = drawn.flatMap { $0 }.max() ?? 0
        let yTicks = C.ticks(upTo: maxValue, count: 4)
        let yMax = yTicks.last ?? 1
        let t0 = times.first ?? 0
        let t1 = Swift.max(times.last ?? 60, t0 + 60)
        func x(_ t: Double) -> Double { left + (t - t0) / (t1 - t0) * plotW }
        func y(_ v: Double) -> Double { top + plotH - v / yMax * plotH }

        // Axes and grid.
        out += #"<g class="axis axis-y" fill="rgb(85,85,85)" stroke="none">"#
        for v in yTicks {
            let yy = C.number(y(v))
            out += #"<line x1="\#(C.number(left))" x2="\#(C.number(left + plotW))" y1="\#(yy)" y2="\#(yy)" stroke="rgb(221,221,221)"/>"#
            out += #"<text x="\#(C.number(left - 4))" y="\#(yy)" text-anchor="end" dominant-baseline="middle">\#(C.compact(v))</text>"#
        }
        out += "</g>"
        out += #"<g class="axis axis-x" fill="rgb(85,85,85)" stroke="none">"#
        let baseline = C.number(top + plotH)
        out +=
            #"<line x1="\#(C.number(left))" x2="\#(C.number(left + plotW))" y1="\#(baseline)" y2="\#(baseline)" stroke="rgb(153,153,153)"/>"#
        let (tickTimes, step) = C.timeTicks(from: t0, to: t1, count: Swift.max(2, width / 110))
        for t in tickTimes {
            let xx = C.number(x(t))
            out += #"<line x1="\#(xx)" x2="\#(xx)" y1="\#(baseline)" y2="\#(C.number(top + plotH + 4))" stroke="rgb(153,153,153)"/>"#
            out += #"<text x="\#(xx)" y="\#(C.number(top + plotH + 15))" text-anchor="middle">\#(C.timeLabel(t, step: step))</text>"#
        }
        out += "</g>"

        if times.isEmpty || series.isEmpty {
            out +=
                #"<text class="empty" x="\#(C.number(left + plotW / 2))" y="\#(C.number(top + plotH / 2))" text-anchor="middle" fill="rgb(119,119,119)">no data</text>"#
        } else {
            // Drawn last first when stacked, so that each area shows above the ones it covers.
            out += #"<g class="series">"#
            for k in drawn.indices {
                let colour = C.palette[k % C.palette.count]
                var d = ""
                for (i, t) in times.enumerated() { d += (i == 0 ? "M" : " L") + C.number(x(t)) + " " + C.number(y(drawn[k][i])) }
                let name = C.escape(series[k].name)
                switch style {
                case .line:
                    out += #"<path class="line" d="\#(d)" fill="none" stroke="\#(colour)" stroke-width="2"><title>\#(name)</title></path>"#
                case .stackedArea:
                    // Down the series below (or the baseline) and back.
                    var back = ""
                    for i in times.indices.reversed() {
                        back += " L" + C.number(x(times[i])) + " " + C.number(y(k == 0 ? 0 : drawn[k - 1][i]))
                    }
                    out +=
                        #"<path class="area" d="\#(d)\#(back) Z" fill="\#(colour)" fill-opacity="0.8" stroke="\#(colour)"><title>\#(name)</title></path>"#
                }
            }
            out += "</g>"
            // The legend, on one row under the axis.
            out += #"<g class="legend" fill="rgb(51,51,51)">"#
            var lx = left
            let ly = Double(height) - 8
            for k in series.indices {
                let label = C.escape(C.shorten(series[k].name, 32))
                out +=
                    #"<rect x="\#(C.number(lx))" y="\#(C.number(ly - 9))" width="10" height="10" fill="\#(C.palette[k % C.palette.count])"/>"#
                out += #"<text x="\#(C.number(lx + 14))" y="\#(C.number(ly))">\#(label)</text>"#
                lx += 14 + Double(Swift.min(32, series[k].name.count)) * 6.5 + 12
            }
            out += "</g>"
        }
        return out + "</svg>"
    }
}

/// Horizontal bars, largest first as given: the most denied applications or routes, denials by
/// reason.
public struct BarChart: Sendable {
    /// One bar.
    public struct Bar: Sendable {
        public var label: String
        public var value: Double
        public init(label: String, value: Double) {
            self.label = label
            self.value = value
        }
    }

    public var title: String
    public var bars: [Bar]
    public var width: Int
    /// The height of one bar's row.
    public var rowHeight: Int
    /// Characters of a label shown before it is cut with "…" (the whole label is the bar's tooltip).
    public var labelCharacters: Int

    public init(title: String, bars: [Bar], width: Int = 480, rowHeight: Int = 22, labelCharacters: Int = 24) {
        self.title = title
        self.bars = bars
        self.width = width
        self.rowHeight = rowHeight
        self.labelCharacters = labelCharacters
    }

    public var height: Int { 28 + Swift.max(1, bars.count) * rowHeight }

    /// The chart as an `<svg>` element.
    public func svg() -> String {
        typealias C = SVGChart
        let left = Double(labelCharacters) * 6.5 + 8, right = 48.0, top = 6.0
        let plotW = Double(width) - left - right
        let plotH = Double(Swift.max(1, bars.count) * rowHeight)
        var out = C.header(width: width, height: height, title: title, kind: "bars")
        let ticks = C.ticks(upTo: bars.map { $0.value.isFinite ? $0.value : 0 }.max() ?? 0, count: 4)
        let xMax = ticks.last ?? 1
        func x(_ v: Double) -> Double { left + Swift.max(0, v) / xMax * plotW }

        out += #"<g class="axis axis-x" fill="rgb(85,85,85)" stroke="none">"#
        for v in ticks {
            let xx = C.number(x(v))
            out += #"<line x1="\#(xx)" x2="\#(xx)" y1="\#(C.number(top))" y2="\#(C.number(top + plotH))" stroke="rgb(221,221,221)"/>"#
            out += #"<text x="\#(xx)" y="\#(C.number(top + plotH + 14))" text-anchor="middle">\#(C.compact(v))</text>"#
        }
        out += "</g>"
        if bars.isEmpty {
            out +=
                #"<text class="empty" x="\#(C.number(left + plotW / 2))" y="\#(C.number(top + plotH / 2 + 4))" text-anchor="middle" fill="rgb(119,119,119)">no data</text>"#
            return out + "</svg>"
        }
        out += #"<g class="bars">"#
        for (i, bar) in bars.enumerated() {
            let y = top + Double(i * rowHeight)
            let value = bar.value.isFinite ? bar.value : 0
            let full = C.escape(bar.label)
            out += #"<g class="bar"><title>\#(full): \#(C.number(value, decimals: 2))</title>"#
            out +=
                #"<text class="label" x="\#(C.number(left - 6))" y="\#(C.number(y + Double(rowHeight) / 2))" text-anchor="end" dominant-baseline="middle" fill="rgb(51,51,51)">\#(C.escape(C.shorten(bar.label, labelCharacters)))</text>"#
            out +=
                #"<rect x="\#(C.number(left))" y="\#(C.number(y + 3))" width="\#(C.number(x(value) - left))" height="\#(rowHeight - 6)" fill="\#(C.palette[1])"/>"#
            out +=
                #"<text class="value" x="\#(C.number(x(value) + 4))" y="\#(C.number(y + Double(rowHeight) / 2))" dominant-baseline="middle" fill="rgb(51,51,51)">\#(C.number(value, decimals: 2))</text>"#
            out += "</g>"
        }
        return out + "</g></svg>"
    }
}

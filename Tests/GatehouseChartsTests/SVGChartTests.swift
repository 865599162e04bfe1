import Foundation
import GatehouseCharts
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// An SVG document read back with Foundation's XML parser: its elements in order, with their
/// attributes and text.
final class ParsedSVG: NSObject, XMLParserDelegate {
    struct Element {
        var name: String
        var attributes: [String: String]
        var text = ""
        var depth: Int
    }

    private(set) var elements: [Element] = []
    private var open: [Int] = []
    private(set) var error: (any Error)?

    init(_ svg: String) {
        super.init()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = self
        if !parser.parse() { error = parser.parserError ?? CocoaError(.coderReadCorrupt) }
    }

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        open.append(elements.count)
        elements.append(Element(name: name, attributes: attributes, depth: open.count))
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        open.removeLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let i = open.last { elements[i].text += string }
    }

    func named(_ name: String) -> [Element] { elements.filter { $0.name == name } }
}

@Suite struct SVGChartTests {
    static let day0 = 1_800_000_000.0

    @Test func aTimeSeriesHasAxesWithRoundTicksAndOneLinePerSeries() throws {
        let times = (0..<24).map { Self.day0 + Double($0) * 3600 }
        let chart = TimeSeriesChart(
            title: "Requests", times: times,
            series: [
                .init(name: "requests", values: times.indices.map { Double($0 * 100) }),
                .init(name: "denied", values: times.indices.map { Double($0 * 7) }),
            ])
        let svg = chart.svg()
        let doc = ParsedSVG(svg)
        #expect(doc.error == nil)
        #expect(doc.elements.first?.name == "svg")
        #expect(doc.elements.first?.attributes["viewBox"] == "0 0 640 240")
        #expect(doc.named("title").first?.text == "Requests")
        #expect(doc.named("path").count == 2)
        // The y axis: 0 to at least the largest value (2,300) in round steps.
        let yLabels = doc.elements.filter { $0.name == "text" && $0.attributes["text-anchor"] == "end" }.map(\.text)
        #expect(yLabels == ["0", "1k", "2k", "3k"])
        // The x axis: UTC hours.
        let xLabels = doc.elements.filter { $0.name == "text" && $0.attributes["text-anchor"] == "middle" }.map(\.text)
        #expect(xLabels.count >= 3 && xLabels.count <= 7)
        #expect(xLabels.allSatisfy { $0.count == 5 && $0.contains(":") })
        #expect(doc.named("text").map(\.text).contains("denied"))
        // The same data gives the same bytes.
        #expect(chart.svg() == svg)
    }

    @Test func stackedAreasCloseOnTheSeriesBelow() throws {
        let times = (0..<4).map { Self.day0 + Double($0) * 60 }
        let chart = TimeSeriesChart(
            title: "Denials by reason", times: times,
            series: [.init(name: "rate_limited", values: [1, 2, 3, 4]), .init(name: "not_owner", values: [4, 3, 2, 1])], style: .stackedArea
        )
        let doc = ParsedSVG(chart.svg())
        #expect(doc.error == nil)
        let areas = doc.named("path").filter { $0.attributes["class"] == "area" }
        #expect(areas.count == 2)
        #expect(areas.allSatisfy { $0.attributes["d"]?.hasSuffix("Z") == true })
        // Stacked, the top reaches 5 at every point: the axis goes past it (to 6, in steps of 2).
        let yLabels = doc.elements.filter { $0.name == "text" && $0.attributes["text-anchor"] == "end" }.map(\.text)
        #expect(yLabels == ["0", "2", "4", "6"])
    }

    @Test func labelsFromRoutesAndReasonsAreEscaped() throws {
        let route = #"<script>alert("x")</script>&'"#
        let bars = BarChart(
            title: "Top denied routes <b>", bars: [.init(label: route, value: 12), .init(label: "orders", value: 3)], labelCharacters: 64)
        let svg = bars.svg()
        #expect(!svg.contains("<script"))
        #expect(svg.contains("&lt;script&gt;"))
        let doc = ParsedSVG(svg)
        #expect(doc.error == nil)
        #expect(doc.named("script").isEmpty && doc.named("b").isEmpty)
        // Read back, the label is the route as it was.
        #expect(doc.named("text").contains { $0.text == route })
        #expect(doc.named("title").first?.text == "Top denied routes <b>")
        #expect(doc.named("rect").count == 2)
        let widths = doc.named("rect").compactMap { $0.attributes["width"].flatMap(Double.init) }
        #expect(widths.count == 2 && widths[0] > widths[1] * 3.5 && widths[0] < widths[1] * 4.5)

        let series = TimeSeriesChart(title: "t", times: [Self.day0, Self.day0 + 60], series: [.init(name: route, values: [1, 2])])
        let parsed = ParsedSVG(series.svg())
        #expect(parsed.error == nil && parsed.named("script").isEmpty)
        #expect(parsed.named("title").contains { $0.text == route })
    }

    @Test func aLongLabelIsCutAndKeepsItsWholeTextAsTooltip() throws {
        let long = String(repeating: "segment/", count: 10)
        let doc = ParsedSVG(BarChart(title: "t", bars: [.init(label: long, value: 1)]).svg())
        let label = try #require(doc.elements.first { $0.attributes["class"] == "label" })
        #expect(label.text.count == 24 && label.text.hasSuffix("…"))
        #expect(doc.named("title").contains { $0.text.hasPrefix(long) })
    }

    @Test func noDataSaysSo() throws {
        for svg in [BarChart(title: "t", bars: []).svg(), TimeSeriesChart(title: "t", times: [], series: []).svg()] {
            let doc = ParsedSVG(svg)
            #expect(doc.error == nil)
            #expect(doc.elements.contains { $0.attributes["class"] == "empty" && $0.text == "no data" })
        }
    }

    @Test func numbersAndTicksReadTheSameEverywhere() {
        #expect(SVGChart.number(12.0) == "12")
        #expect(SVGChart.number(12.25, decimals: 1) == "12.3")
        #expect(SVGChart.number(-0.04) == "0")
        #expect(SVGChart.number(-3.5) == "-3.5")
        #expect(SVGChart.number(0.05, decimals: 2) == "0.05")
        #expect(SVGChart.ticks(upTo: 7, count: 4) == [0, 2, 4, 6, 8])
        #expect(SVGChart.ticks(upTo: 0) == [0, 1])
        #expect(SVGChart.timeLabel(Self.day0, step: 3600) == "08:00")
        #expect(SVGChart.timeLabel(Self.day0, step: 86400) == "01-15")
        #expect(SVGChart.compact(1_500_000) == "1.5M")
    }
}

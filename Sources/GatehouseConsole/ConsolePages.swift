import Foundation
import GatehouseCharts
import GatehouseControl
import GatehouseCore
import GatehouseStore
import Hummingbird

/// The console's pages. Each reads through the control plane as the signed-in admin, so a role
/// or tenant the admin lacks comes back as the control plane's refusal, rendered as a 403 page.
extension ConsoleRoutes {
    func addPages<Context: WebRequestContext>(to console: RouterGroup<Context>) {
        let routes = self
        get(console, "overview") { request, _, user in try routes.overview(request, user) }
        addListPages(to: console)
    }

    /// The periods the overview offers: label, seconds, bucket seconds.
    static let periods: [(label: String, key: String, seconds: Double, bucket: Double)] = [
        ("Last hour", "1h", 3600, 60), ("Last 24 hours", "24h", 86400, 3600), ("Last 7 days", "7d", 7 * 86400, 6 * 3600),
    ]

    func overview(_ request: Request, _ user: ConsoleUser) throws -> Response {
        let key = request.uri.queryParameters.get("period") ?? "24h"
        guard let period = Self.periods.first(where: { $0.key == key }) else {
            throw ControlError.invalid("period \"\(DisplayText.untrusted(key, limit: 16))\" is not one of 1h, 24h, 7d", field: "period")
        }
        let until = now()
        let o = try control.overview(user.actor, since: until - period.seconds, until: until, bucket: period.bucket, top: 10)
        let values = Self.overviewValues(o, periodKey: period.key)
        return pages.page("overview", values, frame: frame("Overview", user, current: "/console/overview"))
    }

    /// The overview's figures and charts as the template reads them.
    static func overviewValues(_ o: Overview, periodKey: String) -> [String: Any] {
        let reasons = o.deniedByReason.prefix(8).map(\.key)
        let requests = TimeSeriesChart(
            title: "Requests and denials", times: o.series.map(\.start),
            series: [
                .init(name: "requests", values: o.series.map { Double($0.requests) }),
                .init(name: "denied", values: o.series.map { Double($0.denied) }),
            ])
        let byReason = TimeSeriesChart(
            title: "Denials by reason", times: o.series.map(\.start),
            series: reasons.map { r in .init(name: r, values: o.series.map { Double($0.deniedByReason[r] ?? 0) }) }, style: .stackedArea)
        let apps = BarChart(
            title: "Most denied applications",
            bars: o.topDeniedApplications.map { .init(label: $0.name ?? $0.key, value: Double($0.denied)) })
        let routes = BarChart(title: "Most denied routes", bars: o.topDeniedRoutes.map { .init(label: $0.key, value: Double($0.denied)) })
        func ms(_ v: Double?) -> String { v.map { SVGChart.number($0, decimals: 1) + " ms" } ?? "–" }
        return [
            "periods": periods.map {
                ["label": $0.label, "href": "/console/overview?period=\($0.key)", "current": $0.key == periodKey] as [String: Any]
            },
            "since": TimeText.iso(o.since), "until": TimeText.iso(o.until),
            "requests": o.requests, "allowed": o.allowed, "denied": o.denied, "shadow": o.shadowWouldDeny,
            "p50": ms(o.latencyP50Millis), "p99": ms(o.latencyP99Millis),
            "charts": [
                ["title": requests.title, "src": dataURI(requests.svg())], ["title": byReason.title, "src": dataURI(byReason.svg())],
                ["title": apps.title, "src": dataURI(apps.svg())], ["title": routes.title, "src": dataURI(routes.svg())],
            ],
            "reasons": o.deniedByReason.map {
                ["reason": $0.key, "denied": $0.denied, "href": "/console/calls?reason=" + WebPages.queryEscaped($0.key)] as [String: Any]
            },
            "top_applications": o.topDeniedApplications.map {
                [
                    "name": $0.name ?? $0.key, "denied": $0.denied,
                    "href": "/console/calls?application=" + WebPages.queryEscaped($0.name ?? $0.key),
                ]
                    as [String: Any]
            },
            "top_routes": o.topDeniedRoutes.map {
                ["route": $0.key, "denied": $0.denied, "href": "/console/calls?route=" + WebPages.queryEscaped($0.key)] as [String: Any]
            },
        ]
    }

    /// An SVG document as a `data:` URI for an `<img>`: its markup is an attribute value, escaped
    /// like any other, and scripts in an image never run.
    static func dataURI(_ svg: String) -> String { "data:image/svg+xml;base64," + Data(svg.utf8).base64EncodedString() }
}

extension ConsoleTemplates {
    /// The overview: figures, charts (as images) and the most denied, with links into the call log.
    static let overview = """
        {{<layout}}{{$body}}
        <h1>Overview</h1>
        <p class="period">{{#periods}}<a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{label}}</a>{{/periods}}
        <span class="muted">{{since}} – {{until}}</span></p>
        <div class="figures">
        <div class="figure"><div class="label">Requests</div><div class="value" id="fig-requests">{{requests}}</div></div>
        <div class="figure"><div class="label">Allowed</div><div class="value" id="fig-allowed">{{allowed}}</div></div>
        <div class="figure"><div class="label">Denied</div><div class="value deny" id="fig-denied">{{denied}}</div></div>
        <div class="figure"><div class="label">Shadow would-deny</div><div class="value" id="fig-shadow">{{shadow}}</div></div>
        <div class="figure"><div class="label">Latency p50</div><div class="value" id="fig-p50">{{p50}}</div></div>
        <div class="figure"><div class="label">Latency p99</div><div class="value" id="fig-p99">{{p99}}</div></div>
        </div>
        <div class="charts">
        {{#charts}}<figure><img src="{{src}}" alt="{{title}}"><figcaption class="muted">{{title}}</figcaption></figure>
        {{/charts}}
        </div>
        <h2>Denials by reason</h2>
        <table id="denials-by-reason"><thead><tr><th>Reason</th><th class="num">Denied</th></tr></thead><tbody>
        {{#reasons}}<tr><td><a href="{{href}}"><code>{{reason}}</code></a></td><td class="num">{{denied}}</td></tr>
        {{/reasons}}{{^reasons}}<tr><td colspan="2" class="muted">No denials in this period.</td></tr>{{/reasons}}
        </tbody></table>
        <h2>Most denied applications</h2>
        <table id="top-applications"><thead><tr><th>Application</th><th class="num">Denied</th></tr></thead><tbody>
        {{#top_applications}}<tr><td><a href="{{href}}">{{name}}</a></td><td class="num">{{denied}}</td></tr>
        {{/top_applications}}
        </tbody></table>
        <h2>Most denied routes</h2>
        <table id="top-routes"><thead><tr><th>Route</th><th class="num">Denied</th></tr></thead><tbody>
        {{#top_routes}}<tr><td><a href="{{href}}">{{route}}</a></td><td class="num">{{denied}}</td></tr>
        {{/top_routes}}
        </tbody></table>
        {{/body}}{{/layout}}
        """

    static let pages: [String: String] = [
        "overview": overview, "table": table, "list": list, "subscriptions": subscriptions, "call": call,
    ]
}

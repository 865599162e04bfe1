/// The developer portal's templates, registered beside the console's (they share its `layout` and
/// `refusal`). Names start with `portal-`.
enum PortalTemplates {
    static let all: [String: String] = [
        "portal-sign-in": signIn, "portal-services": services, "portal-subscriptions": subscriptions, "portal-keys": keys,
        "portal-usage": usage, "portal-explain": explain,
    ]

    /// The sign-in form: no CSRF token yet (no session); the post is checked by its origin headers.
    static let signIn = """
        {{<layout}}{{$body}}
        <h1>Developer portal</h1>
        <p class="muted">Sign in with the developer account an administrator made for your application.</p>
        <form class="sign-in" method="post" action="/portal/sign-in">
        <input type="hidden" name="next" value="{{next}}">
        <label>Developer name or e-mail <input name="name" id="name" autocomplete="username" required autofocus></label>
        <label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
        <button type="submit" id="sign-in">Sign in</button>
        </form>
        {{/body}}{{/layout}}
        """

    /// The catalogue, with a form to apply for each service the application holds no open
    /// subscription to.
    static let services = """
        {{<layout}}{{$body}}
        <h1>Services</h1>
        <table id="services"><thead><tr><th>Service</th><th>Approval</th><th>Your subscription</th><th></th></tr></thead><tbody>
        {{#services}}<tr data-service="{{name}}"><td>{{name}}</td><td>{{approval}}</td>
        <td>{{#state}}<span class="state state-{{state}}">{{state}}</span>{{/state}}{{^state}}<span class="muted">none</span>{{/state}}</td>
        <td>{{#can_apply}}<form method="post" action="/portal/apply" class="apply">
        <input type="hidden" name="csrf" value="{{frame_csrf}}">
        <input type="hidden" name="service" value="{{name}}">
        <label>Reason <input name="reason" maxlength="2000" placeholder="what your application needs it for"></label>
        <button type="submit">Apply</button>
        </form>{{/can_apply}}</td></tr>
        {{/services}}{{^services}}<tr><td colspan="5" class="muted">No services are defined yet.</td></tr>{{/services}}
        </tbody></table>
        {{/body}}{{/layout}}
        """

    static let subscriptions = """
        {{<layout}}{{$body}}
        <h1>Subscriptions</h1>
        <table id="subscriptions"><thead><tr><th>Service</th><th>State</th><th>Applied</th><th>Last change</th><th>By</th><th>Your reason</th><th>Opinion</th><th>Expires</th></tr></thead><tbody>
        {{#subscriptions}}<tr data-service="{{service}}" data-state="{{state}}"><td>{{service}}</td><td><span class="state state-{{state}}">{{state}}</span></td>
        <td>{{applied}}</td><td>{{changed}}</td><td>{{by}}</td><td>{{reason}}</td><td>{{opinion}}</td><td>{{expires}}</td></tr>
        {{/subscriptions}}{{^subscriptions}}<tr><td colspan="8" class="muted">No subscriptions yet: apply on the Services page.</td></tr>{{/subscriptions}}
        </tbody></table>
        {{/body}}{{/layout}}
        """

    /// The application's keys; a key just created is shown here once.
    static let keys = """
        {{<layout}}{{$body}}
        <h1>API keys</h1>
        {{#created_key}}<div class="notice" id="new-key-notice">
        <p>Your new key <code>{{created_id}}</code>. Copy it now: it is shown this once, and the gateway keeps only its hash.</p>
        <p><code id="new-key">{{created_key}}</code></p>
        </div>{{/created_key}}
        <form method="post" action="/portal/keys">
        <input type="hidden" name="csrf" value="{{frame_csrf}}">
        <button type="submit" id="create-key">Create a key</button>
        </form>
        <table id="keys"><thead><tr><th>Key id</th><th>Created</th><th>Expires</th><th>Revoked</th><th></th></tr></thead><tbody>
        {{#keys}}<tr data-key="{{id}}"><td><code>{{id}}</code></td><td>{{created}}</td><td>{{expires}}</td><td>{{revoked}}</td>
        <td>{{#active}}<form method="post" action="/portal/keys/{{id}}/revoke">
        <input type="hidden" name="csrf" value="{{frame_csrf}}">
        <button type="submit" class="secondary">Revoke</button>
        </form>{{/active}}</td></tr>
        {{/keys}}{{^keys}}<tr><td colspan="5" class="muted">No keys yet.</td></tr>{{/keys}}
        </tbody></table>
        {{/body}}{{/layout}}
        """

    static let usage = """
        {{<layout}}{{$body}}
        <h1>Usage</h1>
        <p class="period">{{#periods}}<a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{label}}</a>{{/periods}}
        <span class="muted">{{since}} – {{until}}</span></p>
        <div class="figures">
        <div class="figure"><div class="label">Requests</div><div class="value" id="fig-requests">{{requests}}</div></div>
        <div class="figure"><div class="label">Allowed</div><div class="value" id="fig-allowed">{{allowed}}</div></div>
        <div class="figure"><div class="label">Denied</div><div class="value deny" id="fig-denied">{{denied}}</div></div>
        </div>
        <div class="charts">
        {{#charts}}<figure><img src="{{src}}" alt="{{title}}"><figcaption class="muted">{{title}}</figcaption></figure>
        {{/charts}}
        </div>
        <h2>Denials by reason</h2>
        <table id="denials-by-reason"><thead><tr><th>Reason</th><th class="num">Denied</th></tr></thead><tbody>
        {{#reasons}}<tr><td><code>{{reason}}</code></td><td class="num">{{denied}}</td></tr>
        {{/reasons}}{{^reasons}}<tr><td colspan="2" class="muted">No denials in this period.</td></tr>{{/reasons}}
        </tbody></table>
        {{/body}}{{/layout}}
        """

    /// "Why was I denied?": a form (a GET: it changes nothing) and, for a request id of the
    /// application's, the decision trace as `gatehouse explain` shows it, without other parties'
    /// data.
    static let explain = """
        {{<layout}}{{$body}}
        <h1>Why was I denied?</h1>
        <form method="get" action="/portal/explain" class="explain">
        <label>Request id (the X-Request-Id header, or <code>request_id</code> in the problem body)
        <input name="request_id" id="request-id" value="{{request_id}}" required maxlength="256"></label>
        <button type="submit" id="explain">Explain</button>
        </form>
        {{#explained}}
        <section id="explanation" data-reason="{{reason}}">
        <h2>Request <code>{{request_id}}</code>: <span id="explain-verdict">{{verdict}} {{status}}{{#reason}} <code id="explain-reason">{{reason}}</code>{{/reason}}</span></h2>
        <dl>
        <dt>Request</dt><dd>{{method}} {{path}}{{#host}} (host {{host}}){{/host}}</dd>
        <dt>At</dt><dd>{{time}}</dd>
        <dt>Application</dt><dd>{{application}}{{#key_id}}, key <code>{{key_id}}</code>{{/key_id}}</dd>
        <dt>Route</dt><dd>{{route}}{{^route}}none matched{{/route}}</dd>
        <dt>Total</dt><dd>{{total}} ms</dd>
        </dl>
        {{#has_steps}}<h3>Checks, in order</h3>
        <ol id="explain-steps">{{#steps}}<li{{#deny}} class="deny"{{/deny}}><code>{{check}}</code> [{{type}}] {{outcome}}</li>{{/steps}}</ol>{{/has_steps}}
        {{#denied}}
        <h3>The decision</h3>
        <dl>
        {{#deciding}}<dt>Decided by</dt><dd>check <code>{{deciding}}</code></dd>{{/deciding}}
        <dt>Reason</dt><dd><code>{{reason}}</code>{{#reason_title}} — {{reason_title}}{{/reason_title}}</dd>
        {{#detail}}<dt>Detail</dt><dd id="explain-detail">{{detail}}</dd>{{/detail}}
        {{#has_required}}<dt>Required</dt><dd><ul id="explain-required">{{#required}}<li>{{.}}</li>{{/required}}</ul></dd>{{/has_required}}
        {{#has_presented}}<dt>Presented</dt><dd><ul id="explain-presented">{{#presented}}<li>{{.}}</li>{{/presented}}</ul></dd>{{/has_presented}}
        {{#hint}}<dt>Fix</dt><dd id="explain-hint">{{hint}}</dd>{{/hint}}
        {{#meaning}}<dt>About this reason</dt><dd>{{meaning}}{{#fix}} Typical fix: {{fix}}{{/fix}}</dd>{{/meaning}}
        {{#citation}}<dt>Behind it</dt><dd id="explain-citation">{{what}} by {{by}} at {{time}}{{#opinion}}: “{{opinion}}”{{/opinion}}</dd>{{/citation}}
        </dl>
        {{/denied}}
        <h3>As the operator's <code>gatehouse explain</code> prints it</h3>
        <pre id="explain-text">{{text}}</pre>
        <p class="muted" id="explain-withheld">Not shown here: {{#withheld}}{{.}}; {{/withheld}}ask an operator, who sees the whole record.</p>
        </section>
        {{/explained}}
        {{/body}}{{/layout}}
        """
}

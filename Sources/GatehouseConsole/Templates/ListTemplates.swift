extension ConsoleTemplates {
    /// A filter form (GET) and a table of cells, with the next page's link: the list pages.
    ///
    /// A filter is `{name, label, value, placeholder}` or, with `is_select`, `{name, label,
    /// options: [{value, label, selected}]}`. A cell is `{text}` with optional `href`, `code`,
    /// `time` (an ISO 8601 time: the script shows it in local time) and `num`.
    static let table = """
        {{#has_filters}}<form class="filters" method="get" action="{{action}}">
        {{#filters}}<label>{{label}}
        {{#is_select}}<select name="{{name}}" data-autosubmit>{{#options}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/options}}</select>{{/is_select}}
        {{^is_select}}<input name="{{name}}" value="{{value}}"{{#placeholder}} placeholder="{{placeholder}}"{{/placeholder}}>{{/is_select}}
        </label>
        {{/filters}}<button type="submit">Filter</button></form>{{/has_filters}}
        <table id="{{table_id}}"><thead><tr>{{#columns}}<th>{{.}}</th>{{/columns}}</tr></thead><tbody>
        {{#rows}}<tr>{{#cells}}<td{{#num}} class="num"{{/num}}>{{#href}}<a href="{{href}}">{{/href}}{{#code}}<code>{{/code}}{{#time}}<time datetime="{{time}}">{{text}}</time>{{/time}}{{^time}}{{text}}{{/time}}{{#code}}</code>{{/code}}{{#href}}</a>{{/href}}</td>{{/cells}}</tr>
        {{/rows}}{{^rows}}<tr><td colspan="{{column_count}}" class="muted">{{empty}}</td></tr>{{/rows}}
        </tbody></table>
        {{#next}}<p class="pager"><a id="next-page" href="{{next}}">Next page</a></p>{{/next}}
        """

    /// A list page: heading, intro, and the table.
    static let list = """
        {{<layout}}{{$body}}
        <h1>{{heading}}</h1>
        {{#intro}}<p class="muted">{{intro}}</p>{{/intro}}
        {{>table}}
        {{/body}}{{/layout}}
        """

    /// Subscriptions: the approval queue (pending applications to the services the admin may
    /// decide on), each with an opinion and approve / reject, then every subscription.
    static let subscriptions = """
        {{<layout}}{{$body}}
        <h1>Subscriptions</h1>
        <h2>Approval queue</h2>
        <table id="approval-queue"><thead><tr><th>Application</th><th>Service</th><th>Reason given</th><th>Applied</th><th>Decision</th></tr></thead><tbody>
        {{#queue}}<tr id="pending-{{id}}" data-application="{{application}}" data-service="{{service}}">
        <td>{{application}}</td><td>{{service}}</td><td>{{reason}}</td><td><time datetime="{{applied}}">{{applied}}</time></td>
        <td><form class="inline" method="post" action="/console/subscriptions/{{id}}/approve">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <input name="opinion" placeholder="Opinion (recorded in the audit log)" aria-label="Opinion">
        <button type="submit" class="approve">Approve</button>
        <button type="submit" class="danger reject" formaction="/console/subscriptions/{{id}}/reject">Reject</button>
        </form></td></tr>
        {{/queue}}{{^queue}}<tr><td colspan="5" class="muted">Nothing waits for a decision.</td></tr>{{/queue}}
        </tbody></table>
        {{#queue_more}}<p class="muted">More are waiting: <a href="{{queue_more}}">the rest of the queue</a>.</p>{{/queue_more}}
        <h2>All subscriptions</h2>
        {{>table}}
        {{/body}}{{/layout}}
        """

    /// One call-log record, explained as `gatehouse explain` does.
    static let call = """
        {{<layout}}{{$body}}
        <h1>Request <code id="request-id">{{request_id}}</code></h1>
        <p id="verdict" class="{{verdict_class}}">{{verdict}}</p>
        <pre class="explain" id="explanation">{{explanation}}</pre>
        <p><a href="/console/calls">The call log</a></p>
        {{/body}}{{/layout}}
        """
}

/// The console's templates, by name, as registered in `WebPages.library`. Each page template is
/// in a file of its own beside this one.
enum ConsoleTemplates {
    static let all: [String: String] = [
        "layout": layout,
        "refusal": refusal,
        "sign-in": signIn,
    ].merging(pages, uniquingKeysWith: { a, _ in a })

    /// The frame of every page: head (the stylesheet and script by their hashed names),
    /// navigation with the signed-in user and the sign-out form, and the page's `body` block.
    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{frame_title}} · Gatehouse</title>
        <link rel="stylesheet" href="{{asset_css}}">
        <script src="{{asset_js}}" defer></script>
        </head>
        <body>
        <header><nav>
        <span class="brand">Gatehouse</span>
        {{#frame_nav}}<a href="{{href}}"{{#current}} aria-current="page"{{/current}}>{{label}}</a>
        {{/frame_nav}}
        {{#frame_user}}<form class="sign-out" method="post" action="{{frame_sign_out}}">
        <span id="signed-in-user">{{frame_user}}</span>
        <input type="hidden" name="csrf" value="{{frame_csrf}}">
        <button type="submit" class="secondary">Sign out</button>
        {{#frame_sign_out_everywhere}}<button type="submit" class="secondary" id="sign-out-everywhere" formaction="{{frame_sign_out_everywhere}}">Sign out everywhere</button>
        {{/frame_sign_out_everywhere}}</form>{{/frame_user}}
        </nav></header>
        <main>
        {{$body}}{{/body}}
        </main>
        </body>
        </html>
        """

    /// A refusal, with the API's problem+json contract.
    static let refusal = """
        {{<layout}}{{$body}}
        <h1>{{status}} {{title}}</h1>
        <div class="refusal" id="refusal" data-reason="{{reason}}">
        <p id="refusal-detail">{{detail}}</p>
        <dl>
        <dt>Reason</dt><dd><code id="refusal-reason">{{reason}}</code>{{#meaning}} — {{meaning}}{{/meaning}}</dd>
        <dt>Check</dt><dd><code id="refusal-check">{{check}}</code></dd>
        {{#has_required}}<dt>Required</dt><dd><ul>{{#required}}<li>{{.}}</li>{{/required}}</ul></dd>{{/has_required}}
        {{#has_presented}}<dt>Presented</dt><dd><ul>{{#presented}}<li>{{.}}</li>{{/presented}}</ul></dd>{{/has_presented}}
        {{#hint}}<dt>Fix</dt><dd>{{hint}}</dd>{{/hint}}
        <dt>Request id</dt><dd><code id="refusal-request-id">{{request_id}}</code></dd>
        </dl>
        {{#sign_in}}<p><a href="{{sign_in}}">Sign in</a></p>{{/sign_in}}
        </div>
        {{/body}}{{/layout}}
        """

    /// The sign-in form. It carries no CSRF token (there is no session yet): the post is checked
    /// by its origin headers.
    static let signIn = """
        {{<layout}}{{$body}}
        <h1>Sign in to the console</h1>
        <form class="sign-in" method="post" action="/console/sign-in">
        <input type="hidden" name="next" value="{{next}}">
        <label>Admin user <input name="name" autocomplete="username" required autofocus></label>
        <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
        <button type="submit">Sign in</button>
        </form>
        {{/body}}{{/layout}}
        """
}

/// The console's stylesheet (served by `StaticAssets`; pages carry no inline style).
enum ConsoleCSS {
    static let text = """
        :root { --fg: #1d2330; --muted: #5b6475; --line: #d9dde5; --bg: #f6f7f9; --accent: #2f5da8; --deny: #b3261e; --ok: #1e7a3a; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
        header { background: #1d2330; color: #fff; }
        header nav { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 16px; padding: 8px 20px; }
        header nav .brand { font-weight: 600; margin-right: 12px; }
        header a { color: #cfd8ea; text-decoration: none; }
        header a[aria-current="page"] { color: #fff; border-bottom: 2px solid #fff; }
        header form.sign-out { margin-left: auto; display: flex; gap: 8px; align-items: center; }
        header form.sign-out span { color: #cfd8ea; }
        main { max-width: 1200px; margin: 0 auto; padding: 20px; }
        h1 { font-size: 20px; margin: 0 0 16px; }
        h2 { font-size: 16px; margin: 24px 0 8px; }
        table { border-collapse: collapse; width: 100%; background: #fff; }
        th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-weight: 600; color: var(--muted); }
        td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
        .figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 12px; margin-bottom: 16px; }
        .figure { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
        .figure .label { color: var(--muted); font-size: 12px; }
        .figure .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
        .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
        .charts figure { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
        .charts img { max-width: 100%; height: auto; }
        form.inline { display: inline-flex; gap: 6px; align-items: center; margin: 0; }
        form.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; margin-bottom: 12px; }
        form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
        input, select, button { font: inherit; padding: 4px 8px; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
        button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
        button.secondary { background: #fff; color: var(--accent); }
        button.danger { background: var(--deny); border-color: var(--deny); }
        .deny { color: var(--deny); font-weight: 600; }
        .ok { color: var(--ok); }
        .muted { color: var(--muted); }
        pre.explain { background: #fff; border: 1px solid var(--line); padding: 12px; overflow-x: auto; white-space: pre-wrap; }
        .refusal { background: #fff; border: 1px solid var(--line); border-left: 4px solid var(--deny); padding: 12px 16px; max-width: 760px; }
        .refusal dt { font-weight: 600; color: var(--muted); margin-top: 8px; }
        .refusal dd { margin: 2px 0 0; }
        .sign-in { max-width: 360px; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 16px; }
        .sign-in label { display: block; margin-bottom: 10px; }
        .sign-in input { width: 100%; }
        .pager { margin-top: 12px; }
        .period a { margin-right: 8px; }
        .period a[aria-current="page"] { font-weight: 600; }
        code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
        """
}

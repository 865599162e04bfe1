/// The configuration `gatehouse serve` uses when no file is given: everything local, nothing external.
/// Its upstream is the built-in demo upstream that `serve` starts alongside when it uses these defaults.
public enum DefaultConfig {
    public static let name = "(embedded defaults)"
    public static let demoUpstreamPort = 8081

    public static let yaml = """
        # Gatehouse embedded defaults: print with `gatehouse check --print-defaults`.
        listen: 127.0.0.1:8080
        store: { sqlite: gatehouse.db }
        log: { retention: 7d }
        upstreams:
          demo: { targets: [http://127.0.0.1:\(demoUpstreamPort)], timeout: 30s }
        routes:
          - name: hello
            match: { methods: [GET], path: /hello }
            upstream: demo
            policies: [local-only]
          - name: orders
            match: { methods: [GET, POST], path: "/orders/{id}" }
            upstream: demo
            policies: [local-only, api-key, json-only]
          - name: create-order
            match: { methods: [POST], path: /orders }
            upstream: demo
            policies: [local-only, api-key, json-only]
        policies:
          local-only: { type: ip, allow: [127.0.0.0/8, "::1/128"] }
          api-key: { type: api_key, header: X-API-Key }
          json-only: { type: request, methods: [GET, POST], content_types: [application/json], max_body: 1MiB, max_headers: 16KiB }
        """
}

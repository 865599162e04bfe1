# Scenario for bench/load: ip + api_key + rate_limit (per consumer, limits far above the load, so
# every request is counted and allowed: this measures the check's cost, not its refusals).
cat > "$WORK/gatehouse.yaml" <<CONF
listen: 127.0.0.1:$GH
store: { sqlite: $WORK/gatehouse.db }
upstreams:
  orders: { targets: ["http://127.0.0.1:$UP"] }
routes:
  - name: orders
    match: { methods: [GET, POST], path: "/orders/{id}" }
    upstream: orders
    policies: [office-ip, api-key, per-consumer]
policies:
  office-ip: { type: ip, allow: [127.0.0.0/8, 10.0.0.0/8] }
  api-key: { type: api_key, header: X-API-Key }
  per-consumer: { type: rate_limit, key: [consumer], limits: [{ rate: 1000000/second, burst: 1000000 }, { rate: 1000000000/hour }] }
CONF
"$GATEHOUSE_BIN" consumers create bench --store "$WORK/gatehouse.db" >/dev/null
KEY=$("$GATEHOUSE_BIN" keys create --consumer bench --quiet --store "$WORK/gatehouse.db")
HEADER=(-H "X-API-Key: $KEY")

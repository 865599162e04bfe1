# Scenario for bench/load: jwt + scopes on the route (RS256 tokens verified against a JWKS file).
# Sourced by bench/load with $WORK, $GH, $UP and $GATEHOUSE_BIN set; writes $WORK/gatehouse.yaml and sets HEADER.
python3 -c 'import jwt, cryptography' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check 'PyJWT>=2.8' 'cryptography>=41'
TOKEN=$(python3 - "$WORK" <<'PY'
import json, sys, time, jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
work = sys.argv[1]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
jwk.update({"kid": "bench-1", "alg": "RS256", "use": "sig"})
json.dump({"keys": [jwk]}, open(f"{work}/jwks.json", "w"))
now = int(time.time())
print(jwt.encode({"iss": "https://issuer.bench", "aud": "orders", "sub": "svc-bench", "iat": now, "exp": now + 3600,
                  "scope": "orders:read orders:write"}, key, algorithm="RS256", headers={"kid": "bench-1"}))
PY
)
cat > "$WORK/gatehouse.yaml" <<CONF
listen: 127.0.0.1:$GH
store: { sqlite: $WORK/gatehouse.db }
upstreams:
  orders: { targets: ["http://127.0.0.1:$UP"] }
routes:
  - name: orders
    match: { methods: [GET, POST], path: "/orders/{id}" }
    upstream: orders
    policies: [bearer, orders-read]
policies:
  bearer: { type: jwt, jwks_file: $WORK/jwks.json, algorithms: [RS256], issuer: "https://issuer.bench", audience: orders }
  orders-read: { type: scopes, require: [orders:read] }
CONF
HEADER=(-H "Authorization: Bearer $TOKEN")

#!/usr/bin/env bash
# Measures durable ingest with wrk on loopback: mailroom serve on a fresh
# SQLite file, a "custom" HMAC source with no connections (ingest only) or,
# with DELIVER=1, connected to a local sink. Usage:
#   scripts/bench-ingest.sh [DURATION] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-10s}"; conns="${2:-50}"
tmp="$(mktemp -d)"; trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
go build -o "$tmp/mailroom" ./cmd/mailroom
secret=bench-secret
# Unique ids: more bodies than wrk will send in the run, so every request is new.
python3 - "$tmp/bodies.tsv" "$secret" <<'PY'
import hmac, hashlib, json, sys
path, secret = sys.argv[1], sys.argv[2].encode()
pad = "x" * 900
with open(path, "w") as f:
    for i in range(600000):
        body = json.dumps({"id": f"evt_{i}", "type": "bench.event", "pad": pad}, separators=(",", ":"))
        sig = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
        f.write(f"evt_{i}\t{body}\t{sig}\n")
PY
conn=""
if [ "${DELIVER:-0}" = 1 ]; then
  python3 -c '
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204); self.send_header("Content-Length","0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", 9911), H).serve_forever()' &
  conn="destinations: [{name: sink, url: http://127.0.0.1:9911/, max_concurrency: 32}]
connections: [{source: custom, destination: sink}]"
fi
cat > "$tmp/bench.yaml" <<YAML
listen: 127.0.0.1:9910
storage: sqlite://$tmp/bench.db
log: {level: warn}
sources:
  - name: custom
    verify: {type: hmac, header: X-Signature, algorithm: sha256, encoding: hex, secret: $secret}
    dedup: {key: body.id}
$conn
YAML
"$tmp/mailroom" serve --config "$tmp/bench.yaml" &
for _ in $(seq 50); do curl -sf 127.0.0.1:9910/readyz >/dev/null && break; sleep 0.1; done
BODIES="$tmp/bodies.tsv" wrk -t1 -c"$conns" -d"$dur" --latency -s scripts/ingest.lua http://127.0.0.1:9910/
curl -s "127.0.0.1:9910/api/v1/requests?limit=1" >/dev/null

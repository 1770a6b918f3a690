#!/usr/bin/env bash
# Measures durable ingest with wrk against N mailroom instances sharing one
# PostgreSQL schema (a fresh one, dropped at exit), the way
# scripts/bench-ingest.sh does for SQLite: a "custom" HMAC source with no
# connections, 1 KiB bodies with unique ids. One wrk per instance, each
# with CONNECTIONS/N connections and its own ids; the figure is their sum.
# Usage:
#   scripts/bench-ingest-pg.sh [INSTANCES] [DURATION] [CONNECTIONS]
# PG defaults to postgres://root@127.0.0.1:5432/test?sslmode=disable.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1}"; dur="${2:-10s}"; conns="${3:-50}"
pg="${PG:-postgres://$(id -un)@127.0.0.1:5432/test?sslmode=disable}"
schema="mailroom_bench_$$"
tmp="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; psql "$pg" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" 2>/dev/null; rm -rf "$tmp"' EXIT
go build -o "$tmp/mailroom" ./cmd/mailroom
secret=bench-secret
python3 - "$tmp" "$secret" "$n" <<'PY'
import hmac, hashlib, json, sys
tmp, secret, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
pad = "x" * 900
for k in range(n):
    with open(f"{tmp}/bodies{k}.tsv", "w") as f:
        for i in range(300000 // n):
            body = json.dumps({"id": f"evt_{k}_{i}", "type": "bench.event", "pad": pad}, separators=(",", ":"))
            sig = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
            f.write(f"x\t{body}\t{sig}\n")
PY
for k in $(seq 0 $((n - 1))); do
  cat > "$tmp/bench$k.yaml" <<YAML
listen: 127.0.0.1:$((9920 + k))
storage: "$pg&search_path=$schema"
log: {level: warn}
sources:
  - name: custom
    verify: {type: hmac, header: X-Signature, algorithm: sha256, encoding: hex, secret: $secret}
    dedup: {key: body.id}
YAML
  "$tmp/mailroom" serve --config "$tmp/bench$k.yaml" &
  for _ in $(seq 100); do curl -sf "127.0.0.1:$((9920 + k))/readyz" >/dev/null && break; sleep 0.1; done
done
for k in $(seq 0 $((n - 1))); do
  BODIES="$tmp/bodies$k.tsv" wrk -t1 -c"$((conns / n))" -d"$dur" --latency -s scripts/ingest.lua "http://127.0.0.1:$((9920 + k))/" > "$tmp/wrk$k.out" &
  pids="${pids:-} $!"
done
wait $pids
for k in $(seq 0 $((n - 1))); do echo "== instance $k"; grep -E "Requests/sec|50%|99%|Non-2xx" "$tmp/wrk$k.out"; done
awk '/Requests\/sec/ {s += $2} END {printf "== total: %.0f requests/s over %d instance(s)\n", s, '"$n"'}' "$tmp"/wrk*.out

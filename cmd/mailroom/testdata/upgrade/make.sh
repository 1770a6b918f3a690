#!/usr/bin/env bash
# Makes the upgrade fixture with the real code of an earlier release:
# builds mailroom at COMMIT (default 6485fcc, the last commit before schema
# versions were shown), runs it on a fresh SQLite database, sends webhooks
# (delivered, dead, duplicate), creates MCP tasks through the API (one
# completed by an event, one still waiting), stops it cleanly, and keeps
# the database plus what that binary's API said about every row.
# TestUpgradeFromPreviousSchema opens the database with today's binary and
# checks it reads every row back the same.
#
#   cmd/mailroom/testdata/upgrade/make.sh [COMMIT]   (from the repository root)
set -euo pipefail
commit="${1:-6485fcc}"
root="$(git rev-parse --show-toplevel)"
out="$root/cmd/mailroom/testdata/upgrade/$commit"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

git -C "$root" archive "$commit" | tar -x -C "$work" --one-top-level=src
(cd "$work/src" && go build -o "$work/mailroom" ./cmd/mailroom)

# A destination that answers 200, and one that refuses connections.
python3 -c '
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"])); self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", 18399), H).serve_forever()' &

cat >"$work/mailroom.yaml" <<YAML
listen: 127.0.0.1:18398
storage: sqlite://$work/mailroom.db
sources:
  - name: custom
    verify: {type: hmac, header: X-Signature, algorithm: sha256, encoding: hex, secret: testsecret}
    dedup: {key: 'body.id'}
destinations:
  - name: ok
    url: http://127.0.0.1:18399/hooks
  - name: down
    url: http://127.0.0.1:1/hooks
    retry: {max_attempts: 2, initial: 50ms, max: 100ms}
connections:
  - {source: custom, destination: ok}
  - {source: custom, destination: down, filter: 'body.type == "order.paid"'}
YAML
"$work/mailroom" serve --config "$work/mailroom.yaml" 2>"$work/log" &
pid=$!
api=http://127.0.0.1:18398
for _ in $(seq 100); do curl -sf "$api/healthz" >/dev/null && break; sleep 0.1; done

send() { # id type
  local body="{\"id\":\"$1\",\"type\":\"$2\",\"data\":{\"order\":\"$1\",\"amount\":42}}"
  local sig; sig="$(printf '%s' "$body" | openssl dgst -sha256 -hmac testsecret -hex | sed 's/^.* //')"
  curl -sf "$api/e/custom" -H "X-Signature: $sig" -H 'Content-Type: application/json' -d "$body"; echo
}
curl -sf "$api/api/v1/tasks" -H 'Content-Type: application/json' -d '{"source":"custom","type":"order.paid","match":{"data.order":"o-2"},"timeout":"8760h","ttl":"87600h"}'; echo
curl -sf "$api/api/v1/tasks" -H 'Content-Type: application/json' -d '{"source":"custom","type":"order.refunded","timeout":"8760h","ttl":"87600h"}'; echo
send o-1 order.created
send o-2 order.paid
send o-2 order.paid   # a duplicate
send o-3 order.shipped
# Wait until every delivery is finished (succeeded or dead).
for _ in $(seq 200); do
  [ "$(curl -sf "$api/api/v1/deliveries?status=pending" | jq '.data | length')" = 0 ] && break; sleep 0.1
done

mkdir -p "$out"
for path in sources destinations connections requests events deliveries tasks; do
  curl -sf "$api/api/v1/$path?limit=500" | jq -S . >"$out/$path.json"
done
for id in $(jq -r '.data[].id' "$out/deliveries.json"); do
  curl -sf "$api/api/v1/deliveries/$id/attempts" | jq -S '{id: "'"$id"'", attempts: .}'
done | jq -s . >"$out/attempts.json"
kill -TERM "$pid"; wait "$pid"
[ ! -s "$work/mailroom.db-wal" ] || { echo "WAL not checkpointed at shutdown" >&2; exit 1; }
cp "$work/mailroom.db" "$out/mailroom.db"
echo "$commit" >"$out/COMMIT"
git -C "$root" rev-parse "$commit" >>"$out/COMMIT"
ls -la "$out"

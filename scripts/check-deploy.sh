#!/usr/bin/env bash
# Lints the deployment examples (run by .ci/run):
#  - deploy/compose/compose.yaml with docker-compose's own validation
#    (`docker-compose config`), and its Caddyfile with `caddy validate`;
#  - deploy/kubernetes, rendered by `kubectl kustomize`, with kubeconform in
#    strict mode against the JSON schemas of the Kubernetes API, made from
#    the OpenAPI document in the k8s.io/kubernetes module (no schema
#    download: only the Go module proxy is reachable here). Unknown fields,
#    wrong types and missing required fields fail.
set -euo pipefail
cd "$(dirname "$0")/.."
K8S=k8s.io/kubernetes@v1.32.4
KUBECONFORM=github.com/yannh/kubeconform/cmd/kubeconform@v0.7.0
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "check-deploy: FAIL: $*" >&2; exit 1; }

echo "== compose"
POSTGRES_PASSWORD=lint MAILROOM_API_TOKEN=lint docker-compose -f deploy/compose/compose.yaml config -q ||
  fail "docker-compose config rejects deploy/compose/compose.yaml"
services="$(POSTGRES_PASSWORD=lint MAILROOM_API_TOKEN=lint docker-compose -f deploy/compose/compose.yaml config --services | sort | tr '\n' ' ')"
[ "$services" = "mailroom-1 mailroom-2 postgres proxy " ] || fail "compose services are: $services"
if command -v caddy >/dev/null; then
  caddy validate --adapter caddyfile --config deploy/compose/Caddyfile >/dev/null 2>"$work/caddy.log" ||
    fail "caddy validate: $(cat "$work/caddy.log")"
  echo "compose.yaml and Caddyfile: valid"
else
  [ "${CI:-}" != true ] || fail "caddy is needed under CI=true"
  echo "compose.yaml: valid (caddy not installed: Caddyfile not validated)"
fi

echo "== kubernetes"
kubectl kustomize deploy/kubernetes >"$work/rendered.yaml"
swagger="$(go mod download -json "$K8S" | jq -r .Dir)/api/openapi-spec/swagger.json"
# Strict schemas: every object with properties allows no others; the two
# types the OpenAPI document leaves as bare strings accept numbers too.
jq -c '.definitions
  | .["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
  | .["io.k8s.apimachinery.pkg.api.resource.Quantity"] = {"oneOf": [{"type": "string"}, {"type": "number"}]}
  | walk(if type == "object" and has("properties") and (has("additionalProperties") | not)
         then .additionalProperties = false else . end)' "$swagger" >"$work/definitions.json"
mkdir "$work/schemas"
# One file per kind, named as kubeconform looks it up: kind[-group]-version.json.
jq -r '.definitions | to_entries[] | select(.value["x-kubernetes-group-version-kind"] != null)
  | .key as $name | .value["x-kubernetes-group-version-kind"][]
  | [$name, (.kind | ascii_downcase) + (if .group == "" then "" else "-" + (.group | split(".")[0]) end) + "-" + .version] | @tsv' \
  "$swagger" >"$work/kinds.tsv"
for kind in $(grep -E '^kind: ' "$work/rendered.yaml" | awk '{print $2}' | sort -u); do
  lower="$(tr 'A-Z' 'a-z' <<<"$kind")"
  grep -P "\t${lower}(-[a-z0-9]+)?-v[0-9a-z]+\$" "$work/kinds.tsv" | while IFS=$'\t' read -r def file; do
    jq -c --arg name "$def" '{"$ref": ("#/definitions/" + $name), "definitions": .}' "$work/definitions.json" >"$work/schemas/$file.json"
  done
done
go run "$KUBECONFORM" -strict -summary -schema-location "$work/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" "$work/rendered.yaml" ||
  fail "kubeconform rejects deploy/kubernetes"
# The probes the issue asks for, and the Secret they read.
for want in 'path: /healthz' 'path: /readyz' 'kind: Secret' 'kind: Service' 'kind: Deployment'; do
  grep -q "$want" "$work/rendered.yaml" || fail "deploy/kubernetes lacks $want"
done
echo "check-deploy: ok"

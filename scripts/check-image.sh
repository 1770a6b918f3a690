#!/usr/bin/env bash
# Builds the container image (scripts/image.sh) and runs it with podman
# (run by .ci/run): /healthz answers with the image's version, the image's
# HEALTHCHECK passes, the server runs as uid 65532, it is configured by
# environment alone (a source created through the token-protected API, a
# webhook ingested), `mailroom backup` works inside it, the database lives
# in the /data volume and outlives the container, and CA certificates are
# in place.
#
# Where podman cannot run containers on this machine it says why and stops
# without failing: TestContainerEntrypoint (cmd/mailroom) runs the image's
# entrypoint and environment without a container either way.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-image: FAIL: $*" >&2; exit 1; }
tag="mailroom:check-$$"
name="mailroom-check-$$"
vol="mailroom-check-$$"
port="${CHECK_IMAGE_PORT:-18683}"
token="check-image-token-0123456789"
podman_flags=()
run_flags=(--network host)
cleanup() {
  podman "${podman_flags[@]}" rm -f -v "$name" "$name-2" "$name-c" >/dev/null 2>&1 || true
  podman "${podman_flags[@]}" volume rm -f "$vol" >/dev/null 2>&1 || true
  podman "${podman_flags[@]}" rmi -f "$tag" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Storage: overlay where the kernel allows it, else vfs.
if probe_ctr="$(buildah from scratch 2>/dev/null)"; then
  buildah rm "$probe_ctr" >/dev/null
else
  export STORAGE_DRIVER=vfs
  echo "check-image: overlay storage unavailable, using vfs"
fi
scripts/image.sh --tag "$tag"

# Run flags: plain podman first; in a container without systemd, cgroup v2
# or CAP_SYS_RESOURCE (this sandbox), cgroupfs, runc and limits no higher
# than the current ones.
probe() { podman "${podman_flags[@]}" run --rm "${run_flags[@]}" "$tag" version >/dev/null 2>"$1"; }
err="$(mktemp)"
if ! probe "$err"; then
  podman_flags=(--cgroup-manager=cgroupfs)
  run_flags=(--network host --runtime runc --ulimit "nofile=$(ulimit -n):$(ulimit -n)" --ulimit "nproc=4096:4096")
  if ! probe "$err"; then
    echo "check-image: podman cannot run containers here, the image was built but not run: $(tail -1 "$err")"
    echo "check-image: TestContainerEntrypoint covers the same entrypoint without a container"
    exit 0
  fi
fi
# Without systemd, podman logs that it cannot schedule the HEALTHCHECK
# timer on every run and stop; `podman healthcheck run` below runs it.
p() { podman "${podman_flags[@]}" "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }

want_version="$(p run --rm "${run_flags[@]}" "$tag" version --json | jq -r .version)"
p run -d --name "$name" "${run_flags[@]}" -v "$vol:/data" \
  -e MAILROOM_LISTEN="127.0.0.1:$port" -e MAILROOM_API_TOKEN="$token" "$tag" >/dev/null
api="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$api/healthz" >/dev/null && break; sleep 0.1; done
health="$(curl -sf "$api/healthz")" || fail "no /healthz: $(p logs "$name" 2>&1 | tail -5)"
[ "$(jq -r .version <<<"$health")" = "$want_version" ] || fail "/healthz says $health, want version $want_version"
p healthcheck run "$name" || fail "the image's HEALTHCHECK fails"
user="$(p top "$name" user huser | tail -1)"
grep -Eq '(mailroom|65532)' <<<"$user" || fail "not running as uid 65532: $user"

# Configured by environment alone: the admin API needs the token.
code="$(curl -s -o /dev/null -w '%{http_code}' "$api/api/v1/sources")"
[ "$code" = 401 ] || fail "admin API without the token answered $code, want 401"
auth=(-H "Authorization: Bearer $token")
curl -sf "${auth[@]}" -H 'Content-Type: application/json' "$api/api/v1/sources" -d '{"name":"hooks","verify":{"type":"none"}}' >/dev/null || fail "create a source"
curl -sf "$api/e/hooks" -H 'Content-Type: application/json' -d '{"id":"image-check-1"}' >/dev/null || fail "ingest"

# An online backup taken inside the running container, as its user.
p exec "$name" /usr/bin/mailroom backup /data/backup.db >/dev/null || fail "mailroom backup in the container"

# The database and the backup are in the volume, owned by the image's
# user, and a new container on the same volume sees the event.
p stop -t 10 "$name" >/dev/null
mount="$(p volume inspect "$vol" --format '{{.Mountpoint}}')"
for f in mailroom.db backup.db; do
  owner="$(stat -c %u "$mount/$f")"
  [ "$owner" = 65532 ] || fail "$f in the volume is owned by $owner, want 65532"
done
p run -d --name "$name-2" "${run_flags[@]}" -v "$vol:/data" \
  -e MAILROOM_LISTEN="127.0.0.1:$port" -e MAILROOM_API_TOKEN="$token" "$tag" >/dev/null
for _ in $(seq 100); do curl -sf "$api/healthz" >/dev/null && break; sleep 0.1; done
events="$(curl -sf "${auth[@]}" "$api/api/v1/events")" || fail "list events after restart"
[ "$(jq '.data | length' <<<"$events")" = 1 ] || fail "the event did not outlive its container: $events"
p stop -t 10 "$name-2" >/dev/null

# CA certificates, for HTTPS destinations.
p create --name "$name-c" "$tag" >/dev/null
certs="$(p cp "$name-c:/etc/ssl/certs/ca-certificates.crt" - | wc -c)"
p rm -f -v "$name-c" >/dev/null
[ "$certs" -gt 10000 ] || fail "CA certificates missing from the image"
echo "check-image: ok ($tag, $want_version, uid 65532, /data volume, healthcheck, env-only config)"

#!/usr/bin/env bash
# Builds mailroom's container image with buildah, from scratch: no base
# image is pulled. It holds the static linux binary that scripts/release.sh
# builds, the host's CA certificates (Debian's ca-certificates), an
# /etc/passwd naming the non-root user 65532, and /data (a volume, owned by
# that user) for the SQLite database. It is configured by environment alone
# (packaging/container.env holds the defaults), and its HEALTHCHECK runs
# `mailroom healthcheck`. See docs/deploy.md#container.
#
#   scripts/image.sh [--arch amd64|arm64] [--tag mailroom:dev] [--binary PATH] [--archive FILE.tar]
#
# --binary uses an already built static binary; --archive also writes the
# image as a docker-archive tarball (podman load / docker load).
set -euo pipefail
cd "$(dirname "$0")/.."
arch="$(go env GOARCH)"
tag=""
binary=""
archive=""
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --archive) archive="$2"; shift 2 ;;
    *) echo "usage: $0 [--arch amd64|arm64] [--tag NAME:TAG] [--binary PATH] [--archive FILE.tar]" >&2; exit 2 ;;
  esac
done
command -v buildah >/dev/null || { echo "image.sh: buildah is needed (apt-get install buildah)" >&2; exit 1; }
certs=/etc/ssl/certs/ca-certificates.crt
[ -s "$certs" ] || { echo "image.sh: $certs missing (apt-get install ca-certificates)" >&2; exit 1; }

work="$(mktemp -d)"
ctr=""
trap '[ -z "$ctr" ] || buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
if [ -z "$binary" ]; then
  scripts/release.sh --targets "linux/$arch" --out "$work/dist" >/dev/null
  binary="$(ls "$work"/dist/build/*/mailroom)"
fi
version="$("$binary" version --json 2>/dev/null | sed -n 's/.*"version": "\(.*\)".*/\1/p' || true)"
[ -n "$version" ] || version="$(go version -m "$binary" | awk '$1=="mod"{print $3}')"
tag="${tag:-mailroom:$version}"
epoch="$(git log -1 --format=%ct HEAD)"

# The image's few files besides the binary.
mkdir -p "$work/root/etc" "$work/root/data"
echo 'mailroom:x:65532:65532:mailroom:/data:/sbin/nologin' >"$work/root/etc/passwd"
echo 'mailroom:x:65532:' >"$work/root/etc/group"
chmod 0700 "$work/root/data"

export BUILDAH_FORMAT=docker
ctr="$(buildah from scratch)"
buildah copy --quiet --chmod 0755 "$ctr" "$binary" /usr/bin/mailroom
buildah copy --quiet --chmod 0644 "$ctr" "$certs" /etc/ssl/certs/ca-certificates.crt
buildah copy --quiet --chmod 0644 "$ctr" "$work/root/etc/passwd" /etc/passwd
buildah copy --quiet --chmod 0644 "$ctr" "$work/root/etc/group" /etc/group
buildah copy --quiet --chown 65532:65532 "$ctr" "$work/root/data" /data
envs=()
while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  envs+=(--env "$line")
done <packaging/container.env
buildah config \
  "${envs[@]}" \
  --os linux --arch "$arch" \
  --user 65532:65532 \
  --workingdir /data \
  --volume /data \
  --port 8080/tcp \
  --entrypoint '["/usr/bin/mailroom"]' \
  --cmd '["serve"]' \
  --healthcheck 'CMD /usr/bin/mailroom healthcheck' \
  --healthcheck-interval 10s --healthcheck-timeout 5s --healthcheck-retries 3 --healthcheck-start-period 5s \
  --label org.opencontainers.image.title=mailroom \
  --label org.opencontainers.image.description="Webhook gateway and MCP server" \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.revision="$(git rev-parse HEAD)" \
  --label org.opencontainers.image.source=https://github.com/mailroomhq/mailroom \
  "$ctr"
# Docker format keeps the HEALTHCHECK (OCI images have no such field); the
# commit time is the image's creation time, so rebuilds are reproducible.
buildah commit --quiet --format docker --timestamp "$epoch" "$ctr" "$tag" >/dev/null
echo "image.sh: built $tag ($(buildah images --format '{{.Size}}' "$tag"))"
if [ -n "$archive" ]; then
  rm -f "$archive"
  buildah push --quiet "$tag" "docker-archive:$archive:$tag"
  echo "image.sh: wrote $archive"
fi

#!/usr/bin/env bash
# Builds mailroom's release artifacts into dist/ (docs/deploy.md#release-builds):
#   mailroom_<version>_<os>_<arch>.tar.gz     static binary (CGO_ENABLED=0), README, deploy guide
#   mailroom_<version>_<os>_<arch>.cdx.json   CycloneDX SBOM of that binary (modules and versions)
#   mailroom_<version>_linux_<arch>.deb/.rpm  the binary, a hardened systemd unit, /etc/mailroom
#   SHA256SUMS                                checksums of all the above
# Reproducible: -trimpath, no build id, the build date is the commit time,
# and archives and packages are stamped with it (SOURCE_DATE_EPOCH), so the
# same commit gives the same bytes.
#
#   scripts/release.sh [--version v1.2.3] [--targets "linux/amd64 darwin/arm64"] [--out DIR]
#
# Defaults: the version is the tag on HEAD (git describe), else a Go-style
# pseudo-version; targets are linux and darwin on amd64 and arm64. nfpm and
# cyclonedx-gomod are run at pinned versions from the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
CYCLONEDX=github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0
targets="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64"
out=dist
version=""
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version="$2"; shift 2 ;;
    --targets) targets="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--version vX.Y.Z] [--targets \"os/arch ...\"] [--out DIR]" >&2; exit 2 ;;
  esac
done

commit="$(git rev-parse HEAD)"
epoch="$(git log -1 --format=%ct HEAD)"
date="$(TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd HEAD)"
dirty=""
git diff --quiet HEAD -- 2>/dev/null || dirty="-dirty"
if [ -z "$version" ]; then
  version="$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null || true)"
  if [ -z "$version" ]; then
    version="v0.0.0-$(TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd HEAD)-${commit:0:12}"
  fi
  version="$version$dirty"
fi
case "$version" in v[0-9]*) ;; *) echo "version $version must look like v1.2.3" >&2; exit 2 ;; esac
export SOURCE_DATE_EPOCH="$epoch"

pkg=github.com/mailroomhq/mailroom/internal/buildinfo
ldflags="-s -w -buildid= -X $pkg.version=$version -X $pkg.commit=$commit -X $pkg.date=$date"
rm -rf "$out"
mkdir -p "$out/build"
echo "== mailroom $version ($commit, $date) for: $targets"

for target in $targets; do
  os="${target%/*}" arch="${target#*/}"
  name="mailroom_${version}_${os}_${arch}"
  dir="$out/build/$name"
  mkdir -p "$dir"
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" GOFLAGS=-buildvcs=false \
    go build -trimpath -ldflags "$ldflags" -o "$dir/mailroom" ./cmd/mailroom
  cp README.md "$dir/"
  cp docs/deploy.md "$dir/"
  # A tar whose bytes depend only on the files: sorted, fixed times and owners.
  find "$dir" -exec touch -h -d "@$epoch" {} +
  tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=gnu \
    -C "$out/build" -cf - "$name" | gzip -n -9 >"$out/$name.tar.gz"
  go run "$CYCLONEDX" bin -json -noserial -notimestamp -version "$version" \
    -output "$out/$name.cdx.json" "$dir/mailroom"
  if [ "$os" = linux ]; then
    # nfpm expands ${VAR} in version and arch, not in file sources.
    sed "s|\${NFPM_BINARY}|$dir/mailroom|" packaging/nfpm.yaml >"$out/build/nfpm_$arch.yaml"
    for packager in deb rpm; do
      NFPM_ARCH="$arch" NFPM_VERSION="${version#v}" \
        go run "$NFPM" package --config "$out/build/nfpm_$arch.yaml" --packager "$packager" \
        --target "$out/${name}.${packager}" >/dev/null
    done
  fi
  echo "   $target: $(du -h "$dir/mailroom" | cut -f1) binary"
done

(cd "$out" && sha256sum -- *.tar.gz *.cdx.json $(ls *.deb *.rpm 2>/dev/null) >SHA256SUMS)
echo "== $out/SHA256SUMS"
cat "$out/SHA256SUMS"

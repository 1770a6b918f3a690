#!/usr/bin/env bash
# Proves the release build works (run by .ci/run): builds linux/amd64 with
# scripts/release.sh, checks the checksums, the SBOM, the .deb (metadata,
# files, the binary's version), the systemd unit (systemd-analyze verify
# and an offline security score), and that a second build of the same
# commit from another directory gives the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "check-release: FAIL: $*" >&2; exit 1; }

scripts/release.sh --targets linux/amd64 --out "$work/dist"
dist="$work/dist"
(cd "$dist" && sha256sum --quiet -c SHA256SUMS) || fail "checksums do not match"
deb="$(ls "$dist"/*_linux_amd64.deb)"
ls "$dist"/*_linux_amd64.rpm "$dist"/*_linux_amd64.tar.gz >/dev/null || fail "missing .rpm or .tar.gz"

# SBOM: CycloneDX naming the main module and some of its dependencies.
sbom="$(ls "$dist"/*_linux_amd64.cdx.json)"
jq -e '.bomFormat == "CycloneDX" and (.metadata.component.name | test("mailroom")) and
       ([.components[].name] | index("modernc.org/sqlite") != null)' "$sbom" >/dev/null || fail "SBOM $sbom lacks expected content"

# The package: metadata, files, the binary it installs and its version.
info="$(dpkg-deb --info "$deb")"
grep -q 'Package: mailroom' <<<"$info" || fail "deb metadata: $info"
contents="$(dpkg-deb --contents "$deb")"
for f in ./usr/bin/mailroom ./usr/lib/systemd/system/mailroom.service ./usr/lib/sysusers.d/mailroom.conf ./etc/mailroom/mailroom.yaml ./etc/mailroom/mailroom.env; do
  grep -q " $f\$" <<<"$contents" || fail "deb lacks $f"
done
grep -q -- '-rw------- root/root .* ./etc/mailroom/mailroom.env$' <<<"$contents" || fail "mailroom.env is not 0600"
conffiles="$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)"
grep -qx '/etc/mailroom/mailroom.yaml' <<<"$conffiles" || fail "config is not a conffile: $conffiles"
root="$work/root"
dpkg-deb -x "$deb" "$root"
kind="$(file "$root/usr/bin/mailroom")"
grep -q 'statically linked' <<<"$kind" || fail "binary is not static: $kind"
want_version="$(basename "$deb" | sed -E 's/^mailroom_(v[^_]+)_linux_amd64\.deb$/\1/')"
got_version="$("$root/usr/bin/mailroom" version --json | jq -r .version)"
[ "$got_version" = "$want_version" ] || fail "binary says version $got_version, package $want_version"
"$root/usr/bin/mailroom" version

# The unit: systemd-analyze verify (with ExecStart pointing at the
# extracted binary, which it checks) must print nothing, and the offline
# security exposure must stay low.
if command -v systemd-analyze >/dev/null; then
  mkdir "$work/unit"
  sed "s|/usr/bin/mailroom|$root/usr/bin/mailroom|" "$root/usr/lib/systemd/system/mailroom.service" >"$work/unit/mailroom.service"
  verify="$(systemd-analyze verify "$work/unit/mailroom.service" 2>&1)" || fail "systemd-analyze verify: $verify"
  [ -z "$verify" ] || fail "systemd-analyze verify: $verify"
  systemd-analyze security --offline=yes --threshold=20 "$work/unit/mailroom.service" | tail -1 ||
    fail "the unit's security exposure is above 2.0"
else
  echo "check-release: systemd-analyze not installed; unit not verified"
  [ "${CI:-}" != true ] || fail "systemd-analyze is needed under CI=true"
fi

# Reproducible: the same commit built from a clone elsewhere.
git clone -q . "$work/clone"
git -C "$work/clone" checkout -q "$(git rev-parse HEAD)"
if git diff --quiet HEAD --; then
  (cd "$work/clone" && scripts/release.sh --targets linux/amd64 --out "$work/dist2" >/dev/null)
  diff <(cut -d' ' -f1 "$dist/SHA256SUMS") <(cut -d' ' -f1 "$work/dist2/SHA256SUMS") >/dev/null ||
    fail "a second build of the same commit differs"
  echo "check-release: reproducible (a clone's build has the same SHA256SUMS)"
else
  echo "check-release: work tree has uncommitted changes; reproducibility not checked"
fi
echo "check-release: ok"

#!/bin/sh
# Stops the service before its files go; on an upgrade (deb: "upgrade",
# rpm: $1 = 1) the new package's postinstall restarts it instead.
case "$1" in
  upgrade|1) exit 0 ;;
esac
if [ -d /run/systemd/system ]; then
  systemctl disable --now mailroom.service >/dev/null 2>&1 || true
fi
exit 0

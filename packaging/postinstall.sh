#!/bin/sh
# Creates the service's system user, then makes systemd see the unit;
# enabling and starting it is the operator's call (systemctl enable --now
# mailroom), after editing /etc/mailroom.
if command -v systemd-sysusers >/dev/null 2>&1; then
  systemd-sysusers /usr/lib/sysusers.d/mailroom.conf
elif ! getent passwd mailroom >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/mailroom --no-create-home \
    --shell /usr/sbin/nologin --comment "mailroom webhook gateway" mailroom
fi
# systemd's StateDirectory= makes it too; this serves other init systems.
install -d -o mailroom -g mailroom -m 0700 /var/lib/mailroom
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
  # An upgrade restarts a running service on the new binary (serve applies
  # pending migrations when it starts).
  systemctl try-restart mailroom.service >/dev/null 2>&1 || true
fi
exit 0

#!/bin/sh
# Makes systemd see the unit; enabling and starting it is the operator's
# call (systemctl enable --now mailroom), after editing /etc/mailroom.
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
  # An upgrade restarts a running service on the new binary (serve applies
  # pending migrations when it starts).
  systemctl try-restart mailroom.service >/dev/null 2>&1 || true
fi
exit 0

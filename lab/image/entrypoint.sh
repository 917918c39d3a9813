#!/bin/sh
# PID 2 of a lab host (tini is PID 1 and reaps whatever postgres leaves behind).
# Starts sshd, and postgres when the lab's data directory exists, so a restarted container brings
# its node back. On `docker stop` (SIGTERM), stops postgres cleanly (fast) before the container ends.
set -u
PGDATA=/var/lib/postgresql/15/lab
PG_CTL=/usr/lib/postgresql/15/bin/pg_ctl
PGLOG=/var/log/postgresql/lab.log
# A fenced node (an old primary taken out of service) must not come back on a container restart.
FENCE=/var/lib/postgresql/15/lab.fenced

mkdir -p /run/sshd /run/postgresql /var/log/postgresql /etc/pg-switchover
# This host's own settings, outside the data directory so a base backup does not copy them:
# cluster_name is how a write through the VIP tells which node committed it.
echo "cluster_name = '$(hostname)'" > /etc/pg-switchover/node.conf
chown postgres:postgres /run/postgresql /var/log/postgresql
ssh-keygen -A >/dev/null
/usr/sbin/sshd || echo "entrypoint: sshd did not start" >&2

running() { runuser -u postgres -- "$PG_CTL" -D "$PGDATA" status >/dev/null 2>&1; }

stop() {
  if running; then runuser -u postgres -- "$PG_CTL" -D "$PGDATA" -m fast -w -t 60 stop; fi
  exit 0
}
trap stop TERM INT

if [ -e "$FENCE" ]; then
  echo "entrypoint: $FENCE exists: postgres left stopped (fenced)" >&2
elif [ -f "$PGDATA/PG_VERSION" ]; then
  # A container stopped hard leaves a stale pid file; pg_ctl start copes with that itself.
  runuser -u postgres -- "$PG_CTL" -D "$PGDATA" -l "$PGLOG" -w -t 120 start \
    || echo "entrypoint: postgres did not start, see $PGLOG" >&2
fi

# `lab up` waits for this before it starts or inspects postgres itself (/run is a tmpfs).
mkdir -p /run/pg-switchover && touch /run/pg-switchover/entrypoint-done

# `wait` returns when a trapped signal arrives, so the trap runs at once.
sleep infinity &
wait $!

#!/bin/sh
# Writes the configuration `lab up --pooler` renders (lab/pooler.ts) and runs pgbouncer in the
# foreground, logging to stderr (`docker logs pg-switchover-pooler`). A restart of the container
# is a restart of the pooler host: every client and server connection is dropped.
set -eu
: "${PGBOUNCER_INI:?the container needs PGBOUNCER_INI (lab/pooler.ts renders it)}"
: "${PGBOUNCER_USERS:?the container needs PGBOUNCER_USERS (lab/pooler.ts renders it)}"
printf '%s\n' "$PGBOUNCER_INI" > /etc/pgbouncer/pgbouncer.ini
printf '%s\n' "$PGBOUNCER_USERS" > /etc/pgbouncer/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini

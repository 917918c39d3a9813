#!/usr/bin/env bash
# Everything pg-switchover needs on this machine, idempotent, each part skipped when present:
#   1. the npm dependencies (npm ci, again when package-lock.json changed);
#   2. PostgreSQL 15's binaries, which the host-command tests run (Debian's postgresql-15,
#      installed without creating or starting a cluster);
#   3. Debian's chromium, which renders compare's HTML report in a test;
#   4. a running Docker engine for the lab (scripts/ensure-docker.sh).
# Needs root (or passwordless sudo) only for what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund >&2
fi

if [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
  say "installing postgresql-15 (binaries only: no cluster is created or started)"
  as_root mkdir -p /etc/postgresql-common
  [ -e /etc/postgresql-common/createcluster.conf ] \
    || echo 'create_main_cluster = false' | as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
  as_root apt-get update -q >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-15 >&2
fi

if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium (headless, for the screenshot of compare's HTML report)"
  as_root apt-get update -q >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >&2
fi

bash scripts/ensure-docker.sh

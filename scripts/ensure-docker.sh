#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, so the lab can run.
# Idempotent: does nothing when `docker info` already answers.
#   1. installs docker.io and debootstrap with apt-get when missing (the lab's base image is
#      bootstrapped from Debian's archive, since no container registry is reachable);
#   2. starts dockerd in the background when it is not running;
#   3. waits, with a deadline, until `docker info` answers.
# Exits non-zero with a message on stderr when any of that fails.
set -euo pipefail

DEADLINE_SECONDS="${DOCKER_START_DEADLINE:-60}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"

say() { echo "ensure-docker: $*" >&2; }
fail() { say "ERROR: $*"; exit 1; }

engine_answers() { docker info >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

install_missing_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
  [ "${#missing[@]}" -eq 0 ] && return 0
  # De-duplicate (docker.io may be listed twice).
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "installing ${missing[*]} with apt-get"
  as_root apt-get update -q >&2 || fail "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 \
    || fail "apt-get install ${missing[*]} failed"
}

dockerd_running() { pgrep -x dockerd >/dev/null 2>&1; }

start_dockerd() {
  local dockerd_bin
  dockerd_bin="$(command -v dockerd || echo /usr/sbin/dockerd)"
  [ -x "$dockerd_bin" ] || fail "dockerd not found after installing docker.io"
  say "starting dockerd in the background (log: $DOCKERD_LOG)"
  # Every descriptor beyond stdio is closed first: dockerd outlives this script, and an inherited
  # one (a lock the caller holds, say) would be held for dockerd's lifetime.
  # shellcheck disable=SC2016 # expanded by the inner bash
  as_root bash -c 'for fd in /proc/self/fd/*; do n=${fd##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-" 2>/dev/null; done
    nohup "$0" >>"$1" 2>&1 </dev/null &' "$dockerd_bin" "$DOCKERD_LOG" \
    || fail "could not start dockerd"
}

wait_for_engine() {
  local waited=0
  until engine_answers; do
    if [ "$waited" -ge "$DEADLINE_SECONDS" ]; then
      say "last lines of $DOCKERD_LOG:"
      tail -n 20 "$DOCKERD_LOG" >&2 2>/dev/null || true
      fail "Docker engine did not answer \`docker info\` within ${DEADLINE_SECONDS}s"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "Docker engine is up (after ${waited}s)"
}

main() {
  if engine_answers; then
    install_missing_packages # debootstrap may still be missing on a machine with a running engine
    say "Docker engine already answers"
    return 0
  fi
  install_missing_packages
  dockerd_running || start_dockerd
  wait_for_engine
}

main "$@"

#!/bin/sh
# Writes the image's apt sources: bookworm (+updates) from $1 and bookworm-security from $2,
# both read from the building machine's own apt sources (nothing is hard-coded).
set -eu
mirror="$1"
security="$2"
[ -n "$mirror" ] && [ -n "$security" ] || { echo "usage: $0 MIRROR SECURITY" >&2; exit 2; }
rm -f /etc/apt/sources.list
cat > /etc/apt/sources.list.d/debian.sources <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES

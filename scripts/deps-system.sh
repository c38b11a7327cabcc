#!/usr/bin/env bash
# Installs the Debian packages that the browser tests drive (headless Chromium and its driver),
# wrk, the HTTP load generator of make bench's P2, and PgBouncer, which the PgBouncer tests, CI and
# `make pgbouncer` run as a process of their own.
# Idempotent: does nothing when all of them are already installed. Needs root (or sudo) only
# when something is missing, so `make test` never needs it.
set -euo pipefail

# fonts-liberation is only a recommendation of chromium's, but without it screenshots lack text.
packages=(chromium chromium-driver fonts-liberation wrk pgbouncer)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for package in "${packages[@]}"; do
  installed "$package" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps-system: ${packages[*]} are installed."
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps-system: run as root to install ${missing[*]}." >&2; exit 1; }
  sudo=(sudo)
fi
echo "deps-system: installing ${missing[*]} with apt-get."
"${sudo[@]}" apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
chromium --version
chromedriver --version
pgbouncer --version | sed -n 1p

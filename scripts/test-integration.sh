#!/usr/bin/env bash
# Integration suite: everything that needs system packages or real servers.
# Installs what it needs from Debian (apt) itself, so it passes on a fresh machine; servers listen on loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages needed by the suites (added as suites appear).
APT_PACKAGES=(openssl)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

npx tsc -b
npx vitest run --project integration --passWithNoTests

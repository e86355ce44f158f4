#!/usr/bin/env bash
# Installs Debian's chromium if it is missing, for the admin live page's
# browser test (internal/browsertest), and prints its version.
# Idempotent: with chromium on PATH it installs nothing.
# Usage: scripts/chromium.sh
set -euo pipefail

log() { printf 'chromium.sh: %s\n' "$*" >&2; }

if ! command -v chromium >/dev/null; then
  log "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
chromium --version

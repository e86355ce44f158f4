#!/usr/bin/env bash
# Installs Debian's chromium if it is missing, for the browser tests of the
# admin live page and the waiting room (internal/browsertest), with a font
# for Korean, and prints its version.
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
# Korean glyphs, for the waiting room's Korean strings in screenshots.
if ! dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
  log "installing Debian's fonts-noto-cjk"
  export DEBIAN_FRONTEND=noninteractive
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get install -y -qq --no-install-recommends fonts-noto-cjk >/dev/null ||
    { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends fonts-noto-cjk >/dev/null; }
fi
chromium --version

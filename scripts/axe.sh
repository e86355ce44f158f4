#!/usr/bin/env bash
# Fetches axe-core, the accessibility checker the browser tests run inside
# the waiting-room page (internal/browsertest), from the npm registry into
# .cache/axe/VERSION/, once, and prints the path of its axe.min.js.
# Idempotent: with the file there it fetches nothing.
# Usage: export COUPONQ_AXE_JS=$(scripts/axe.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=4.14.1
dir=$root/.cache/axe/$version
if [ ! -s "$dir/axe.min.js" ]; then
  command -v npm >/dev/null || { echo "axe.sh: npm is needed to fetch axe-core" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "axe-core@$version" >/dev/null && tar -xzf "axe-core-$version.tgz")
  mkdir -p "$dir"
  cp "$tmp/package/axe.min.js" "$tmp/package/LICENSE" "$dir/"
fi
echo "$dir/axe.min.js"

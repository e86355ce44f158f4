#!/usr/bin/env bash
# Fails when git tracks a binary or a file larger than 1 MB: build outputs
# belong in .gitignore, not in the repository a newcomer clones. Images under
# docs/ (the screenshots the README shows) are the exception.
set -euo pipefail
cd "$(dirname "$0")/.."
limit=$((1024 * 1024))
bad=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  case "$f" in docs/*.png|docs/*.svg|docs/*.jpg) continue ;; esac
  size=$(stat -c %s "$f")
  if [ "$size" -gt "$limit" ]; then
    echo "tracked file over 1 MB: $f ($size bytes)"; bad=1
  fi
  # A binary: git's own test (numstat shows "-" for binary content).
  if [ "$(git diff --no-index --numstat /dev/null "$f" 2>/dev/null | cut -f1)" = "-" ]; then
    echo "tracked binary file: $f"; bad=1
  fi
done < <(git ls-files -z)
exit $bad

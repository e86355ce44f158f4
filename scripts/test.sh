#!/usr/bin/env bash
# The project's whole test run: what `make test` and CI execute.
# It needs Go (and gcc, for -race); it installs and starts the servers the
# integration tests use (Redis, via scripts/redis.sh), idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "core packages build without cgo"
CGO_ENABLED=0 go build ./couponq/... ./lock/... ./dispatch/... ./issuer/...

step "servers"
scripts/redis.sh start >/dev/null
# shellcheck disable=SC1091
. .cache/servers/redis/env
echo "redis standalone $COUPONQ_REDIS_ADDR, cluster $COUPONQ_REDIS_CLUSTER"

step "go test -race"
go test -race -count=1 -timeout 20m ./...

step "quickstart"
go run ./examples/quickstart

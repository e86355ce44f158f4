#!/usr/bin/env bash
# The project's whole test run: what `make test` and CI execute.
# It needs Go (and gcc, for -race); it installs and starts the servers the
# integration tests use (Redis via scripts/redis.sh, a real Kafka broker via
# scripts/kafka.sh, PostgreSQL via scripts/postgres.sh), idempotently.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "gofmt"
# Tracked and new (untracked, not ignored) files, nested modules included.
unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

step "tracked files: no binaries, nothing over 1 MB (docs/ images excepted)"
scripts/tracked-files.sh

step "go vet"
go vet ./...
(cd examples/bench && go vet ./...) # the benchmark tool is its own module (its tests run with the servers below)
(cd examples/redis-kafka && go vet ./...) # so is the Redis + Kafka example (it pulls in pgx)
for m in gin chi echo; do (cd examples/$m && go vet ./... && go test -race -count=1 ./...); done

step "core packages build without cgo (only the Kafka transport needs cgo)"
core=$(go list ./couponq/... ./lock/... ./dispatch/... ./issuer/... ./node/... ./internal/... | grep -v -e /kafkadispatch -e /internal/kafkatest)
CGO_ENABLED=0 go build $core
if go list -deps $core | grep -q confluent-kafka-go; then
  echo "a core package imports confluent-kafka-go"; exit 1
fi
# Optional dependencies live in nested modules: the core module requires none of them.
if grep -qE 'jackc/pgx|prometheus|opentelemetry|chromedp|redis_rate|golang.org/x/time' go.mod; then
  echo "the core go.mod requires an optional dependency (it belongs in a nested module)"; exit 1
fi

step "the surface a host touches"
# The exported identifiers of the library packages (885 before the one
# runtime object; the issue's bound is 590), and the production example's
# wiring (at most 40 lines, at most 6 couponq import paths).
go run ./internal/cmd/apisurface -max 590 | tail -1
go run ./internal/cmd/wiringcount -max-lines 40 -max-imports 6 examples/production/main.go
# Every Go snippet in the README builds as shown, and its production wiring is the example's.
go run ./internal/cmd/readmecheck

step "servers"
scripts/redis.sh start >/dev/null
# shellcheck disable=SC1091
. .cache/servers/redis/env
scripts/kafka.sh start 1 >/dev/null
scripts/kafka.sh start 3 >/dev/null
# shellcheck disable=SC1091
. .cache/servers/kafka-1/env
# shellcheck disable=SC1091
. .cache/servers/kafka-3/env
scripts/postgres.sh start >/dev/null
# shellcheck disable=SC1091
. .cache/servers/postgres/env
scripts/chromium.sh >/dev/null # Debian's chromium, for the browser tests
COUPONQ_AXE_JS=$(scripts/axe.sh) # axe-core from npm, the browser tests' accessibility check
export COUPONQ_AXE_JS
echo "redis standalone $COUPONQ_REDIS_ADDR, cluster $COUPONQ_REDIS_CLUSTER"
echo "kafka $COUPONQ_KAFKA_BROKERS, 3-broker cluster $COUPONQ_KAFKA_CLUSTER"
echo "postgres $COUPONQ_POSTGRES_DSN"

step "go test -race"
# internal/fcfstest and internal/hostiletest run in steps of their own,
# verbosely, so their figures show.
pkgs=$(go list ./... | grep -v -e /internal/fcfstest -e /internal/hostiletest)
go test -race -count=1 -timeout 20m $pkgs

step "first come, first served on Redis and Kafka: the exact cutoff (internal/fcfstest)"
# go test's status decides, never grep's: a pass shows the figures (the
# fcfs: lines) and the verdicts, a failure shows everything.
fcfs_out=$(mktemp)
if go test -race -count=1 -timeout 10m -v -run TestFirstComeFirstServed ./internal/fcfstest >"$fcfs_out" 2>&1; then
  grep -E 'fcfs: |^ *--- (PASS|FAIL|SKIP)|^(PASS|FAIL)$|^ok ' "$fcfs_out" || true
  rm -f "$fcfs_out"
else
  cat "$fcfs_out"; rm -f "$fcfs_out"; exit 1
fi

step "hostile clients on Redis: unknown campaign IDs cost nothing (internal/hostiletest, 200,000 requests, no -race)"
hostile_out=$(mktemp)
if go test -count=1 -timeout 5m -v ./internal/hostiletest >"$hostile_out" 2>&1; then
  grep -E 'hostile: |^ *--- (PASS|FAIL|SKIP)|^(PASS|FAIL)$|^ok ' "$hostile_out" || true
  rm -f "$hostile_out"
else
  cat "$hostile_out"; rm -f "$hostile_out"; exit 1
fi

step "examples/bench (its own module): the benchmark tool's sections, briefly, on the servers above"
(cd examples/bench && go test -race -count=1 ./...)

step "couponq/pgstore (its own module: go vet ./... in the root does not descend into it)"
(cd couponq/pgstore && go vet ./... && go test -race -count=1 -timeout 10m ./...)

step "couponq/metrics/prom (its own module, so client_golang stays out of the core's requirements)"
(cd couponq/metrics/prom && go vet ./... && go test -race -count=1 ./...)

step "couponq/ratelimit (its own module, so x/time/rate and redis_rate stay out of the core's requirements)"
(cd couponq/ratelimit && go vet ./... && go test -race -count=1 ./...)

step "couponq/tracing (its own module, so OpenTelemetry stays out of the core's requirements; its Redis journey uses the servers above)"
(cd couponq/tracing && go vet ./... && go test -race -count=1 ./...)

step "internal/browsertest: the live page and the waiting room in headless chromium, axe-core inside (its own module, for chromedp)"
browser_out=$(mktemp)
if (cd internal/browsertest && go vet ./... && go test -race -count=1 -v ./...) >"$browser_out" 2>&1; then
  grep -E 'browser: |^ *--- (PASS|FAIL|SKIP)|^(PASS|FAIL)$|^ok ' "$browser_out" || true
  rm -f "$browser_out"
else
  cat "$browser_out"; rm -f "$browser_out"; exit 1
fi

step "examples/production (its own module): the production wiring, run briefly on the servers above"
(cd examples/production && go vet ./... && go test -race -count=1 ./...)

step "examples/redis-kafka (its own module): the fault run's invariant checker, against the Postgres and Kafka above"
(cd examples/redis-kafka && go test -race -count=1 ./...)

step "fuzz (each target briefly; scripts/fuzz.sh 60s for the reliability runs)"
scripts/fuzz.sh 5s

step "quickstart"
go run ./examples/quickstart

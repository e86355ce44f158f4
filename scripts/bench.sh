#!/usr/bin/env bash
# Regenerates BENCHMARKS.md, CAPACITY.md, docs/benchmarks/results.json and the plots in
# one run on this machine: starts Redis, Kafka and Postgres (scripts/redis.sh,
# scripts/kafka.sh, scripts/postgres.sh), installs wrk if missing, runs
# examples/bench.
# Takes several minutes; not part of CI. Extra arguments go to the tool,
# e.g. scripts/bench.sh -duration 5s -conc 100,1000; scripts/bench.sh -capacity-only
# rewrites CAPACITY.md alone (its calibration runs and checks).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi
scripts/redis.sh start >/dev/null
scripts/kafka.sh start 1 >/dev/null
scripts/postgres.sh start >/dev/null
. .cache/servers/redis/env
. .cache/servers/kafka-1/env
. .cache/servers/postgres/env
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(cd examples/bench && go build -o ../../.cache/bench .)
exec .cache/bench "$@"

#!/usr/bin/env bash
# couponq's reliability suite: fuzzes every target, then runs
# examples/redis-kafka/faultrun — hostile clients against one api, Redis
# durability under kill -9 in each mode, a Redis Cluster master killed mid-sale
# (with and without -redis-replica-acks), then the production shape (2 apis, 2 workers, Redis with AOF,
# 3-broker Kafka RF 3 / min.insync 2, PostgreSQL Store, toxiproxy) under a
# schedule of faults with 100,000 users — and writes RELIABILITY.md.
# Too long for CI (about 15 minutes); CI runs the fuzz targets briefly and
# the checker's tests.
#
#   scripts/reliability.sh                       # everything; rewrites RELIABILITY.md
#   FUZZTIME=10s scripts/reliability.sh -users 20000 -arrival 40s -out /tmp/R.md   # a smaller run
#   FUZZTIME=0 scripts/reliability.sh -durability '' -failover=false -skip-fleet -out /tmp/hostile.md  # hostile clients only, ~70 s
#   FUZZTIME=0 scripts/reliability.sh -durability '' -hostile=false -skip-fleet -out /tmp/failover.md # the Cluster failover only, ~2.5 min
#
# Flags after the script's name go to faultrun (see its -help). Starts (or
# reuses) the servers with the scripts beside this one; everything listens on
# 127.0.0.1 only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
FUZZTIME=${FUZZTIME:-60s}

scripts/redis.sh start >/dev/null # installs redis-server; faultrun runs Redis servers of its own
scripts/kafka.sh start 3 >/dev/null
scripts/postgres.sh start >/dev/null
scripts/toxiproxy.sh start >/dev/null
# shellcheck disable=SC1091
. .cache/servers/redis/env
# shellcheck disable=SC1091
. .cache/servers/kafka-3/env
# shellcheck disable=SC1091
. .cache/servers/postgres/env
# shellcheck disable=SC1091
. .cache/servers/toxiproxy/env
export COUPONQ_KAFKA_CLUSTER COUPONQ_KAFKA_PROXY_ROUTES COUPONQ_POSTGRES_DSN COUPONQ_TOXIPROXY COUPONQ_TOXIPROXY_VERSION

dir=$(mktemp -d "${TMPDIR:-/tmp}/couponq-reliability.XXXX")
echo "reliability: logs and records in $dir"

fuzzlog=$dir/fuzz.log
if [ "$FUZZTIME" != 0 ]; then
  echo "== fuzz, $FUZZTIME per target"
  scripts/fuzz.sh "$FUZZTIME" 2>&1 | tee "$fuzzlog.full"
  grep -E '^(ok|FAIL|fuzz)' "$fuzzlog.full" > "$fuzzlog" || cp "$fuzzlog.full" "$fuzzlog"
fi

echo "== build"
(cd examples/redis-kafka && go build -o "$dir/" ./api ./worker ./faultrun)

echo "== faultrun"
command=scripts/reliability.sh
for a in "$@"; do command+=" $(printf '%q' "$a")"; done
args=(-root "$root" -bin "$dir" -dir "$dir" -out "$root/RELIABILITY.md" -command "$command")
[ "$FUZZTIME" != 0 ] && args+=(-fuzz-log "$fuzzlog")
cd examples/redis-kafka
"$dir/faultrun" "${args[@]}" "$@"

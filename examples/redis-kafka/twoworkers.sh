#!/usr/bin/env bash
# Two workers beside one api, a crowd of distinct users larger than the
# stock, and a `kill -9` of the worker whose scheduler leads, mid-run;
# prints the final counts.
#
#   examples/redis-kafka/twoworkers.sh            # Store in Postgres (scripts/postgres.sh)
#   examples/redis-kafka/twoworkers.sh redis      # Store in the Redis that holds the line
#   examples/redis-kafka/twoworkers.sh memory     # each worker its own in-memory Store: over-issues
#
# Knobs (environment): STOCK=5000 USERS=20000 CONC=200 REPEAT=0 (fraction of
# users who press twice) BATCH=50 INTERVAL=100ms
# KILL_AT=2500 (kill -9 the leading worker once the Store issued that many;
# 0: no kill) KILL=leader (or worker-1, worker-2: which one to kill)
# RESTART=0 (1: start a replacement worker 5s after the kill) LEADER_TTL=2s
# (the scheduler's leader lease) TIMEOUT=180
# (seconds the whole run may take) PG_DSN (a Postgres of your own; default:
# the one scripts/postgres.sh runs). Starts Redis, Kafka (and Postgres) with
# the scripts in scripts/, reusing running ones; every run uses a fresh
# Redis prefix, campaign (created through the api's admin handler) and Kafka
# topic. Logs stay in the printed directory.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
store=${1:-postgres}
STOCK=${STOCK:-5000} USERS=${USERS:-20000} CONC=${CONC:-200} REPEAT=${REPEAT:-0}
BATCH=${BATCH:-50} INTERVAL=${INTERVAL:-100ms}
KILL_AT=${KILL_AT:-2500} KILL=${KILL:-leader} RESTART=${RESTART:-0} LEADER_TTL=${LEADER_TTL:-2s} TIMEOUT=${TIMEOUT:-180}
case $store in postgres | redis | memory) ;; *) echo "usage: $0 [postgres|redis|memory]" >&2; exit 2 ;; esac
[ "$store" = memory ] && KILL_AT=${KILL_AT_MEMORY:-0} # the point there is the over-issue, not the kill

say() { printf '\n== %s\n' "$*"; }

"$root/scripts/redis.sh" start >/dev/null
"$root/scripts/kafka.sh" start 1 >/dev/null
# shellcheck disable=SC1091
. "$root/.cache/servers/redis/env"
# shellcheck disable=SC1091
. "$root/.cache/servers/kafka-1/env"
if [ "$store" = postgres ] && [ -n "${PG_DSN:-}" ]; then
  export COUPONQ_POSTGRES_DSN=$PG_DSN
elif [ "$store" = postgres ]; then
  "$root/scripts/postgres.sh" start >/dev/null
  # shellcheck disable=SC1091
  . "$root/.cache/servers/postgres/env"
fi

run=tw-$(date +%H%M%S)-$$
dir=$(mktemp -d "${TMPDIR:-/tmp}/couponq-$run.XXXX")
go build -o "$dir/" ./api ./worker ./load ./count ./campaign
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
# A fresh admin token for this run: the api refuses to start without one.
COUPONQ_ADMIN_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export COUPONQ_ADMIN_TOKEN

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
deadline=$((SECONDS + TIMEOUT))

infra=(-redis "$COUPONQ_REDIS_ADDR" -prefix "$run")
kafka=(-kafka "$COUPONQ_KAFKA_BROKERS" -topic "$run")
wflags=("${infra[@]}" "${kafka[@]}" -store "$store" -leader-ttl "$LEADER_TTL")
count=("$dir/count" "${infra[@]}" -store "$store" -campaign "$run")
worker() { # worker NAME: starts a worker logging to $dir/NAME.log, sets $wpid
  "$dir/worker" "${wflags[@]}" >"$dir/$1.log" 2>&1 &
  wpid=$!
  pids+=("$wpid")
}

say "run $run: store=$store stock=$STOCK users=$USERS batch=$BATCH interval=$INTERVAL (logs in $dir)"
"$dir/api" "${infra[@]}" "${kafka[@]}" -addr "127.0.0.1:$port" >"$dir/api.log" 2>&1 &
api=$!
pids+=("$api")
worker worker-1; w1=$wpid
worker worker-2; w2=$wpid
until grep -q "api serving" "$dir/api.log"; do
  [ $SECONDS -lt $deadline ] || { echo "api did not start"; cat "$dir/api.log"; exit 1; }
  sleep 0.1
done
until grep -q "worker running" "$dir/worker-1.log" && grep -q "worker running" "$dir/worker-2.log"; do
  [ $SECONDS -lt $deadline ] || { echo "workers did not start"; tail "$dir"/worker-*.log; exit 1; }
  sleep 0.1
done
echo "api pid $api on 127.0.0.1:$port, worker-1 pid $w1, worker-2 pid $w2"
echo "\$ campaign create -id $run -stock $STOCK -batch $BATCH -interval $INTERVAL"
"$dir/campaign" -admin "http://127.0.0.1:$port/admin" create -id "$run" -stock "$STOCK" -batch "$BATCH" -interval "$INTERVAL"

"$dir/load" -addr "127.0.0.1:$port" -campaigns "$run" -users "$USERS" -conc "$CONC" -repeat "$REPEAT" \
  -timeout "$((TIMEOUT - 30))s" >"$dir/load.log" 2>&1 &
load=$!
pids+=("$load")

if [ "$KILL_AT" -gt 0 ]; then
  while :; do
    n=$("${count[@]}" -issued 2>/dev/null || echo 0)
    [ "$n" -ge "$KILL_AT" ] && break
    kill -0 "$load" 2>/dev/null || { echo "load ended before the Store reached $KILL_AT"; break; }
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for $KILL_AT issuances"; exit 1; }
    sleep 0.05
  done
  victim=$KILL
  if [ "$victim" = leader ]; then # the one worker whose scheduler holds the leader lease
    victim=$(grep -l 'msg="couponq: scheduler leads"' "$dir/worker-1.log" "$dir/worker-2.log" | head -n 1 | xargs -r basename | sed 's/\.log$//' || true)
    victim=${victim:-worker-2}
  fi
  case $victim in worker-1) vpid=$w1 ;; worker-2) vpid=$w2 ;; *) echo "KILL=$KILL: want leader, worker-1 or worker-2"; exit 2 ;; esac
  kill -9 "$vpid"
  wait "$vpid" 2>/dev/null || true # reap it quietly
  echo "kill -9 $victim (pid $vpid, the scheduler's leader: $(grep -q 'scheduler leads' "$dir/$victim.log" && echo yes || echo no)) at store_issued=$n, $(date -u +%H:%M:%S.%3N)"
  if [ "$RESTART" = 1 ]; then
    sleep 5
    worker worker-3
    echo "started worker-3 (pid $wpid)"
  fi
fi

while kill -0 "$load" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "timed out waiting for the load"; exit 1; }
  sleep 0.5
done
wait "$load" || true
# Every admitted user has an outcome now, but a sold-out campaign's line is
# emptied by the scheduler at BATCH per INTERVAL (the users in it already
# read "rejected, sold out" from their status): wait for it to be empty.
drain=$SECONDS
until "${count[@]}" | grep -q ' waiting=0 in_flight=0'; do
  [ $SECONDS -lt $deadline ] || { echo "timed out waiting for the line to drain"; break; }
  sleep 0.5
done
drained="line and flight empty $((SECONDS - drain))s after the load ended"

say "load"
cat "$dir/load.log"
echo "$drained"
say "workers (SIGTERM the survivors)"
for p in "${pids[@]}"; do
  [ "$p" = "${vpid:-}" ] && continue
  kill -TERM "$p" 2>/dev/null || true
done
cleanup
pids=()
for f in "$dir"/worker-*.log; do
  echo "-- $(basename "$f" .log)"
  grep -E 'msg="worker running"|msg="the memory Store|msg="couponq: scheduler leads"' "$f" || true
  grep -E 'msg=OVER-ISSUE' "$f" | sed -n '1p;$p' || true
  grep -E 'msg=progress' "$f" | tail -n 1 || true
  grep -E 'msg="worker stopped"' "$f" || echo "(no \"worker stopped\" line: killed)"
done
say "final counts"
final=$("${count[@]}")
echo "$final"
reports=$(cat "$dir"/worker-*.log | grep -c 'msg=OVER-ISSUE' || true)
echo "over-issue reports (OnOverIssue calls, all workers): $reports"
field() { sed -nE "s/(^|.* )$1=([0-9]+).*/\2/p" <<<"$2" | head -n 1; }
summary=$(grep '^summary all' "$dir/load.log" || true)
recorded=$(field recorded_issued "$final")
told=$(field issued "$summary")
problems=()
[ "$recorded" -le "$STOCK" ] || problems+=("over-issued: $recorded recorded issuances for a stock of $STOCK")
[ "$reports" = 0 ] || problems+=("the over-issue detector fired $reports times")
[ "$told" = "$recorded" ] || problems+=("load saw issued=$told, the line recorded $recorded")
[ "$(field still_waiting "$summary")" = 0 ] || problems+=("users still waiting")
[ "$(field failed "$summary")" = 0 ] || problems+=("failed entries")
[ "$(field waiting "$final")" = 0 ] && [ "$(field in_flight "$final")" = 0 ] || problems+=("entries left in line or in flight")
if [ "$store" != memory ]; then
  issued=$(field store_issued "$final")
  [ "$issued" = "$recorded" ] || problems+=("the Store issued $issued, the line recorded $recorded")
  [ "$(field distinct_holders "$final")" = "$issued" ] || problems+=("holders differ from issuances")
fi
if [ ${#problems[@]} = 0 ]; then
  echo "RESULT ok: $recorded issued for a stock of $STOCK, every admitted user decided, no over-issue"
else
  printf 'RESULT problem: %s\n' "${problems[@]}"
  exit 1
fi

#!/usr/bin/env bash
# A fleet: two api processes and two worker processes serving three
# campaigns at once, created through the admin API; one of them is paused
# mid-run and resumed. Prints what the admin API showed and the final counts.
#
#   examples/redis-kafka/fleet.sh            # Store in Postgres (scripts/postgres.sh)
#   examples/redis-kafka/fleet.sh redis      # Store in the Redis that holds the line
#
# Knobs (environment): USERS=10000 CONC=200 REPEAT=0.1 (fraction of users who
# press twice) ARRIVAL=10s (users arrive evenly over this long)
# PAUSE_AT=3 PAUSE_FOR=4 (seconds after the load starts, and for how long,
# the second campaign is paused) LEADER_TTL=2s TIMEOUT=240 (seconds the
# whole run may take) PG_DSN (a Postgres of your own; default: the one
# scripts/postgres.sh runs). Starts Redis, Kafka (and Postgres) with the
# scripts in scripts/, reusing running ones; every run uses a fresh Redis
# prefix, Kafka topic and campaign IDs. Everything listens on 127.0.0.1 only.
# Logs stay in the printed directory.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
store=${1:-postgres}
USERS=${USERS:-10000} CONC=${CONC:-200} REPEAT=${REPEAT:-0.1} ARRIVAL=${ARRIVAL:-10s}
PAUSE_AT=${PAUSE_AT:-3} PAUSE_FOR=${PAUSE_FOR:-4} LEADER_TTL=${LEADER_TTL:-2s} TIMEOUT=${TIMEOUT:-240}
case $store in postgres | redis) ;; *) echo "usage: $0 [postgres|redis]" >&2; exit 2 ;; esac

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

tag=$(date +%H%M%S)
run=fl-$tag-$$
dir=$(mktemp -d "${TMPDIR:-/tmp}/couponq-$run.XXXX")
go build -o "$dir/" ./api ./worker ./load ./count ./campaign
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
port1=$(freeport)
port2=$(freeport)
while [ "$port2" = "$port1" ]; do port2=$(freeport); done
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
start() { # start NAME PROGRAM FLAGS...: runs it logging to $dir/NAME.log
  local name=$1 prog=$2
  shift 2
  "$dir/$prog" "$@" >"$dir/$name.log" 2>&1 &
  pids+=("$!")
  echo "$name pid $!"
}
admin1=(-admin "http://127.0.0.1:$port1/admin")
admin2=(-admin "http://127.0.0.1:$port2/admin")
campaign() { "$dir/campaign" "$@"; }

say "run $run: store=$store users=$USERS arrival=$ARRIVAL repeat=$REPEAT (logs in $dir)"
kafka=(-kafka "$COUPONQ_KAFKA_BROKERS" -topic "$run")
start api-1 api "${infra[@]}" "${kafka[@]}" -addr "127.0.0.1:$port1"
start api-2 api "${infra[@]}" "${kafka[@]}" -addr "127.0.0.1:$port2"
wflags=("${infra[@]}" "${kafka[@]}" -store "$store" -leader-ttl "$LEADER_TTL")
start worker-1 worker "${wflags[@]}"
start worker-2 worker "${wflags[@]}"
until grep -q "api serving" "$dir/api-1.log" && grep -q "api serving" "$dir/api-2.log"; do
  [ $SECONDS -lt $deadline ] || { echo "the apis did not start"; tail "$dir"/api-*.log; exit 1; }
  sleep 0.1
done
until grep -q "worker running" "$dir/worker-1.log" && grep -q "worker running" "$dir/worker-2.log"; do
  [ $SECONDS -lt $deadline ] || { echo "workers did not start"; tail "$dir"/worker-*.log; exit 1; }
  sleep 0.1
done
echo "api-1 on 127.0.0.1:$port1, api-2 on 127.0.0.1:$port2"

gold=gold-$tag silver=silver-$tag bronze=bronze-$tag
say "create three campaigns through the admin API (gold and silver via api-1, bronze via api-2)"
echo "\$ campaign create -id $gold -stock 4000 -batch 100 -interval 200ms"
campaign "${admin1[@]}" create -id "$gold" -stock 4000 -batch 100 -interval 200ms >/dev/null
echo "\$ campaign create -id $silver -stock 1000 -batch 50 -interval 250ms"
campaign "${admin1[@]}" create -id "$silver" -stock 1000 -batch 50 -interval 250ms >/dev/null
echo "\$ campaign create -id $bronze -stock 500 -batch 20 -interval 100ms"
campaign "${admin2[@]}" create -id "$bronze" -stock 500 -batch 20 -interval 100ms >/dev/null
echo "\$ campaign list     # via api-2"
campaign "${admin2[@]}" list
# Give each api's catalog cache time to forget that these IDs were unknown
# (the cache remembers "unknown" for 1s; nobody asked before, but be sure).
sleep 1.1

say "load: $USERS users over both apis and the three campaigns, arriving over $ARRIVAL"
t0=${EPOCHREALTIME/./}
"$dir/load" -addr "127.0.0.1:$port1,127.0.0.1:$port2" -campaigns "$gold,$silver,$bronze" -users "$USERS" \
  -conc "$CONC" -repeat "$REPEAT" -arrival "$ARRIVAL" -timeout "$((TIMEOUT - 60))s" >"$dir/load.log" 2>&1 &
load=$!
pids+=("$load")
at() { awk -v now="${EPOCHREALTIME/./}" -v t0="$t0" 'BEGIN { printf "t=%5.1fs", (now - t0) / 1e6 }'; }
row() { campaign "$@" list "$silver" | sed 1d; }
header=$(campaign "${admin1[@]}" list "$silver" | sed -n 1p) # sed reads it all: no SIGPIPE

sleep "$PAUSE_AT"
echo "$(at) \$ campaign pause $silver     # via api-2; rows below read via api-1"
printf '%8s  %s\n' "" "$header"
printf '%s  %s\n' "$(at)" "$(campaign "${admin2[@]}" pause "$silver" | sed 1d)"
samples=()
for _ in $(seq 1 "$PAUSE_FOR"); do
  sleep 1
  r=$(row "${admin1[@]}")
  samples+=("$r")
  printf '%s  %s\n' "$(at)" "$r"
done
echo "$(at) \$ campaign resume $silver"
printf '%s  %s\n' "$(at)" "$(campaign "${admin2[@]}" resume "$silver" | sed 1d)"
for _ in 1 2; do
  sleep 1
  printf '%s  %s\n' "$(at)" "$(row "${admin1[@]}")"
done
echo "$(at) \$ campaign list     # all three at once, via api-2"
campaign "${admin2[@]}" list

while kill -0 "$load" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "timed out waiting for the load"; exit 1; }
  sleep 0.5
done
wait "$load" || true
cat "$dir/load.log"

# Every admitted user has an outcome now, but a sold-out campaign's line
# is emptied by the scheduler at its BatchSize per Interval (its waiting
# users already read "rejected, sold out" from their status): wait for the
# three lines to be empty before stopping the workers.
left() { campaign "${admin1[@]}" list "$gold" "$silver" "$bronze" | awk 'NR > 1 { n += $7 + $8 } END { print n + 0 }'; }
while [ "$(left)" != 0 ]; do
  [ $SECONDS -lt $deadline ] || { echo "timed out waiting for the lines to drain"; break; }
  sleep 0.5
done
echo "$(at) every line and flight is empty"

say "campaign list at the end (via api-1)"
campaign "${admin1[@]}" list

say "workers (SIGTERM)"
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
cleanup
pids=()
for f in "$dir"/worker-*.log; do
  echo "-- $(basename "$f" .log)"
  grep -E 'msg="worker running"|msg="couponq: scheduler leads"' "$f" | sed -E 's/^time=[^ ]+ //' || true
  grep -E 'msg=OVER-ISSUE' "$f" | sed -n '1p;$p' || true
  grep -E 'msg="worker stopped"' "$f" | sed -E 's/^time=[^ ]+ //' || echo "(no \"worker stopped\" line)"
done

say "final counts (the Store and the line)"
final=$("$dir/count" "${infra[@]}" -store "$store" -campaign "$gold,$silver,$bronze")
echo "$final"
reports=$(cat "$dir"/worker-*.log | grep -c 'msg=OVER-ISSUE' || true)
echo "over-issue reports (OnOverIssue calls, all workers): $reports"

field() { sed -nE "s/(^|.* )$1=([0-9]+).*/\2/p" <<<"$2" | head -n 1; }
problems=()
[ "$reports" = 0 ] || problems+=("the over-issue detector fired $reports times")
for c in "$gold" "$silver" "$bronze"; do
  line=$(grep "^campaign=$c " <<<"$final")
  sum=$(grep "^summary campaign=$c " "$dir/load.log" || true)
  stock=$(field stock "$line") admitted=$(field admitted "$line") issued=$(field store_issued "$line")
  want=$((admitted < stock ? admitted : stock))
  [ "$issued" = "$want" ] || problems+=("$c: the Store issued $issued, want min(stock $stock, admitted $admitted) = $want")
  [ "$(field recorded_issued "$line")" = "$issued" ] || problems+=("$c: the line recorded $(field recorded_issued "$line"), the Store issued $issued")
  [ "$(field distinct_holders "$line")" = "$issued" ] || problems+=("$c: $(field distinct_holders "$line") holders for $issued issuances")
  [ "$(field max_per_user "$line")" -le 1 ] || problems+=("$c: a user holds $(field max_per_user "$line")")
  [ "$(field waiting "$line")" = 0 ] && [ "$(field in_flight "$line")" = 0 ] || problems+=("$c: entries left in line or in flight")
  [ "$(field admitted "$sum")" = "$admitted" ] || problems+=("$c: load saw $(field admitted "$sum") admitted, the line $admitted")
  [ "$(field issued "$sum")" = "$issued" ] || problems+=("$c: load saw issued=$(field issued "$sum"), the Store $issued")
  for k in still_waiting failed errors duplicate_issuance_ids; do
    [ "$(field $k "$sum")" = 0 ] || problems+=("$c: $k=$(field $k "$sum")")
  done
  echo "check $c: store_issued=$issued = min(stock $stock, admitted $admitted), holders=$(field distinct_holders "$line"), users told issued=$(field issued "$sum")"
done
# While paused, after the catalog cache's TTL (1s) has passed, nothing of
# the paused campaign moves: its issued count holds and its line grows.
if [ "${#samples[@]}" -ge 3 ]; then
  col() { awk -v n="$1" '{print $n}' <<<"$2"; } # columns: ID STATE V STOCK B/I ADMITTED WAITING IN_FLIGHT ISSUED ...
  a=${samples[1]} b=${samples[${#samples[@]} - 1]}
  [ "$(col 2 "$b")" = paused ] || problems+=("$silver: state $(col 2 "$b") while paused")
  [ "$(col 9 "$a")" = "$(col 9 "$b")" ] || problems+=("$silver: issued moved while paused: $(col 9 "$a") -> $(col 9 "$b")")
  [ "$(col 8 "$b")" = 0 ] || problems+=("$silver: $(col 8 "$b") in flight while paused")
  [ "$(col 7 "$b")" -gt "$(col 7 "$a")" ] || problems+=("$silver: the line did not grow while paused")
  echo "check pause: $silver issued held at $(col 9 "$b"), waiting grew $(col 7 "$a") -> $(col 7 "$b"), in flight $(col 8 "$b")"
fi
if [ ${#problems[@]} = 0 ]; then
  echo "RESULT ok: three campaigns, two apis, two workers: every Store count = min(stock, admitted), no over-issue, one unit per holder, every admitted user decided"
else
  printf 'RESULT problem: %s\n' "${problems[@]}"
  exit 1
fi

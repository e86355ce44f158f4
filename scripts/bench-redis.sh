#!/usr/bin/env bash
# Admissions per second on the standalone test Redis: the Go API
# (BenchmarkAdmit) against redis-benchmark running the very same admission
# script (EVALSHA, new random user per call) at the same concurrency; then the
# Go API with admissions coalesced into multi-user script calls.
# Usage: scripts/bench-redis.sh [concurrency] [requests]     (defaults 50 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
conc=${1:-50}
n=${2:-200000}
scripts/redis.sh start >/dev/null
. .cache/servers/redis/env
host=${COUPONQ_REDIS_ADDR%:*}
port=${COUPONQ_REDIS_ADDR##*:}

script=$(mktemp); trap 'rm -f "$script"' EXIT
go run ./internal/cmd/printscript > "$script"
sha=$(redis-cli -h "$host" -p "$port" -x script load < "$script")
p="cqbench:$$"
keys="$p:{rb}:seq $p:{rb}:line $p:{rb}:held $p:{rb}:done $p:{rb}:soldout $p:{rb}:clock $p:{rb}:flight $p:{rb}:issued $p:{rb}:trace"

echo "== redis-benchmark: EVALSHA admit, -c $conc -n $n"
rb=$(redis-benchmark -h "$host" -p "$port" -c "$conc" -n "$n" -r 100000000 -q \
  EVALSHA "$sha" 9 $keys "user:__rand_int__" 1 1700000000000 0 | tr '\r' '\n' | grep -Eo '[0-9.]+ requests per second' | tail -1)
rb_rps=${rb%% *}
echo "redis-benchmark: $rb_rps admissions/s"
redis-cli -h "$host" -p "$port" --scan --pattern "$p:*" | xargs -r redis-cli -h "$host" -p "$port" unlink >/dev/null

echo "== Go API: BenchmarkAdmit, $conc callers, $n admissions"
out=$(COUPONQ_BENCH_CONC=$conc go test -run '^$' -bench '^BenchmarkAdmit$' -benchtime "${n}x" -count 1 ./internal/redisline/)
echo "$out" | grep -E '^Benchmark'
go_rps=$(echo "$out" | grep -Eo '[0-9.]+ admissions/s' | tail -1 | cut -d' ' -f1)
echo "Go API: $go_rps admissions/s"
python3 -c "print(f'ratio Go API / redis-benchmark = {float($go_rps)/float($rb_rps):.2f} (concurrency $conc)')"

echo "== Go API, coalesced (redisq.Config{Coalesce: true}): $conc callers, $n admissions"
out=$(COUPONQ_BENCH_COALESCE=1 COUPONQ_BENCH_CONC=$conc go test -run '^$' -bench '^BenchmarkAdmit$' -benchtime "${n}x" -count 1 ./internal/redisline/)
echo "$out" | grep -E '^Benchmark'
co_rps=$(echo "$out" | grep -Eo '[0-9.]+ admissions/s' | tail -1 | cut -d' ' -f1)
echo "Go API coalesced: $co_rps admissions/s"
python3 -c "print(f'ratio coalesced Go API / redis-benchmark = {float($co_rps)/float($rb_rps):.2f} (concurrency $conc)')"

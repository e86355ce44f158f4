#!/usr/bin/env bash
# Runs each go test -fuzz target in turn for DURATION (default 60s; any
# -fuzztime value: 90s, 10m, 5000x), one target and one package per run, as
# go test requires, with -parallel 2. Starts (or reuses) Redis first with
# scripts/redis.sh: FuzzLineArgs drives the Lua scripts on a real server, and
# runs with CI set so a missing server fails it rather than skipping.
#
#   scripts/fuzz.sh        # 60s per target (the reliability runs)
#   scripts/fuzz.sh 5s     # briefly (scripts/test.sh)
#
# Each new input that widens coverage is minimized for at most
# FUZZMINIMIZETIME (default 5s, go test's is 60s): the handlers' inputs carry
# bodies of kilobytes, and with go test's default both workers spent most
# of a 60s run minimizing (10,221 execs instead of some 180,000 in 30s).
#
# Prints one line per target ("fuzz <target> (<pkg>, <duration>): ok|FAIL ..."),
# keeps each run's full output in .cache/fuzz/<target>.log, and exits
# non-zero if any target failed. A failing input is written by go test to
# <pkg>/testdata/fuzz/<target>/: keep it there as a regression seed once the
# bug is understood. The seed corpora (f.Add and testdata/fuzz) also run as
# plain tests in every `go test ./...`.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-60s}
minimize=${FUZZMINIMIZETIME:-5s}
targets=(
  "./couponq FuzzValidateID"
  "./dispatch/wire FuzzDecode"
  "./internal/httpapi FuzzPublicHandler"
  "./internal/httpapi FuzzAdminHandler"
  "./internal/redisline FuzzLineArgs"
  "./internal/scheduler FuzzCampaignMoves"
)

scripts/redis.sh start >/dev/null
# shellcheck disable=SC1091
. .cache/servers/redis/env

# seconds prints DURATION in whole seconds (a Go duration of h, m and s), or
# nothing for an iteration count (5000x) or anything else.
seconds() {
  local d=$1 total=0 n unit
  [[ $d =~ ^([0-9]+[hms])+$ ]] || return 0
  while [[ $d =~ ^([0-9]+)([hms])(.*)$ ]]; do
    n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
    case $unit in h) total=$((total + n * 3600)) ;; m) total=$((total + n * 60)) ;; s) total=$((total + n)) ;; esac
  done
  echo "$total"
}

# go test's default 10m timeout covers the whole binary, fuzzing included:
# give a long run room (the seed run, minimizing a crasher) beyond DURATION.
timeout=10m
if secs=$(seconds "$duration") && [ -n "$secs" ]; then
  timeout="$((secs + 600))s"
fi

# spurious_deadline LOG: true when a failed run is Go's own fuzz coordinator
# tripping over its -fuzztime deadline (go.dev/issue/75804, fixed in Go 1.27;
# this project builds with 1.26): the run wrote no failing input and its only
# error is "context deadline exceeded". A crash, a panic or a hung target
# always writes an input and says what failed, so none is taken for this.
spurious_deadline() {
  local log=$1 errs
  grep -q 'Failing input written' "$log" && return 1
  errs=$(grep -vE '^(fuzz: |--- FAIL|FAIL|exit status|warning: |ok )' "$log" | sed '/^[[:space:]]*$/d' || true)
  [ "$(sed 's/^[[:space:]]*//' <<<"$errs")" = "context deadline exceeded" ]
}

logs=.cache/fuzz
mkdir -p "$logs"
failed=0
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  log=$logs/$name.log
  if CI=${CI:-true} go test -run '^$' -fuzz "^$name\$" -fuzztime "$duration" -fuzzminimizetime "$minimize" -parallel 2 -timeout "$timeout" "$pkg" >"$log" 2>&1; then
    # The last progress line: "fuzz: elapsed: 1m0s, execs: 891053 (25528/sec), new interesting: 170 (total: 213)".
    last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -n 1 || true)
    execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
    newi=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
    elapsed=$(sed -nE 's/^fuzz: elapsed: ([0-9hms]+),.*/\1/p' <<<"$last")
    rate=""
    if es=$(seconds "${elapsed:-x}") && [ -n "$es" ] && [ "$es" -gt 0 ] && [ -n "$execs" ]; then
      rate=", $((execs / es))/s"
    fi
    echo "fuzz $name ($pkg, $duration): ok, ${execs:-?} execs in ${elapsed:-?}$rate, ${newi:-?} new interesting"
  elif spurious_deadline "$log"; then
    echo "fuzz $name ($pkg, $duration): ok, stopped by go.dev/issue/75804 (the coordinator's own deadline race at the end of -fuzztime: no failing input, the only error 'context deadline exceeded'); full output in $log"
  else
    failed=1
    input=$(sed -nE 's/.*Failing input written to (.*)$/\1/p' "$log" | tail -n 1)
    echo "fuzz $name ($pkg, $duration): FAIL${input:+, failing input $pkg/${input#./}}; full output in $log"
    # The failure itself, indented, without the progress lines.
    grep -vE '^fuzz: (elapsed|minimizing)' "$log" | sed -n '/--- FAIL/,$p' | head -n 40 | sed 's/^/    /'
  fi
done
exit "$failed"

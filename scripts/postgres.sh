#!/usr/bin/env bash
# Installs Debian's postgresql if missing and starts, idempotently, a throwaway
# PostgreSQL server for the tests on a free 127.0.0.1 port, with a database
# named couponq. Trust authentication, loopback only: a test box, not a
# deployment.
# Usage:
#   scripts/postgres.sh start   # start (or reuse) it; writes .cache/servers/postgres/env
#   scripts/postgres.sh stop    # stop it and remove its data
#   scripts/postgres.sh halt    # stop it, keeping its data and port (an outage, for tests)
#   scripts/postgres.sh resume  # start a halted server again, on the same port
# COUPONQ_STATE_DIR (default .cache/servers) picks where the server lives, so
# a test can run one of its own beside the shared one. Every command is
# idempotent: halting a halted server or resuming a running one does nothing.
# The env file sets
#   COUPONQ_POSTGRES_DSN=postgres://postgres@127.0.0.1:PORT/couponq?sslmode=disable
# PostgreSQL refuses to run as root, so under root the cluster belongs to the
# system user `postgres` (created by the Debian package, or here if missing)
# and initdb/pg_ctl run as that user; as any other user they run as you.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${COUPONQ_STATE_DIR:-$root/.cache/servers}/postgres
data=$state/data
sock=$state/run
db=couponq

log() { printf 'postgres.sh: %s\n' "$*" >&2; }

# bindir prints the newest /usr/lib/postgresql/N/bin holding initdb and
# pg_ctl, or, failing that, the directory of initdb on PATH.
bindir() {
  local d best="" v bestv=0
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] || continue
    v=$(basename "$(dirname "$d")")
    v=${v%%.*}
    if [[ $v =~ ^[0-9]+$ ]] && [ "$v" -gt "$bestv" ]; then bestv=$v best=$d; fi
  done
  if [ -z "$best" ] && command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    best=$(dirname "$(readlink -f "$(command -v initdb)")")
  fi
  [ -n "$best" ] && printf '%s\n' "$best"
}

install() {
  bin=$(bindir || true)
  [ -n "$bin" ] && return
  # The package may create (and, where an init system runs, start) its own
  # "main" cluster on port 5432; ours is separate and does not use it.
  log "installing Debian's postgresql"
  export DEBIAN_FRONTEND=noninteractive
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq postgresql >/dev/null
  bin=$(bindir || true)
  [ -n "$bin" ] || { log "no initdb/pg_ctl after installing postgresql"; exit 1; }
}

# owner is the user the server runs as: `postgres` under root, else ourselves.
owner() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

ensure_user() {
  [ "$(id -u)" = 0 ] || return 0
  id -u postgres >/dev/null 2>&1 && return
  log "creating system user postgres"
  useradd -r -M -d /nonexistent -s /usr/sbin/nologin postgres
}

# as_owner runs a command as the server's owner, from inside the state dir
# (the owner may not be allowed into the caller's working directory).
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    (cd "$state" && runuser -u postgres -- "$@")
  else
    (cd "$state" && "$@")
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

alive() { [ -n "${1:-}" ] && "$bin/pg_isready" -q -h 127.0.0.1 -p "$1" -t 2 >/dev/null 2>&1; }

psql_() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }

# teardown stops a server left in the data dir, if any, and removes the state.
teardown() {
  if [ -f "$data/postmaster.pid" ] && [ -n "${bin:-}" ]; then
    as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_owner "$bin/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  rm -rf "$state"
}

create() {
  teardown
  mkdir -p "$state" "$sock"
  chmod 0755 "$state"
  if [ "$(id -u)" = 0 ]; then chown -R postgres: "$state"; fi
  if ! as_owner test -w "$state"; then
    log "user $(owner) cannot write $state (is a parent directory closed to it?); set COUPONQ_STATE_DIR"
    exit 1
  fi
  port=$(free_port)
  as_owner "$bin/initdb" -D "$data" -U postgres -E UTF8 --locale=C \
    --auth-local=trust --auth-host=trust >"$state/initdb.log" 2>&1 ||
    { cat "$state/initdb.log" >&2; exit 1; }
  # A Unix socket path is limited to 107 bytes; in a deep checkout go
  # without one (every client here uses TCP).
  local sockdir=$sock
  [ ${#sock} -le 90 ] || sockdir=""
  as_owner tee -a "$data/postgresql.conf" >/dev/null <<CONF

# scripts/postgres.sh: a throwaway server for the tests.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
max_connections = 200
shared_buffers = 256MB
log_min_messages = warning
CONF
  # Trust, on the Unix socket and loopback only (the server listens on
  # nothing else anyway).
  as_owner tee "$data/pg_hba.conf" >/dev/null <<HBA
local all all                trust
host  all all 127.0.0.1/32   trust
HBA
  as_owner "$bin/pg_ctl" -D "$data" -l "$state/postgres.log" -w -t 60 start >/dev/null ||
    { log "postgres did not start; log:"; tail -20 "$state/postgres.log" >&2; exit 1; }
  for _ in $(seq 100); do alive "$port" && break; sleep 0.05; done
  alive "$port" || { log "postgres on port $port does not answer"; exit 1; }
  echo "$port" > "$state/port"
  log "postgres ($("$bin/postgres" --version | awk '{print $3}')) on 127.0.0.1:$port"
}

start() {
  install
  ensure_user
  port=$(cat "$state/port" 2>/dev/null || true)
  if ! alive "$port"; then
    create
  fi
  if [ "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    psql_ -d postgres -c "CREATE DATABASE $db"
  fi
  cat > "$state/env" <<ENV
export COUPONQ_POSTGRES_DSN=postgres://postgres@127.0.0.1:$port/$db?sslmode=disable
ENV
  cat "$state/env"
}

stop() {
  bin=$(bindir || true)
  teardown
}

# running says whether the server of the data dir runs (pg_ctl status).
running() { [ -f "$data/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; }

# halt_ stops the server and keeps its data dir and port for resume.
halt_() {
  bin=$(bindir || true)
  [ -n "$bin" ] && [ -d "$state" ] || return 0 # nothing was ever started here
  running || return 0
  as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null ||
    as_owner "$bin/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null
  log "postgres on 127.0.0.1:$(cat "$state/port" 2>/dev/null) halted"
}

# resume starts a halted server on its port, and waits until it answers.
resume() {
  bin=$(bindir || true)
  [ -n "$bin" ] && [ -f "$data/PG_VERSION" ] && [ -f "$state/port" ] ||
    { log "no server in $state to resume (run start first)"; exit 1; }
  port=$(cat "$state/port")
  alive "$port" && return 0
  if ! running; then
    as_owner "$bin/pg_ctl" -D "$data" -l "$state/postgres.log" -w -t 60 start >/dev/null ||
      { log "postgres did not start; log:"; tail -20 "$state/postgres.log" >&2; exit 1; }
  fi
  for _ in $(seq 100); do alive "$port" && break; sleep 0.05; done
  alive "$port" || { log "postgres on port $port does not answer"; exit 1; }
  log "postgres on 127.0.0.1:$port resumed"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  halt) halt_ ;;
  resume) resume ;;
  *) echo "usage: $0 start|stop|halt|resume" >&2; exit 2 ;;
esac

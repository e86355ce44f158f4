#!/usr/bin/env bash
# Builds Shopify's toxiproxy server from the Go module proxy (pinned version,
# into .cache/bin) and runs it, idempotently, on a free 127.0.0.1 port: the
# network-fault proxy the reliability runs put between workers and
# Redis/Kafka (cuts, latency, bandwidth).
# Usage:
#   scripts/toxiproxy.sh start   # start (or reuse) it; writes .cache/servers/toxiproxy/env
#   scripts/toxiproxy.sh stop
# The env file sets COUPONQ_TOXIPROXY=127.0.0.1:PORT, its HTTP API, and
# COUPONQ_TOXIPROXY_VERSION.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${COUPONQ_TOXIPROXY_VERSION:-v2.5.0}
state=${COUPONQ_STATE_DIR:-$root/.cache/servers}/toxiproxy
bin=$root/.cache/bin/toxiproxy-server-$version
log() { printf 'toxiproxy.sh: %s\n' "$*" >&2; }

build() {
  [ -x "$bin" ] && return
  log "building toxiproxy $version from the Go module proxy"
  local tmp; tmp=$(mktemp -d)
  GOBIN="$tmp" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$version"
  mkdir -p "$(dirname "$bin")"
  mv "$tmp/server" "$bin"
  rm -rf "$tmp"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

alive() {
  [ -f "$state/pid" ] && [ -f "$state/port" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null &&
    curl -sf "http://127.0.0.1:$(cat "$state/port")/version" >/dev/null
}

start() {
  build
  mkdir -p "$state"
  if alive && grep -q COUPONQ_TOXIPROXY_VERSION "$state/env" 2>/dev/null; then cat "$state/env"; return; fi
  stop 2>/dev/null || true
  mkdir -p "$state"
  local port; port=$(free_port)
  echo "$port" > "$state/port"
  setsid nohup "$bin" -host 127.0.0.1 -port "$port" >"$state/server.log" 2>&1 < /dev/null &
  echo $! > "$state/pid"
  for _ in $(seq 100); do alive && break; sleep 0.1; done
  alive || { log "toxiproxy did not start"; tail -20 "$state/server.log" >&2; exit 1; }
  printf 'export COUPONQ_TOXIPROXY=127.0.0.1:%s\nexport COUPONQ_TOXIPROXY_VERSION=%s\n' "$port" "$version" > "$state/env"
  log "toxiproxy $version on 127.0.0.1:$port"
  cat "$state/env"
}

stop() {
  if [ -f "$state/pid" ]; then
    local pid; pid=$(cat "$state/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$state"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

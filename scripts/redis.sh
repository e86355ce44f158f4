#!/usr/bin/env bash
# Installs Debian's redis-server if missing and starts, idempotently, the Redis
# servers the tests use, all on free 127.0.0.1 ports:
#   - one standalone node,
#   - a Redis Cluster of 3 masters (redis-cli --cluster create).
# Usage:
#   scripts/redis.sh start   # start (or reuse) them; writes .cache/servers/redis/env
#   scripts/redis.sh stop    # stop them
# The env file sets COUPONQ_REDIS_ADDR=127.0.0.1:PORT and
# COUPONQ_REDIS_CLUSTER=127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=${COUPONQ_STATE_DIR:-$root/.cache/servers}/redis
mkdir -p "$state"

log() { printf 'redis.sh: %s\n' "$*" >&2; }

install() {
  if command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null; then
    return
  fi
  log "installing Debian's redis-server and redis-tools"
  export DEBIAN_FRONTEND=noninteractive
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq redis-server redis-tools >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# cluster_port prints a free port P below 55535 whose bus port P+10000 is free too.
cluster_port() {
  python3 - <<'PY'
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
for _ in range(1000):
    p = random.randint(20000, 45000)
    if free(p) and free(p + 10000):
        print(p); break
PY
}

alive() { [ -n "${1:-}" ] && redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }

# start_node DIR PORT [extra redis-server args...]
start_node() {
  local dir=$1 port=$2; shift 2
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --save "" --appendonly no "$@"
  for _ in $(seq 100); do alive "$port" && return 0; sleep 0.05; done
  log "redis on port $port did not answer; log:"; tail -20 "$dir/redis.log" >&2; return 1
}

stop_node() {
  local port=$1
  alive "$port" && redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
}

start() {
  install
  # Standalone node.
  local port; port=$(cat "$state/standalone.port" 2>/dev/null || true)
  if ! alive "$port"; then
    port=$(free_port)
    start_node "$state/standalone" "$port"
    echo "$port" > "$state/standalone.port"
    log "standalone node on 127.0.0.1:$port"
  fi

  # Cluster of three masters.
  local ports=() ok=1 p
  if [ -f "$state/cluster.ports" ]; then read -r -a ports < "$state/cluster.ports"; else ok=0; fi
  if [ "$ok" = 1 ] && [ "${#ports[@]}" = 3 ]; then
    for p in "${ports[@]}"; do alive "$p" || ok=0; done
    [ "$ok" = 1 ] && redis-cli -p "${ports[0]}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
  else
    ok=0
  fi
  if [ "$ok" = 0 ]; then
    for p in "${ports[@]:-}"; do [ -n "$p" ] && stop_node "$p"; done
    rm -rf "$state/cluster"
    ports=("$(cluster_port)" "$(cluster_port)" "$(cluster_port)")
    for p in "${ports[@]}"; do
      start_node "$state/cluster/$p" "$p" --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000
    done
    redis-cli --cluster create "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" "127.0.0.1:${ports[2]}" \
      --cluster-replicas 0 --cluster-yes >"$state/cluster-create.log" 2>&1 || { cat "$state/cluster-create.log" >&2; exit 1; }
    for _ in $(seq 200); do
      redis-cli -p "${ports[0]}" cluster info | grep -q 'cluster_state:ok' && break
      sleep 0.05
    done
    redis-cli -p "${ports[0]}" cluster info | grep -q 'cluster_state:ok' || { log "cluster not ok"; exit 1; }
    echo "${ports[*]}" > "$state/cluster.ports"
    log "cluster on 127.0.0.1:${ports[0]},${ports[1]},${ports[2]}"
  fi
  cat > "$state/env" <<ENV
export COUPONQ_REDIS_ADDR=127.0.0.1:$port
export COUPONQ_REDIS_CLUSTER=127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}
ENV
  cat "$state/env"
}

stop() {
  local p
  stop_node "$(cat "$state/standalone.port" 2>/dev/null || true)"
  if [ -f "$state/cluster.ports" ]; then
    for p in $(cat "$state/cluster.ports"); do stop_node "$p"; done
  fi
  rm -f "$state/env" "$state/standalone.port" "$state/cluster.ports"
  rm -rf "$state/cluster"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

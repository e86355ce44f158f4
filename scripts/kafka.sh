#!/usr/bin/env bash
# Assembles a real Apache Kafka broker from Maven Central (org.apache.kafka:kafka_2.13,
# fetched with mvn into ~/.m2 and copied to .cache/kafka/libs) and runs it in KRaft
# mode on free 127.0.0.1 ports, idempotently.
# Usage:
#   scripts/kafka.sh start [1|3]   # one combined broker+controller (default), or three
#                                  # (replication factor 3, min.insync.replicas=2)
#   scripts/kafka.sh stop [1|3]
#   scripts/kafka.sh kill N I      # kill -9 broker I of the N-broker setup, keeping its port and data
#   scripts/kafka.sh restart N I   # start broker I again in place (same port, same data), as after a crash
# start writes .cache/servers/kafka-N/env with COUPONQ_KAFKA_BROKERS (N=1) or
# COUPONQ_KAFKA_CLUSTER (N=3): comma-separated bootstrap addresses.
# The 3-broker setup has a second listener, EXTERNAL, for clients that go
# through a network-fault proxy (the reliability runs put toxiproxy between
# workers and Kafka): each broker listens on an EXTERNAL port and advertises
# a proxy port in its place, so a client that bootstraps through the proxy
# is told proxy addresses for every broker and never reaches one directly.
# COUPONQ_KAFKA_PROXY_ROUTES lists them, PROXYPORT=EXTERNALPORT per broker,
# comma-separated: a proxy listening on PROXYPORT forwards to EXTERNALPORT.
# Nothing listens on the proxy ports until such a proxy runs; the tests and
# the PLAINTEXT listener ignore them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=${COUPONQ_KAFKA_VERSION:-4.1.1}
cache=${COUPONQ_STATE_DIR:-$root/.cache/servers}
libs=$root/.cache/kafka-$version/libs
log() { printf 'kafka.sh: %s\n' "$*" >&2; }

fetch() {
  [ -f "$libs/.complete" ] && return
  command -v mvn >/dev/null || { log "mvn is required"; exit 1; }
  command -v java >/dev/null || { log "java (17+) is required"; exit 1; }
  log "fetching kafka_2.13 $version from Maven Central"
  local pom; pom=$(mktemp -d)
  cat > "$pom/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>couponq</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
  rm -rf "$libs"; mkdir -p "$libs"
  mvn -q -B -Dstyle.color=never -f "$pom/pom.xml" dependency:copy-dependencies -DoutputDirectory="$libs" -DincludeScope=runtime >&2
  rm -rf "$pom"
  touch "$libs/.complete"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

port_open() { python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; }

java_cp() { java -cp "$libs/*" "$@"; }

# alive DIR: the broker whose state is in DIR runs and answers.
alive() {
  local dir=$1
  [ -f "$dir/pid" ] && [ -f "$dir/port" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null && port_open "$(cat "$dir/port")"
}

# launch DIR: runs the broker configured in DIR, logging to DIR/broker.log.
launch() {
  local dir=$1
  # setsid: the broker outlives this script and the shell that ran it.
  setsid nohup java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true -cp "$libs/*" \
    kafka.Kafka "$dir/server.properties" >"$dir/broker.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
}

# await DIR: waits (up to 60 s) until the broker in DIR has started and
# answers on its port.
await() {
  local dir=$1 t
  for t in $(seq 240); do
    grep -q 'Transition from STARTING to STARTED' "$dir/broker.log" 2>/dev/null && port_open "$(cat "$dir/port")" && return
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || { log "broker in $dir exited"; tail -30 "$dir/broker.log" >&2; exit 1; }
    sleep 0.25
  done
  log "broker in $dir did not start"; tail -30 "$dir/broker.log" >&2; exit 1
}

# kill9 N I: kill -9 broker I of the N-broker setup; its port and data stay
# for restart.
kill9() {
  local dir="$cache/kafka-$1/node$2" pid
  [ -f "$dir/pid" ] || { log "no broker $2 in the $1-broker setup"; exit 1; }
  pid=$(cat "$dir/pid")
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  log "killed broker $2 (pid $pid) of the $1-broker setup"
}

# restart N I: starts broker I of the N-broker setup again in place, with its
# port, configuration and data, as an operator restarts a crashed broker.
restart() {
  local dir="$cache/kafka-$1/node$2"
  [ -f "$dir/server.properties" ] || { log "no broker $2 in the $1-broker setup"; exit 1; }
  if alive "$dir"; then log "broker $2 of the $1-broker setup is running"; return; fi
  [ -f "$dir/broker.log" ] && mv "$dir/broker.log" "$dir/broker.log.$(date +%s)"
  launch "$dir"
  await "$dir"
  log "broker $2 of the $1-broker setup restarted on 127.0.0.1:$(cat "$dir/port")"
}

start() {
  local n=${1:-1} state="$cache/kafka-${1:-1}" i ok=1
  fetch
  mkdir -p "$state"
  for i in $(seq "$n"); do alive "$state/node$i" || ok=0; done
  # A setup from before the EXTERNAL listener existed is started afresh.
  if [ "$ok" = 1 ] && [ -f "$state/env" ] && { [ "$n" -lt 3 ] || grep -q COUPONQ_KAFKA_PROXY_ROUTES "$state/env"; }; then
    cat "$state/env"; return
  fi
  stop "$n" 2>/dev/null || true
  mkdir -p "$state"
  local ports=() cports=() eports=() xports=() voters="" routes=""
  for i in $(seq "$n"); do
    ports+=("$(free_port)"); cports+=("$(free_port)"); eports+=("$(free_port)"); xports+=("$(free_port)")
    voters+="${voters:+,}$i@127.0.0.1:${cports[$((i-1))]}"
  done
  local rf=1 isr=1
  [ "$n" -ge 3 ] && { rf=3; isr=2; }
  local uuid; uuid=$(java_cp kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  for i in $(seq "$n"); do
    local dir="$state/node$i" p=${ports[$((i-1))]} cp=${cports[$((i-1))]} ep=${eports[$((i-1))]} xp=${xports[$((i-1))]}
    local listeners="PLAINTEXT://127.0.0.1:$p,CONTROLLER://127.0.0.1:$cp" advertised="PLAINTEXT://127.0.0.1:$p"
    if [ "$n" -ge 3 ]; then
      listeners+=",EXTERNAL://127.0.0.1:$ep"; advertised+=",EXTERNAL://127.0.0.1:$xp"
      routes+="${routes:+,}$xp=$ep"
    fi
    mkdir -p "$dir"
    cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,EXTERNAL:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=4
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
    java_cp kafka.tools.StorageTool format -t "$uuid" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; exit 1; }
    echo "$p" > "$dir/port"
    launch "$dir"
  done
  for i in $(seq "$n"); do await "$state/node$i"; done
  local addrs="" p
  for p in "${ports[@]}"; do addrs+="${addrs:+,}127.0.0.1:$p"; done
  if [ "$n" = 1 ]; then echo "export COUPONQ_KAFKA_BROKERS=$addrs" > "$state/env"
  else printf 'export COUPONQ_KAFKA_CLUSTER=%s\nexport COUPONQ_KAFKA_PROXY_ROUTES=%s\n' "$addrs" "$routes" > "$state/env"; fi
  log "$n broker(s) on $addrs (kafka $version, KRaft)"
  cat "$state/env"
}

stop() {
  local n=${1:-1} state="$cache/kafka-${1:-1}" i pid
  for i in $(seq "$n"); do
    [ -f "$state/node$i/pid" ] || continue
    pid=$(cat "$state/node$i/pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$state"
}

case "${1:-start}" in
  start) start "${2:-1}" ;;
  stop) stop "${2:-1}" ;;
  kill) kill9 "${2:?kill N I}" "${3:?kill N I}" ;;
  restart) restart "${2:?restart N I}" "${3:?restart N I}" ;;
  *) echo "usage: $0 start|stop [1|3] | kill|restart N I" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Starts a ClickHouse cluster on loopback for the tests of the ClickHouse
# store's cluster option (aggregator.store.clickhouse.cluster) and for trying
# it: ZooKeeper from Debian and two clickhouse-server processes, the two
# replicas of one shard, each with its data in a temporary directory.
# Installs Debian's zookeeper and clickhouse-server when they are missing.
# It prints the cluster as EDGETRACK_TEST_CLICKHOUSE_CLUSTER takes it:
# NAME=ADDRESS,ADDRESS (the servers' native addresses).
#
#   scripts/clickhouse-cluster.sh [start]  start what does not answer (idempotent)
#   scripts/clickhouse-cluster.sh stop     stop the servers, and ZooKeeper when this
#                                          cluster started it; remove their data
#   scripts/clickhouse-cluster.sh kill N   SIGKILL server N (1 or 2), keeping its data:
#                                          `start` brings it back
#
#   CLICKHOUSE_CLUSTER_PORT  native port of server 1 (default 9101); server 2's is
#                            PORT+1, their HTTP ports PORT+2 and PORT+3, their
#                            interserver ports PORT+9 and PORT+10
#   CLICKHOUSE_CLUSTER_NAME  the cluster's name in the servers' remote_servers
#                            (default edgetrack_test)
#   CLICKHOUSE_CLUSTER_DIR   where everything is kept (default: mktemp -d)
#   ZOOKEEPER_PORT           ZooKeeper's client port (default 2181); a ZooKeeper that
#                            answers there is used, not started
#
# Several clusters (other PORTs) can share one ZooKeeper: each has a DDL
# queue of its own, and the store's tables are under their database's name.
set -euo pipefail
source "$(dirname "$0")/clickhouse.sh"

PORT=${CLICKHOUSE_CLUSTER_PORT:-9101}
NAME=${CLICKHOUSE_CLUSTER_NAME:-edgetrack_test}
ZK_PORT=${ZOOKEEPER_PORT:-2181}
STATE=${TMPDIR:-/tmp}/edgetrack-clickhouse-cluster-$PORT.dir # remembers the directory
SERVERS=(1 2)
tcp() { echo $((PORT + $1 - 1)); }
http() { echo $((PORT + $1 + 1)); }

zk_answers() {
  local reply
  reply=$(timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$ZK_PORT"' && printf ruok >&3 && cat <&3' 2>/dev/null) || return 1
  [ "$reply" = imok ]
}

# The ZooKeeper of Debian's package, started directly (its zkServer.sh
# expects a system install), with a minimal config.
zk_start() {
  local zk=$1/zookeeper
  [ -e /usr/share/java/zookeeper.jar ] || ch_apt_install zookeeper
  mkdir -p "$zk/data"
  cat >"$zk/zoo.cfg" <<EOF
tickTime=2000
dataDir=$zk/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok
EOF
  ch_log "starting ZooKeeper on 127.0.0.1:$ZK_PORT (data in $zk)"
  local jars=/usr/share/java
  setsid java -Xmx256m -Dzookeeper.root.logger=WARN,CONSOLE \
    -cp "$jars/zookeeper.jar:$jars/zookeeper-jute.jar:$jars/slf4j-api.jar:$jars/slf4j-log4j12.jar:$jars/log4j-1.2.jar:/etc/zookeeper/conf" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$zk/zoo.cfg" >"$zk/stdout.log" 2>&1 </dev/null &
  echo $! >"$zk/server.pid"
  for _ in $(seq 150); do
    zk_answers && return 0
    sleep 0.2
  done
  ch_log "ZooKeeper did not answer within 30 s; its log:"
  tail -n 30 "$zk/stdout.log" >&2
  return 1
}

# server_config DIR N: the config.d that makes server N replica rN of shard
# 1 of the cluster, with a distributed DDL queue of the cluster's own.
server_config() {
  local dir=$1 n=$2 replicas="" i
  ch_config "$dir" "$(tcp "$n")" "$(http "$n")"
  for i in "${SERVERS[@]}"; do
    replicas+="<replica><host>127.0.0.1</host><port>$(tcp "$i")</port></replica>"
  done
  cat >"$dir/config.d/cluster.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <zookeeper>
        <node><host>127.0.0.1</host><port>$ZK_PORT</port></node>
        <!-- A killed server's replicas stay registered as active until its
             session expires: this short, it replicates again 4 s after a
             restart (ZooKeeper's least, 2 ticks), not 30. -->
        <session_timeout_ms>4000</session_timeout_ms>
    </zookeeper>
    <macros><shard>1</shard><replica>r$n</replica></macros>
    <remote_servers>
        <$NAME><shard><internal_replication>true</internal_replication>$replicas</shard></$NAME>
    </remote_servers>
    <distributed_ddl><path>/clickhouse/edgetrack-cluster-$PORT/task_queue/ddl</path></distributed_ddl>
    <!-- A server killed inside an INSERT restarts with a part ZooKeeper never
         recorded (the INSERT failed): in a table as small as a test's that can
         be most of its rows, and by default 18.16 then refuses to load it. -->
    <merge_tree><replicated_max_ratio_of_wrong_parts>1</replicated_max_ratio_of_wrong_parts></merge_tree>
</yandex>
EOF
}

addresses() {
  local out="" i
  for i in "${SERVERS[@]}"; do out+=${out:+,}127.0.0.1:$(tcp "$i"); done
  echo "$NAME=$out"
}

dir=$(cat "$STATE" 2>/dev/null || true)
case "${1:-start}" in
stop)
  if [ -z "$dir" ]; then
    ch_log "no cluster started by this script on port $PORT"
    exit 0
  fi
  ch_log "stopping the cluster on port $PORT (data in $dir)"
  for n in "${SERVERS[@]}"; do ch_kill TERM "$dir/r$n/server.pid"; done
  ch_kill TERM "$dir/zookeeper/server.pid"
  rm -rf "$dir" "$STATE"
  ;;
kill)
  n=${2:?usage: $0 kill 1|2}
  [ -n "$dir" ] && [ -s "$dir/r$n/server.pid" ] || { ch_log "server $n of the cluster on port $PORT is not running"; exit 1; }
  ch_log "killing server $n (127.0.0.1:$(tcp "$n"))"
  ch_kill KILL "$dir/r$n/server.pid"
  ;;
start)
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    dir=${CLICKHOUSE_CLUSTER_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/edgetrack-clickhouse-cluster.XXXXXX")}
    mkdir -p "$dir"
    echo "$dir" >"$STATE"
  fi
  zk_answers || zk_start "$dir"
  ch_install
  starting=()
  for n in "${SERVERS[@]}"; do
    ch_answers "$(http "$n")" && continue
    server_config "$dir/r$n" "$n"
    ch_log "starting clickhouse-server $n on 127.0.0.1:$(tcp "$n") (data in $dir/r$n)"
    ch_start "$dir/r$n" "$(http "$n")" &
    starting+=($!)
  done
  for job in "${starting[@]}"; do wait "$job"; done
  addresses
  ;;
*)
  echo "usage: $0 [start|stop|kill N]" >&2
  exit 2
  ;;
esac

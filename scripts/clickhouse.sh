#!/usr/bin/env bash
# Installs Debian's clickhouse-server when it is missing and starts a server
# on loopback with its data in a temporary directory, for the tests and for
# trying the aggregator on ClickHouse. It prints the server's native address
# (host:port), which is what EDGETRACK_TEST_CLICKHOUSE and the DSN
# clickhouse://ADDRESS/DATABASE take.
#
# Idempotent: when a server already answers on the address it only prints
# it. The server runs in the background until stopped with
# `scripts/clickhouse.sh stop` (or killed); its data, config, logs and pid
# file live under CLICKHOUSE_DIR (default: a fresh directory under $TMPDIR).
#
#   CLICKHOUSE_PORT   native protocol port (default 9000)
#   CLICKHOUSE_HTTP   HTTP port (default 8123)
#   CLICKHOUSE_DIR    where the server keeps everything (default: mktemp -d)
#
# Sourced (scripts/clickhouse-cluster.sh does), it only defines the ch_*
# functions below.
set -euo pipefail

ch_log() { echo "clickhouse: $*" >&2; }

# ch_answers HTTP_PORT reports whether a ClickHouse server answers on the
# HTTP port. (bash's /dev/tcp: no curl needed)
ch_answers() {
  local reply
  reply=$(timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$1"' && printf "GET /ping HTTP/1.0\r\n\r\n" >&3 && cat <&3' 2>/dev/null) || return 1
  [[ $reply == *"Ok."* ]]
}

# ch_apt_install PACKAGE… installs Debian packages that are missing, quietly
# (the log is shown when it fails).
ch_apt_install() {
  local sudo="" log=${TMPDIR:-/tmp}/edgetrack-apt-install.log
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  ch_log "installing Debian's $*"
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "$@" >"$log" 2>&1 || { tail -n 30 "$log" >&2; exit 1; }
}

ch_install() {
  command -v clickhouse-server >/dev/null || ch_apt_install clickhouse-server clickhouse-client
}

# ch_config DIR TCP_PORT HTTP_PORT writes DIR/config.xml: the packaged
# config with its paths and ports replaced, so that everything of this
# server stays in DIR and it listens on loopback only (the interserver port,
# which replicas fetch parts from, is TCP_PORT+9). Files in DIR/config.d are
# merged into it by the server.
ch_config() {
  local dir=$1 port=$2 http=$3
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log" "$dir/config.d"
  cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>$dir/log/server.log</log>
        <errorlog>$dir/log/server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$http</http_port>
    <tcp_port>$port</tcp_port>
    <interserver_http_port>$((port + 9))</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>200</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>/etc/clickhouse-server/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
    <dictionaries_config>*_dictionary.xml</dictionaries_config>
    <max_table_size_to_drop>0</max_table_size_to_drop>
    <max_partition_size_to_drop>0</max_partition_size_to_drop>
</yandex>
EOF
}

# ch_start DIR HTTP_PORT starts the server of DIR/config.xml in the
# background (its pid in DIR/server.pid) and waits until it answers.
ch_start() {
  local dir=$1 http=$2
  # setsid: the server outlives this script and the make that ran it.
  setsid clickhouse-server --config-file="$dir/config.xml" >>"$dir/log/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/server.pid"
  for _ in $(seq 150); do
    ch_answers "$http" && return 0
    sleep 0.2
  done
  ch_log "the server of $dir did not answer within 30 s; its log:"
  tail -n 30 "$dir/log/stdout.log" "$dir/log/server.err.log" >&2 2>/dev/null || true
  return 1
}

# ch_kill SIGNAL PIDFILE sends SIGNAL to the process of PIDFILE and waits
# until it is gone: after 20 s, it is sent SIGKILL (a replicated server
# whose ZooKeeper is gone does not finish shutting down).
ch_kill() {
  local pid
  pid=$(cat "$2" 2>/dev/null) || return 0
  kill "-$1" "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    ch_log "pid $pid did not stop within 20 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$2"
}

if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
  return 0
fi

PORT=${CLICKHOUSE_PORT:-9000}
HTTP=${CLICKHOUSE_HTTP:-8123}
STATE=${TMPDIR:-/tmp}/edgetrack-clickhouse-$PORT.dir # remembers CLICKHOUSE_DIR for stop

if [ "${1:-}" = stop ]; then
  dir=$(cat "$STATE" 2>/dev/null || true)
  if [ -n "$dir" ] && [ -s "$dir/server.pid" ]; then
    ch_log "stopping the server (pid $(cat "$dir/server.pid"), data in $dir)"
    ch_kill TERM "$dir/server.pid"
    rm -rf "$dir" "$STATE"
  else
    ch_log "no server started by this script on port $PORT"
  fi
  exit 0
fi

if ch_answers "$HTTP"; then
  echo "127.0.0.1:$PORT"
  exit 0
fi

ch_install
dir=${CLICKHOUSE_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/edgetrack-clickhouse.XXXXXX")}
ch_config "$dir" "$PORT" "$HTTP"
echo "$dir" >"$STATE"
ch_log "starting clickhouse-server on 127.0.0.1:$PORT (data in $dir)"
ch_start "$dir" "$HTTP"
echo "127.0.0.1:$PORT"

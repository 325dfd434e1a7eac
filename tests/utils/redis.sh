#!/usr/bin/env bash
# A throwaway Redis server on 127.0.0.1 for the tests of the Redis state store
# (extensions/stores/blockstore-store-redis).
#
#   bash tests/utils/redis.sh start    # start (reuses the server it started before)
#   bash tests/utils/redis.sh url      # redis://:<password>@127.0.0.1:<port>/0
#   bash tests/utils/redis.sh status   # "running on 127.0.0.1:<port>" (exit 0) or "stopped" (exit 3)
#   bash tests/utils/redis.sh stop     # stop it and remove its directory
#
# BLOCKSTORE_REDIS_PORT (default 56379) and BLOCKSTORE_REDIS_DIR (default /tmp/blockstore-redis-<port>)
# choose the server. It listens on 127.0.0.1 only, keeps nothing on disk, and asks for a password kept
# in <dir>/password (0600). Callers register as with tests/utils/postgres.sh: `stop` shuts the server
# down only when no other registered caller is still alive (`stop --force` always does).
set -euo pipefail

PORT=${BLOCKSTORE_REDIS_PORT:-56379}
DIR=${BLOCKSTORE_REDIS_DIR:-/tmp/blockstore-redis-$PORT}
PASSWORD_FILE=$DIR/password
PID_FILE=$DIR/redis.pid
USERS_DIR=$DIR/users
# shellcheck source=tests/utils/service_users.sh
. "$(dirname "$0")/service_users.sh"

die() { echo "redis.sh: $*" >&2; exit 1; }

is_running() {
  [ -s "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}


start() {
  command -v redis-server >/dev/null || die "no redis-server; install the Debian package redis-server (scripts/setup-redis.sh)"
  if is_running; then register; return 0; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT on 127.0.0.1 is taken by another program; set BLOCKSTORE_REDIS_PORT to a free port"
  fi
  if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ] && [ ! -e "$DIR/.blockstore-redis" ]; then
    die "$DIR exists and was not made by this script; set BLOCKSTORE_REDIS_DIR to another directory"
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR" "$USERS_DIR"
  touch "$DIR/.blockstore-redis"
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$PASSWORD_FILE"
  chmod 0600 "$PASSWORD_FILE"
  # The password goes in through a config file, not the command line (ps shows that to everyone).
  printf 'requirepass %s\n' "$(cat "$PASSWORD_FILE")" >"$DIR/redis.conf"
  chmod 0600 "$DIR/redis.conf"
  # 9>&-: the server must not inherit (and so hold forever) the start/stop lock.
  redis-server "$DIR/redis.conf" --bind 127.0.0.1 --port "$PORT" --daemonize yes --pidfile "$PID_FILE" \
    --dir "$DIR" --logfile "$DIR/server.log" --save '' --appendonly no 9>&- || die "redis-server did not start"
  local _
  for _ in $(seq 100); do
    if is_running && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then register; return 0; fi
    sleep 0.1
  done
  tail -n 20 "$DIR/server.log" >&2 || true
  die "the server did not start (log: $DIR/server.log)"
}

stop() {
  last_user "${1:-}" || return 0
  if is_running; then
    local pid
    pid=$(cat "$PID_FILE")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  [ -e "$DIR/.blockstore-redis" ] && rm -rf "$DIR"
  return 0
}

url() {
  [ -s "$PASSWORD_FILE" ] || die "no server set up in $DIR; run: $0 start"
  echo "redis://:$(cat "$PASSWORD_FILE")@127.0.0.1:$PORT/0"
}

status() {
  if is_running; then echo "running on 127.0.0.1:$PORT"; else echo "stopped"; return 3; fi
}

case "${1:-}" in
  start) serialized start ;;
  stop) serialized stop "${2:-}" ;;
  url) url ;;
  status) status ;;
  *) echo "usage: $0 start|stop [--force]|url|status" >&2; exit 2 ;;
esac

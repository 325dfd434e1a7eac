#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server on 127.0.0.1 for the db store tests.
#
#   bash tests/utils/postgres.sh start    # init + start (reuses the server it started before)
#   bash tests/utils/postgres.sh url      # postgresql+psycopg://blockstore:<pw>@127.0.0.1:<port>/blockstore
#   bash tests/utils/postgres.sh status   # "running on 127.0.0.1:<port>" (exit 0) or "stopped" (exit 3)
#   bash tests/utils/postgres.sh stop     # stop it and remove its data directory
#
# BLOCKSTORE_PG_PORT (default 55432) and BLOCKSTORE_PG_DIR (default /tmp/blockstore-pg-<port>) choose the
# server, so several test runs can each have their own. The server runs as the `postgres` user when
# started by root (PostgreSQL refuses to run as root), listens on 127.0.0.1 only, and lets the
# `blockstore` role in only with its password (scram-sha-256), which is kept in <dir>/password (0600).
#
# Several callers may share one server (test.sh runs started at the same time): each `start` registers
# its caller's process id, and `stop` shuts the server down only when no other registered caller is
# still alive (`stop --force` always does).
set -euo pipefail

PORT=${BLOCKSTORE_PG_PORT:-55432}
DIR=${BLOCKSTORE_PG_DIR:-/tmp/blockstore-pg-$PORT}
BIN=${BLOCKSTORE_PG_BIN:-}
DATA=$DIR/data
SOCKETS=$DIR/run
PASSWORD_FILE=$DIR/password
USERS_DIR=$DIR/users
# shellcheck source=tests/utils/service_users.sh
. "$(dirname "$0")/service_users.sh"
LOG=$DIR/server.log
ROLE=blockstore
DATABASE=blockstore

die() { echo "postgres.sh: $*" >&2; exit 1; }

find_bin() {
  [ -n "$BIN" ] && return 0
  local candidate
  for candidate in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$candidate/initdb" ]; then BIN=$candidate; return 0; fi
  done
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "postgres.sh: installing the Debian package postgresql" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 \
      --no-install-recommends postgresql >/dev/null || die "apt-get install postgresql failed"
    for candidate in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
      if [ -x "$candidate/initdb" ]; then BIN=$candidate; return 0; fi
    done
  fi
  die "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin; install the package postgresql"
}

# Run a server command as the owner of the data directory.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

is_running() {
  [ -f "$DATA/PG_VERSION" ] || return 1
  find_bin
  as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

psql_admin() {  # SQL as the superuser over the private socket
  as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKETS" -p "$PORT" -U postgres -d postgres "$@"
}

init_cluster() {
  if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ] && [ ! -e "$DIR/.blockstore-pg" ]; then
    die "$DIR exists and was not made by this script; set BLOCKSTORE_PG_DIR to another directory"
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR" "$USERS_DIR"
  chmod 0755 "$DIR"
  touch "$DIR/.blockstore-pg"
  # A hex password: safe in a URL without quoting.
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$PASSWORD_FILE"
  chmod 0600 "$PASSWORD_FILE"
  mkdir -p "$DATA" "$SOCKETS"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "the postgres user does not exist (it comes with the package postgresql)"
    chown postgres: "$DATA" "$SOCKETS"
  fi
  chmod 0700 "$DATA" "$SOCKETS"
  # Local socket: trust, but the socket directory is private to the server's owner (and root).
  # TCP: password only.
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || {
      cat "$DIR/initdb.log" >&2; die "initdb failed"; }
}

start() {
  find_bin
  if is_running; then
    register
    return 0
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT on 127.0.0.1 is taken by another program; set BLOCKSTORE_PG_PORT to a free port"
  fi
  if ! { [ -f "$DATA/PG_VERSION" ] && [ -s "$PASSWORD_FILE" ]; }; then init_cluster; fi
  touch "$LOG"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$LOG"
  # 20 forks x (pool + lock connection) plus other test runs: more than the default 100 connections.
  # 9>&-: the server must not inherit (and so hold forever) the start/stop lock.
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$SOCKETS -c max_connections=300" \
    >/dev/null 9>&- || { tail -n 20 "$LOG" >&2; die "the server did not start (log: $LOG)"; }
  local password
  password=$(cat "$PASSWORD_FILE")
  psql_admin <<SQL || die "cannot create the $ROLE role and database"
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$password';
  END IF;
END \$\$;
SQL
  if [ -z "$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" ]; then
    psql_admin -c "CREATE DATABASE $DATABASE OWNER $ROLE" || die "cannot create the database $DATABASE"
  fi
  register
}

stop() {
  last_user "${1:-}" || return 0
  if [ -f "$DATA/PG_VERSION" ]; then
    find_bin
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  fi
  [ -e "$DIR/.blockstore-pg" ] && rm -rf "$DIR"
  return 0
}

url() {
  [ -s "$PASSWORD_FILE" ] || die "no server set up in $DIR; run: $0 start"
  echo "postgresql+psycopg://$ROLE:$(cat "$PASSWORD_FILE")@127.0.0.1:$PORT/$DATABASE"
}

status() {
  if is_running; then
    echo "running on 127.0.0.1:$PORT (data $DATA)"
  else
    echo "stopped"
    return 3
  fi
}


case "${1:-}" in
  start) serialized start ;;
  stop) serialized stop "${2:-}" ;;
  url) url ;;
  status) status ;;
  *) echo "usage: $0 start|stop [--force]|url|status" >&2; exit 2 ;;
esac

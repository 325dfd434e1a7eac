# shellcheck shell=bash
# Sourced by the targets' runme.sh: a tgtd of the target's own, on its own control and portal ports.
#   start_tgtd CONTROL_PORT PORTAL_PORT PIDFILE   start it and wait until tgtadm answers
#   stop_tgtd CONTROL_PORT PIDFILE                stop it; returns once the process is gone
# tgtd ignores SIGTERM and shuts down only without targets: the targets are deleted first, then the
# system; kill -9 only if that fails. scripts/test.sh fails a run that leaves a tgtd behind.
start_tgtd() {
  tgtd -C "$1" --iscsi "portal=127.0.0.1:$2" --pid-file "$3" </dev/null >/dev/null 2>&1
  for _ in $(seq 50); do tgtadm -C "$1" --mode system --op show >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "tgtd -C $1 did not answer" >&2
  return 1
}

stop_tgtd() {
  local port=$1 pidfile=$2 pid tid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  for tid in $(tgtadm -C "$port" --lld iscsi --mode target --op show 2>/dev/null | sed -n 's/^Target \([0-9]*\):.*/\1/p'); do
    tgtadm -C "$port" --lld iscsi --mode target --op delete --force --tid "$tid" >/dev/null 2>&1
  done
  tgtadm -C "$port" --mode system --op delete >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
}

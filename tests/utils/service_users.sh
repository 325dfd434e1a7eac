# shellcheck shell=bash
# Sourced by tests/utils/postgres.sh and tests/utils/redis.sh: one throwaway server shared by the callers
# that start it at the same time (test.sh runs started together). Each `start` registers its caller (the
# script's parent process); `stop` shuts the server down only when no other registered caller is alive.
# The sourcing script sets DIR (the server's directory) and USERS_DIR (where callers register) first.

register() {  # remember the caller (our parent process) as a user of the server
  mkdir -p "$USERS_DIR"
  touch "$USERS_DIR/$PPID"
}

other_users_alive() {
  local entry pid
  for entry in "$USERS_DIR"/*; do
    [ -e "$entry" ] || continue
    pid=${entry##*/}
    if [ "$pid" != "$PPID" ] && kill -0 "$pid" 2>/dev/null; then return 0; fi
  done
  return 1
}

last_user() {  # last_user [--force]: unregister the caller; true when the server is to stop now
  rm -f "$USERS_DIR/$PPID"
  if [ "${1:-}" != --force ] && other_users_alive; then
    echo "$(basename "$0"): still used by another caller; left running (stop --force stops it anyway)" >&2
    return 1
  fi
  return 0
}

serialized() {  # one start/stop at a time per server
  mkdir -p "$(dirname "$DIR")"
  exec 9>"$DIR.lock"
  flock 9
  "$@"
}

# shellcheck shell=bash
# Background lanes of scripts/test.sh (sourced): storage_guest beside the other integration targets, and the
# guest lab's boot. tests/unit/test_lanes.py runs these functions.

lane_start() {  # lane_start DIR LOG COMMAND...: COMMAND in DIR in the background, its output in LOG; sets lane_pid
  local dir=$1 log=$2
  shift 2
  # A process group of its own (job control for this one command): lane_stop then reaches everything the
  # command started (ansible-test's runme.sh and its ansible-playbook), not only its first process. Input from
  # /dev/null: a job of its own group reading the terminal would stop.
  set -m
  (cd "$dir" && "$@") </dev/null >"$log" 2>&1 &
  # shellcheck disable=SC2034  # read by the caller
  lane_pid=$!
  set +m
}

lane_stop() {  # lane_stop PID: stop a lane that may still run, and all it started: TERM, then KILL after 30 s
  local pid=$1 _
  kill -TERM -- "-$pid" 2>/dev/null || return 0
  for _ in $(seq 300); do
    kill -0 -- "-$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null
}

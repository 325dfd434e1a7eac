#!/usr/bin/env bash
# kill -9 at every step (crash.yml), on the file driver, raw and qcow2; then the controller side
# killed: the whole ansible-playbook process group while a module runs, and the controller at
# each step of its state file writes. See crash.yml and files/crashpoint/sitecustomize.py.
#
#   BLOCKSTORE_CRASH_EVERY=0    kill only at a sample of the steps (one of each kind); default: every step
#   BLOCKSTORE_CRASH_HOSTS=N    local hosts sharing the steps (forks); default 2
#   BLOCKSTORE_CRASH_FORMATS    the file driver's formats to run; default "raw qcow2"
#   BLOCKSTORE_CRASH_SCENARIOS  names of the scenarios to run, comma-separated; default: all
set -euo pipefail
here=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-crash.XXXXXX")
cleanup() {
  # Whatever a failed run left: loop devices and daemons of this run, then its files.
  losetup -l -n -O NAME,BACK-FILE 2>/dev/null | awk -v w="$work" 'index($2, w) == 1 {print $1}' \
    | xargs -r -n1 losetup -d 2>/dev/null || true
  for pidfile in "$work"/*/*/run/*/pid; do [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null; done
  grep -o "${work}[^ ]*" /proc/mounts | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-$(command -v python3)}
# shellcheck source=tests/integration/targets/setup_blockstore/files/settings.sh
. ../setup_blockstore/files/settings.sh
hook="$here/files/crashpoint"
every=$(setting BLOCKSTORE_CRASH_EVERY 1)
hosts=$(setting BLOCKSTORE_CRASH_HOSTS 2)
formats=$(setting BLOCKSTORE_CRASH_FORMATS "raw qcow2")
scenarios=$(setting BLOCKSTORE_CRASH_SCENARIOS)
export ANSIBLE_ROLES_PATH="$PWD/..:${ANSIBLE_ROLES_PATH:-}"  # setup_blockstore's holdings check

inventory() {  # inventory DIR FORMAT -> DIR/inventory.json for crash.yml on the file driver
  mkdir -p "$1"
  "$python" - "$1" "$2" "$hook" "$every" "$hosts" "$python" <<'PY' | "$python" "$here/inventory.py" > "$1/inventory.json"
import json, sys
directory, fmt, hook, every, hosts, python = sys.argv[1:]
print(json.dumps({"hosts": int(hosts), "dir": directory, "vars": {
    "ansible_python_interpreter": python, "crash_hook": hook, "crash_every": every == "1",
    "crash_sample": ["run", "os.rename", "os.link", "return from"],
    "crash_backend": {"name": f"crash-{fmt}-{{host}}", "driver": "file", "path": "{dir}/backend", "format": fmt},
    "crash_image": {"volume": "{dir}/backend/volume-{id}", "snapshot": "{dir}/backend/snapshot-{id}",
                    "format": fmt, "options": []},
    # names of the backend's files, and loop devices on them
    "crash_listing": "ls -1 {dir}/backend; losetup -l -n -O BACK-FILE | grep -F {dir}/ || true",
}}))
PY
}

for fmt in $formats; do
  started=$SECONDS
  inventory "$work/$fmt" "$fmt"
  echo "== crash: file driver, $fmt ($hosts hosts)"
  ansible-playbook -i "$work/$fmt/inventory.json" -f "$hosts" crash.yml \
    ${scenarios:+-e "{\"crash_scenarios\": $("$python" -c 'import json, sys; print(json.dumps(sys.argv[1].split(",")))' "$scenarios")}"}
  echo "== crash: file driver, $fmt passed in $((SECONDS - started)) s"
done

# The controller side --------------------------------------------------------------------
started=$SECONDS
dir="$work/controller"
mkdir -p "$dir"
printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' "$python" > "$dir/inventory"
"$python" -c 'import json, sys; d = sys.argv[1]; print(json.dumps({"crash_dir": d,
  "crash_backend": {"name": "crash-controller", "driver": "file", "path": d + "/backend"}}))' "$dir" > "$dir/vars.json"
ctl() { ansible-playbook -i "$dir/inventory" controller.yml -e "@$dir/vars.json" "$@"; }
state="$dir/state.json"

echo "== crash: the whole controller (ansible-playbook, its worker, the module) killed while the module runs"
ctl -e crash_phase=task -e crash_volume=ctl-before
pause="$dir/paused"
BLOCKSTORE_TEST_CRASH="{\"log\": \"$dir/pause.log\", \"at\": 2, \"pause\": \"$pause\"}" PYTHONPATH="$hook" \
  setsid ansible-playbook -i "$dir/inventory" controller.yml -e "@$dir/vars.json" \
  -e crash_phase=task -e crash_volume=ctl-killed > "$dir/killed.out" 2>&1 &
controller=$!  # setsid: its own process group
for _ in $(seq 600); do [ -s "$pause" ] && break; sleep 0.2; done
[ -s "$pause" ] || { echo "the module never reached its step"; cat "$dir/killed.out"; exit 1; }
module_pid=$(cat "$pause")
module_group=$(ps -o pgid= -p "$module_pid" | tr -d ' ')
ps -o pid,pgid,args --forest -g "$controller,$module_group" | cut -c1-150
kill -9 -- "-$controller" "-$module_group"
wait || true
alive() { ps -o stat= -p "$1" 2>/dev/null | grep -qv Z; }  # zombies are dead
for _ in $(seq 50); do alive "$module_pid" || break; sleep 0.1; done
if alive "$module_pid"; then echo "the module survived"; exit 1; fi
"$python" -c 'import json, sys; r = json.load(open(sys.argv[1]))["records"].values()
assert [v["status"] for v in r if v.get("name") == "ctl-killed"] == ["creating"], list(r)' "$state"
# A lock left held would make this hang: flock()s go with their process.
timeout 300 ansible-playbook -i "$dir/inventory" controller.yml -e "@$dir/vars.json" -e crash_phase=task \
  -e crash_volume=ctl-killed
ctl -e crash_phase=check -e crash_volume=ctl-killed

echo "== crash: the controller killed at each step of its state store work"
plan() { echo "{\"log\": \"$dir/$1\", \"at\": $2, \"watch\": \"/module_utils/persistence/\"}"; }
BLOCKSTORE_TEST_CRASH=$(plan store-steps.log 0) PYTHONPATH="$hook" ctl -e crash_phase=task -e crash_volume=ctl-record >/dev/null
cat "$dir/store-steps.log"
steps=$(wc -l < "$dir/store-steps.log")
for at in $(seq 1 "$steps"); do
  if BLOCKSTORE_TEST_CRASH=$(plan store-kill.log "$at") PYTHONPATH="$hook" \
      ctl -e crash_phase=task -e "crash_volume=ctl-$at" > "$dir/store-kill.out" 2>&1; then
    echo "step $at: the controller was not killed"; cat "$dir/store-kill.out"; exit 1
  fi
  tail -n1 "$dir/store-kill.log"
  timeout 300 ansible-playbook -i "$dir/inventory" controller.yml -e "@$dir/vars.json" -e crash_phase=task \
    -e "crash_volume=ctl-$at" > /dev/null
  ctl -e crash_phase=check -e "crash_volume=ctl-$at" > /dev/null
done
# The killed writes' temp files went with the next write; the state file was whole all along.
leftover=$(find "$dir" -maxdepth 1 -name '.state.json-*' | wc -l)
[ "$leftover" -eq 0 ] || { echo "temp files left beside the state file: $leftover"; exit 1; }
echo "== crash: controller passed in $((SECONDS - started)) s"

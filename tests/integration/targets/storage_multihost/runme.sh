#!/usr/bin/env bash
# One store, many real hosts: the controller (here, in the root namespace) runs ansible-playbook over SSH
# against the lab of tests/utils/multihost_lab.sh (stor1 serving iSCSI with tgt, consumers app1 and app2),
# with a JSON file store and with the test PostgreSQL (scripts/test.sh starts it). The attach and detach are
# the user guide's example play, cut out of docs/user-guide.md and run verbatim (guide.yml, its play vars given
# as extra vars, the consumers in its group db_servers); multihost.yml says what each other phase does;
# here: each phase whose re-run must change nothing runs twice, what each host was sent is
# read from the module payloads it kept (ANSIBLE_KEEP_REMOTE_FILES), and at the end the lab is taken down and
# nothing of it is left: no process, namespace, link, loop device or mount, no record in the stores.
# Needs root, openssh-server (scripts/setup-multihost.sh) and the attach tools (scripts/setup-attach.sh).
set -euo pipefail
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-$(command -v python3)}
collections=${ANSIBLE_COLLECTIONS_PATH%%:*}
collection="$collections/ansible_collections/blockstore/storage"
lab_sh="$collection/tests/utils/multihost_lab.sh"
# shellcheck source=tests/integration/targets/setup_blockstore/files/settings.sh
. ../setup_blockstore/files/settings.sh
pg_url=$(setting BLOCKSTORE_TEST_PG_URL)

work=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-multihost.XXXXXX")
export BLOCKSTORE_LAB_DIR="$work/lab"
export BLOCKSTORE_LAB_HIDE="$work"  # the controller's store and outputs
started=$SECONDS
cleanup() {
  set +e
  bash "$lab_sh" down >/dev/null
  left=$(bash "$lab_sh" holdings)
  if [ -n "$left" ]; then echo "multihost: the lab left behind:"; echo "$left"; fi
  if [ -n "$(setting BLOCKSTORE_MULTIHOST_KEEP)" ]; then echo "multihost: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

bash "$lab_sh" up
inventory=$(bash "$lab_sh" inventory)
# The guide's play, verbatim: the yaml block after its marker comment.
"$python" - "$collection/docs/user-guide.md" >"$work/guide.yml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
found = re.search(r"<!-- example: skip - three real hosts: the integration target storage_multihost runs this "
                  r"play verbatim[^\n]*\n```yaml\n(.*?)\n```", text, re.S)
if not found:
    sys.exit("multihost: the user guide's multi-host example (marked for storage_multihost) is missing")
print(found.group(1))
PY
printf '[db_servers:children]\nconsumers\n' >"$work/guide.ini"

play() {  # play NAME PHASE|guide-STATE [ansible-playbook args]: the output kept in $work/NAME.txt, shown on failure
  local name=$1 phase=$2 playbook=${MH_PLAYBOOK:-multihost.yml}
  shift 2
  echo "== multihost: $name"
  if [[ $phase == guide-* ]]; then playbook=$work/guide.yml; set -- -i "$work/guide.ini" -e "data_state=${phase#guide-}" "$@"; fi
  if ! ansible-playbook -i "$inventory" "$playbook" -e "@$work/vars.json" -e "phase=$phase" "$@" >"$work/$name.txt" 2>&1; then
    tail -n 80 "$work/$name.txt"
    echo "multihost: $name failed"
    return 1
  fi
  sed -n '/^PLAY RECAP/,$p' "$work/$name.txt"
}
unchanged() {  # unchanged NAME: the recap of that run shows changed=0 for every host
  if grep -E '^[a-z0-9]+ +: ' "$work/$1.txt" | grep -v 'changed=0 '; then
    echo "multihost: $1 changed something (above); a re-run must change nothing"
    return 1
  fi
}

changed_all() {  # changed_all NAME: the recap of that run shows a change on both consumers
  for host in app1 app2; do
    if ! grep -E "^$host +: " "$work/$1.txt" | grep -qv 'changed=0 '; then
      echo "multihost: $1 changed nothing on $host; it had something to do"
      return 1
    fi
  done
}

# What each consumer was sent: its module payloads, kept in its private /root (readable from here).
sent_check() {  # sent_check STORE_LABEL PERSISTENCE_JSON BACKEND_NAME
  "$python" - "$BLOCKSTORE_LAB_DIR" "$2" "$1" "$3" <<'PY'
import json, pathlib, sys
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
lab, persistence, label = pathlib.Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
store = open_store(persistence)
try:
    key = store.sealer.key()
    connections = [r for r in store.all_records() if r["kind"] == "connection" and r["backend"] == sys.argv[4]]
finally:
    store.close()
url = persistence.get("connection") or persistence.get("path")
failed = False
for host in ("app1", "app2"):
    payloads = [p.read_text(errors="replace") for p in (lab / "hosts" / host / "root").rglob("AnsiballZ_*")]
    text = "\n".join(payloads)
    own = [c["id"] for c in connections if c["host"] == host]
    others = [c["id"] for c in connections if c["host"] != host]
    # Positive control: the host's own connection is in what it was sent, so the payloads can be read.
    if not payloads or not own or not all(i in text for i in own):
        print(f"{label}: {host}: its own connection {own} is not in its {len(payloads)} kept payloads")
        failed = True
        continue
    if url in text:
        print(f"{label}: {host} was sent the store's URL or path")
        failed = True
    sent_others = sorted(i for i in others if i in text)
    if key in text or sent_others:
        print(f"{label}: {host} was sent the store's key: {key in text}; other hosts' connections: {sent_others}")
        failed = True
sys.exit(1 if failed else 0)
PY
}

run_store() {  # run_store LABEL PERSISTENCE_JSON BACKEND_NAME: the whole sequence against one store
  local label=$1 persistence=$2 backend=$3
  "$python" - "$persistence" "$backend" >"$work/vars.json" <<'PY'
import json, sys
backend = {"name": sys.argv[2], "driver": "file", "path": "/srv/volumes", "target": "iscsi", "host": "stor1",
           "iscsi_ip_address": "198.51.100.11", "iscsi_port": 3260, "tgt_control_port": 7}
persistence = json.loads(sys.argv[1])
# mh_*: multihost.yml's; storage, store: the guide's play vars.
print(json.dumps({"mh_persistence": persistence, "mh_tgt_port": 7, "mh_backend": backend,
                  "storage": backend, "store": persistence}))
PY
  sed -i "s/198\.51\.100\./${BLOCKSTORE_LAB_NET:-198.51.100}./" "$work/vars.json"
  play "$label-serve" serve
  ANSIBLE_KEEP_REMOTE_FILES=1 play "$label-attach" guide-attached
  PYTHONPATH="$collections" sent_check "$label" "$persistence" "$backend"
  for host in app1 app2; do rm -rf "$BLOCKSTORE_LAB_DIR/hosts/$host/root/.ansible/tmp"; done
  # The backend's directory is on the storage host only: a consumer touches only what it attaches.
  [ -d "$BLOCKSTORE_LAB_DIR/hosts/stor1/srv/volumes" ] || { echo "multihost: stor1 has no /srv/volumes"; return 1; }
  for host in app1 app2; do
    [ ! -e "$BLOCKSTORE_LAB_DIR/hosts/$host/srv/volumes" ] || { echo "multihost: $host got the backend's /srv/volumes"; return 1; }
  done
  play "$label-attach-again" guide-attached
  unchanged "$label-attach-again"
  play "$label-write" write
  play "$label-detach" guide-detached
  play "$label-detach-again" guide-detached
  unchanged "$label-detach-again"
  # The export was removed on stor1 only: no tgtadm ran on a consumer (its lock file would be left there).
  compgen -G "$BLOCKSTORE_LAB_DIR/hosts/stor1/run/blockstore/tgt-*.lock" >/dev/null || { echo "multihost: stor1 has no tgt lock"; return 1; }
  for host in app1 app2; do
    if compgen -G "$BLOCKSTORE_LAB_DIR/hosts/$host/run/blockstore/tgt-*"; then
      echo "multihost: a tgt lock was left on $host: the export work ran there"; return 1
    fi
  done
  # Check mode says what the attach would do, and does none of it: the real run after it still has it to do.
  play "$label-reattach-check" guide-attached --check
  changed_all "$label-reattach-check"
  play "$label-reattach" guide-attached
  changed_all "$label-reattach"
  play "$label-read" read
  unchanged "$label-read"
  play "$label-detach-end" guide-detached
  play "$label-remove" remove
  play "$label-remove-again" remove
  unchanged "$label-remove-again"
  # The store holds nothing of the run any more, and stor1's backend directory no volume.
  PYTHONPATH="$collections" "$python" - "$persistence" "$backend" <<'PY'
import json, sys
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
store = open_store(json.loads(sys.argv[1]))
try:
    left = [(r["kind"], r["id"], r.get("status")) for r in store.all_records() if r["backend"] == sys.argv[2]]
finally:
    store.close()
if left:
    sys.exit(f"records left in the store: {left}")
PY
  if [ -n "$(find "$BLOCKSTORE_LAB_DIR/hosts/stor1/srv/volumes" -mindepth 1 2>/dev/null)" ]; then
    echo "multihost: stor1's /srv/volumes is not empty:"; ls -la "$BLOCKSTORE_LAB_DIR/hosts/stor1/srv/volumes"; return 1
  fi
}

mkdir -p "$work/store"
run_store json "{\"storage\": \"file\", \"path\": \"$work/store/state.json\"}" lab
if [ -n "$pg_url" ]; then
  # The test database is shared: this run's records are those of a backend named for it.
  run_store postgresql "{\"storage\": \"db\", \"connection\": \"$pg_url\"}" "lab-$RANDOM$RANDOM"
else
  echo "multihost: no BLOCKSTORE_TEST_PG_URL; the PostgreSQL leg did not run"; exit 1
fi

# --- secrets (issue 13 item 3): the key never leaves the controller; a consumer is sent its own connection only
secrets_started=$SECONDS
secrets_play() {  # secrets_play PHASE [ansible-playbook args]: secrets.yml, its output in $work/secrets-PHASE.txt
  echo "== multihost: secrets-$1"
  if ! ansible-playbook -i "$inventory" secrets.yml -e "@$work/secrets-vars.json" -e "phase=$1" "${@:2}" \
      >"$work/secrets-$1.txt" 2>&1; then
    tail -n 80 "$work/secrets-$1.txt"; echo "multihost: secrets-$1 failed"; return 1
  fi
  sed -n '/^PLAY RECAP/,$p' "$work/secrets-$1.txt"
}
"$python" - "$work/store/secrets.json" >"$work/secrets-vars.json" <<'PY'
import json, sys
backend = {"name": "lab-secrets", "driver": "file", "path": "/srv/volumes", "target": "iscsi", "host": "stor1",
           "iscsi_ip_address": "198.51.100.11", "iscsi_port": 3260, "tgt_control_port": 7}
print(json.dumps({"sec_backend": backend, "sec_persistence": {"storage": "file", "path": sys.argv[1]}}))
PY
sed -i "s/198\.51\.100\./${BLOCKSTORE_LAB_NET:-198.51.100}./" "$work/secrets-vars.json"
for host in stor1 app1 app2; do rm -rf "$BLOCKSTORE_LAB_DIR/hosts/$host/root/.ansible/tmp"; done
ANSIBLE_KEEP_REMOTE_FILES=1 secrets_play up -vvv
PYTHONPATH="$collections" "$python" - "$BLOCKSTORE_LAB_DIR" "$work/store/secrets.json" "$work/secrets-up.txt" <<'PY'
import ast, json, pathlib, re, sys
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
from ansible_collections.blockstore.storage.plugins.module_utils.errors import StateStoreError
from ansible_collections.blockstore.storage.plugins.module_utils.sealing import Sealer, is_sealed
lab, path, verbose = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3]).read_text()
store = open_store({"storage": "file", "path": path})
try:
    key, connections = store.sealer.key(), store.find("lab-secrets", "connection")
    password = {c["host"]: store.sealer.unseal(c["connection_info"]["data"]["auth_password"]) for c in connections}
finally:
    store.close()
problems = []
# Positive control: the key IS in the controller's store, and each consumer's password opens with it.
if sorted(password) != ["app1", "app2"] or not all(password.values()) or len(set(password.values())) != 2:
    problems.append(f"the store does not hold one CHAP password per consumer: {sorted(password)}")
# Positive control: the -vvv output shows the attach results, their connection_info included (masked).
if verbose.count('"auth_password": "********"') < 2:
    problems.append("-vvv output does not show both attach results with their masked password")
for secret, what in [(key, "the store's key"), *((p, f"{h}'s CHAP password") for h, p in password.items())]:
    if secret in verbose:
        problems.append(f"-vvv output shows {what}")


def module_args(payload):  # the arguments AnsiballZ embeds as params='{"ANSIBLE_MODULE_ARGS": ...}'
    found = re.search(r"^params=(.*),$", payload.read_text(errors="replace"), re.M)
    return json.loads(ast.literal_eval(found.group(1)))["ANSIBLE_MODULE_ARGS"] if found else {}


for host in ("stor1", "app1", "app2"):
    payloads = sorted((lab / "hosts" / host / "root").rglob("AnsiballZ_*"))
    text = "\n".join(p.read_text(errors="replace") for p in payloads)
    if key in text or path in text:
        problems.append(f"{host} was sent the store's key or its path")
    for token in set(re.findall(r"sealed:v1:[A-Za-z0-9_=-]+", text)):
        try:
            store.sealer.unseal(token)
            problems.append(f"{host} was sent a token the store's key opens")
        except StateStoreError:  # sealed with the key of its task alone
            pass
    if host == "stor1":
        continue
    other = "app2" if host == "app1" else "app1"
    if password[other] in text:
        problems.append(f"{host} was sent {other}'s CHAP password")
    mine = 0
    for payload in payloads:
        args = module_args(payload)
        for record in args.get("_blockstore_records") or []:
            if record.get("kind") != "connection":
                continue
            if record.get("host") == other and set(record) - {"kind", "id", "backend", "volume_id", "host", "mode",
                                                               "status", "created_at", "updated_at", "connector"}:
                problems.append(f"{host} was sent more of {other}'s connection than who it is: {sorted(record)}")
            secret = (record.get("connection_info") or {}).get("data", {}).get("auth_password")
            if record.get("host") == host and is_sealed(secret):
                # Positive control: its own password IS there, sealed with the key of that task alone.
                mine += Sealer(key=args["_blockstore_key"]).unseal(secret) == password[host]
    if not mine:
        problems.append(f"{host}'s own connection with its password is in none of its {len(payloads)} payloads")
    print(f"secrets: {host}: {len(payloads)} payloads read, its own password (task-sealed) in {mine}")
sys.exit("\n".join(f"multihost: secrets: {p}" for p in problems) if problems else 0)
PY
for host in stor1 app1 app2; do rm -rf "$BLOCKSTORE_LAB_DIR/hosts/$host/root/.ansible/tmp"; done
secrets_play down
echo "multihost: secrets took $((SECONDS - secrets_started)) s"

# --- chap (issue 13 item 4)
# Each host logs in with its own credentials only (chap.yml says how), on the last store's vars; tgtd is started
# and stopped by multihost.yml's serve and remove phases. Between the two chap.yml runs the controller opens the
# two connections' passwords with the store's key, for the hosts' logins (a file of $work, removed after use).
chap_started=$SECONDS
chap_play() {  # chap_play NAME PHASE [args]: chap.yml's phase, its output in $work/NAME.txt, shown on failure
  echo "== multihost: $1"
  if ! ansible-playbook -i "$inventory" chap.yml -e "@$work/vars.json" -e "phase=$2" "${@:3}" >"$work/$1.txt" 2>&1; then
    tail -n 80 "$work/$1.txt"; echo "multihost: $1 failed"; return 1
  fi
  sed -n '/^PLAY RECAP/,$p' "$work/$1.txt"
}
play chap-serve serve
chap_play chap-attach chap-attach
PYTHONPATH="$collections" "$python" - "$work/vars.json" >"$work/chap-creds.json" <<'PY'
import json, sys
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
conf = json.load(open(sys.argv[1]))
store = open_store(conf["mh_persistence"])
try:
    records = store.all_records()
    volume = next(r for r in records if r["kind"] == "volume" and r["backend"] == conf["mh_backend"]["name"]
                  and r["name"] == "chap-shared")
    creds = {r["host"]: {"iqn": r["connection_info"]["data"]["target_iqn"],
                         "user": r["connection_info"]["data"]["auth_username"],
                         "password": store.sealer.unseal(r["connection_info"]["data"]["auth_password"])}
             for r in records if r["kind"] == "connection" and r["volume_id"] == volume["id"]}
finally:
    store.close()
if sorted(creds) != ["app1", "app2"]:
    sys.exit(f"multihost: chap-shared's connections are those of {sorted(creds)}, not app1's and app2's")
print(json.dumps({"chap_creds": creds}))
PY
chap_play chap-cross chap-cross -e "@$work/chap-creds.json"
rm -f "$work/chap-creds.json"
play chap-stop remove
echo "multihost: chap (issue 13 item 4) took $((SECONDS - chap_started)) s"
# --- force (issue 13 item 5): app2 is cut off with its volume attached, force-detached from the controller,
# and cleans up when it is back (force.yml says what each phase checks). Its own JSON store and backend name.
force_started=$SECONDS
mkdir -p "$work/force"
"$python" - "$work/vars.json" "$work/force/state.json" <<'PY'
import json, sys
found = json.load(open(sys.argv[1]))
store = {"storage": "file", "path": sys.argv[2]}
backend = dict(found["mh_backend"], name="force")
found.update(mh_persistence=store, store=store, mh_backend=backend, storage=backend)
json.dump(found, open(sys.argv[1], "w"))
PY
play force-serve serve
play force-attach guide-attached
device_of() {  # device_of VOLUME: the device of that volume's connection, its method and the volume's id
  "$python" - "$work/force/state.json" "$1" <<'PY'
import json, sys
records = json.load(open(sys.argv[1]))["records"]
records = records.values() if isinstance(records, dict) else records
volume = next(r for r in records if r["kind"] == "volume" and r["name"] == sys.argv[2])
conn = next(r for r in records if r["kind"] == "connection" and r["volume_id"] == volume["id"])
print(conn["device"]["path"], conn["device"]["method"], volume["id"])
PY
}
read -r device method volume_id < <(device_of app2-data)
read -r app1_device app1_method _app1_id < <(device_of app1-data)
[ "$method/$app1_method" = userspace/userspace ] || { echo "force: app1 and app2 attach by $app1_method/$method, not userspace"; exit 1; }
ip link set "bslab-app2" down  # app2 is gone: Ansible cannot reach it, its initiator loses stor1's portal
# I/O on app2's device from then on, timed (from here: loop devices are the kernel's, shared by the lab's hosts):
# its watchdog fails it once nothing has completed for 30 s; the wrapper's limit is never reached.
dd_started=$SECONDS
timeout -s KILL 120 dd if="$device" of=/dev/null bs=4k count=1 skip=4096 iflag=direct 2>"$work/force/dd.txt" &
dd_pid=$!
force_unblock() {  # should a phase fail: the read blocked on the stale device ends once its daemon is gone (the
  # lab's take-down lists loop devices, which waits on that blocked read, for ever); the daemon is this test's own
  for pid in $(pgrep -f "qemu-storage-daemon.*$volume_id"); do kill -KILL "$pid" || true; done
  wait "$dd_pid" 2>/dev/null || true
}
trap 'force_unblock; cleanup' EXIT
MH_PLAYBOOK=force.yml play force-detach force-detach
MH_PLAYBOOK=force.yml play force-again force-again
while kill -0 "$dd_pid" 2>/dev/null && ((SECONDS - dd_started < 60)); do sleep 0.5; done
if kill -0 "$dd_pid" 2>/dev/null; then echo "force: the read of the stale $device still blocks after 60 s"; exit 1; fi
wait "$dd_pid" && { echo "force: the read of the stale $device succeeded"; exit 1; }
dd_took=$((SECONDS - dd_started))
# Not before the bound either: the watchdog, not something else, ended it.
((dd_took >= 28)) || { echo "force: the read of $device failed after $dd_took s, before the 30 s bound"; exit 1; }
echo "force: the read of the stale $device failed after $dd_took s (app2 cut off): $(tail -n 1 "$work/force/dd.txt")"
# New I/O on it fails at once; app1's live userspace device, after the same wait, still reads.
again_started=$SECONDS
if timeout -s KILL 20 dd if="$device" of=/dev/null bs=4k count=1 skip=8192 iflag=direct 2>/dev/null; then
  echo "force: a new read of the stale $device succeeded"; exit 1
fi
((SECONDS - again_started <= 3)) || { echo "force: a new read of the stale $device took $((SECONDS - again_started)) s"; exit 1; }
timeout -s KILL 20 dd if="$app1_device" of=/dev/null bs=4k count=1 skip=4096 iflag=direct 2>"$work/force/dd1.txt" ||
  { echo "force: app1's live $app1_device no longer reads: $(tail -n 1 "$work/force/dd1.txt")"; exit 1; }
ip link set "bslab-app2" up
MH_PLAYBOOK=force.yml play force-return force-return -e force_first=true
MH_PLAYBOOK=force.yml play force-return-again force-return
unchanged force-return-again
trap cleanup EXIT
if losetup -l -n -O NAME,BACK-FILE | grep -F "$volume_id"; then echo "force: a loop device of app2-data is left"; exit 1; fi
if pgrep -af "qemu-storage-daemon.*$volume_id"; then echo "force: a daemon of app2-data is left"; exit 1; fi
if pgrep -af "blockstore-watchdog.*$volume_id"; then echo "force: a watchdog of app2-data is left"; exit 1; fi
play force-detach-app1 guide-detached
play force-remove remove
echo "force: passed in $((SECONDS - force_started)) s"
# --- drift (issue 13 item 7): each view of check_drift where it belongs, on a backend and a JSON store of its own
# (drift.yml says what each phase checks)
drift_started=$SECONDS
PYTHONPATH="$collections" "$python" - "$work/vars.json" "$work/store/drift.json" <<'PY'
import json, sys
variables = json.load(open(sys.argv[1]))
backend = dict(variables["mh_backend"], name="drift", path="/srv/drift")
persistence = {"storage": "file", "path": sys.argv[2]}
variables.update(mh_backend=backend, storage=backend, mh_persistence=persistence, store=persistence)
open(sys.argv[1], "w").write(json.dumps(variables))
PY
stale_record() {  # stale_record remove|restore: app1's connection record taken out of the store by hand, or put back
  PYTHONPATH="$collections" "$python" - "$work/store/drift.json" "$work/drift-app1.json" "$1" <<'PY'
import json, sys
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
store = open_store({"storage": "file", "path": sys.argv[1]})
try:
    if sys.argv[3] == "remove":
        [record] = [r for r in store.all_records() if r["kind"] == "connection" and r["host"] == "app1"]
        open(sys.argv[2], "w").write(json.dumps(record))
        store.apply(deletes=[record])
        print(record["id"])
    else:
        store.apply(upserts=[json.load(open(sys.argv[2]))])
finally:
    store.close()
PY
}
play drift-serve serve
play drift-attach guide-attached
MH_PLAYBOOK=drift.yml play drift-views views
drift_conn_id=$(stale_record remove)
MH_PLAYBOOK=drift.yml play drift-stale stale -e "drift_conn_id=$drift_conn_id"
stale_record restore
play drift-detach guide-detached
play drift-remove remove
echo "multihost: drift views took $((SECONDS - drift_started)) s"

bash "$lab_sh" down
left=$(bash "$lab_sh" holdings)
if [ -n "$left" ]; then echo "multihost: the lab left behind:"; echo "$left"; exit 1; fi
echo "multihost: passed in $((SECONDS - started)) s"

#!/usr/bin/env bash
# No secret in clear anywhere a user or an attacker can read it: secrets.yml makes objects with
# every kind of secret under ansible-playbook -vvv, then this script greps, for every secret
# value of the run, the whole -vvv output, the registered results, Ansible's log file, the JSON state
# file, a pg_dump of the PostgreSQL store, and the daemons' run directory. Any hit fails the test
# (printed with the secret masked). It also shows that BLOCKSTORE_BACKEND_CHAP_PASSWORD really reaches
# the module (kept module arguments hold it, and only when it is set), and that the run ends with its
# backends holding exactly what they held before. Needs the test Ceph and PostgreSQL of scripts/test.sh and
# .venv-rbd with cinder (scripts/setup-ceph.sh, scripts/setup-cinder.sh).
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-secrets.XXXXXX")
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-$(command -v python3)}
collections=${ANSIBLE_COLLECTIONS_PATH%%:*}
collection="$collections/ansible_collections/blockstore/storage"
# shellcheck source=tests/integration/targets/setup_blockstore/files/settings.sh
. ../setup_blockstore/files/settings.sh
# shellcheck source=tests/integration/targets/setup_blockstore/files/tgtd.sh
. ../setup_blockstore/files/tgtd.sh
pg_url=$(setting BLOCKSTORE_TEST_PG_URL)
ceph_conf=$(setting BLOCKSTORE_TEST_CEPH_CONF)
admin_keyring=$(setting BLOCKSTORE_TEST_CEPH_ADMIN_KEYRING)
rbd_python=$(setting BLOCKSTORE_TEST_RBD_PYTHON)
rbd_python=${rbd_python:-$collection/../../../../../../.venv-rbd/bin/python}
[ -n "$pg_url" ] || { echo "secrets: needs BLOCKSTORE_TEST_PG_URL (scripts/test.sh starts PostgreSQL)"; exit 1; }
[ -n "$ceph_conf" ] || { echo "secrets: needs the test Ceph (scripts/test.sh starts it for this target)"; exit 1; }

run_id=$RANDOM$RANDOM
pool="secrets-$run_id"  # secrets.yml names its backends secrets-<kind>-<run_id>
user="secrets-$run_id"
tgt_port=37
portal_port=3297
admin=(--conf "$ceph_conf" --id admin --keyring "$admin_keyring")
cleanup() {
  set +e
  # After a failure: whatever the run made (the database is shared with other tests).
  [ -f "$work/vars.json" ] && [ ! -f "$work/results-remove.json" ] && \
    ansible-playbook -i "$work/inventory" secrets.yml -e "@$work/vars.json" -e secrets_phase=remove >/dev/null 2>&1
  stop_tgtd "$tgt_port" "$work/tgtd.pid"
  ceph "${admin[@]}" osd pool rm "$pool" "$pool" --yes-i-really-really-mean-it </dev/null >/dev/null 2>&1
  ceph "${admin[@]}" auth rm "client.$user" </dev/null >/dev/null 2>&1
  losetup -l -n -O NAME,BACK-FILE 2>/dev/null | awk -v w="$work" 'index($2, w) == 1 {print $1}' | xargs -r -n1 losetup -d
  for pidfile in "$work"/run/*/pid; do [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null; done
  grep -o "${work}[^ ]*" /proc/mounts | xargs -r -n1 umount -l 2>/dev/null
  if [ -n "$(setting BLOCKSTORE_SECRETS_KEEP)" ]; then echo "secrets: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
# The Ceph tools leave the standard streams they were given non-blocking, which Ansible refuses:
# they get their own.
quiet() { "$@" </dev/null >>"$work/ceph.log" 2>&1 || { cat "$work/ceph.log"; return 1; }; }

# What this run's backends hold, unfiltered: every image, snapshot and trash entry of its pool, every
# file below the file backend's directory, every record of its backends in both stores, and the
# machine's loop devices (targets run one at a time). Recorded before anything is made, compared at the end.
holdings() {
  echo "== pool"; rbd "${admin[@]}" ls -l "$pool" </dev/null 2>>"$work/ceph.log"
  echo "== trash"; rbd "${admin[@]}" trash ls --all "$pool" </dev/null 2>>"$work/ceph.log"
  for dir in volumes volumes-db; do
    echo "== files $dir"; [ ! -d "$work/$dir" ] || find "$work/$dir" -mindepth 1 -printf '%P %y\n' | LC_ALL=C sort
  done
  echo "== records"
  PYTHONPATH="$collections" "$python" - "$work/state/state.json" "$pg_url" "$run_id" <<'PY'
import os, sys
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
stores = [{"storage": "db", "connection": sys.argv[2]}]
if os.path.exists(sys.argv[1]):
    stores.append({"storage": "file", "path": sys.argv[1]})
for persistence in stores:
    store = open_store(persistence)
    try:
        for record in sorted(store.all_records(), key=lambda r: r["id"]):
            if record["backend"].endswith("-" + sys.argv[3]):  # this run's backends (the database is shared)
                print(persistence["storage"], record["kind"], record["id"], record.get("status"))
    finally:
        store.close()
PY
  echo "== loop devices"; losetup -l -n -O NAME,BACK-FILE | LC_ALL=C sort
}

echo "== secrets: tgtd, a pool and a cephx user of this run"
start_tgtd "$tgt_port" "$portal_port" "$work/tgtd.pid"
quiet ceph "${admin[@]}" osd pool create "$pool" 8 8
quiet ceph "${admin[@]}" osd pool application enable "$pool" rbd
quiet rbd "${admin[@]}" pool init "$pool"
quiet ceph "${admin[@]}" auth get-or-create "client.$user" mon 'profile rbd' osd "profile rbd pool=$pool" \
  mgr "profile rbd pool=$pool" -o "$work/keyring"
holdings > "$work/holdings-before.txt"

# The secrets of this run (the CHAP passwords are made by the driver: read back below).
env_secret=$("$python" -c 'import secrets; print(secrets.token_urlsafe(18))')
export BLOCKSTORE_BACKEND_CHAP_PASSWORD=$env_secret   # read on the controller, as AWX injects credentials
ceph_key=$(awk '$1 == "key" {print $3}' "$work/keyring")
pg_password=$("$python" -c 'import sys, urllib.parse; print(urllib.parse.unquote(urllib.parse.urlsplit(sys.argv[1]).password or ""))' "$pg_url")
admin_key=$(awk '$1 == "key" {print $3}' "$admin_keyring")
(umask 077; "$python" - "$work" "$pg_url" "$ceph_conf" "$user" "$pool" "$rbd_python" "$tgt_port" "$portal_port" \
  "$admin_keyring" > "$work/vars.json" <<'PY'
import json, sys
work, url, conf, user, pool, rbd_python, tgt_port, portal_port, admin_keyring = sys.argv[1:]
print(json.dumps({"secrets_dir": work, "secrets_pg_url": url, "secrets_ceph_conf": conf, "secrets_ceph_user": user,
                  "secrets_admin_keyring": admin_keyring, "secrets_run": pool.split("-")[-1],
                  "secrets_pool": pool, "secrets_keyring": f"{work}/keyring", "secrets_rbd_python": rbd_python,
                  "secrets_tgt_port": int(tgt_port), "secrets_portal_port": int(portal_port)}))
PY
)

printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' "$python" > "$work/inventory"
export ANSIBLE_LOG_PATH="$work/ansible.log"
play() {  # play PHASE: the playbook at -vvv, all of its output kept
  echo "== secrets: ansible-playbook -vvv, $1"
  if ! ansible-playbook -vvv -i "$work/inventory" secrets.yml -e "@$work/vars.json" -e "secrets_phase=$1" \
      > "$work/output-$1.txt" 2>&1; then
    tail -n 60 "$work/output-$1.txt" | grep -vF -e "$env_secret" -e "$ceph_key" -e "$admin_key" -e "$pg_password"
    echo "secrets: the playbook failed"; return 1
  fi
}
play make

# The CHAP passwords, unsealed with the stores' keys (as an attacker with the key files could).
chap=$(PYTHONPATH="$collections" "$python" - "$work/state/state.json" "$pg_url" "$run_id" <<'PY'
import json, sys
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
found = set()
for persistence in ({"storage": "file", "path": sys.argv[1]}, {"storage": "db", "connection": sys.argv[2]}):
    store = open_store(persistence)
    try:
        for record in store.all_records():
            if record["kind"] == "connection" and record["backend"].endswith("-" + sys.argv[3]):
                data = store.sealer.unseal_tree(record["connection_info"]).get("data") or {}
                if data.get("auth_password"):
                    found.add(data["auth_password"])
                for line in (data.get("keyring") or "").splitlines():  # a keyring's contents: its keys
                    if line.strip().startswith("key"):
                        found.add(line.partition("=")[2].strip())
    finally:
        store.close()
print("\n".join(sorted(found)))
PY
)
[ "$(echo "$chap" | grep -c .)" -ge 3 ] || { echo "secrets: expected CHAP passwords and a keyring in the connections"; exit 1; }

echo "== secrets: BLOCKSTORE_BACKEND_CHAP_PASSWORD reaches the module on the target, and only from the variable"
# The module's arguments, kept on the target (ANSIBLE_KEEP_REMOTE_FILES) in a remote_tmp of this run:
# with the variable its value must be there (the action plugin read it on the controller and sent it
# along), without it it must not; the task succeeds both times. The kept files hold secrets in clear:
# they are deleted right after.
probe() {  # probe DIR [env args...]: the probe phase, its remote files kept in DIR
  local dir=$1; shift
  mkdir -m 700 "$dir"
  if ! env "$@" ANSIBLE_KEEP_REMOTE_FILES=1 ANSIBLE_REMOTE_TMP="$dir" ansible-playbook -i "$work/inventory" secrets.yml \
      -e "@$work/vars.json" -e secrets_phase=probe > "$work/output-probe.txt" 2>&1; then
    tail -n 30 "$work/output-probe.txt" | grep -vF -e "$env_secret" -e "$ceph_key" -e "$admin_key" -e "$pg_password"
    echo "secrets: the probe task failed"; return 1
  fi
  [ -n "$(find "$dir" -type f -name 'AnsiballZ_*')" ] || { echo "secrets: no module payload kept in $dir"; return 1; }
}
probe "$work/kept-with"
probe "$work/kept-without" -u BLOCKSTORE_BACKEND_CHAP_PASSWORD
with=$({ grep -rlF -- "$env_secret" "$work/kept-with" || true; } | wc -l)
without=$({ grep -rlF -- "$env_secret" "$work/kept-without" || true; } | wc -l)
rm -rf "$work/kept-with" "$work/kept-without" "$work/output-probe.txt"
echo "  kept module files holding the variable's value: $with with it set, $without without it"
if [ "$with" -lt 1 ] || [ "$without" -ne 0 ]; then
  echo "secrets: the module must get BLOCKSTORE_BACKEND_CHAP_PASSWORD's value when it is set, and only then"; exit 1
fi

echo "== secrets: what to search"
libpq_url=${pg_url/#postgresql+psycopg:/postgresql:}
pg_dump --no-owner "$libpq_url" > "$work/pg_dump.sql"
cp "$work/state/state.json" "$work/state-copy.json"
play remove
pg_dump --no-owner "$libpq_url" > "$work/pg_dump-after.sql"
echo "== secrets: the backends hold exactly what they held before the run"
holdings > "$work/holdings-after.txt"
if ! diff "$work/holdings-before.txt" "$work/holdings-after.txt"; then
  echo "secrets: the remove phase left something behind, or took something away (diff above)"; exit 1
fi

targets=("$work/ansible.log" "$work/output-make.txt" "$work/output-remove.txt" "$work/results-make.json" "$work/results-remove.json"
         "$work/state-copy.json" "$work/state/state.json" "$work/pg_dump.sql" "$work/pg_dump-after.sql" "$work/run")
declare -A secret_names=([env]="BLOCKSTORE_BACKEND_CHAP_PASSWORD value" [ceph]="cephx key" [admin]="client.admin's key"
                         [pg]="PostgreSQL password")
leaks=0
check() {  # check LABEL VALUE
  local label=$1 value=$2 hits
  [ ${#value} -ge 8 ] || { echo "secrets: $label is too short to search for"; leaks=$((leaks + 1)); return; }
  hits=$(grep -rlF -- "$value" "${targets[@]}" 2>/dev/null || true)
  if [ -n "$hits" ]; then
    echo "LEAK: $label in clear in:"; while IFS= read -r file; do echo "  $file"; done <<< "$hits"
    grep -rnF -- "$value" "${targets[@]}" 2>/dev/null | head -5 | while IFS= read -r line; do
      line=${line//"$value"/<$label>}; echo "${line:0:300}"
    done
    leaks=$((leaks + 1))
  else
    echo "  no $label in clear"
  fi
}
check "${secret_names[env]}" "$env_secret"
check "${secret_names[ceph]}" "$ceph_key"
check "${secret_names[admin]}" "$admin_key"
check "${secret_names[pg]}" "$pg_password"
n=0
while read -r value; do
  [ -n "$value" ] || continue
  n=$((n + 1))
  check "CHAP password or keyring #$n" "$value"
done <<< "$chap"
grep -q 'sealed:v1:' "$work/state-copy.json" || { echo "secrets: nothing sealed in the state file?"; leaks=$((leaks + 1)); }
grep -q 'sealed:v1:' "$work/pg_dump.sql" || { echo "secrets: nothing sealed in the database?"; leaks=$((leaks + 1)); }
grep -q '\*\*\*\*\*\*\*\*' "$work/results-make.json" || { echo "secrets: no masked value in the results?"; leaks=$((leaks + 1)); }
echo "== secrets: searched $(cat "$work"/output-*.txt | wc -l) lines of -vvv output, the results, the state file, two pg_dumps, the run dir: $leaks problems"
[ "$leaks" -eq 0 ]

#!/usr/bin/env bash
# storage_crash's kill -9 at every step, on the rbd driver (the test Ceph of scripts/test.sh, a
# pool and a cephx user of this run): create, snapshot, clone, volume from snapshot, extend,
# delete (with a snapshot), delete of a snapshot a volume was made from, and attach and detach
# through qemu-storage-daemon. librbd makes no audit events: the kill hook counts the lines of
# drivers/rbd/ that call a mutating librbd function (see storage_crash's sitecustomize.py).
#
#   BLOCKSTORE_CRASH_EVERY=0    kill only at a sample of the steps; default: every step
#   BLOCKSTORE_CRASH_HOSTS=N    local hosts sharing the steps (forks); default 2
set -euo pipefail
crash=../storage_crash
work=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-crash-rbd.XXXXXX")
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-$(command -v python3)}
collection="${ANSIBLE_COLLECTIONS_PATH%%:*}/ansible_collections/blockstore/storage"
# shellcheck source=tests/integration/targets/setup_blockstore/files/settings.sh
. ../setup_blockstore/files/settings.sh
# shellcheck source=tests/integration/targets/setup_blockstore/files/holdings.sh
. ../setup_blockstore/files/holdings.sh
ceph_conf=$(setting BLOCKSTORE_TEST_CEPH_CONF)
admin_keyring=$(setting BLOCKSTORE_TEST_CEPH_ADMIN_KEYRING)
rbd_python=$(setting BLOCKSTORE_TEST_RBD_PYTHON)
rbd_python=${rbd_python:-$collection/../../../../../../.venv-rbd/bin/python}
[ -n "$ceph_conf" ] || { echo "crash-rbd: needs the test Ceph (scripts/test.sh starts it for targets named *rbd*)"; exit 1; }
run_id=$RANDOM$RANDOM
hosts=$(setting BLOCKSTORE_CRASH_HOSTS 2)
pools=()  # one per host (crash0, crash1, ...): each host's listing shows its own images only
for ((i = 0; i < hosts; i++)); do pools+=("crash-$run_id-crash$i"); done
user="crash-$run_id"
admin=(--conf "$ceph_conf" --id admin --keyring "$admin_keyring")
cleanup() {
  set +e
  losetup -l -n -O NAME,BACK-FILE 2>/dev/null | awk -v w="$work" 'index($2, w) == 1 {print $1}' | xargs -r -n1 losetup -d
  for pidfile in "$work"/*/run/*/pid; do [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null; done
  grep -o "${work}[^ ]*" /proc/mounts | xargs -r -n1 umount -l 2>/dev/null
  for pool in "${pools[@]}"; do
    ceph "${admin[@]}" osd pool rm "$pool" "$pool" --yes-i-really-really-mean-it </dev/null >/dev/null 2>&1
  done
  ceph "${admin[@]}" auth rm "client.$user" </dev/null >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
# The Ceph tools leave the standard streams they were given non-blocking, which Ansible refuses:
# they get their own.
quiet() { "$@" </dev/null >>"$work/ceph.log" 2>&1 || { cat "$work/ceph.log"; return 1; }; }
caps=""
for pool in "${pools[@]}"; do
  quiet ceph "${admin[@]}" osd pool create "$pool" 8 8
  quiet ceph "${admin[@]}" osd pool application enable "$pool" rbd
  quiet rbd "${admin[@]}" pool init "$pool"
  caps="${caps:+$caps, }profile rbd pool=$pool"
done
quiet ceph "${admin[@]}" auth get-or-create "client.$user" mon 'profile rbd' osd "$caps" mgr "$caps" -o "$work/keyring"

# The shared end of a target: this run's pools (every image, snapshot and trash entry) and the machine's
# loop devices hold exactly what they held before, no filter (crash.yml's own listing leaves out the trash).
"$python" -c 'import json, sys; print(json.dumps({"holdings_file": sys.argv[1], "holdings_rbd_cli": sys.argv[2],
"holdings_pools": sys.argv[3:]}))' "$work/holdings" "rbd --conf $ceph_conf --id admin --keyring $admin_keyring" \
  "${pools[@]}" > "$work/holdings.json"
holdings before "$work/holdings.json" </dev/null

started=$SECONDS
"$python" - "$work" "crash-$run_id" "$user" "$ceph_conf" "$work/keyring" "$rbd_python" "$PWD/$crash/files/crashpoint" \
  "$(setting BLOCKSTORE_CRASH_EVERY 1)" "$hosts" <<'PY' | "$python" "$crash/inventory.py" > "$work/inventory.json"
import json, sys
work, prefix, user, conf, keyring, rbd_python, hook, every, hosts = sys.argv[1:]
pool = prefix + "-{host}"
options = f":conf={conf}:id={user}:keyring={keyring}"
print(json.dumps({"hosts": int(hosts), "dir": work, "vars": {
    "ansible_python_interpreter": rbd_python, "crash_hook": hook, "crash_every": every == "1",
    "crash_sample": ["rbd", "return from"],
    "crash_backend": {"name": "crash-rbd-{host}", "driver": "rbd", "rbd_pool": pool, "rbd_ceph_conf": conf,
                      "rbd_user": user, "rbd_keyring_conf": keyring, "rados_connect_timeout": 30},
    "crash_image": {"volume": f"rbd:{pool}/volume-{{id}}{options}",
                    "snapshot": f"rbd:{pool}/volume-{{volume_id}}@snapshot-{{id}}{options}",
                    "format": "raw", "options": []},
    # the pool's images and snapshots (hidden ones too), and loop devices of this host
    # setup_blockstore's unfiltered holdings check: the pool (images, snapshots, trash)
    "crash_holdings_pools": [pool],
    "crash_holdings_rbd_cli": f"rbd --conf {conf} --id {user} --keyring {keyring}",
    "crash_listing": f"rbd --conf {conf} --id {user} --keyring {keyring} ls -l {pool} | awk 'NR > 1 {{print $1}}'; "
                     "losetup -l -n -O BACK-FILE | grep -F {dir}/ || true",
}}))
PY
echo "== crash: rbd driver"
export ANSIBLE_ROLES_PATH="$PWD/..:${ANSIBLE_ROLES_PATH:-}"  # setup_blockstore's holdings check
ansible-playbook -i "$work/inventory.json" -f "$hosts" "$crash/crash.yml"
holdings after "$work/holdings.json" </dev/null
echo "== crash: rbd driver passed in $((SECONDS - started)) s"

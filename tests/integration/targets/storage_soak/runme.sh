#!/usr/bin/env bash
# The concurrency soak: BLOCKSTORE_SOAK_HOSTS hosts (forks, default 20) x BLOCKSTORE_SOAK_OPS mixed
# operations each (create, snapshot, extend, delete; default 10 in CI, 50 for the full soak) on
# overlapping names, against the JSON file store, the db store on SQLite and on PostgreSQL (when
# scripts/test.sh gives one); qcow2 images, whose shared chains make it harder. Afterwards the
# store must match the backend exactly: the check command (playbooks/check_drift.yml), and
# storage_concurrency's verify.py for sizes, image checks, duplicate names and temp files.
#
#   BLOCKSTORE_SOAK_OPS=50 bash scripts/test.sh integration storage_soak    # the full soak
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-soak.XXXXXX")
trap 'rm -rf "$work"' EXIT
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-$(command -v python3)}
# shellcheck source=tests/integration/targets/setup_blockstore/files/settings.sh
. ../setup_blockstore/files/settings.sh
# shellcheck source=tests/integration/targets/setup_blockstore/files/holdings.sh
. ../setup_blockstore/files/holdings.sh
hosts=$(setting BLOCKSTORE_SOAK_HOSTS 20)
ops=$(setting BLOCKSTORE_SOAK_OPS 10)
seed=$(setting BLOCKSTORE_SOAK_SEED "$RANDOM")
echo "== soak: $hosts hosts x $ops operations, seed $seed (BLOCKSTORE_SOAK_SEED=$seed repeats it)"
"$python" ops.py "$hosts" "$ops" "$seed" "$python" > "$work/inventory.json"

pg_url=$(setting BLOCKSTORE_TEST_PG_URL)

run() {  # run LABEL STORAGE CONNECTION_OR_PATH
  local label=$1 started=$SECONDS backend="soak-$1-$$"
  # The connection URL may hold a password: it goes in 0600 files, never on a command line.
  (umask 077; "$python" - "$2" "$3" "$backend" "$work/backend-$label" "$python" "$work/$label" <<'PY'
import json, sys
storage, where, name, directory, python, prefix = sys.argv[1:]
persistence = {"storage": storage, ("path" if storage == "file" else "connection"): where}
backend = {"name": name, "driver": "file", "path": directory, "format": "qcow2"}
json.dump({"persistence": persistence}, open(prefix + ".store.json", "w"))
json.dump({"persistence": persistence, "backend": backend, "ansible_python_interpreter": python},
          open(prefix + ".drift.json", "w"))
PY
  )
  # The shared end of a target: the backend directory, the JSON state file (the db stores' records are
  # verify.py's) and the machine's loop devices hold exactly what they held before, no filter.
  local stores=()
  if [ "$2" = file ]; then stores=("$3"); fi
  "$python" -c 'import json, sys; print(json.dumps({"holdings_file": sys.argv[1], "holdings_dirs": [sys.argv[2]],
"holdings_stores": sys.argv[3:]}))' "$work/$label.holdings" "$work/backend-$label" "${stores[@]}" > "$work/$label.holdings.json"
  holdings before "$work/$label.holdings.json"
  echo "== soak: $label store"
  ansible-playbook -i "$work/inventory.json" -f "$hosts" soak.yml -e "@$work/$label.store.json" \
    -e "store_vars=$work/$label.store.json drift_vars=$work/$label.drift.json backend_name=$backend" \
    -e "backend_dir=$work/backend-$label backend_format=qcow2"
  holdings after "$work/$label.holdings.json"
  echo "== soak: $label store passed in $((SECONDS - started)) s"
}

run file file "$work/state/state.json"
run sqlite db "sqlite:///$work/state/state.db"
if [ -n "$pg_url" ]; then
  run postgresql db "$pg_url"
else
  echo "== soak: PostgreSQL skipped (no BLOCKSTORE_TEST_PG_URL; scripts/test.sh provides one)"
fi

#!/usr/bin/env bash
# Twenty inventory hosts, -f 20, all local: concurrent tasks against the file store,
# the db store on SQLite, and the db store on PostgreSQL when a server is given
# (BLOCKSTORE_TEST_PG_URL, or blockstore_test_pg_url in integration_config.yml,
# which scripts/test.sh writes). See concurrency.yml for what each run checks.
set -euo pipefail

work=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-concurrency.XXXXXX")
trap 'rm -rf "$work"' EXIT
# ansible-test names the Python it runs Ansible with (it has PyYAML); python3 outside it.
python=${ANSIBLE_TEST_PYTHON_INTERPRETER:-$(command -v python3)}

{
  echo "[workers]"
  for i in $(seq -w 1 20); do echo "host$i"; done
  echo "[workers:vars]"
  echo "ansible_connection=local"
  echo "ansible_python_interpreter={{ ansible_playbook_python }}"
} > "$work/inventory"

# shellcheck source=tests/integration/targets/setup_blockstore/files/settings.sh
. ../setup_blockstore/files/settings.sh
# shellcheck source=tests/integration/targets/setup_blockstore/files/holdings.sh
. ../setup_blockstore/files/holdings.sh
pg_url=$(setting BLOCKSTORE_TEST_PG_URL)

run() {  # run LABEL FORMAT STORAGE CONNECTION_OR_PATH [ansible-playbook options]
  local label=$1 format=$2 started=$SECONDS
  local store_vars="$work/$label.json"
  # The connection URL may hold a password: it goes in a 0600 file, never on a command line.
  (umask 077; "$python" -c 'import json, sys
key = "path" if sys.argv[1] == "file" else "connection"
print(json.dumps({"persistence": {"storage": sys.argv[1], key: sys.argv[2]}}))' "$3" "$4" > "$store_vars")
  # The shared end of a target: the backend directory, the JSON state file (the db stores' records are
  # verify.py's) and the machine's loop devices hold exactly what they held before, no filter.
  local stores=()
  if [ "$3" = file ]; then stores=("$4"); fi
  "$python" -c 'import json, sys; print(json.dumps({"holdings_file": sys.argv[1], "holdings_dirs": [sys.argv[2]],
"holdings_stores": sys.argv[3:]}))' "$work/$label.holdings" "$work/backend-$label" "${stores[@]}" > "$work/$label.holdings.json"
  holdings before "$work/$label.holdings.json"
  echo "== concurrency: $label store, $format images"
  ansible-playbook -i "$work/inventory" -f 20 concurrency.yml -e "@$store_vars" \
    -e "store_vars=$store_vars backend_name=conc-$label-$$ backend_dir=$work/backend-$label backend_format=$format" \
    "${@:5}"
  holdings after "$work/$label.holdings.json"
  echo "== concurrency: $label store passed in $((SECONDS - started)) s"
}

run file qcow2 file "$work/state/state.json"
# The shared-chain stress (tag chains) tests the driver, not the store: once is enough.
run sqlite raw db "sqlite:///$work/state/state.db" --skip-tags chains
if [ -n "$pg_url" ]; then
  run postgresql qcow2 db "$pg_url" --skip-tags chains
else
  echo "== concurrency: PostgreSQL skipped (no BLOCKSTORE_TEST_PG_URL; scripts/test.sh provides one)"
fi

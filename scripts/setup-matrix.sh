#!/usr/bin/env bash
# Set-up for the ansible-core version matrix (scripts/test.sh matrix); run by scripts/setup.sh;
# idempotent and quick when already done.
#
# The collection supports ansible-core 2.16 and later (meta/runtime.yml). The main venv (.venv) runs
# the newest (constraints/controller.txt); the older releases that AWX/AAP execution environments still
# ship each get a venv of their own, .venv-core<VERSION>, with that ansible-core at the versions of
# constraints/core-<VERSION>.txt (scripts/lock.sh). The same controller Python serves all of them
# (ansible-core 2.16 runs on Python 3.10-3.12, 2.18 on 3.11-3.13).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=scripts/pythons.sh
. scripts/pythons.sh
PY=$(controller_python)

for core in $ANSIBLE_CORE_MATRIX; do
  venv="$REPO/.venv-core$core"
  lock="constraints/core-$core.txt"
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
  install_locked "$venv" .requirements.sha256 "$lock" "ansible-core==$core.*"
  echo "ansible-core matrix: $("$venv/bin/ansible" --version 2>/dev/null | head -1) in $venv"
done

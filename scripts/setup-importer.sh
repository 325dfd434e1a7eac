#!/usr/bin/env bash
# Set-up for the galaxy-importer check (tests/packaging/galaxy_importer.sh); run by scripts/setup.sh;
# idempotent and quick when already done.
#
# galaxy-importer is the check Galaxy runs on every uploaded collection (metadata, license, changelog,
# ansible-doc, ansible-lint, flake8). It pins attrs<24 while the controller venv's tools need a newer one,
# so it gets a venv of its own, .venv-importer (BLOCKSTORE_IMPORTER_VENV), with requirements-importer.txt
# at the versions of constraints/importer.txt (scripts/lock.sh importer).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=scripts/pythons.sh
. scripts/pythons.sh
PY=$(controller_python)
venv=${BLOCKSTORE_IMPORTER_VENV:-$REPO/.venv-importer}
lock=constraints/importer.txt

[ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
install_locked "$venv" .requirements.sha256 "$lock" -r requirements-importer.txt
echo "galaxy-importer: $("$venv/bin/python" -m pip show galaxy-importer 2>/dev/null | sed -n 's/^Version: //p') in $venv"

# shellcheck shell=bash
# Sourced by the set-up, lock and test scripts: which Python interpreters the project uses.
#   controller_python     the newest-enough Python for the controller venv (ansible-core 2.21 needs >= 3.12)
#   RBD_SYSTEM_PYTHON     Debian's Python: the only one Ceph's bindings (python3-rados, python3-rbd) load in
#   OLDEST_TARGET_PYTHON  the oldest Python modules support on target hosts (tests/config.yml)
# The variables are read by the scripts that source this file.
# shellcheck disable=SC2034
PYENV_VERSIONS=${PYENV_ROOT:-$HOME/.pyenv}/versions
# shellcheck disable=SC2034
RBD_SYSTEM_PYTHON=/usr/bin/python3.11
# shellcheck disable=SC2034
OLDEST_TARGET_PYTHON=3.9
# The older ansible-core releases tested beside the main venv's (scripts/setup-matrix.sh, test.sh matrix).
# shellcheck disable=SC2034
ANSIBLE_CORE_MATRIX="2.16 2.18"

controller_python() {
  local candidate
  for candidate in "${BLOCKSTORE_PYTHON:-}" python3.13 python3.12 "$PYENV_VERSIONS"/3.12*/bin/python3.12 \
                   "$PYENV_VERSIONS"/3.13*/bin/python3.13; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && \
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "no Python >= 3.12 found; set BLOCKSTORE_PYTHON to one" >&2
  return 1
}

# python_version_path X.Y: an interpreter of that version that runs (pyenv's shims may not).
python_version_path() {
  local candidate
  for candidate in "$PYENV_VERSIONS"/"$1".*/bin/python"$1" "/usr/bin/python$1" "$(command -v "python$1" || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c pass 2>/dev/null && { echo "$candidate"; return 0; }
  done
  return 1
}

# install_locked VENV STAMP_NAME LOCK PIP_ARGS...: pip install -c LOCK PIP_ARGS into VENV (pip itself first,
# at the lock's version where it has one), unless the lock, the arguments and every `-r FILE` are unchanged
# since the last install there: VENV/STAMP_NAME keeps their sha256, so a re-run of the set-up is quick.
install_locked() {
  local venv=$1 stamp="$1/$2" lock=$3 want arg previous=""
  shift 3
  want=$({ cat "$lock"; printf '%s\n' "$@"
           for arg in "$@"; do [ "$previous" = -r ] && cat "$arg"; previous=$arg; done; } | sha256sum | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || return 0
  echo "installing $* into $venv (locked by $lock)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$lock" pip
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$lock" "$@"
  echo "$want" >"$stamp"
}

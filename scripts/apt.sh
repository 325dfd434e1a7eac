# shellcheck shell=bash
# Sourced by the set-up scripts: apt_ensure PACKAGE... installs those of the Debian packages
# that are not installed yet. Several set-ups may run at once: apt's lock is waited for (10 min).
# The package lists are updated only when an install fails (a fresh machine's lists may be
# empty or stale), so an up-to-date machine makes no network call.
apt_ensure() {
  local pkg missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  echo "installing ${missing[*]}"
  local apt=(apt-get -qq -o DPkg::Lock::Timeout=600)
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null; then
    "${apt[@]}" update
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

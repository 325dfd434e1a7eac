#!/usr/bin/env bash
# What `scripts/test.sh lint` and `scripts/test.sh sanity` need beyond requirements-dev.txt:
#   the shellcheck program - ansible-test sanity's shellcheck test (skipped with a warning without it)
#   locale en_US.UTF-8     - the locale ansible-test wants (it warns and falls back to C.UTF-8 without it)
# ansible-test sanity --venv installs each test's Python requirements from PyPI into
# ~/.ansible/test/venv on its first run (about 4 minutes), then reuses them.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/apt.sh
. scripts/apt.sh
apt_ensure shellcheck locales

if ! locale -a 2>/dev/null | grep -qix 'en_US.utf8'; then
  sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' /etc/locale.gen
  grep -qx 'en_US.UTF-8 UTF-8' /etc/locale.gen || echo 'en_US.UTF-8 UTF-8' >>/etc/locale.gen
  locale-gen >/dev/null
fi
echo "quality tools ready: $(shellcheck --version | sed -n 's/^version: //p' | sed 's/^/shellcheck /'), locale en_US.UTF-8"

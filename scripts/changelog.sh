#!/usr/bin/env bash
# CHANGELOG.rst from changelogs/ (antsibull-changelog): the released versions of changelogs/changelog.yaml and,
# while changelogs/fragments holds changes not released yet, a section for galaxy.yml's version marked
# "(unreleased)" with them.
#
#   bash scripts/changelog.sh           # write CHANGELOG.rst (after adding or editing a fragment)
#   bash scripts/changelog.sh --check   # fail if CHANGELOG.rst is not what changelogs/ makes (scripts/test.sh lint)
#
# antsibull-changelog renders only released versions. So the unreleased section is made in a copy of the
# checkout: `antsibull-changelog release` for galaxy.yml's version there (with a release summary saying it
# is not released, unless a fragment has one), then its heading gets "(unreleased)". Nothing in the checkout
# but CHANGELOG.rst changes: the fragments stay, changelog.yaml records no release. The real release is
# `antsibull-changelog release` in the checkout, after which this script renders what that wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV=${BLOCKSTORE_VENV:-$REPO/.venv}
mode="write"
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  *) echo "usage: bash scripts/changelog.sh [--check]" >&2; exit 2 ;;
esac
[ -x "$VENV/bin/antsibull-changelog" ] || { echo "changelog: no antsibull-changelog in $VENV; run scripts/setup.sh" >&2; exit 2; }
export PATH="$VENV/bin:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-changelog.XXXXXX")
trap 'rm -rf "$work"' EXIT
copy="$work/collection"
mkdir -p "$copy"
# The checkout as test.sh copies it (no .git, nothing .gitignore lists); ansible-doc reads the modules'
# short descriptions from it for the "New Modules" list.
rsync -a --exclude .git --filter=':- .gitignore' "$REPO/" "$copy/"
rm -f "$copy/CHANGELOG.rst"

version=$("$VENV/bin/python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["version"])' galaxy.yml)
fragments=$(find changelogs/fragments -maxdepth 1 -type f \( -name '*.yml' -o -name '*.yaml' \) | wc -l)
released=$("$VENV/bin/python" -c '
import sys, yaml
print(sys.argv[2] in (yaml.safe_load(open(sys.argv[1])).get("releases") or {}))' changelogs/changelog.yaml "$version")

if [ "$fragments" -gt 0 ]; then
  if [ "$released" = True ]; then
    echo "changelog: galaxy.yml's version $version is released already (changelogs/changelog.yaml);" \
         "bump it for the $fragments fragment(s) in changelogs/fragments" >&2
    exit 1
  fi
  if ! grep -qs '^release_summary:' changelogs/fragments/*.y*ml; then
    cat >"$copy/changelogs/fragments/unreleased-summary.yml" <<'YAML'
---
release_summary: >-
  Not released yet: the changes made so far for this version, from ``changelogs/fragments``
  (``bash scripts/changelog.sh`` renders them; ``scripts/test.sh lint`` checks this file is current).
YAML
  fi
  (cd "$copy" && antsibull-changelog release --version "$version") >"$work/antsibull.log" 2>&1 ||
    { cat "$work/antsibull.log"; echo "changelog: antsibull-changelog release (in a copy) failed" >&2; exit 1; }
  "$VENV/bin/python" - "$copy/CHANGELOG.rst" "$version" <<'PY'
import sys

path, version = sys.argv[1], sys.argv[2]
lines = open(path, encoding="utf-8").read().split("\n")
heading = "v" + version
for i in range(len(lines) - 1):
    if lines[i] == heading and lines[i + 1] == "=" * len(heading):
        lines[i] = heading + " (unreleased)"
        lines[i + 1] = "=" * len(lines[i])
        break
else:
    sys.exit(f"changelog: no heading {heading} in the generated changelog")
open(path, "w", encoding="utf-8").write("\n".join(lines))
PY
else
  (cd "$copy" && antsibull-changelog generate) >"$work/antsibull.log" 2>&1 ||
    { cat "$work/antsibull.log"; echo "changelog: antsibull-changelog generate failed" >&2; exit 1; }
fi

if [ "$mode" = check ]; then
  if ! diff -u CHANGELOG.rst "$copy/CHANGELOG.rst"; then
    echo "changelog: CHANGELOG.rst is not what changelogs/ makes (diff above): run 'bash scripts/changelog.sh' and commit it" >&2
    exit 1
  fi
  echo "changelog: CHANGELOG.rst is current"
else
  cp "$copy/CHANGELOG.rst" CHANGELOG.rst
  echo "changelog: wrote CHANGELOG.rst ($([ "$fragments" -gt 0 ] && echo "$version unreleased, $fragments fragments" || echo "released versions"))"
fi

#!/usr/bin/env bash
# The built collection through galaxy-importer, the check Galaxy runs on every upload: metadata, ansible-doc
# of every plugin, ansible-lint, flake8 of every plugin file, the changelog (settings: galaxy_importer.cfg
# beside this file). Fails on any warning or error the importer prints, on a failed import, and on a result
# that lacks what users should see (license, the modules, the role, the playbook, the README).
#
#   bash tests/packaging/galaxy_importer.sh        (run by: bash scripts/test.sh packaging [galaxy_importer])
#
# It runs as Galaxy does: on the built tarball, in an empty HOME (so the collection's dependencies, installed
# in ~/.ansible/collections here, are not installed there, as on Galaxy) with only the importer's venv on
# PATH. Needs scripts/setup.sh (scripts/setup-importer.sh: .venv-importer, or BLOCKSTORE_IMPORTER_VENV).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
VENV=${BLOCKSTORE_VENV:-$REPO/.venv}
IMPORTER_VENV=${BLOCKSTORE_IMPORTER_VENV:-$REPO/.venv-importer}
fail() { echo "galaxy_importer: FAILED: $*" >&2; exit 1; }
step() { echo "-- $*"; }
[ -x "$IMPORTER_VENV/bin/python" ] || fail "no $IMPORTER_VENV; run scripts/setup.sh (scripts/setup-importer.sh)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-importer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

step "build"
"$VENV/bin/ansible-galaxy" collection build --force --output-path "$tmp/build" "$REPO" >/dev/null 2>"$tmp/build.err" ||
  { cat "$tmp/build.err"; fail "ansible-galaxy collection build"; }
tarball=$(ls "$tmp"/build/blockstore-storage-*.tar.gz)

step "COPYING in the tarball is the GPL-3.0 (the license the file headers point at; with an SPDX 'license' the importer does not look)"
mkdir -p "$tmp/copying"
tar xzf "$tarball" -C "$tmp/copying" COPYING 2>/dev/null || fail "COPYING is missing from the tarball"
if ! grep -q '^ *GNU GENERAL PUBLIC LICENSE$' "$tmp/copying/COPYING" ||
   ! grep -q '^ *Version 3, 29 June 2007$' "$tmp/copying/COPYING"; then
  fail "COPYING in the tarball is not the GNU GPL version 3"
fi

step "galaxy-importer $("$IMPORTER_VENV/bin/python" -m pip show galaxy-importer 2>/dev/null | sed -n 's/^Version: //p') on $(basename "$tarball")"
mkdir -p "$tmp/home" "$tmp/run"
started=$SECONDS
# main.py writes importer_result.json into its working directory.
rc=0
(cd "$tmp/run" && env -i HOME="$tmp/home" PATH="$IMPORTER_VENV/bin:/usr/local/bin:/usr/bin:/bin" LANG=C.UTF-8 \
   TMPDIR="$tmp" GALAXY_IMPORTER_CONFIG="$REPO/tests/packaging/galaxy_importer.cfg" \
   "$IMPORTER_VENV/bin/python" -m galaxy_importer.main "$tarball" >"$tmp/stdout" 2>"$tmp/stderr") || rc=$?
echo "import took $((SECONDS - started)) s"
# LOG_LEVEL_MAIN = WARNING: every line it prints is a warning or an error; stderr is Python's own
# warnings and logging that bypassed the importer's handler.
if [ -s "$tmp/stdout" ] || [ -s "$tmp/stderr" ]; then
  cat "$tmp/stdout" "$tmp/stderr"
  fail "galaxy-importer reported the $(cat "$tmp/stdout" "$tmp/stderr" | wc -l) line(s) above (exit code $rc)"
fi
[ "$rc" -eq 0 ] || fail "galaxy-importer exited with $rc"
[ -s "$tmp/run/importer_result.json" ] || fail "galaxy-importer wrote no importer_result.json"

step "the import result: metadata, contents and docs as Galaxy will show them"
"$IMPORTER_VENV/bin/python" - "$tmp/run/importer_result.json" <<'PY'
import json
import sys

result = json.load(open(sys.argv[1]))
meta = result["metadata"]
problems = []
if meta["license"] != ["GPL-3.0-or-later"]:
    problems.append(f"license is {meta['license']!r}")
if meta["readme"] != "README.md" or not result["docs_blob"]["collection_readme"].get("html"):
    problems.append("no rendered README.md")
if not result.get("requires_ansible"):
    problems.append("no requires_ansible (meta/runtime.yml)")
contents = {(item["content_type"], item["name"]) for item in result["contents"]}
wanted = {("module", m) for m in ("storage_volume", "storage_snapshot", "storage_attachment", "storage_state",
                                  "storage_volume_info", "storage_snapshot_info", "storage_backend_info",
                                  "storage_host_info")}
wanted |= {("role", "volume"), ("playbook", "check_drift.yml"), ("action", "storage")}
missing = sorted(wanted - contents)
if missing:
    problems.append(f"contents lack {missing}")
documented = {item["content_name"] for item in result["docs_blob"]["contents"]
              if item["content_type"] == "module" and item.get("doc_strings")}
undocumented = sorted(name for kind, name in wanted if kind == "module" and name not in documented)
if undocumented:
    problems.append(f"modules without doc strings: {undocumented}")
if problems:
    sys.exit("galaxy_importer: FAILED: the import result: " + "; ".join(problems))
modules = sum(1 for kind, _ in contents if kind == "module")
print(f"{meta['namespace']}.{meta['name']} {meta['version']}: {len(contents)} contents ({modules} modules), "
      f"license {', '.join(meta['license'])}, requires_ansible {result['requires_ansible']}")
if meta.get("repository", "").split("/")[2:3] == ["example.invalid"]:
    print(f"note: repository is the placeholder {meta['repository']} (galaxy.yml): replace it before publishing")
PY
echo "galaxy_importer: ok (no warning)"

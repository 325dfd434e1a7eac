#!/usr/bin/env bash
# Run the whole test suite: lint, unit tests (real SQLite and PostgreSQL), and the
# ansible-test integration targets (real ansible-playbook runs on real storage).
#
#   bash scripts/test.sh                 # everything
#   bash scripts/test.sh lint            # ruff, ansible-lint, antsibull-changelog lint, CHANGELOG.rst current, ansible-doc of every module
#   bash scripts/test.sh sanity [--test NAME...]   # ansible-test sanity (--venv: no Docker)
#   bash scripts/test.sh units           # ansible-test units (`units -k EXPR ...`: plain pytest with those arguments)
#   bash scripts/test.sh conformance ['{"storage": ...}'...]   # the store conformance suite (docs/stores.md)
#   bash scripts/test.sh integration [target...]
#   bash scripts/test.sh molecule [scenario...]   # the volume role's scenarios (extensions/molecule)
#   bash scripts/test.sh packaging [name...]      # tests/packaging: galaxy_install, galaxy_importer, ee_context, awx_credential, lint_module_defaults
#   bash scripts/test.sh matrix [2.16 2.18...]    # older ansible-core: the quick start twice + storage_file_raw
#   bash scripts/test.sh mutation [file...]       # sampled mutation testing of the core (cosmic-ray); not in 'all'
#   bash scripts/test.sh examples [FILE:LINE-GLOB...]   # every documented example, run twice (tests/examples)
#
# Needs scripts/setup.sh to have run. Prints one closing line "tests: N passed, N failed, N skipped", with
# every failed and skipped step, test, target or leg named above it. Under CI (CI=true) a skip that
# tests/skips-allowed.txt does not list, with its reason, fails the run (docs/testing.md).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
REPO=$(pwd)
VENV=${BLOCKSTORE_VENV:-$REPO/.venv}
[ -x "$VENV/bin/python" ] || { echo "test: no venv at $VENV; run scripts/setup.sh first" >&2; exit 2; }
export PATH="$VENV/bin:$PATH"
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
PYVER=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
what=${1:-all}; shift || true
passed=0; failed=0; skipped=0; failures=(); skips=()
record() {  # record NAME EXIT_CODE
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}
skip() {  # skip NAME REASON: a test, target or leg that did not run
  skipped=$((skipped + 1)); skips+=("$1: $2")
}
# Skips of pytest runs, from their junit files: one skip() per skipped test, named by its node id.
record_pytest_skips() {  # record_pytest_skips PREFIX JUNIT_FILE...
  local prefix=$1 line
  shift
  while IFS= read -r line; do
    [ -n "$line" ] && skip "$prefix${line%%$'\t'*}" "${line#*$'\t'}"
  done < <(python tests/utils/junit_skips.py "$@")
}
# ansible-test's own skips (a sanity test or Python it did not run, targets it left out), from its output.
# 'Skipping sanity test "compile" on Python 3.14 because ...' is named NAME/compile/python3.14.
record_ansible_test_skips() {  # record_ansible_test_skips NAME OUTPUT_FILE
  local line name
  while IFS= read -r line; do
    name=$1
    if [[ $line =~ ^Skipping\ sanity\ test\ \"([^\"]+)\"(\ on\ Python\ ([0-9.]+))? ]]; then
      name="$1/${BASH_REMATCH[1]}${BASH_REMATCH[3]:+/python${BASH_REMATCH[3]}}"
    fi
    skip "$name" "$line"
  done < <(grep -E '^WARNING: (Skipping|All targets skipped)' "$2" | sed 's/^WARNING: //' | sort -u)
}

# What a test could leave running or mounted; compared before and after a whole run (a test stops what it starts):
# daemons, loop devices, FUSE mounts, and the multi-host lab's sshd and network namespaces.
machine_state() {
  { pgrep -a -x tgtd; pgrep -a -x redis-server; pgrep -a '^qemu-storage-d'; losetup -l -n -O NAME,BACK-FILE; grep ' fuse' /proc/mounts;
    pgrep -a -x sshd; ip netns list; pgrep -a '^qemu-system'; } \
    2>/dev/null | sort
}
[ "$what" = all ] && machine_state >"${TMPDIR:-/tmp}/blockstore-machine-before.$$"

started_pg=""
started_redis=""
started_ceph=""
guest_lab_pid=""
cleanup() {
  [ -n "$guest_lab_pid" ] && guest_lab_stop
  [ -n "$started_pg" ] && bash tests/utils/postgres.sh stop >/dev/null 2>&1
  [ -n "$started_redis" ] && bash tests/utils/redis.sh stop >/dev/null 2>&1
  [ -n "$started_ceph" ] && bash tests/utils/ceph.sh stop >/dev/null 2>&1
}
trap cleanup EXIT
# A throwaway PostgreSQL on 127.0.0.1 for the db store tests, unless one is given (not for mutation: no daemons there).
if [ -z "${BLOCKSTORE_TEST_PG_URL:-}" ] && [ "$what" != lint ] && [ "$what" != sanity ] && [ "$what" != mutation ]; then
  bash tests/utils/postgres.sh start >/dev/null || { echo "test: cannot start PostgreSQL" >&2; exit 2; }
  started_pg=1
  BLOCKSTORE_TEST_PG_URL=$(bash tests/utils/postgres.sh url)
  export BLOCKSTORE_TEST_PG_URL
fi

# A throwaway Redis on 127.0.0.1 for the Redis example store (extensions/stores), unless one is given.
if [ -z "${BLOCKSTORE_TEST_REDIS_URL:-}" ] && [ "$what" != lint ] && [ "$what" != sanity ] && [ "$what" != mutation ] && command -v redis-server >/dev/null; then
  bash tests/utils/redis.sh start >/dev/null || { echo "test: cannot start Redis" >&2; exit 2; }
  started_redis=1
  BLOCKSTORE_TEST_REDIS_URL=$(bash tests/utils/redis.sh url)
  export BLOCKSTORE_TEST_REDIS_URL
fi

# A throwaway one-node Ceph on 127.0.0.1 for the rbd driver (unit tests through .venv-rbd,
# targets named *rbd*, *ceph*, *cinder* or *secrets*, the examples), unless one is given; a cluster tests/utils/ceph.sh already runs is reused.
needs_ceph=""
case "$what" in
  all|units|examples) needs_ceph=1 ;;
  integration) { [ $# -eq 0 ] || printf '%s\n' "$@" | grep -q 'rbd\|ceph\|cinder\|secrets'; } && needs_ceph=1 ;;
esac
if [ -n "$needs_ceph" ] && [ -z "${BLOCKSTORE_TEST_CEPH_CONF:-}" ]; then
  export BLOCKSTORE_CEPH_HOLDER=$$  # concurrent runs share it; the last one out stops it
  started_ceph=1
  bash tests/utils/ceph.sh start || { echo "test: cannot start Ceph" >&2; exit 2; }
  eval "$(bash tests/utils/ceph.sh env)"
fi
export BLOCKSTORE_TEST_RBD_PYTHON=${BLOCKSTORE_TEST_RBD_PYTHON:-${BLOCKSTORE_RBD_VENV:-$REPO/.venv-rbd}/bin/python}

# ansible-test and ansible-doc need the collection inside an ansible_collections/NS/NAME tree:
# the checkout is copied there, without what .gitignore lists (.venv, .ansible, tests/output...), which
# is also deleted from the tree (a stray .ansible/collections would be tested as part of the collection).
tree=${BLOCKSTORE_TEST_TREE:-${TMPDIR:-/tmp}/blockstore-test-tree}
dest="$tree/ansible_collections/blockstore/storage"
sync_tree() {  # sync_tree [DEST]: into $dest, or DEST
  local to=${1:-$dest}
  mkdir -p "$to"
  rsync -a --delete --delete-excluded --exclude .git --filter=':- .gitignore' "$REPO/" "$to/"
}
# ansible-test hands tests no environment: the test services' settings (BLOCKSTORE_TEST_*) and the
# targets' knobs (BLOCKSTORE_SOAK_OPS=50 ...) go in a file.
test_settings() {  # test_settings json|yaml
  python - "$1" <<'PY'
import json, os, sys
prefixes = ("BLOCKSTORE_TEST_", "BLOCKSTORE_SOAK_", "BLOCKSTORE_CRASH_", "BLOCKSTORE_SECRETS_")
settings = {k: v for k, v in sorted(os.environ.items()) if k.startswith(prefixes)}
if sys.argv[1] == "json":
    print(json.dumps(settings, indent=1))
else:
    for key, value in settings.items():
        print(f"{key.lower()}: {json.dumps(value)}")
PY
}

# ansible-test finds other Pythons as python3.N on PATH: pyenv's and the system's are linked into one directory.
pythons="$tree/python-bin"
link_pythons() {
  mkdir -p "$pythons"
  for interpreter in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.*/bin/python3.* /usr/bin/python3.*; do
    version=$(basename "$interpreter"); version=${version#python}
    case "$version" in *[!0-9.]*|"$PYVER") continue ;; esac
    [ -x "$interpreter" ] && [ ! -e "$pythons/python$version" ] && ln -s "$interpreter" "$pythons/python$version"
  done
}
# shellcheck source=scripts/pythons.sh
. scripts/pythons.sh  # OLDEST_TARGET_PYTHON (tests/config.yml: modules and module_utils support Python >= 3.9)

if [ "$what" = all ] || [ "$what" = lint ]; then
  echo "== ruff"
  ruff check plugins tests; record ruff $?
  echo "== ansible-lint (profile production, .ansible-lint)"
  started=$SECONDS
  ansible-lint --nocolor; record ansible-lint $?
  echo "== ansible-lint done in $((SECONDS - started)) s"
  echo "== antsibull-changelog lint"
  antsibull-changelog lint; record changelog-lint $?
  echo "== CHANGELOG.rst is what changelogs/ makes (scripts/changelog.sh --check)"
  BLOCKSTORE_VENV="$VENV" bash scripts/changelog.sh --check; record changelog-rst $?
  echo "== ansible-doc of every module"
  sync_tree
  python tests/utils/check_module_docs.py "$tree"; record ansible-doc $?
fi

if [ "$what" = all ] || [ "$what" = sanity ]; then
  echo "== ansible-test sanity"
  started=$SECONDS
  sync_tree
  link_pythons
  # compile and import run on every Python the modules support (tests/config.yml) that is installed here.
  (cd "$dest" && PATH="$pythons:$PATH" ansible-test sanity --venv --color no "$@") 2>&1 | tee "$tree/sanity.log"
  record sanity "${PIPESTATUS[0]}"
  record_ansible_test_skips sanity "$tree/sanity.log"
  echo "== ansible-test sanity done in $((SECONDS - started)) s"
fi

if [ "$what" = all ] || [ "$what" = units ]; then
  if [ $# -gt 0 ]; then
    echo "== unit tests: pytest $*"
    junit=$(mktemp "${TMPDIR:-/tmp}/blockstore-units.XXXXXX.xml")
    python -m pytest tests/unit -q -rs -p no:cacheprovider --junitxml "$junit" "$@"; rc=$?
    record_pytest_skips "units::" "$junit"
    rm -f "$junit"
  else
    echo "== unit tests: ansible-test units"
    sync_tree
    test_settings json >"$dest/tests/unit/environment.json"  # read by tests/unit/conftest.py
    (cd "$dest" && ansible-test units --local --python "$PYVER" --color no); rc=$?
    record_pytest_skips "units::" "$dest"/tests/output/junit/python"$PYVER"-*units.xml
    # Tests that mean something only for a user other than root (tests/unit/conftest.py: non_root)
    # are skipped above when this runs as root: they run here as nobody.
    if [ "$(id -u)" -eq 0 ]; then
      echo "== unit tests: as the unprivileged user nobody (tests marked non_root)"
      non_root=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-non-root.XXXXXX")
      chown nobody "$non_root"
      (cd "$dest" && setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$non_root" TMPDIR="$non_root" \
         "${BLOCKSTORE_NONROOT_VENV:-$REPO/.venv-nonroot}/bin/python" -m pytest tests/unit -q -rs -p no:cacheprovider -m non_root \
         --junitxml "$non_root/junit.xml"); rc_non_root=$?
      if [ $rc_non_root -eq 5 ]; then
        skip units-non-root "no test is marked non_root"
      else
        record units-non-root $rc_non_root
        record_pytest_skips "units-non-root::" "$non_root/junit.xml"
      fi
      rm -rf "$non_root"
    fi
    # The core runs on target hosts from Python 3.9: its tests run there too, in a venv with
    # tests/unit/requirements.txt (ansible-test skips the controller-only tests on 3.9).
    link_pythons
    if [ -x "$pythons/python$OLDEST_TARGET_PYTHON" ]; then
      echo "== unit tests: ansible-test units on Python $OLDEST_TARGET_PYTHON (module_utils)"
      (cd "$dest" && PATH="$pythons:$PATH" ansible-test units --venv --python "$OLDEST_TARGET_PYTHON" --color no); rc39=$?
      if [ $rc39 -eq 5 ]; then
        skip "units-py$OLDEST_TARGET_PYTHON" "pytest collected no test"
      else
        record "units-py$OLDEST_TARGET_PYTHON" $rc39
        record_pytest_skips "units-py$OLDEST_TARGET_PYTHON::" "$dest"/tests/output/junit/python"$OLDEST_TARGET_PYTHON"-*units.xml
      fi
    else
      skip "units-py$OLDEST_TARGET_PYTHON" "no python$OLDEST_TARGET_PYTHON on this machine: the core's tests ran on $PYVER only"
    fi
  fi
  if [ $rc -eq 5 ]; then skip units "pytest collected no test"; else record units $rc; fi
fi

if [ "$what" = conformance ]; then
  # The store conformance suite alone (it also runs within the unit tests): against the stores given as
  # `persistence` JSON, or the built-in ones, PostgreSQL and Redis (docs/stores.md, "Testing a store").
  echo "== store conformance suite"
  store_args=()
  for spec in "$@"; do store_args+=(--store "$spec"); done
  junit=$(mktemp "${TMPDIR:-/tmp}/blockstore-conformance.XXXXXX.xml")
  python -m pytest tests/unit/conformance -q -rs -p no:cacheprovider --junitxml "$junit" "${store_args[@]}"
  record conformance $?
  record_pytest_skips "conformance::" "$junit"
  rm -f "$junit"
fi

# The guest lab (tests/utils/guest_lab.sh) of storage_guest, booted in the background while the other targets run:
# the target waits for it and uses it (or boots its own when this boot failed), and takes it down; whatever is
# left of it (a failed run, an interrupted boot) is taken down when this script ends.
guest_lab_start() {
  export BLOCKSTORE_TEST_GUEST_LAB="$tree/guest-lab"
  rm -f "$BLOCKSTORE_TEST_GUEST_LAB.rc"
  echo "== guest lab: booting in the background for storage_guest ($BLOCKSTORE_TEST_GUEST_LAB.log)"
  (BLOCKSTORE_GUEST_LAB_DIR=$BLOCKSTORE_TEST_GUEST_LAB bash tests/utils/guest_lab.sh up >"$BLOCKSTORE_TEST_GUEST_LAB.log" 2>&1
   echo $? >"$BLOCKSTORE_TEST_GUEST_LAB.rc") &
  guest_lab_pid=$!
}
guest_lab_stop() {
  # An interrupted boot first: its subshell, then whatever it started (down stops qemu by its pid files).
  pkill -P "$guest_lab_pid" 2>/dev/null
  kill "$guest_lab_pid" 2>/dev/null
  wait "$guest_lab_pid" 2>/dev/null
  BLOCKSTORE_GUEST_LAB_DIR=$BLOCKSTORE_TEST_GUEST_LAB bash tests/utils/guest_lab.sh down >/dev/null 2>&1
  guest_lab_pid=""
}

if [ "$what" = all ] || [ "$what" = integration ]; then
  sync_tree
  targets=("$@")
  if [ ${#targets[@]} -eq 0 ]; then
    for dir in tests/integration/targets/*/; do
      name=$(basename "$dir")
      # hidden targets (and setup_*/prepare_*) run only as dependencies; ansible-test refuses them by name
      case "$name" in setup_*|prepare_*) continue ;; esac
      grep -qsx 'disabled\|unsupported\|hidden' "$dir/aliases" || targets+=("$name")
    done
  fi
  # storage_guest last, with its guests booted in the background meanwhile (TCG boots take minutes).
  if printf '%s\n' "${targets[@]}" | grep -qx storage_guest; then
    mapfile -t targets < <(printf '%s\n' "${targets[@]}" | grep -vx storage_guest; echo storage_guest)
    guest_lab_start
  fi
  # The settings become variables of every target (blockstore_test_ceph_conf, ...).
  test_settings yaml >"$dest/tests/integration/integration_config.yml"
  for target in "${targets[@]}"; do
    echo "== integration: $target"
    started=$SECONDS
    (cd "$dest" && ansible-test integration --local --python "$PYVER" "$target") 2>&1 | tee "$tree/integration.log"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 0 ] && grep -q '^WARNING: All targets skipped' "$tree/integration.log"; then
      record_ansible_test_skips "integration/$target" "$tree/integration.log"
    else
      record "integration/$target" "$rc"
    fi
    echo "== integration: $target $([ "$rc" -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - started)) s"
  done
  [ -n "$guest_lab_pid" ] && guest_lab_stop
fi

if [ "$what" = all ] || [ "$what" = molecule ]; then
  # The volume role's scenarios, on this machine (molecule's default driver; no container engine),
  # from a collections tree holding this checkout, each run with an ephemeral directory of its own
  # (the scenarios keep everything they make under it); a failed run is destroyed here too.
  sync_tree
  scenarios=()
  [ "$what" = molecule ] && scenarios=("$@")
  if [ ${#scenarios[@]} -eq 0 ]; then
    for file in extensions/molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$file")")"); done
  fi
  for scenario in "${scenarios[@]}"; do
    echo "== molecule: $scenario"
    started=$SECONDS
    ephemeral=$(mktemp -d "${TMPDIR:-/tmp}/blockstore-molecule.XXXXXX")
    (cd "$dest" && MOLECULE_EPHEMERAL_DIRECTORY="$ephemeral" ANSIBLE_COLLECTIONS_PATH="$tree:$HOME/.ansible/collections" \
       molecule test -s "$scenario"); rc=$?
    if [ $rc -ne 0 ]; then
      MOLECULE_EPHEMERAL_DIRECTORY="$ephemeral" ansible-playbook -i localhost, -c local \
        "$dest/extensions/molecule/_shared/destroy.yml" >/dev/null 2>&1 || echo "molecule: destroy after the failure failed too"
    fi
    rm -rf "$ephemeral"
    record "molecule/$scenario" $rc
    echo "== molecule: $scenario $([ $rc -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - started)) s"
  done
fi

if [ "$what" = all ] || [ "$what" = examples ]; then
  # Every example of README.md, docs/, the roles' READMEs and the modules' EXAMPLES, from the tree's copy of
  # the checkout, each in a temporary directory of its own (tests/examples/run_examples.py): the first run
  # must succeed, the second must change nothing. One PASS, FAIL or SKIP line per example.
  echo "== examples"
  started=$SECONDS
  sync_tree
  only=()
  [ "$what" = examples ] && for pattern in "$@"; do only+=(--only "$pattern"); done
  ANSIBLE_COLLECTIONS_PATH="$tree:$HOME/.ansible/collections" BLOCKSTORE_EXAMPLES_PYTHON="$BLOCKSTORE_TEST_RBD_PYTHON" \
    python tests/examples/run_examples.py "${only[@]}" "$dest" 2>&1 | tee "$tree/examples.log"
  rc=${PIPESTATUS[0]}
  results=0
  while IFS= read -r line; do
    status=${line%% *}; rest=${line#* }; name=${rest%% *}; name=${name%:}
    results=$((results + 1))
    case "$status" in
      PASS) record "examples/$name" 0 ;;
      FAIL) record "examples/$name" 1 ;;
      SKIP) skip "examples/$name" "${rest#*: }" ;;
    esac
  done < <(grep -E '^(PASS|FAIL|SKIP) ' "$tree/examples.log")
  # the runner itself failed (no example reported that)
  if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$tree/examples.log"; then record examples "$rc"; fi
  [ "$results" -eq 0 ] && [ "$rc" -eq 0 ] && skip examples "no example matched"
  echo "== examples done in $((SECONDS - started)) s"
fi

if [ "$what" = all ] || [ "$what" = matrix ]; then
  # The collection on the older ansible-core releases it supports (meta/runtime.yml), each from its own
  # venv (scripts/setup-matrix.sh) and its own copy of the tree: the quick start twice (the second run
  # must pass too), then one integration target through that release's ansible-test. The main venv's
  # release runs everything above.
  cores=()
  [ "$what" = matrix ] && cores=("$@")
  # shellcheck disable=SC2206  # a list of versions, split on spaces
  [ ${#cores[@]} -eq 0 ] && cores=($ANSIBLE_CORE_MATRIX)
  for core in "${cores[@]}"; do
    core_venv="$REPO/.venv-core$core"
    if [ ! -x "$core_venv/bin/ansible-playbook" ]; then
      record "matrix/ansible-core-$core" 1
      echo "== matrix: no $core_venv; run scripts/setup.sh (scripts/setup-matrix.sh)"
      continue
    fi
    echo "== matrix: $("$core_venv/bin/ansible" --version 2>/dev/null | head -1)"
    started=$SECONDS
    core_tree="$tree-core$core"
    core_dest="$core_tree/ansible_collections/blockstore/storage"
    sync_tree "$core_dest"
    rc=0
    for run in 1 2; do
      echo "-- quick start, run $run"
      (cd "$core_dest" && ANSIBLE_COLLECTIONS_PATH="$core_tree:$HOME/.ansible/collections" \
         "$core_venv/bin/ansible-playbook" examples/quickstart.yml -e "ansible_python_interpreter=$core_venv/bin/python") || rc=1
    done
    (cd "$core_dest" && PATH="$core_venv/bin:$PATH" ansible-test integration --local --python "$PYVER" storage_file_raw) || rc=1
    record "matrix/ansible-core-$core" $rc
    echo "== matrix: ansible-core $core $([ $rc -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - started)) s"
  done
fi

if [ "$what" = all ] || [ "$what" = packaging ]; then
  # The collection as users get it: built tarball installed offline, galaxy-importer (Galaxy's upload
  # check) with no warning, execution environment build context, AWX credential type, a user's playbook
  # with module_defaults linting clean (tests/packaging/*).
  checks=()
  [ "$what" = packaging ] && checks=("$@")
  [ ${#checks[@]} -eq 0 ] && checks=(galaxy_install galaxy_importer ee_context awx_credential lint_module_defaults)
  for check in "${checks[@]}"; do
    echo "== packaging: $check"
    started=$SECONDS
    if [ -f "tests/packaging/$check.py" ]; then python "tests/packaging/$check.py"; else bash "tests/packaging/$check.sh"; fi
    rc=$?
    record "packaging/$check" $rc
    echo "== packaging: $check $([ $rc -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - started)) s"
  done
fi

# Mutation testing of the core (docs/testing.md, "Mutation testing"): a documented command, not part of
# `all`. cosmic-ray mutates a copy of the checkout in the test tree, a seeded sample of mutants a file, each
# run against only the unit test files of its file; prints the score per file and overall.
if [ "$what" = mutation ]; then
  echo "== mutation: $*"
  started=$SECONDS
  sync_tree "$tree/mutation"
  nice -n 15 python tests/utils/mutation.py --work "$tree/mutation" "$@"
  rc=$?
  record mutation $rc
  echo "== mutation: $([ $rc -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - started)) s"
fi

if [ "$what" = all ]; then
  # The run's own services (PostgreSQL, Redis, Ceph) are stopped first, so that one left running counts too.
  cleanup
  started_pg="" started_redis="" started_ceph=""
  left=$(machine_state | comm -13 "${TMPDIR:-/tmp}/blockstore-machine-before.$$" -)
  rm -f "${TMPDIR:-/tmp}/blockstore-machine-before.$$"
  if [ -n "$left" ]; then
    printf 'left running or mounted by the tests:\n%s\n' "$left"
    record leftovers 1
  else
    record leftovers 0
  fi
fi

# Under CI every test must run: a skip fails the run unless tests/skips-allowed.txt lists it with a reason.
if [ "${CI:-}" = true ] && [ $skipped -gt 0 ]; then
  while IFS= read -r unlisted; do
    failed=$((failed + 1)); failures+=("skipped, and not in tests/skips-allowed.txt: $unlisted")
  done < <(printf '%s\n' "${skips[@]}" | python tests/utils/skips_allowed.py tests/skips-allowed.txt)
fi

echo
[ ${#skips[@]} -gt 0 ] && printf 'skipped: %s\n' "${skips[@]}"
[ ${#failures[@]} -gt 0 ] && printf 'failed: %s\n' "${failures[@]}"
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sampled mutation testing of the core with cosmic-ray (`scripts/test.sh mutation`, docs/testing.md).

For each file of the core below (or the ones named), cosmic-ray lists every mutant of the operators we keep;
a fixed seed picks PER_FILE of them; each picked mutant is applied to a copy of the checkout and only the
unit test files that exercise that file run against it. A mutant is killed when those tests fail (or time
out). Mutants docs/testing.md lists as equivalent ("Equivalent mutants": file, line, operator) are left out
of the score. Prints the score per file and overall, with every survivor; exits 1 below MIN_SCORE.

    python tests/utils/mutation.py --work DIR [--seed N] [--per-file N] [--min-score P] [FILE...]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import re
import shlex
import shutil
import subprocess
import sys

UNIT = "tests/unit/plugins/module_utils/"
CORE = "plugins/module_utils/"

# The files of the core that hold pure logic, and the unit test files that exercise each (docs/testing.md).
TARGETS = {
    "units.py": ["test_units.py", "test_resources.py", "test_retention.py"],
    "objects.py": ["test_objects.py", "test_serialization.py", "test_attachments.py", "test_resources.py"],
    "serialization.py": ["test_serialization.py", "test_record_integrity.py"],
    "sealing.py": ["test_sealing.py", "test_handler.py", "test_store_plugins.py"],
    "persistence/jsonfile.py": ["test_persistence.py", "test_store_path.py", "test_record_integrity.py"],
    "persistence/db.py": ["test_persistence.py", "test_record_integrity.py"],
    "persistence/base.py": ["test_persistence.py", "test_record_integrity.py", "test_store_plugins.py"],
    "plan.py": ["test_resources.py", "test_transaction.py", "test_handler.py", "test_attachments.py", "test_verify.py",
                "test_module_imports.py"],
    "volumes.py": ["test_resources.py", "test_transaction.py", "test_attachments.py", "test_verify.py",
                   "test_revert.py", "test_crash_undo.py", "test_module_imports.py"],
    "snapshots.py": ["test_resources.py", "test_handler.py", "test_transaction.py", "test_verify.py",
                     "test_crash_undo.py", "test_module_imports.py", "test_retention.py"],
    "reverts.py": ["test_revert.py", "test_resources.py"],
    "adoption.py": ["test_adopt.py"],
    "attachments.py": ["test_attachments.py", "test_revert.py"],
    "drift.py": ["test_drift.py"],
    "backends_file.py": ["test_backends_file.py"],
    "config.py": ["test_config.py", "test_backends_file.py", "test_backend_env.py"],
    "transfer.py": ["test_transfer.py", "test_record_integrity.py"],
    "handler.py": ["test_handler.py", "test_attachments.py", "test_backend_identity.py"],
    "drivers/file/qcow2.py": ["drivers/test_file_qcow2.py", "test_resources.py", "test_drift.py"],
}

# The operators kept (cosmic-ray's names): a flipped comparison, a swapped boolean or and/or, a changed
# number, a negated or un-negated condition, a changed arithmetic operator. The rest of cosmic-ray's
# operators (bitwise operators, `==` to `is`, removed decorators, ...) mostly make mutants that cannot
# run or are equivalent by construction.
_ARITH = "(Add|Sub|Mul|Div|FloorDiv|Mod|Pow)"
_COMPARE = "(Eq|NotEq|Lt|LtE|Gt|GtE)"
KEPT = re.compile(
    rf"core/(ReplaceComparisonOperator_{_COMPARE}_{_COMPARE}|ReplaceComparisonOperator_(Is_IsNot|IsNot_Is)"
    rf"|ReplaceTrueWithFalse|ReplaceFalseWithTrue|ReplaceAndWithOr|ReplaceOrWithAnd|AddNot"
    rf"|ReplaceUnaryOperator_Delete_Not|NumberReplacer|ReplaceBinaryOperator_{_ARITH}_{_ARITH}"
    rf"|ReplaceBreakWithContinue|ReplaceContinueWithBreak)$")
SEED = 19
PER_FILE = 25
MIN_SCORE = 95.0
TIMEOUT = 120.0
NOT_SAMPLED = "not in the sample"


def equivalents(docs: str) -> set[tuple[str, int, str]]:
    """(file, line, operator) of the rows of docs/testing.md's table of equivalent mutants."""
    found = set()
    with open(docs, encoding="utf-8") as handle:
        for line in handle:
            match = re.match(r"\|\s*`(plugins/module_utils/[^`:]+):(\d+)`\s*\|\s*`([^`]+)`\s*\|", line)
            if match:
                found.add((match.group(1), int(match.group(2)), match.group(3)))
    return found


def run_file(target: str, args: argparse.Namespace, equivalent: set) -> tuple[int, int, list[str]]:
    """Mutate one file: (killed, scored, survivor lines)."""
    # cosmic-ray is in the controller venv, not in the sanity venvs
    from cosmic_ray.work_db import WorkDB, use_db  # pylint: disable=import-error
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult  # pylint: disable=import-error

    path = CORE + target
    name = target.replace("/", "_").removesuffix(".py")
    state = os.path.join(args.work, ".mutation")
    os.makedirs(state, exist_ok=True)
    config, session = os.path.join(state, name + ".toml"), os.path.join(state, name + ".sqlite")
    tests = " ".join(shlex.quote(UNIT + test) for test in TARGETS[target])
    with open(config, "w", encoding="utf-8") as handle:
        handle.write(f'[cosmic-ray]\nmodule-path = "{path}"\ntimeout = {TIMEOUT}\nexcluded-modules = []\n'
                     f'test-command = "{sys.executable} -m pytest -x -q -p no:cacheprovider {tests}"\n'
                     '[cosmic-ray.distributor]\nname = "local"\n')
    if os.path.exists(session):
        os.unlink(session)
    cosmic_ray = [sys.executable, "-m", "cosmic_ray.cli"]
    subprocess.run([*cosmic_ray, "init", config, session], cwd=args.work, check=True)

    with use_db(session, WorkDB.Mode.open) as db:
        items = sorted((item for item in db.pending_work_items if KEPT.match(item.mutations[0].operator_name)),
                       key=lambda item: (item.mutations[0].start_pos, item.mutations[0].operator_name,
                                         item.mutations[0].occurrence))
        # Seeded per file, so that adding a file or a test does not change another file's sample.
        sample = random.Random(f"{args.seed}:{path}").sample(items, min(args.per_file, len(items)))
        picked = {item.job_id for item in sample}
        rest = [item.job_id for item in db.pending_work_items if item.job_id not in picked]
        db.set_multiple_results(rest, WorkResult(output=NOT_SAMPLED, worker_outcome=WorkerOutcome.SKIPPED))

    subprocess.run([*cosmic_ray, "exec", config, session], cwd=args.work, check=True)

    killed = scored = 0
    survivors = []
    with use_db(session, WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.output == NOT_SAMPLED:
                continue
            mutation = item.mutations[0]
            where = (path, mutation.start_pos[0], mutation.operator_name)
            if result.test_outcome == TestOutcome.SURVIVED and where in equivalent:
                continue
            scored += 1
            if result.test_outcome == TestOutcome.SURVIVED or result.worker_outcome != WorkerOutcome.NORMAL:
                diff = [line for line in (result.diff or "").splitlines()
                        if line[:1] in "+-" and line[:3] not in ("+++", "---")]
                survivors.append(f"  survived: `{path}:{where[1]}` `{where[2]}`  {' / '.join(diff)}")
            else:
                killed += 1
    return killed, scored, survivors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="a copy of the checkout, mutated in place")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--per-file", type=int, default=PER_FILE)
    parser.add_argument("--min-score", type=float, default=MIN_SCORE)
    parser.add_argument("files", nargs="*", help=f"files below {CORE} (default: every file of the sample)")
    args = parser.parse_args()
    files = [name.removeprefix(CORE) for name in args.files] or list(TARGETS)
    unknown = [name for name in files if name not in TARGETS]
    if unknown:
        print(f"mutation: no test mapping for {', '.join(unknown)}; known: {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("cosmic_ray") is None:
        print(f"mutation: cosmic-ray is not installed for {sys.executable}; run scripts/setup.sh "
              "(requirements-dev.txt, constraints/controller.txt)", file=sys.stderr)
        return 2
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant must never be read from a stale .pyc
    shutil.rmtree(os.path.join(args.work, CORE, "__pycache__"), ignore_errors=True)
    equivalent = equivalents(os.path.join(args.work, "docs", "testing.md"))
    total_killed = total_scored = 0
    report = []
    for target in files:
        killed, scored, survivors = run_file(target, args, equivalent)
        total_killed += killed
        total_scored += scored
        score = 100.0 * killed / scored if scored else 100.0
        report.append(f"mutation: {CORE}{target}: {killed}/{scored} killed ({score:.0f}%)")
        report.extend(survivors)
    score = 100.0 * total_killed / total_scored if total_scored else 100.0
    print("\n".join(report))
    print(f"mutation score: {total_killed}/{total_scored} killed ({score:.1f}%), seed {args.seed}, "
          f"{args.per_file} mutants a file, {len(equivalent)} listed as equivalent")
    return 0 if score >= args.min_score else 1


if __name__ == "__main__":
    sys.exit(main())

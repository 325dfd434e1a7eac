# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check that `ansible-doc` renders every module of the collection, as a user would run it.

    python tests/utils/check_module_docs.py COLLECTIONS_ROOT

COLLECTIONS_ROOT holds ansible_collections/blockstore/storage (scripts/test.sh uses its
rsync'ed tree). For every file in plugins/modules, `ansible-doc` (text, as users read it, and
--json) must succeed without a single warning or error, and each module must have a
description, options, EXAMPLES that parse as a list of tasks using the module by its FQCN,
and RETURN values that each have a description. Prints one line per module; exits 1 on any
problem.

Anything ansible-doc writes to stderr is a problem, with one exception: a Python warning (the
`warnings` module's two lines, "FILE:LINE: CategoryWarning: message" and the source line) raised
in code outside this collection, such as the `CryptographyDeprecationWarning: DSA is deprecated`
that ansible-core's own ssh-agent module triggers with cryptography 51 and later. Those are
third-party noise that this collection can neither cause nor fix: they are printed, not counted.
A warning raised in the collection's own files, and every ansible-doc `[WARNING]`, still fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import yaml

COLLECTION = "blockstore.storage"
# The first line of a warning as Python's warnings module formats it: "FILE:LINE: CATEGORY: MESSAGE".
PYTHON_WARNING = re.compile(r"^(?P<file>\S.*?):(?P<line>\d+): (?P<category>\w*Warning): (?P<message>.*)$")
OWN_FILES = os.sep + os.path.join("ansible_collections", *COLLECTION.split(".")) + os.sep


def split_stderr(stderr: str) -> tuple[list[str], list[str]]:
    """(problems, third-party Python warnings) in ansible-doc's stderr.

    A third-party warning is a PYTHON_WARNING line whose file is not in this collection, with the
    indented source line Python prints after it. Every other non-blank line is a problem.
    """
    problems, noise = [], []
    lines = stderr.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        match = PYTHON_WARNING.match(line)
        if match and OWN_FILES not in match.group("file"):
            noise.append(line)
            if index + 1 < len(lines) and lines[index + 1].startswith((" ", "\t")):
                index += 1  # the source line of the warning
        elif line.strip():
            problems.append(line)
        index += 1
    return problems, noise


def ansible_doc(root: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=root, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               PAGER="cat", ANSIBLE_DEPRECATION_WARNINGS="true")
    executable = shutil.which("ansible-doc") or os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    return subprocess.run([executable, "-t", "module", *args], env=env, capture_output=True, text=True,
                          check=False)


def module_names(root: str) -> list[str]:
    directory = os.path.join(root, "ansible_collections", *COLLECTION.split("."), "plugins", "modules")
    return sorted(f"{COLLECTION}.{name[:-3]}" for name in os.listdir(directory)
                  if name.endswith(".py") and not name.startswith("_"))


def problems_in_json(name: str, data: dict) -> list[str]:
    found = []
    doc = data.get("doc") or {}
    if not doc.get("short_description") or not doc.get("description"):
        found.append("no short_description or description")
    if not doc.get("options"):
        found.append("no options")
    try:
        examples = yaml.safe_load(data.get("examples") or "")
    except yaml.YAMLError as exc:
        found.append(f"EXAMPLES is not YAML: {exc}")
        examples = None
    if not isinstance(examples, list) or not examples:
        found.append("EXAMPLES is not a non-empty list of tasks")
    elif not any(isinstance(task, dict) and name in task for task in examples):
        found.append(f"no example uses {name} by its FQCN")
    returns = data.get("return")
    if not returns:
        found.append("no RETURN values")
    else:
        found += [f"RETURN {key} has no description" for key, value in returns.items()
                  if not (value or {}).get("description")]
    return found


def stderr_problems(what: str, run: subprocess.CompletedProcess) -> bool:
    """Print what is wrong with one ansible-doc run; True when something is."""
    problems, noise = split_stderr(run.stderr)
    for line in sorted(set(noise)):
        print(f"{what}: third-party Python warning, not counted: {line}")
    if run.returncode or problems:
        print(f"{what}: exit {run.returncode}\n" + "\n".join(problems))
        return True
    return False


def main(root: str) -> int:
    names = module_names(root)
    text = ansible_doc(root, *names)
    failed = stderr_problems("ansible-doc " + " ".join(names), text)
    listing = ansible_doc(root, "--json", *names)
    if stderr_problems("ansible-doc --json", listing):
        return 1
    docs = json.loads(listing.stdout)
    for name in names:
        found = problems_in_json(name, docs.get(name) or {})
        # The text rendering, section by section, as `ansible-doc <module>` shows it.
        section = text.stdout.split(f"> MODULE {name} ", 1)[-1].split("> MODULE ", 1)[0]
        found += [f"`ansible-doc {name}` shows no {title}" for title in ("OPTIONS", "EXAMPLES", "RETURN VALUES")
                  if title not in section]
        failed = failed or bool(found)
        print(f"{name}: " + ("; ".join(found) if found else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))

# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The core's shape, checked against the code (docs/architecture.md describes it).

- the imports between plugins/module_utils files (read from the source, function-level ones
  included) form no cycle, and each runs down the layers below, never back up;
- every file imports alone in a fresh interpreter, and all of them in any order;
- every core file says what it holds in the first line of its docstring and stays short;
- every name docs/architecture.md mentions in `backticks` as a dotted core name exists.
"""

from __future__ import annotations

import ast
import os
import random
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE = os.path.join(REPO, "plugins", "module_utils")
PACKAGE = "ansible_collections.blockstore.storage.plugins.module_utils"
DOC = os.path.join(REPO, "docs", "architecture.md")
MAX_LINES = 400
# Files over MAX_LINES, each with its reason; nothing else may grow past it.
LONG_FILES = {
    "drivers.cinder": "the adapter, one concept: loading a Cinder driver and mapping each operation onto it",
    "persistence.db": "one SQLAlchemy store for SQLite and PostgreSQL, with their locks",
}
# Lower layers never import higher ones; inside one layer only files of one package import each other.
LAYERS = [
    ("errors", "commands", "probe"),
    ("units", "objects", "sealing", "config", "volume_types"),
    ("serialization", "targets"),
    ("persistence", "drivers", "connectors"),
    ("backend_env", "backends_file", "host_devices", "transaction", "sources", "backend_identity", "backup_chunks"),
    ("handler",),
    ("plan", "transfer", "drift"),
    ("adoption", "reverts", "forced_detach", "retypes", "group_snapshots"),
    ("volumes", "snapshots", "attachments", "backups"),
    ("queries",),
    ("runner",),
]


def _name(path: str) -> str:
    rel = os.path.relpath(path, CORE)[:-len(".py")].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def core_files() -> dict[str, str]:
    found = {}
    for folder, _dirs, names in os.walk(CORE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                found[_name(path)] = path
    found.pop("__init__", None)
    return found


def imports() -> dict[str, set[str]]:
    """Each core file's relative imports, as core file names."""
    files = core_files()
    edges = {}
    for module, path in files.items():
        package = module.split(".") if path.endswith("__init__.py") else module.split(".")[:-1]
        with open(path, encoding="utf-8") as source:
            tree = ast.parse(source.read())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    candidate = f"{target}.{alias.name}".strip(".")
                    found.add(candidate if candidate in files else target)
        edges[module] = {t for t in found if t in files and t != module}
    return edges


def layer(module: str) -> int:
    top = module.split(".", maxsplit=1)[0]
    for number, names in enumerate(LAYERS):
        if top in names:
            return number
    raise AssertionError(f"{module}: in no layer of tests/unit/test_architecture.py; add it where it belongs")


def test_no_import_cycle():
    edges = imports()
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        stack = [*path, module]
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(target):], target]))
            if target not in state:
                visit(target, stack)
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [])


def test_imports_run_down_the_layers():
    upward = []
    for module, targets in sorted(imports().items()):
        for target in sorted(targets):
            same_package = module.split(".")[0] == target.split(".")[0]
            if layer(target) > layer(module) or (layer(target) == layer(module) and not same_package):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports running back up: " + ", ".join(upward)


def _import(modules: list[str]) -> subprocess.CompletedProcess:
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    return subprocess.run([sys.executable, "-c", code, *[f"{PACKAGE}.{m}" for m in modules]],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
                          check=False)


@pytest.mark.parametrize("module", sorted(core_files()))
def test_each_file_imports_alone(module):
    done = _import([module])
    assert done.returncode == 0, done.stderr


def test_all_files_import_in_any_order():
    modules = sorted(core_files())
    for order in (modules, modules[::-1], random.Random(7).sample(modules, len(modules))):
        done = _import(order)
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("module", sorted(core_files()))
def test_each_file_says_what_it_holds_and_stays_short(module):
    path = core_files()[module]
    with open(path, encoding="utf-8") as source:
        text = source.read()
    doc = ast.get_docstring(ast.parse(text))
    assert doc, f"{module}: no module docstring"
    first = doc.splitlines()[0]
    assert first.rstrip().endswith((".", ")", ":")), f"{module}: the docstring's first line is not a sentence"
    lines = text.count("\n")
    assert lines <= MAX_LINES or module in LONG_FILES, f"{module}: {lines} lines (at most {MAX_LINES})"


def test_modules_are_an_argument_spec_and_a_handler():
    folder = os.path.join(REPO, "plugins", "modules")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as source:
            tree = ast.parse(source.read())
        assigned = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                    for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)}
        functions = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        assert {"ARGUMENT_SPEC", "HANDLER"} <= assigned, name
        assert functions == ["main"], f"{name}: holds {functions}; logic belongs in the core"


def doc_names() -> list[str]:
    with open(DOC, encoding="utf-8") as page:
        text = page.read()
    return sorted(set(re.findall(r"`([a-z_]+(?:\.[A-Za-z_]+)+)(?:\(\))?`", text)))


def test_the_architecture_page_names_only_what_exists():
    missing = []
    files = core_files()
    for dotted in doc_names():
        parts = dotted.split(".")
        # the longest prefix that is a core file, then attributes
        for cut in range(len(parts), 0, -1):
            if ".".join(parts[:cut]) in files:
                module, attributes = ".".join(parts[:cut]), parts[cut:]
                break
        else:
            missing.append(dotted)
            continue
        done = subprocess.run(
            [sys.executable, "-c", "import importlib, sys\nobj = importlib.import_module(sys.argv[1])\n"
             "for name in sys.argv[2:]:\n    obj = getattr(obj, name)\n", f"{PACKAGE}.{module}", *attributes],
            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), check=False)
        if done.returncode:
            missing.append(dotted)
    assert doc_names(), "docs/architecture.md names no core name in backticks"
    assert not missing, f"docs/architecture.md names what the code does not have: {', '.join(missing)}"

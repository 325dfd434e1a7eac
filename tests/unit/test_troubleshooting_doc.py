# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/troubleshooting.md explains every error message the collection can produce.

The messages are read from the source: every call of a BlockstoreError subclass (and of the
state bridge's `_failure`) with a literal message, f-strings included, becomes a pattern whose
placeholders match anything; some line of the page must match it. A new message therefore
fails this test until the page says what causes it and how to fix it.
"""

from __future__ import annotations

import ast
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(REPO, "plugins")
PAGE = os.path.join(REPO, "docs", "troubleshooting.md")
# Functions that turn a message into a failed task without an exception class.
FAILURE_FUNCTIONS = {"_failure"}


def error_classes() -> set[str]:
    """BlockstoreError and its subclasses, as errors.py declares them."""
    with open(os.path.join(PLUGINS, "module_utils", "errors.py"), encoding="utf-8") as source:
        tree = ast.parse(source.read())
    names = {"BlockstoreError"}
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    grew = True
    while grew:
        grew = False
        for node in classes:
            if node.name not in names and any(getattr(base, "id", None) in names for base in node.bases):
                names.add(node.name)
                grew = True
    return names


def _assigned_texts(function: ast.AST | None, name: str) -> list[ast.expr]:
    if function is None:
        return []
    return [node.value for node in ast.walk(function) if isinstance(node, ast.Assign)
            and any(isinstance(target, ast.Name) and target.id == name for target in node.targets)]


def _chunks(node: ast.expr, function: ast.AST | None) -> list[list[str | None]]:
    """The message's literal text as chunks, None where a value is put in; one list per variant."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [[node.value]]
    if isinstance(node, ast.JoinedStr):
        return [[value.value if isinstance(value, ast.Constant) else None for value in node.values]]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [left + right for left in _chunks(node.left, function) for right in _chunks(node.right, function)]
    if isinstance(node, ast.Call) and node.args:  # a wrapper such as _scrub(text)
        return _chunks(node.args[0], function)
    if isinstance(node, ast.Name):
        return [chunks for value in _assigned_texts(function, node.id) for chunks in _chunks(value, function)]
    return []


def messages() -> list[tuple[str, list[str | None]]]:
    classes = error_classes() | FAILURE_FUNCTIONS
    found = []
    for directory, _dirs, files in os.walk(PLUGINS):
        for file_name in sorted(files):
            if not file_name.endswith(".py"):
                continue
            path = os.path.join(directory, file_name)
            with open(path, encoding="utf-8") as source:
                tree = ast.parse(source.read())
            functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                called = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if called not in classes:
                    continue
                message = node.args[0] if node.args else next(
                    (kw.value for kw in node.keywords if kw.arg == "msg"), None)
                if message is None:
                    continue
                enclosing = min((f for f in functions if f.lineno <= node.lineno <= (f.end_lineno or f.lineno)),
                                key=lambda f: (f.end_lineno or f.lineno) - f.lineno, default=None)
                where = f"{os.path.relpath(path, REPO)}:{node.lineno}"
                found += [(where, chunks) for chunks in _chunks(message, enclosing)]
    return found


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def pattern(chunks: list[str | None]) -> re.Pattern:
    parts = [".*?" if chunk is None else re.escape(_normal(chunk)) for chunk in chunks]
    return re.compile("".join(parts))


def readable(chunks: list[str | None]) -> str:
    return "".join("<...>" if chunk is None else chunk for chunk in chunks)


def test_the_source_has_messages_to_check():
    # Guards the test itself: if the extraction broke, every message would "pass".
    assert len(messages()) > 150
    assert "NotFound" in error_classes() and "MissingDependency" in error_classes()


def test_every_error_message_is_explained_in_the_troubleshooting_page():
    if not os.path.exists(PAGE):
        pytest.fail(f"{PAGE} is missing")
    with open(PAGE, encoding="utf-8") as page:
        lines = [_normal(line) for line in page]
    missing = [f"{where}: {readable(chunks)}" for where, chunks in messages()
               if not any(pattern(chunks).search(line) for line in lines)]
    assert not missing, ("docs/troubleshooting.md does not explain these messages (write each, with <...> for the "
                         "values, its cause and its fix):\n" + "\n".join(missing))

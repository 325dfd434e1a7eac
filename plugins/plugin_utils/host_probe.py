# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs module_utils/probe.py on the task's host: the check of a task with nothing to do, in one process.

A module run costs its whole payload (written, unpacked, Ansible's and the collection's code
compiled) for a stat and a 32-byte read; this runs that read with the Python the module would use,
through the task's connection and become settings. Any doubt (no interpreter known yet, a failed
command, output that is not a report) answers None, and the module runs instead.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Callable

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible_collections.blockstore.storage.plugins.module_utils import probe

PROBE_SOURCE = Path(probe.__file__).read_text(encoding="utf-8")
# ansible_python_interpreter values that ask for interpreter discovery.
DISCOVERY = ("auto", "auto_silent", "auto_legacy", "auto_legacy_silent")


def host_python(action, task_vars: dict) -> list[str] | None:
    """The command of the Python the module would run under on the task's host, when it is known
    already: set by the user, or found by the interpreter discovery of an earlier module run there."""
    host_vars = task_vars
    if action._task.delegate_to:
        host_vars = (task_vars.get("ansible_delegated_vars") or {}).get(action._task.delegate_to) or {}
    try:
        interpreter = C.config.get_config_value("INTERPRETER_PYTHON", variables=host_vars)
        interpreter = action._templar.template(interpreter)
    except AnsibleError:
        return None
    if not isinstance(interpreter, str) or not interpreter.strip():
        return None
    if interpreter in DISCOVERY:
        interpreter = (host_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")
        if not isinstance(interpreter, str) or not interpreter.strip():
            return None
    return shlex.split(interpreter)


def host_probe(action, task_vars: dict) -> Callable[[list], list | None] | None:
    """A runner of probe requests on the task's host, or None when its Python is not known yet."""
    python = host_python(action, task_vars)
    if python is None:
        return None

    def run(requests: list) -> list | None:
        command = " ".join(shlex.quote(part) for part in [*python, "-I", "-c", PROBE_SOURCE, json.dumps(requests)])
        try:
            done = action._low_level_execute_command(command, sudoable=True)
        except AnsibleError:  # unreachable, become failed: the module run reports it as Ansible does
            return None
        lines = (done.get("stdout") or "").strip().splitlines()
        if done.get("rc") != 0 or not lines:
            return None
        try:
            reports = json.loads(lines[-1])
        except ValueError:
            return None
        return reports if isinstance(reports, list) and len(reports) == len(requests) else None

    return run

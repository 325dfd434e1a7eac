# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module run alone (no action plugin), as ansible-lint and plain `python -m` run it: what a user sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_module(name: str, args: dict, tmp_path) -> dict:
    """Run plugins/modules/NAME.py in a process of its own with ANSIBLE_MODULE_ARGS; its JSON answer."""
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    # The collection is importable as this process imports it (conftest.py, or ansible-test's tree).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    done = subprocess.run([sys.executable, "-m", f"ansible_collections.blockstore.storage.plugins.modules.{name}",
                           str(args_file)], capture_output=True, text=True, env=env, check=False, timeout=120)
    return json.loads(done.stdout)


def test_missing_backend_is_refused_naming_module_defaults(tmp_path):
    state = tmp_path / "state.json"
    result = run_module("storage_volume", {"name": "data", "size": 1,
                                           "persistence": {"storage": "file", "path": str(state)}}, tmp_path)
    assert result.get("failed") is True, result
    assert result["option"] == "backend"
    assert result["msg"].startswith("backend: missing")
    assert "module_defaults: group/blockstore.storage.storage" in result["msg"]
    assert not state.exists()
    # Control: the same task with a backend creates the volume.
    backend = {"name": "lab", "driver": "file", "path": str(tmp_path / "lab")}
    result = run_module("storage_volume", {"name": "data", "size": 1, "backend": backend,
                                           "persistence": {"storage": "file", "path": str(state)}}, tmp_path)
    assert result.get("failed") is not True, result
    assert result["changed"] is True


def test_the_backends_file_variable_is_the_one_backends_file_reads():
    # runner.py keeps its own copy of the name so that a module sent its records never imports backends_file.
    from ansible_collections.blockstore.storage.plugins.module_utils import backends_file, runner
    assert runner.ENV_BACKENDS_FILE == backends_file.ENV_BACKENDS_FILE

# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the volume and snapshot modules import where they run: not the stores (docs/performance.md,
"the stores ... are imported in the functions that use them"); each import costs every task time."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

MODULE_UTILS = "ansible_collections.blockstore.storage.plugins.module_utils"


def imported_by(*names: str) -> list[str]:
    """The collection's module_utils a fresh interpreter has loaded after importing `names`."""
    code = (f"import sys\nfrom {MODULE_UTILS} import {', '.join(names)}\n"
            f"print('\\n'.join(m for m in sys.modules if m.startswith('{MODULE_UTILS}.')))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return [m.removeprefix(MODULE_UTILS + ".") for m in proc.stdout.split()]


@pytest.mark.parametrize("resource", ["volumes", "snapshots"])
def test_the_module_side_of_volumes_and_snapshots_does_not_import_the_stores(resource):
    loaded = imported_by("runner", "plan", resource)
    assert resource in loaded and "plan" in loaded  # the positive control: the listing works
    assert [m for m in loaded if m.split(".")[0] == "persistence"] == []

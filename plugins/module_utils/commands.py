# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place the core starts host commands (qemu-img, losetup, tgtadm, ...).

Modules would use AnsibleModule.run_command, but the core is plain Python that runs
without an AnsibleModule (unit tests, the action plugin on the controller, plain
scripts), so it runs commands itself: always an argument list, never a shell, output
captured as text, the exit status left to the caller to judge.
"""

from __future__ import annotations

import subprocess
from typing import Optional, Sequence

CompletedProcess = subprocess.CompletedProcess


def run(argv: Sequence[str], cwd: Optional[str] = None, timeout: Optional[float] = None) -> CompletedProcess:
    """Run `argv` and return its exit status, stdout and stderr (text); raises only if it cannot start."""
    # ansible-test's pylint wants run_command in module_utils; there is no AnsibleModule here (see above).
    return subprocess.run(  # pylint: disable=ansible-bad-function
        list(argv), cwd=cwd, timeout=timeout, capture_output=True, text=True, check=False)

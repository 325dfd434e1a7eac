# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The examples marked skip in the documentation and the allowlist name the same FILE:LINE.

Skipped examples are named by the line of their fence (tests/examples/run_examples.py), so an edit above a
skipped block moves it: under CI the moved skip would then be unlisted and fail the whole run. This test
says so at once, with the lines to write in tests/skips-allowed.txt.
"""

from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_skipped_example_is_in_the_allowlist_at_its_line():
    listing = subprocess.run([sys.executable, os.path.join(REPO, "tests", "examples", "run_examples.py"), "--list",
                              REPO], capture_output=True, text=True, check=True).stdout
    marked = {f"examples/{line.split()[0]}" for line in listing.splitlines() if " skip" in line}
    with open(os.path.join(REPO, "tests", "skips-allowed.txt"), encoding="utf-8") as allowlist:
        listed = {line.split()[0] for line in allowlist if line.startswith("examples/")}
    assert marked, "the runner lists no skipped example: the listing format changed"
    assert marked == listed, (f"marked skip in the docs but not in tests/skips-allowed.txt: {sorted(marked - listed)}; "
                              f"in the allowlist but not marked (moved or gone): {sorted(listed - marked)}")

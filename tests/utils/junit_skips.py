# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print the skipped tests of pytest junit files, one per line: "CLASSNAME::NAME<TAB>REASON".

    python tests/utils/junit_skips.py JUNIT_FILE...

scripts/test.sh counts and names each of them. A file that does not exist (the run failed before
pytest wrote it) is passed over: the run's failure is reported on its own.
"""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET


def skipped_tests(path: str) -> list[tuple[str, str]]:
    found = []
    for case in ET.parse(path).iter("testcase"):
        mark = case.find("skipped")
        if mark is None:
            continue
        reason = (mark.get("message") or mark.text or "").strip().replace("\n", " ")
        found.append((f"{case.get('classname')}::{case.get('name')}", reason))
    return found


def main(paths: list[str]) -> int:
    for path in paths:
        if os.path.isfile(path):
            for name, reason in skipped_tests(path):
                print(f"{name}\t{reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

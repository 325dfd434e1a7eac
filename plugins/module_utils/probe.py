# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A backend file's stat and first bytes: all a file backend's object check needs from its host.

The file driver calls probe_file where the module runs. The action plugin also runs this file
on the task's host as a script (`python -I -c SOURCE REQUESTS`, REQUESTS a JSON list of
{"path", "head"}) to check the object of a task with nothing to do in one short process instead
of the module's whole payload (docs/performance.md). Standard library only, nothing written.
"""

from __future__ import annotations

import json
import os
import stat
import sys


def probe_file(path: str, head: int = 0) -> dict:
    """{"exists": False}, or {"exists": True, "regular", "size", and "head": the first `head` bytes
    in hex, read from a regular file only (a FIFO or a device is never opened)}."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return {"exists": False}
    report = {"exists": True, "regular": stat.S_ISREG(info.st_mode), "size": info.st_size}
    if head and report["regular"]:
        with open(path, "rb") as handle:
            report["head"] = handle.read(head).hex()
    return report


def main(argv: list) -> None:
    requests = json.loads(argv[1])
    sys.stdout.write(json.dumps([probe_file(r["path"], r.get("head", 0)) for r in requests]) + "\n")


if __name__ == "__main__":
    main(sys.argv)

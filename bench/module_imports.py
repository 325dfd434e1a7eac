# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a module payload imports on the host, measured with `python -X importtime`.

    .venv/bin/python bench/module_imports.py [--rounds 7]

Runs one task of each kind with ANSIBLE_KEEP_REMOTE_FILES=1 to get the AnsiballZ
payloads Ansible ships, then runs each payload again (the same arguments: a task
with nothing to change, or check mode) under `python -X importtime`, in turn,
--rounds times. Baseline: the payload of ansible.builtin.file state=touch.
Reports the payload's total run time (median), the import time of the
collection's own code, and fails if a heavy library the task does not need is
imported (SQLAlchemy, psycopg, oslo.*, os-brick, eventlet, cryptography, rados,
rbd, cinder).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (
    ansible_env,
    cleanup,
    collection_tree,
    header,
    interleave,
    load,
    median,
    playbook,
    timed,
    workdir,
)

HEAVY = ("sqlalchemy", "psycopg", "oslo_config", "oslo_log", "oslo_privsep", "os_brick", "eventlet",
         "cryptography", "rados", "rbd", "cinder")
OWN = "ansible_collections.blockstore"


def payloads(work: str, env: dict) -> dict[str, str]:
    """Keep the AnsiballZ files of one task of each kind."""
    defaults = f"""  module_defaults:
    group/blockstore.storage.storage:
      backend: {{name: bench, driver: file, path: {work}/volumes, format: qcow2}}
      persistence: {{storage: file, path: {work}/state.json}}
"""
    setup = os.path.join(work, "setup.yml")
    with open(setup, "w", encoding="utf-8") as handle:
        handle.write(f"""---
- hosts: localhost
  gather_facts: false
{defaults}  tasks:
    - blockstore.storage.storage_volume: {{name: bench1, size: 1}}
    - blockstore.storage.storage_snapshot: {{name: snap1, volume: bench1}}
""")
    playbook(setup, env)
    tasks = {
        "file state=touch": f"ansible.builtin.file: {{path: {work}/touched, state: touch}}",
        "storage_volume, no change": "blockstore.storage.storage_volume: {name: bench1, size: 1}",
        "storage_volume, create (check mode)": "blockstore.storage.storage_volume: {name: bench2, size: 1}",
        "storage_snapshot, no change": "blockstore.storage.storage_snapshot: {name: snap1, volume: bench1}",
        "storage_volume_info": "blockstore.storage.storage_volume_info: {name: bench1}",
    }
    found = {}
    for number, (label, task) in enumerate(tasks.items()):
        remote = os.path.join(work, f"remote-{number}")
        book = os.path.join(work, f"keep-{number}.yml")
        with open(book, "w", encoding="utf-8") as handle:
            handle.write(f"""---
- hosts: localhost
  gather_facts: false
  vars: {{blockstore_always_run_module: true}}
{defaults}  tasks:
    - {task}
      check_mode: {str("check mode" in label).lower()}
""")
        playbook(book, {**env, "ANSIBLE_KEEP_REMOTE_FILES": "1", "ANSIBLE_REMOTE_TMP": remote})
        files = glob.glob(os.path.join(remote, "*", "AnsiballZ_*.py"))
        if len(files) != 1:
            sys.exit(f"expected one AnsiballZ payload for {label!r}, found {files}")
        found[label] = files[0]
    return found


def importtime(path: str) -> tuple[float, float, list[str]]:
    """(total import time, import time of the collection's own top-level imports, heavy modules), seconds."""
    result = subprocess.run([sys.executable, "-X", "importtime", path], capture_output=True, text=True, check=False)
    total = own = 0.0
    heavy = set()
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not match:
            continue
        self_us, name = int(match.group(1)), match.group(4)
        total += self_us
        if name.startswith(OWN):
            own += self_us
        top = name.split(".")[0]
        if top in HEAVY:
            heavy.add(top)
    return total / 1e6, own / 1e6, sorted(heavy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    header(f"module payload imports, {args.rounds} rounds")
    work = workdir("imports")
    failed = False
    try:
        env = ansible_env(work, collection_tree(work))
        found = payloads(work, env)
        commands = {label: (lambda p=path: subprocess.run([sys.executable, p], capture_output=True, check=False))
                    for label, path in found.items()}
        runs = interleave(commands, args.rounds, timed)
        imports = {label: [importtime(path) for _round in range(args.rounds)] for label, path in found.items()}
        base = median([w for w, _c in runs["file state=touch"]])
        print(f"\n{'payload':38s} {'run (ms)':>9s} {'ratio':>6s} {'imports (ms)':>13s} {'own code (ms)':>14s}  heavy")
        for label in found:
            wall = median([w for w, _c in runs[label]])
            total = median([t for t, _o, _h in imports[label]])
            own = median([o for _t, o, _h in imports[label]])
            heavy = sorted({h for _t, _o, hs in imports[label] for h in hs})
            failed = failed or bool(heavy)
            print(f"{label:38s} {wall * 1000:9.1f} {wall / base:6.2f} {total * 1000:13.1f} {own * 1000:14.1f}  "
                  f"{', '.join(heavy) or 'none'}")
        print(f"\nheavy libraries imported where not needed: {'FAIL' if failed else 'PASS (none)'}")
        print(f"load average at end: {load()}")
    finally:
        cleanup(work)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

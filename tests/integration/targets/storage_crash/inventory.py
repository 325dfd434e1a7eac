# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the inventory of crash.yml: N local hosts, each with a directory, backend and store of its own.

    inventory.py < SPEC > inventory.json

SPEC (JSON): {"hosts": N, "dir": base directory, "vars": {...}} where every string in `vars`
may hold {dir} (the host's directory, made here) and {host}; the crash_* variables of
crash.yml go in `vars`, plus ansible_python_interpreter.
"""

from __future__ import annotations

import json
import os
import sys


def fill(value, **names):
    if isinstance(value, str):
        for key, text in names.items():
            value = value.replace("{" + key + "}", text)
        return value
    if isinstance(value, list):
        return [fill(v, **names) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, **names) for k, v in value.items()}
    return value


def main() -> None:
    spec = json.load(sys.stdin)
    hosts = {}
    for slot in range(spec["hosts"]):
        name = f"crash{slot}"
        directory = os.path.join(spec["dir"], name)
        os.makedirs(directory, exist_ok=True)
        hosts[name] = dict(fill(spec["vars"], dir=directory, host=name), crash_slot=slot, crash_dir=directory)
    json.dump({"crashers": {"hosts": hosts, "vars": {"crash_slots": spec["hosts"], "ansible_connection": "local"}}},
              sys.stdout, indent=1)


if __name__ == "__main__":
    main()

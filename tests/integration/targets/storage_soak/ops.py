# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The soak's inventory: HOSTS local hosts, each with OPS mixed operations on overlapping names.

    ops.py HOSTS OPS SEED PYTHON > inventory.json

Operations (weights): create a volume (30), snapshot one (25), extend one (20), delete one
with its snapshots (15), delete a snapshot (10); on 8 volume and 8 snapshot names that every
host uses, so tasks on the same object from different hosts meet all the time. Sizes are
random: an extend to a smaller size than another host already gave fails (volumes only grow).
The same SEED gives the same operations.
"""

from __future__ import annotations

import json
import random
import sys

NAMES = 8


def operation(rng: random.Random) -> dict:
    volume = f"soak-v{rng.randrange(NAMES)}"
    snapshot = f"soak-s{rng.randrange(NAMES)}"
    kind = rng.choices(["create", "snapshot", "extend", "delete", "delete_snapshot"], [30, 25, 20, 15, 10])[0]
    if kind == "create":
        return {"module": "volume", "args": {"name": volume, "size": rng.randint(1, 3)}}
    if kind == "snapshot":
        return {"module": "snapshot", "args": {"volume": volume, "name": snapshot}}
    if kind == "extend":
        return {"module": "volume", "args": {"name": volume, "size": rng.randint(1, 8)}}
    if kind == "delete":
        return {"module": "volume", "args": {"name": volume, "state": "absent", "cascade": True}}
    return {"module": "snapshot", "args": {"name": snapshot, "state": "absent"}}


def main() -> None:
    hosts, count, seed, python = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    rng = random.Random(seed)
    inventory = {f"soak{i:02d}": {"soak_ops": [operation(rng) for _position in range(count)]} for i in range(hosts)}
    group_vars = {"ansible_connection": "local", "ansible_python_interpreter": python}
    json.dump({"soakers": {"hosts": inventory, "vars": group_vars}}, sys.stdout)


if __name__ == "__main__":
    main()

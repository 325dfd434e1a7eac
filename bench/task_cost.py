# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-task cost: an idempotent storage_volume task against ansible.builtin.file state=touch.

    .venv/bin/python bench/task_cost.py [--rounds 5] [--tasks 100]

Three playbooks of --tasks tasks each on localhost (connection local), run in
turn --rounds times, plus a one-task playbook for ansible-playbook's own start-up:
- touch: ansible.builtin.file state=touch on one file (the baseline);
- volume: storage_volume on a volume that exists with that size (nothing to change),
  file backend (qcow2), JSON state file; the default: the module runs on the host and
  checks the volume's image on the backend;
- volume, store only: the same with blockstore_noop_answer=store, answered by the
  action plugin from the records alone.
Per-task cost = (median playbook time - median start-up time) / tasks, wall clock
and CPU (every process of the run). Targets (issue 12): volume <= 1.15 x touch,
store only <= 0.25 x touch.
"""

from __future__ import annotations

import argparse
import os
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
    spread,
    timed,
    verdict,
    workdir,
    write_json,
)

TARGET = 1.15
TARGET_STORE = 0.25


def write_playbooks(work: str, tasks: int) -> dict[str, str]:
    defaults = f"""  module_defaults:
    group/blockstore.storage.storage:
      backend: {{name: bench, driver: file, path: {work}/volumes, format: qcow2}}
      persistence: {{storage: file, path: {work}/state.json}}
"""

    def play(body: str, play_vars: str = "") -> str:
        return f"- hosts: localhost\n  gather_facts: false\n{defaults}{play_vars}  tasks:\n{body}"

    touch = f"    - ansible.builtin.file: {{path: {work}/touched, state: touch}}\n"
    volume = "    - blockstore.storage.storage_volume: {name: bench1, size: 1}\n"
    books = {
        "setup": play(volume),
        "startup": play("    - ansible.builtin.meta: noop\n"),
        "touch": play(touch * tasks),
        "volume": play(volume * tasks),
        "volume_store": play(volume * tasks, "  vars: {blockstore_noop_answer: store}\n"),
    }
    paths = {}
    for name, text in books.items():
        paths[name] = os.path.join(work, f"{name}.yml")
        with open(paths[name], "w", encoding="utf-8") as handle:
            handle.write("---\n" + text)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    header(f"per-task cost, {args.tasks} tasks per playbook, {args.rounds} rounds")
    work = workdir("task-cost")
    try:
        env = ansible_env(work, collection_tree(work))
        books = write_playbooks(work, args.tasks)
        playbook(books["setup"], env)
        names = {"startup": "start-up (1 task)", "touch": "file state=touch",
                 "volume": "storage_volume, no change, checked on the backend",
                 "volume_store": "storage_volume, no change, store only"}
        samples = interleave({n: (lambda b=books[n]: playbook(b, env)) for n in names}, args.rounds, timed)
        figures: dict = {"load_end": load(), "tasks": args.tasks, "rounds": args.rounds}
        print(f"\nplaybook times in seconds, median (min, max) of {args.rounds}:")
        for name, label in names.items():
            print(f"  {label:52s} wall {spread([s[0] for s in samples[name]])}")
            print(f"  {'':52s} cpu  {spread([s[1] for s in samples[name]])}")
        per_task = {}
        for name in ("touch", "volume", "volume_store"):
            per_task[name] = [
                (median([s[i] for s in samples[name]]) - median([s[i] for s in samples["startup"]])) / args.tasks
                for i in (0, 1)]
        print("\nper task (start-up subtracted), ms: wall / cpu")
        for name in ("touch", "volume", "volume_store"):
            wall, cpu = per_task[name]
            print(f"  {names[name]:52s} {wall * 1000:7.1f} / {cpu * 1000:7.1f}")
        ratio = per_task["volume"][0] / per_task["touch"][0]
        ratio_cpu = per_task["volume"][1] / per_task["touch"][1]
        ratio_store = per_task["volume_store"][0] / per_task["touch"][0]
        ratio_store_cpu = per_task["volume_store"][1] / per_task["touch"][1]
        print(f"\nratio storage_volume (no change) / file touch: wall {ratio:.2f}, cpu {ratio_cpu:.2f}  "
              f"target <= {TARGET}: {verdict(ratio, TARGET)}")
        print(f"ratio answered from the store only:            wall {ratio_store:.2f}, cpu {ratio_store_cpu:.2f}  "
              f"target <= {TARGET_STORE}: {verdict(ratio_store, TARGET_STORE)}")
        print(f"load average at end: {figures['load_end']}")
        figures.update(per_task_ms={k: [round(v * 1000, 1) for v in vs] for k, vs in per_task.items()},
                       ratio_wall=ratio, ratio_cpu=ratio_cpu, ratio_store_wall=ratio_store,
                       ratio_store_cpu=ratio_store_cpu)
        write_json(args.json, figures)
    finally:
        cleanup(work)


if __name__ == "__main__":
    main()

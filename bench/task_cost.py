# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-task cost: an idempotent storage_volume task against ansible.builtin.file state=touch.

    .venv/bin/python bench/task_cost.py [--rounds 5] [--tasks 100]

Three playbooks of --tasks tasks each on localhost (connection local), run in
turn --rounds times, plus a one-task playbook for ansible-playbook's own start-up:
- touch: ansible.builtin.file state=touch on one file (the baseline);
- volume: storage_volume on a volume that exists with that size (nothing to change),
  file backend (qcow2), JSON state file;
- volume, module on the host: the same with blockstore_always_run_module=true, so
  the module is shipped and run even though the controller's plan is empty.
Per-task cost = (median playbook time - median start-up time) / tasks, wall clock
and CPU (every process of the run). Target (issue 7): volume <= 1.3 x touch.
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

TARGET = 1.3


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
        "volume_module": play(volume * tasks, "  vars: {blockstore_always_run_module: true}\n"),
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
        names = {"startup": "start-up (1 task)", "touch": "file state=touch", "volume": "storage_volume, no change",
                 "volume_module": "storage_volume, no change, module run on the host"}
        samples = interleave({n: (lambda b=books[n]: playbook(b, env)) for n in names}, args.rounds, timed)
        figures: dict = {"load_end": load(), "tasks": args.tasks, "rounds": args.rounds}
        print(f"\nplaybook times in seconds, median (min, max) of {args.rounds}:")
        for name, label in names.items():
            print(f"  {label:52s} wall {spread([s[0] for s in samples[name]])}")
            print(f"  {'':52s} cpu  {spread([s[1] for s in samples[name]])}")
        per_task = {}
        for name in ("touch", "volume", "volume_module"):
            per_task[name] = [
                (median([s[i] for s in samples[name]]) - median([s[i] for s in samples["startup"]])) / args.tasks
                for i in (0, 1)]
        print("\nper task (start-up subtracted), ms: wall / cpu")
        for name in ("touch", "volume", "volume_module"):
            wall, cpu = per_task[name]
            print(f"  {names[name]:52s} {wall * 1000:7.1f} / {cpu * 1000:7.1f}")
        ratio = per_task["volume"][0] / per_task["touch"][0]
        ratio_cpu = per_task["volume"][1] / per_task["touch"][1]
        ratio_module = per_task["volume_module"][0] / per_task["touch"][0]
        ratio_module_cpu = per_task["volume_module"][1] / per_task["touch"][1]
        print(f"\nratio storage_volume (no change) / file touch: wall {ratio:.2f}, cpu {ratio_cpu:.2f}  "
              f"target <= {TARGET}: {verdict(ratio, TARGET)}")
        print(f"ratio with the module run on the host:         wall {ratio_module:.2f}, cpu {ratio_module_cpu:.2f}  "
              f"({verdict(ratio_module, TARGET)} against the same target)")
        print(f"load average at end: {figures['load_end']}")
        figures.update(per_task_ms={k: [round(v * 1000, 1) for v in vs] for k, vs in per_task.items()},
                       ratio_wall=ratio, ratio_cpu=ratio_cpu, ratio_module_wall=ratio_module,
                       ratio_module_cpu=ratio_module_cpu)
        write_json(args.json, figures)
    finally:
        cleanup(work)


if __name__ == "__main__":
    main()

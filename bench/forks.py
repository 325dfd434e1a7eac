# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Throughput with forks: volume creations with -f 8 against -f 1.

    .venv/bin/python bench/forks.py [--volumes 200] [--forks 8] [--rounds 3] [--store file|sqlite] [--format raw|qcow2]

An inventory of --volumes hosts (connection local), one storage_volume task each
creating its own volume (file backend, a fresh directory and state store per run),
run with -f 1 and with -f N in turn, --rounds times. Baseline in the same run: the
same playbook with ansible.builtin.file state=touch (one file per host), which shows
the speed-up Ansible itself gets from forks on this machine (the ceiling).
Target (issue 7): 200 creations with -f 8 at least 1.8 x faster than with -f 1.

Where the time goes: the collection's action plugin is replaced, in this
benchmark's own copy of the collection, by bench/instrumented_action.py, which logs
per task the worker's CPU (controller side), the CPU of the module and the shell
commands around it, lock waits and time in the store; the main ansible-playbook
process's own CPU is measured too. Every run is checked: N volumes recorded
'available' and N volume files on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    spread,
    timed,
    verdict,
    workdir,
)

TARGET = 1.8
HERE = os.path.dirname(os.path.abspath(__file__))

MAIN_WRAPPER = """
import atexit, json, os, resource, sys
def report():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(os.environ["BENCH_MAIN_LOG"], "w") as handle:
        json.dump({"main_cpu": usage.ru_utime + usage.ru_stime}, handle)
atexit.register(report)  # workers leave through os._exit: only the main process reports
sys.argv = ["ansible-playbook"] + sys.argv[1:]
from ansible.cli.playbook import main
sys.exit(main())
"""


def write_files(work: str, hosts: int, store: str, image_format: str) -> dict[str, str]:
    inventory = os.path.join(work, "inventory.ini")
    with open(inventory, "w", encoding="utf-8") as handle:
        handle.write("[volumes]\n")
        for number in range(1, hosts + 1):
            handle.write(f"vol{number:04d} ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    persistence = ("{storage: file, path: '{{ run_dir }}/state.json'}" if store == "file"
                   else "{storage: db, connection: 'sqlite:///{{ run_dir }}/state.db'}")
    books = {
        "volume": f"""---
- hosts: all
  gather_facts: false
  tasks:
    - blockstore.storage.storage_volume:
        name: "{{{{ inventory_hostname }}}}"
        size: 1
        backend: {{name: bench, driver: file, path: "{{{{ run_dir }}}}/volumes", format: {image_format}}}
        persistence: {persistence}
""",
        "touch": """---
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.file: {path: "{{ run_dir }}/{{ inventory_hostname }}", state: touch}
""",
    }
    paths = {"inventory": inventory, "wrapper": os.path.join(work, "playbook_main.py")}
    with open(paths["wrapper"], "w", encoding="utf-8") as handle:
        handle.write(MAIN_WRAPPER)
    for name, text in books.items():
        paths[name] = os.path.join(work, f"{name}.yml")
        with open(paths[name], "w", encoding="utf-8") as handle:
            handle.write(text)
    return paths


def instrument(collections: str) -> None:
    plugins = os.path.join(collections, "ansible_collections", "blockstore", "storage", "plugins")
    shutil.copy(os.path.join(HERE, "instrumented_action.py"), os.path.join(plugins, "action", "storage.py"))


def check_run(run_dir: str, hosts: int, store: str) -> None:
    files = [f for f in os.listdir(os.path.join(run_dir, "volumes")) if f.startswith("volume-")]
    if store == "file":
        with open(os.path.join(run_dir, "state.json"), encoding="utf-8") as handle:
            text = handle.read()
        records = list(json.loads(text)["records"].values())
        available = [r for r in records if isinstance(r, dict) and r.get("status") == "available"]
    else:
        import sqlite3
        with sqlite3.connect(os.path.join(run_dir, "state.db")) as db:
            available = db.execute("select id from blockstore_records where status = 'available'").fetchall()
    if len(files) != hosts or len(available) != hosts:
        sys.exit(f"run {run_dir}: {len(files)} volume files and {len(available)} available records, "
                 f"expected {hosts} of each")


def report(args: argparse.Namespace, subjects: dict, samples: dict, logs: dict) -> None:
    print(f"\nwall and CPU (every process) per run, seconds, median (min, max) of {args.rounds}:")
    for name in subjects:
        print(f"  {name:12s} wall {spread([s[0] for s in samples[name]])}")
        print(f"  {'':12s} cpu  {spread([s[1] for s in samples[name]])}")
    walls = {name: median([s[0] for s in samples[name]]) for name in subjects}
    speedup = walls["volume-f1"] / walls[f"volume-f{args.forks}"]
    print(f"\nspeed-up of storage_volume creations, -f 1 / -f {args.forks}: {speedup:.2f}  "
          f"target >= {TARGET}: {verdict(speedup, TARGET, higher_is_better=True)}")
    if not args.no_baseline:
        ceiling = walls["touch-f1"] / walls[f"touch-f{args.forks}"]
        print(f"speed-up of file state=touch (Ansible's own, same machine, same run): {ceiling:.2f}")
    cpus = os.cpu_count() or 1
    print(f"\nwhere the time goes, per task (mean over all runs), ms; {cpus} CPUs:")
    print(f"  {'':12s} {'main CPU':>9s} {'worker CPU':>11s} {'module+sh CPU':>14s} {'action wall':>12s} "
          f"{'module wall':>12s} {'lock wait':>10s} {'store':>8s}")
    for name, runs in logs.items():
        tasks = [t for run in runs for t in run["tasks"]]
        count = len(tasks)

        def mean(key, tasks=tasks, count=count):
            return sum(t[key] for t in tasks) / count * 1000
        main_cpu = sum(run["main_cpu"] for run in runs) / count * 1000
        print(f"  {name:12s} {main_cpu:9.1f} {mean('worker_cpu'):11.1f} {mean('children_cpu'):14.1f} "
              f"{mean('action_wall'):12.1f} {mean('module'):12.1f} {mean('lock_wait'):10.2f} {mean('store'):8.2f}")
    cpu_f1 = median([s[1] for s in samples["volume-f1"]])
    print(f"\nCPU-bound ceiling: a -f 1 run uses {cpu_f1:.1f} s of CPU in {walls['volume-f1']:.1f} s; "
          f"on {cpus} CPUs no run can take less than {cpu_f1 / cpus:.1f} s, a speed-up of at most "
          f"{walls['volume-f1'] / (cpu_f1 / cpus):.2f} (if forks added no CPU of their own)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--volumes", type=int, default=200)
    parser.add_argument("--forks", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", choices=("file", "sqlite"), default="file")
    parser.add_argument("--format", choices=("raw", "qcow2"), default="raw")
    parser.add_argument("--no-baseline", action="store_true", help="skip the file state=touch baseline")
    args = parser.parse_args()

    header(f"throughput: {args.volumes} creations, -f 1 against -f {args.forks}, store {args.store}, "
           f"{args.format} images, {args.rounds} rounds")
    work = workdir("forks")
    try:
        collections = collection_tree(work)
        instrument(collections)
        env = ansible_env(work, collections)
        files = write_files(work, args.volumes, args.store, args.format)
        counter = iter(range(10**6))
        logs: dict[str, list[dict]] = {}

        def subject(book: str, forks: int):
            name = f"{book}-f{forks}"

            def run() -> None:
                run_dir = os.path.join(work, f"run-{next(counter)}")
                os.makedirs(run_dir)
                task_log, main_log = os.path.join(run_dir, "tasks.jsonl"), os.path.join(run_dir, "main.json")
                command = [sys.executable, files["wrapper"], "-i", files["inventory"], "-f", str(forks),
                           "-e", f"run_dir={run_dir}", files[book]]
                result = subprocess.run(command, env={**env, "BENCH_TASK_LOG": task_log, "BENCH_MAIN_LOG": main_log},
                                        capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    sys.exit(f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
                if book == "volume":
                    check_run(run_dir, args.volumes, args.store)
                    with open(task_log, encoding="utf-8") as handle:
                        tasks = [json.loads(line) for line in handle]
                    with open(main_log, encoding="utf-8") as handle:
                        main_cpu = json.load(handle)["main_cpu"]
                    logs.setdefault(name, []).append({"tasks": tasks, "main_cpu": main_cpu})
                shutil.rmtree(run_dir)
            return name, run

        subjects = dict([subject("volume", 1), subject("volume", args.forks)])
        if not args.no_baseline:
            subjects.update([subject("touch", 1), subject("touch", args.forks)])
        samples = interleave(subjects, args.rounds, timed)

        report(args, subjects, samples, logs)
        print(f"load average at end: {load()}")
    finally:
        cleanup(work)


if __name__ == "__main__":
    main()

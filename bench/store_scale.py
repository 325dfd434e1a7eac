# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""State store: the store work of one task with 1,000, 10,000 and 100,000 volumes in the store.

    .venv/bin/python bench/store_scale.py [--stores file,sqlite,postgresql] [--sizes 1000,10000,100000]
                                          [--rounds 15] [--budget 90]

One operation is what the action plugin does with the store for one task: open
it (a task runs in a worker process of its own), then transaction.run_task:
- create: select the records the task names, lock them, plan, write the pending
  record (status creating), run the module's side (perform() with the real file
  driver, raw, a sparse file: constant, timed and left out of the store figure),
  merge the module's changes;
- no change: select, lock, plan, and answer without the module (what the action
  plugin does for a volume that is as the task says).
For each store kind, one store per size is filled with that many volumes first,
then every round runs one operation of each kind on every size, in a rotating
order (a size whose operations have taken --budget seconds stops after 3 samples).
Reported: median per operation, and the ratio to the smallest size measured in
the same run. Target (issue 7): db stores (SQLite, PostgreSQL) at 100,000 <= 2 x at
1,000. PostgreSQL: tests/utils/postgres.sh on BLOCKSTORE_PG_PORT (default here
55517, so no other run's server is touched), one database per size.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, cleanup, header, load, median, verdict, workdir

TARGET = 2.0


def import_core(work: str):
    """The checkout's core as ansible_collections.blockstore.storage (a link in the work directory)."""
    root = os.path.join(work, "collections")
    os.makedirs(os.path.join(root, "ansible_collections", "blockstore"))
    os.symlink(REPO, os.path.join(root, "ansible_collections", "blockstore", "storage"))
    sys.path.insert(0, root)
    from ansible_collections.blockstore.storage.plugins.module_utils import (
        drivers,
        objects,
        persistence,
        transaction,
        volumes,
    )
    return drivers, objects, persistence, volumes, transaction


def postgres_url(port: str) -> tuple[str, bool]:
    env = {**os.environ, "BLOCKSTORE_PG_PORT": port}
    script = os.path.join(REPO, "tests", "utils", "postgres.sh")
    running = subprocess.run(["bash", script, "status"], env=env, capture_output=True, check=False).returncode == 0
    if not running:
        subprocess.run(["bash", script, "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    url = subprocess.run(["bash", script, "url"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    return url, not running


def stop_postgres(port: str) -> None:
    env = {**os.environ, "BLOCKSTORE_PG_PORT": port}
    subprocess.run(["bash", os.path.join(REPO, "tests", "utils", "postgres.sh"), "stop"], env=env, check=False,
                   stdout=subprocess.DEVNULL)


def postgres_database(url: str, name: str) -> str:
    """A fresh database `name` on the server of `url`; returns its URL."""
    import psycopg
    import sqlalchemy as sa
    parsed = sa.engine.make_url(url)
    with psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username, password=parsed.password,
                         dbname=parsed.database, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return parsed.set(database=name).render_as_string(hide_password=False)


class Bench:
    """One store of one kind and size, and the two operations on it."""

    def __init__(self, core, kind: str, size: int, where: str, work: str) -> None:
        drivers, objects, persistence, volumes, transaction = core
        self.kind, self.size = kind, size
        self.volumes, self.transaction = volumes, transaction
        self.persistence = where
        self.open_store = persistence.open_store
        self.store = persistence.open_store(where)  # for filling it
        self.driver = drivers.build_driver({"name": "bench", "driver": "file",
                                            "path": os.path.join(work, f"volumes-{kind}-{size}")})
        self.samples: dict[str, list[float]] = {"create": [], "no change": []}
        self.spent = 0.0
        self.module_time = 0.0
        started = time.perf_counter()
        template = objects.Volume(id="", name="", backend="bench", size=1, status="available")
        records = []
        for number in range(size):
            record = dataclasses.asdict(template)
            record.update(id=str(uuid.uuid4()), name=f"vol-{number:06d}", created_at=objects.now(),
                          updated_at=objects.now(), driver_data={"format": "raw"})
            records.append(record)
        for start in range(0, size, 10000):
            self.store.apply(upserts=records[start:start + 10000])
        self.fill_seconds = time.perf_counter() - started
        self.names = [r["name"] for r in records]
        self.created = 0

    def create(self) -> float:
        self.created += 1
        params = {"name": f"new-{self.created:06d}", "size": 1, "state": "present"}
        module = {"seconds": 0.0}

        def execute(records, new_ids):
            started = time.perf_counter()
            try:
                return self.transaction.perform(self.volumes.VolumeResource, self.driver, params, records, new_ids,
                                                False)
            finally:
                module["seconds"] += time.perf_counter() - started

        started = time.perf_counter()
        with self.task_store() as store:
            self.transaction.run_task(store, self.volumes.VolumeResource, "bench", params, False, execute)
        return time.perf_counter() - started - module["seconds"]

    def task_store(self) -> contextlib.closing:
        """A store object of the task's own, as each task (a new worker process) opens one."""
        return contextlib.closing(self.open_store(self.persistence))

    def no_change(self) -> float:
        name = self.names[(self.created * 7919) % len(self.names)] if self.names else "nothing"
        params = {"name": name, "state": "present"} if self.names else {"name": name, "state": "absent"}

        def execute(records, new_ids):
            raise AssertionError("a task with nothing to do ran its module")

        started = time.perf_counter()
        with self.task_store() as store:
            self.transaction.run_task(store, self.volumes.VolumeResource, "bench", params, False, execute,
                                      answer_noop=lambda result: result)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--stores", default="file,sqlite,postgresql")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--budget", type=float, default=90.0, help="seconds of operations per store and size")
    parser.add_argument("--pg-port", default=os.environ.get("BLOCKSTORE_PG_PORT", "55517"))
    args = parser.parse_args()
    kinds = args.stores.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    header(f"state store per-operation cost, stores {', '.join(kinds)}, sizes {', '.join(map(str, sizes))}")
    work = workdir("store-scale")
    core = import_core(work)
    started_pg = False
    benches: list[Bench] = []
    try:
        for kind in kinds:
            for size in sizes:
                if kind == "file":
                    where = {"storage": "file", "path": os.path.join(work, f"state-{size}.json")}
                elif kind == "sqlite":
                    where = {"storage": "db", "connection": f"sqlite:///{work}/state-{size}.db"}
                else:
                    url, started = postgres_url(args.pg_port)
                    started_pg = started_pg or started
                    where = {"storage": "db", "connection": postgres_database(url, f"bench_scale_{size}")}
                bench = Bench(core, kind, size, where, work)
                print(f"filled {kind} store with {size} volumes in {bench.fill_seconds:.1f} s", file=sys.stderr)
                benches.append(bench)
        for round_no in range(args.rounds):
            order = benches[round_no % len(benches):] + benches[:round_no % len(benches)]
            for bench in order:
                if bench.spent > args.budget and len(bench.samples["create"]) >= 3:
                    continue
                started = time.perf_counter()
                bench.samples["create"].append(bench.create())
                bench.samples["no change"].append(bench.no_change())
                bench.spent += time.perf_counter() - started
            print(f"  round {round_no + 1}/{args.rounds} done (load {load()})", file=sys.stderr)
        report(benches, kinds, sizes)
    finally:
        for bench in benches:
            bench.store.close()
        if started_pg:
            stop_postgres(args.pg_port)
        cleanup(work)


def report(benches: list[Bench], kinds: list[str], sizes: list[int]) -> None:
    print("\nstore work per operation, ms: median (n) and ratio to the smallest size")
    print(f"  {'store':12s} {'volumes':>8s} {'create':>20s} {'no change':>20s}")
    for kind in kinds:
        rows = [b for b in benches if b.kind == kind]
        base = {op: median(rows[0].samples[op]) for op in ("create", "no change")}
        for bench in rows:
            cells = []
            for op in ("create", "no change"):
                value = median(bench.samples[op])
                cells.append(f"{value * 1000:9.2f} ({len(bench.samples[op]):2d}) {value / base[op]:5.2f}x")
            print(f"  {kind:12s} {bench.size:8d} {cells[0]:>20s} {cells[1]:>20s}")
    print()
    for kind in kinds:
        if kind == "file":
            continue
        rows = [b for b in benches if b.kind == kind]
        smallest, largest = rows[0], rows[-1]
        for op in ("create", "no change"):
            ratio = median(largest.samples[op]) / median(smallest.samples[op])
            print(f"{kind} {op}: {largest.size} / {smallest.size} volumes = {ratio:.2f}  target <= {TARGET}: "
                  f"{verdict(ratio, TARGET)}")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check that a state store and a file backend directory agree exactly.

    verify.py STORE_VARS_FILE BACKEND_NAME BACKEND_DIR [EXPECT_JSON]

STORE_VARS_FILE is a JSON file {"persistence": {...}} (the option, which may hold a
password and so is never passed on a command line).

- every volume record has its image `volume-<id>`, and every image has a record;
- every snapshot record has its image; an image of a snapshot without a record is
  one the driver keeps hidden (marked `.deleted`) for volumes made from it;
- no record is left in a transient status, no temp file is left behind;
- names are unique per kind; every image has the size its record says and passes
  `qemu-img check`;
- with EXPECT_JSON ({"volumes": {name: size or null}, "snapshots": [names]}):
  exactly those volumes and snapshots exist.

The JSON state file is read directly; a database is read through the collection's
Store API (its schema belongs to the db store), found on ANSIBLE_COLLECTIONS_PATH.
Prints one line per problem and exits 1 if there is any.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

GIB = 1024 ** 3


def records_of(persistence: dict) -> list:
    if persistence.get("storage", "file") == "file":
        try:
            with open(persistence["path"], encoding="utf-8") as handle:
                return list(json.load(handle)["records"].values())
        except FileNotFoundError:
            return []
    for root in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
        if root and root not in sys.path:
            sys.path.append(root)
    from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store

    store = open_store(persistence)
    try:
        return store.all_records()
    finally:
        store.close()


def image_problems(path: str, size: int) -> list:
    info = subprocess.run(["qemu-img", "info", "--output=json", path], capture_output=True, text=True, check=False)
    if info.returncode:
        return [f"{path}: qemu-img info failed: {info.stderr.strip()}"]
    details = json.loads(info.stdout)
    problems = []
    if details["virtual-size"] != size * GIB:
        problems.append(f"{path}: image is {details['virtual-size']} bytes, record says {size} GiB")
    if details["format"] == "qcow2":
        check = subprocess.run(["qemu-img", "check", "-q", path], capture_output=True, text=True, check=False)
        if check.returncode:
            problems.append(f"{path}: qemu-img check: {(check.stdout + check.stderr).strip()}")
    return problems


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as handle:
        persistence = json.load(handle)["persistence"]
    backend, directory = sys.argv[2], sys.argv[3]
    expect = json.loads(sys.argv[4]) if len(sys.argv) > 4 else None
    # The objects' records; the backend's own identity record (kind "backend") has no status or image.
    records = [r for r in records_of(persistence) if r.get("backend") == backend and r.get("kind") != "backend"]
    volumes = {r["id"]: r for r in records if r["kind"] == "volume"}
    snapshots = {r["id"]: r for r in records if r["kind"] == "snapshot"}
    files = set(os.listdir(directory)) if os.path.isdir(directory) else set()
    problems = []

    for kind, objects in (("volume", volumes), ("snapshot", snapshots)):
        for name, count in Counter(o["name"] for o in objects.values()).items():
            if count > 1:
                problems.append(f"{count} {kind} records are named {name!r}")
    problems += [f"{r['kind']} {r['name']!r} ({r['id']}) is {r['status']}" for r in records
                 if r.get("status") not in ("available", "in-use")]
    problems += [f"temp file left behind: {f}" for f in sorted(files) if f.endswith(".tmp")]

    image_ids = {f[len("volume-"):] for f in files if f.startswith("volume-") and not f.endswith(".tmp")}
    problems += [f"volume {volumes[i]['name']!r} ({i}) has no image" for i in sorted(set(volumes) - image_ids)]
    problems += [f"image volume-{i} has no record" for i in sorted(image_ids - set(volumes))]
    for volume_id in sorted(set(volumes) & image_ids):
        problems += image_problems(os.path.join(directory, f"volume-{volume_id}"), volumes[volume_id]["size"])

    snapshot_files = {f[len("snapshot-"):] for f in files
                      if f.startswith("snapshot-") and not f.endswith((".tmp", ".deleted"))}
    problems += [f"snapshot {snapshots[i]['name']!r} ({i}) has no image"
                 for i in sorted(set(snapshots) - snapshot_files)]
    problems += [f"image snapshot-{i} has no record and is not marked hidden"
                 for i in sorted(snapshot_files - set(snapshots)) if f"snapshot-{i}.deleted" not in files]
    problems += [f"snapshot {snapshots[i]['name']!r} ({i}) is marked deleted but still has a record"
                 for i in sorted(set(snapshots)) if f"snapshot-{i}.deleted" in files]

    if expect is not None:
        names = {v["name"]: v["size"] for v in volumes.values()}
        if set(names) != set(expect["volumes"]):
            problems.append(f"volumes: missing {sorted(set(expect['volumes']) - set(names))}, "
                            f"unexpected {sorted(set(names) - set(expect['volumes']))}")
        problems += [f"volume {n!r} is {names[n]} GiB, expected {size}" for n, size in expect["volumes"].items()
                     if size is not None and n in names and names[n] != size]
        snapshot_names = {s["name"] for s in snapshots.values()}
        if snapshot_names != set(expect["snapshots"]):
            problems.append(f"snapshots: missing {sorted(set(expect['snapshots']) - snapshot_names)}, "
                            f"unexpected {sorted(snapshot_names - set(expect['snapshots']))}")

    for problem in problems:
        print(f"verify: {problem}")
    print(f"verify: {backend}: {len(volumes)} volumes, {len(snapshots)} snapshots, {len(files)} files, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

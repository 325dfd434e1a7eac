# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving state in and out of the store (storage_state): import what sources.py reads, export our JSON.

Runs where the store is (the controller), never on a target host. Imported records that
are already in the store unchanged are left alone, so an import is idempotent; an export
writes the file only when its content changes (0600, atomically).
"""

from __future__ import annotations

import os
import tempfile

from .errors import InvalidParameter
from .handler import CONTROLLER, Handler, Task
from .objects import BACKUP, CONNECTION, SNAPSHOT, VOLUME
from .persistence.base import Store, refuse_id_clash
from .sealing import mask
from .serialization import dumps as dump_state
from .sources import read_source
from .transaction import lock_keys

STATES = ("imported", "exported")
# The fields that decide whether an imported record differs from the stored one.
COMPARED = ("kind", "id", "backend", "name", "size", "status", "description", "metadata", "source_volume_id",
            "source_snapshot_id", "multiattach", "volume_id", "volume_size", "host", "connector",
            "connection_info", "mode", "driver_data", "group", "volume_name", "location", "parent_id",
            "crash_consistent", "stored_bytes")
# The record kinds a backend's state is made of (its identity record describes a store, not a backend's objects).
MOVED = (VOLUME, SNAPSHOT, CONNECTION, BACKUP)


def _comparable(record: dict) -> dict:
    return {k: record.get(k) for k in COMPARED if k in record}


def import_records(store: Store, backend: str, incoming: list[dict], check_mode: bool) -> dict:
    sealer = store.sealer
    existing = {r["id"]: r for kind in MOVED for r in store.find(backend, kind)}
    added, updated, upserts = [], [], []
    for new in incoming:
        current = existing.get(new["id"])
        record = new
        # Another backend's or kind's object with this id would be replaced: refused, in check mode too.
        refuse_id_clash(current if current is not None else store.by_id(new["id"]), new)
        if current is None:
            added.append(record)
        else:
            # Unchanged: the same sealed tokens (a file exported from a store, imported again), or the
            # same clear values (a cinderlib dump).
            if _comparable(new) in (_comparable(current), _comparable(sealer.unseal_tree(current))):
                continue
            record = dict(new, created_at=current.get("created_at", new.get("created_at")))
            updated.append(record)
        upserts.append(record)
    if upserts and not check_mode:
        store.apply(upserts=[sealer.seal_tree(r) for r in upserts])
    return {"added": added, "updated": updated}


def export_records(store: Store, backend: str, dest: str, check_mode: bool) -> tuple[bool, int]:
    records = {}
    for kind in MOVED:
        for record in store.find(backend, kind):
            records[record["id"]] = record
    text = dump_state(records)
    # Checked before check mode returns, so a dry run refuses what the real run would refuse.
    if not os.path.isabs(dest):
        raise InvalidParameter(f"dest: {dest!r} must be an absolute path", "dest")
    if os.path.isdir(dest):
        raise InvalidParameter(f"dest: {dest} is a directory; give the path of the JSON file to write", "dest")
    directory = os.path.dirname(dest)
    if not os.path.isdir(directory):
        raise InvalidParameter(f"dest: directory {directory} does not exist", "dest")
    if os.path.isfile(dest):
        with open(dest, encoding="utf-8") as handle:
            if handle.read() == text:
                return False, len(records)
    if check_mode:
        return True, len(records)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".blockstore-export-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True, len(records)


class StateTransfer(Handler):
    """Handler of storage_state: runs where the store is (the controller), never on a target."""

    runs_on = CONTROLLER

    @classmethod
    def on_store(cls, task: Task, store: Store, ship: object = None, answer_noop: object = None) -> dict:
        return cls.run_on_store(store, task.backend, task.params, task.check_mode)

    @classmethod
    def run_on_store(cls, store: Store, backend: str, params: dict, check_mode: bool) -> dict:
        state = params.get("state")
        if state not in STATES:
            raise InvalidParameter(f"state: {state!r} is not one of {', '.join(STATES)}", "state")
        if state == "exported":
            if not params.get("dest"):
                raise InvalidParameter("dest: required with state exported (a path for the JSON file)", "dest")
            changed, count = export_records(store, backend, params["dest"], check_mode)
            return {"changed": changed, "dest": params["dest"], "count": count,
                    "actions": [f"export {count} records of backend {backend!r} to {params['dest']}"] if changed
                    else []}
        records, unmapped = read_source(params.get("src"), backend, params.get("src_backend"))
        # Tasks on these objects (by id or by name) wait for the import, and it for them.
        with store.locked(lock_keys(backend, records, {})):
            outcome = import_records(store, backend, records, check_mode)
        added, updated = outcome["added"], outcome["updated"]
        actions = [f"import {r['kind']} {r.get('name') or r['id']!r} ({r['id']})" for r in added]
        actions += [f"update {r['kind']} {r.get('name') or r['id']!r} ({r['id']})" for r in updated]
        counts = {kind: sum(1 for r in records if r["kind"] == kind) for kind in MOVED}
        if not counts[BACKUP]:  # only a file exported here holds them (cinderlib's state never does)
            del counts[BACKUP]
        return {
            "changed": bool(added or updated),
            "actions": actions,
            "imported": {f"{k}s": v for k, v in counts.items()},
            "unmapped": unmapped,
            "diff": {"before": {"records": sorted(r["id"] for r in updated)},
                     "after": {"records": sorted(r["id"] for r in added + updated)}},
            "records": mask([{k: r.get(k) for k in ("kind", "id", "name", "status", "volume_id") if k in r}
                             for r in added + updated]),
        }

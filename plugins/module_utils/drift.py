# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift between the state store and the backend: `storage_backend_info` with `check_drift`.

Compares the records of one backend with what its driver finds on the backend and
what this host has attached, and says what does not match:

  unknown_objects    volumes and snapshots on the backend that no record knows
  missing_objects    records whose volume or snapshot is gone from the backend
  transient_records  records left in a transient status (creating, extending,
                     deleting, connecting, attaching, detaching): an interrupted task
  failed_records     records in status error or error_deleting
  dangling_records   snapshots and connections whose volume has no record
  duplicate_names    names that several volumes (or snapshots) of the backend carry
  leftovers          internal objects nothing needs any more (temp files, hidden
                     images and snapshots whose last dependent is gone)
  unknown_devices    loop devices and qemu-storage-daemon processes on this host
                     serving a volume of the backend that no connection records
  lost_devices       connections of this host whose recorded device is gone

A backend another state store owns (its owner marker, written at first use: the file
driver's `.blockstore-owner`) is reported as such (`owner`): its objects that this store
has no record of are that store's, and no advice to remove them is given.

Objects the driver keeps hidden on purpose (qcow2 snapshots marked `.deleted`,
`clone-base-*` images and snapshots, rbd images renamed `.deleted`, and the
`volume-<clone>.clone_snap` snapshots Cinder's RBD driver cloned imported volumes
through) are not unknown while something still depends on them. A task running at the same time
may show as transient: check when no task runs on the backend.
"""

from __future__ import annotations

from collections import defaultdict

from .drivers.base import Driver
from .host_devices import LocalHost, lost, serving
from .objects import (
    AVAILABLE,
    CONNECTION,
    ERROR,
    ERROR_DELETING,
    EXTENDING,
    IN_USE,
    SNAPSHOT,
    TRANSIENT_STATUSES,
    VOLUME,
    RecordSet,
)

FAILED = (ERROR, ERROR_DELETING)
# A record in one of these statuses must have its object on the backend.
HAS_OBJECT = {VOLUME: (AVAILABLE, IN_USE, EXTENDING), SNAPSHOT: (AVAILABLE,)}
REPORT_KEYS = ("unknown_objects", "missing_objects", "transient_records", "failed_records", "dangling_records",
               "duplicate_names", "leftovers", "unknown_devices", "lost_devices")


def _brief(obj: object) -> dict:
    # A connection is named by its host; the record written before an attachment task has none yet.
    name = obj.name if hasattr(obj, "name") else (obj.host or "(host not known yet)")
    return {"kind": obj.kind, "id": obj.id, "name": name, "status": obj.status}


def check(records: RecordSet, driver: Driver, devices: bool = True, host: LocalHost | None = None) -> dict:
    """The drift report of `driver`'s backend against `records` (see the module docstring)."""
    volumes = {v.id: v for v in records.all(VOLUME)}
    snapshots = {s.id: s for s in records.all(SNAPSHOT)}
    connections = records.all(CONNECTION)
    report: dict = {key: [] for key in REPORT_KEYS}

    volume_ids = set(driver.list_volume_ids())
    snapshot_ids = driver.list_snapshot_ids()
    report["checked"] = {"volumes": True, "snapshots": snapshot_ids is not None, "devices": devices}
    listed = {VOLUME: (volumes, volume_ids), SNAPSHOT: (snapshots, set(snapshot_ids or ()))}
    for kind, (known, found) in listed.items():
        if kind == SNAPSHOT and snapshot_ids is None:
            continue
        report["unknown_objects"] += [{"kind": kind, "id": i} for i in sorted(found - set(known))]
        report["missing_objects"] += [_brief(o) for i, o in sorted(known.items())
                                      if i not in found and o.status in HAS_OBJECT[kind]]
    everything = [*volumes.values(), *snapshots.values(), *connections]
    report["transient_records"] = [_brief(o) for o in everything if o.status in TRANSIENT_STATUSES]
    report["failed_records"] = [_brief(o) for o in everything if o.status in FAILED]
    report["dangling_records"] = [dict(_brief(o), volume_id=o.volume_id) for o in [*snapshots.values(), *connections]
                                  if o.volume_id not in volumes]
    for kind, known in ((VOLUME, volumes), (SNAPSHOT, snapshots)):
        by_name = defaultdict(list)
        for obj in known.values():
            by_name[obj.name].append(obj.id)
        report["duplicate_names"] += [{"kind": kind, "name": n, "ids": sorted(ids)}
                                      for n, ids in sorted(by_name.items()) if len(ids) > 1]
    report["leftovers"] = driver.list_leftovers()
    if devices:
        report["unknown_devices"], report["lost_devices"] = _devices(host or LocalHost(), driver,
                                                                     sorted(set(volumes) | volume_ids), connections)
    marker = driver.read_owner()
    # Which other store owns the backend (None: this one, or no marker): its objects are not ours to remove.
    report["owner"] = ({"store": marker.get("store"), "backend": marker.get("backend")}
                       if driver.owned_elsewhere(marker) else None)
    report["in_sync"] = not any(report[key] for key in REPORT_KEYS)
    report["problems"] = _problems(report)
    return report


def _devices(host: LocalHost, driver: Driver, volume_ids: list[str], connections: list) -> tuple[list, list]:
    """Local devices of this host serving the backend's volumes that no record lists, and recorded
    devices of this host that are gone."""
    found = serving(host, driver, volume_ids, connections)
    unknown = list(found.loops)
    for item in found.daemons:
        pid = host.daemon_pid(item["dir"])
        if pid is not None:
            unknown.append({"device": f"qemu-storage-daemon pid {pid}", "backing_file": item["dir"],
                            "volume_id": item["volume_id"]})
    return unknown, lost(host, connections)


def _removal(kind: str) -> str:
    """How a user removes a record of this kind: storage_attachment has no state absent."""
    return "storage_attachment state: detached" if kind == CONNECTION else "state: absent"


def _problems(report: dict) -> list[str]:
    """One line per finding, saying what to do about it."""
    lines = []
    owner = report.get("owner")
    for item in report["unknown_objects"] if owner else ():
        lines.append(f"{item['kind']} {item['id']} is on the backend but not in this store: the backend belongs to "
                     f"another state store, {owner['store']!r} (its backend {owner['backend']!r}); it is that store's "
                     "object: manage it there and leave it alone here")
    for item in report["unknown_objects"] if not owner else ():
        lines.append(f"{item['kind']} {item['id']} is on the backend but no record knows it: a task that crashed "
                     "after its record was removed, or made outside blockstore; remove it or import it")
    for item in report["missing_objects"]:
        lines.append(f"{item['kind']} {item['name']!r} ({item['id']}) is {item['status']} in the store but gone from "
                     f"the backend; delete its record with {_removal(item['kind'])}")
    for item in report["transient_records"]:
        lines.append(f"{item['kind']} {item['name']!r} ({item['id']}) was left {item['status']} by an interrupted "
                     f"task; run that task again (or {_removal(item['kind'])}) to finish it")
    for item in report["failed_records"]:
        lines.append(f"{item['kind']} {item['name']!r} ({item['id']}) is {item['status']}; run its task again "
                     f"or delete it with {_removal(item['kind'])}")
    for item in report["dangling_records"]:
        lines.append(f"{item['kind']} {item['name']!r} ({item['id']}) belongs to volume {item['volume_id']}, which "
                     "has no record")
    for item in report["duplicate_names"]:
        lines.append(f"{len(item['ids'])} {item['kind']}s are named {item['name']!r}: {', '.join(item['ids'])}")
    for name in report["leftovers"]:
        lines.append(f"{name} is left over from an interrupted task; running that task again collects it")
    for item in report["unknown_devices"]:
        lines.append(f"{item['device']} serves volume {item['volume_id']} ({item['backing_file']}) but no "
                     "connection records it: run storage_attachment for the volume again to clean it up")
    for item in report["lost_devices"]:
        lines.append(f"the device {item['device']} of connection {item['connection_id']} is gone; "
                     "storage_attachment state attached makes it again, state detached forgets it")
    return lines

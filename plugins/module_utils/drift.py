# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift between the state store, the backend and a host: `storage_backend_info` with `check_drift`.

Two views, each run where what it compares is, each saying only what it can know there:

The backend view runs where the backend is (the backend's `host`, docs/architecture.md) and compares
every record of the backend with what its driver finds on the backend:

  unknown_objects    volumes and snapshots on the backend that no record knows
  missing_objects    records whose volume or snapshot is gone from the backend
  unrecorded_exports exports (a tgt target's account...) that no connection record knows
  missing_exports    established connections whose export is gone from the backend
  transient_records  records left in a transient status (creating, extending,
                     deleting, connecting, attaching, detaching): an interrupted task
  failed_records     records in status error or error_deleting
  dangling_records   snapshots and connections whose volume has no record
  duplicate_names    names that several volumes (or snapshots) of the backend carry
  leftovers          internal objects nothing needs any more (temp files, hidden
                     images and snapshots whose last dependent is gone)

The host view runs on the task's host and compares the connections recorded for this host
with its devices; it never judges the backend, which it may not see:

  unknown_devices    loop devices and qemu-storage-daemon processes (with their watchdogs) on
                     this host serving a volume of the backend that no connection of this host records
  lost_devices       connections of this host whose recorded device is gone

A backend view that cannot see the backend (the file driver's directory is not on this host)
refuses, rather than call every recorded object gone. A backend another state store owns (its
owner marker, written at first use: the file driver's `.blockstore-owner`) is reported as such
(`owner`): its objects that this store has no record of are that store's, and no advice to
remove them is given.

Objects the driver keeps hidden on purpose (qcow2 snapshots marked `.deleted`,
`clone-base-*` images and snapshots, rbd images renamed `.deleted`, and the
`volume-<clone>.clone_snap` snapshots Cinder's RBD driver cloned imported volumes
through) are not unknown while something still depends on them. A task running at the same time
may show as transient: check when no task runs on the backend.
"""

from __future__ import annotations

from collections import defaultdict

from .drivers.base import Driver
from .errors import DriverError, InvalidParameter
from .host_devices import LocalHost, lost, serving
from .objects import (
    ATTACHED,
    AVAILABLE,
    CONNECTED,
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
BACKEND_VIEW, HOST_VIEW = "backend", "host"
# check_drift's values besides true and false: one view, or both (what true means).
BOTH = "both"
VIEW_CHOICES = (BACKEND_VIEW, HOST_VIEW, BOTH)
BACKEND_KEYS = ("unknown_objects", "missing_objects", "unrecorded_exports", "missing_exports", "transient_records",
                "failed_records", "dangling_records", "duplicate_names", "leftovers")
HOST_KEYS = ("unknown_devices", "lost_devices")
REPORT_KEYS = BACKEND_KEYS + HOST_KEYS
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def views_of(value: object) -> tuple[str, ...]:
    """The views `check_drift` asks for: true (and `both`) both, false none, or one by name."""
    if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
        value = value.lower() in _TRUE  # as given in key=value form
    if value is None or value is False:
        return ()
    if value is True or value == BOTH:
        return (BACKEND_VIEW, HOST_VIEW)
    if value in (BACKEND_VIEW, HOST_VIEW):
        return (value,)
    raise InvalidParameter(f"check_drift: must be a boolean or one of {', '.join(VIEW_CHOICES)}, got {value!r}",
                           "check_drift")


def _brief(obj: object) -> dict:
    # A connection is named by its host; the record written before an attachment task has none yet.
    name = obj.name if hasattr(obj, "name") else (obj.host or "(host not known yet)")
    return {"kind": obj.kind, "id": obj.id, "name": name, "status": obj.status}


def _empty() -> dict:
    return {**{key: [] for key in REPORT_KEYS}, "checked": {"volumes": False, "snapshots": False, "exports": False,
                                                            "devices": False}, "views": {}, "owner": None}


def check(records: RecordSet, driver: Driver, devices: bool = True, host: LocalHost | None = None) -> dict:
    """Both views on this host (the backend's only without `devices`), as one report."""
    host = host or LocalHost()
    parts = [backend_view(records, driver, host)]
    if devices:
        parts.append(host_view(records, driver, host, extra_volume_ids=driver.list_volume_ids()))
    return merge(parts)


def backend_view(records: RecordSet, driver: Driver, host: LocalHost) -> dict:
    """The store against the backend's objects and exports, where the backend is (see the module docstring)."""
    volumes = {v.id: v for v in records.all(VOLUME)}
    snapshots = {s.id: s for s in records.all(SNAPSHOT)}
    connections = records.all(CONNECTION)
    blind = driver.unseen_reason()
    if blind and any(o.status in HAS_OBJECT[o.kind] for o in [*volumes.values(), *snapshots.values()]):
        # From here every recorded object would look gone: no finding at all beats advice that destroys data.
        raise DriverError(f"{blind} ({host.name()}), so the drift check's backend view cannot see the backend's "
                          "objects here; name the host that has it as the backend's host (backend.host) or run "
                          "the check there. check_drift: host checks only this host's devices", "check_drift")
    report = _empty()
    report["views"] = {BACKEND_VIEW: host.name()}
    volume_ids = set(driver.list_volume_ids())
    snapshot_ids = driver.list_snapshot_ids()
    exports = driver.list_exports()
    report["checked"].update(volumes=True, snapshots=snapshot_ids is not None, exports=exports is not None)
    listed = {VOLUME: (volumes, volume_ids), SNAPSHOT: (snapshots, set(snapshot_ids or ()))}
    for kind, (known, found) in listed.items():
        if kind == SNAPSHOT and snapshot_ids is None:
            continue
        report["unknown_objects"] += [{"kind": kind, "id": i} for i in sorted(found - set(known))]
        report["missing_objects"] += [_brief(o) for i, o in sorted(known.items())
                                      if i not in found and o.status in HAS_OBJECT[kind]]
    if exports is not None:
        report["unrecorded_exports"], report["missing_exports"] = _exports(exports, connections, volumes, driver)
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
    marker = driver.read_owner()
    # Which other store owns the backend (None: this one, or no marker): its objects are not ours to remove.
    report["owner"] = ({"store": marker.get("store"), "backend": marker.get("backend")}
                       if driver.owned_elsewhere(marker) else None)
    return _finish(report, _backend_problems(report))


def _exports(exports: list[dict], connections: list, volumes: dict, driver: Driver) -> tuple[list, list]:
    """Exports no connection record knows, and established connections whose export is gone."""
    recorded = {c.id for c in connections}
    unrecorded = [dict(e, volume_name=volumes[e["volume_id"]].name if e["volume_id"] in volumes else None)
                  for e in exports if e["connection_id"] not in recorded]
    exported = {(e["volume_id"], e["connection_id"]) for e in exports}

    def unexported(c) -> bool:
        established = c.status in (CONNECTED, ATTACHED) and driver.export_expected(c)
        return established and (c.volume_id, c.id) not in exported
    missing = [dict(_brief(c), volume_id=c.volume_id,
                    volume_name=volumes[c.volume_id].name if c.volume_id in volumes else None)
               for c in sorted(connections, key=lambda c: (c.host, c.id)) if unexported(c)]
    return unrecorded, missing


def host_view(records: RecordSet, driver: Driver, host: LocalHost, extra_volume_ids: list[str] = ()) -> dict:
    """This host's devices against the connections recorded for it, on this host; the backend is not looked at.

    `extra_volume_ids`: volumes the backend holds beyond the records (known only where the backend is)."""
    volume_ids = sorted({v.id for v in records.all(VOLUME)} | set(extra_volume_ids))
    connections = records.all(CONNECTION)
    report = _empty()
    report["views"] = {HOST_VIEW: host.name()}
    report["checked"]["devices"] = True
    found = serving(host, driver, volume_ids, connections)
    report["unknown_devices"] = list(found.loops)
    for item in found.daemons:
        pid = host.daemon_pid(item["dir"])
        if pid is not None:
            # Its dead-export watchdog belongs to it: the clean-up that stops the daemon stops the watchdog.
            watcher = host.watchdog_pid(item["dir"])
            name = f"qemu-storage-daemon pid {pid}" + (f" (watchdog pid {watcher})" if watcher is not None else "")
            report["unknown_devices"].append({"device": name, "backing_file": item["dir"],
                                              "volume_id": item["volume_id"]})
    report["lost_devices"] = lost(host, connections)
    names = {v.id: v.name for v in records.all(VOLUME)}
    for key in HOST_KEYS:
        report[key] = [dict(item, volume_name=names.get(item["volume_id"])) for item in report[key]]
    return _finish(report, _host_problems(report, host.name()))


def _finish(report: dict, problems: list[str]) -> dict:
    report["in_sync"] = not any(report[key] for key in REPORT_KEYS)
    report["problems"] = problems
    return report


def merge(parts: list[dict]) -> dict:
    """One report from the views' reports (each run where it belongs), in the order given."""
    report = _empty()
    problems: list[str] = []
    for part in parts:
        for key in REPORT_KEYS:
            report[key] += part.get(key) or []
        for key, value in (part.get("checked") or {}).items():
            report["checked"][key] = report["checked"].get(key, False) or value
        report["views"].update(part.get("views") or {})
        report["owner"] = report["owner"] or part.get("owner")
        problems += part.get("problems") or []
    return _finish(report, problems)


def _removal(kind: str) -> str:
    """How a user removes a record of this kind: storage_attachment has no state absent."""
    return "storage_attachment state: detached" if kind == CONNECTION else "state: absent"


def _backend_problems(report: dict) -> list[str]:
    """One line per finding of the backend view, saying what to do about it (advice safe from the backend's side)."""
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
    for item in report["unrecorded_exports"]:
        lines.append(f"{item['export']} exports volume {item['volume_name'] or item['volume_id']!r} but no connection "
                     "record knows it: left by an interrupted task, or its record was removed by hand; once no host "
                     "uses it, remove it on the backend's host")
    for item in report["missing_exports"]:
        lines.append(f"the export of connection {item['id']} (volume {item['volume_name'] or item['volume_id']!r} on "
                     f"{item['name']}) is gone from the backend; run storage_attachment for that volume on "
                     f"{item['name']} again: state detached there, then attached (a connection still recorded is "
                     "not exported again by itself)")
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
    return lines


def _host_problems(report: dict, here: str) -> list[str]:
    """One line per finding of the host view: about this host's devices only, never about the backend."""
    lines = []
    for item in report["unknown_devices"]:
        lines.append(f"{item['device']} on {here} serves volume {item['volume_name'] or item['volume_id']!r} "
                     f"({item['backing_file']}) but no connection of {here} records it: run storage_attachment for "
                     f"the volume on {here} again to clean it up")
    for item in report["lost_devices"]:
        lines.append(f"the device {item['device']} of connection {item['connection_id']} (volume "
                     f"{item['volume_name'] or item['volume_id']!r}) is gone from {here}; storage_attachment state "
                     f"attached on {here} makes it again, state detached forgets it")
    return lines

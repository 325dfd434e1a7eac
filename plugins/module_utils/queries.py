# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only queries behind the *_info modules: select records, shape results."""

from __future__ import annotations

from typing import ClassVar

from .drivers.base import Driver
from .errors import InvalidParameter
from .objects import SNAPSHOT, VOLUME, VOLUME_STATUSES, RecordSet, public_view
from .persistence.base import Store
from .resources import Resource, VolumeResource, _check_id

# Above this many volumes one query for all snapshots beats one per volume.
_PER_VOLUME_QUERY_LIMIT = 20


class Query:
    result_key: ClassVar[str] = ""
    # True when run() uses nothing but the records: the action plugin answers the task from the
    # store without shipping the module (docs/performance.md). False when it asks the backend.
    noop_on_controller: ClassVar[bool] = False

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        return []

    @classmethod
    def run(cls, records: RecordSet, params: dict, driver: Driver) -> dict:
        raise NotImplementedError


def _filter(params: dict, key: str) -> str | None:
    value = params.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidParameter(f"{key}: must be a non-empty string", key)
    return _check_id(value, key) if key == "id" else value


class VolumeInfo(Query):
    result_key = "volumes"
    noop_on_controller = True

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        status = _filter(params, "status")
        if status is not None and status not in VOLUME_STATUSES:
            raise InvalidParameter(f"status: {status!r} is not one of {', '.join(VOLUME_STATUSES)}", "status")
        volumes = store.find(backend, VOLUME, name=_filter(params, "name"), id=_filter(params, "id"), status=status)
        if len(volumes) > _PER_VOLUME_QUERY_LIMIT:
            return volumes + store.find(backend, SNAPSHOT)
        return volumes + [s for v in volumes for s in store.find(backend, SNAPSHOT, volume_id=v["id"])]

    @classmethod
    def run(cls, records: RecordSet, params: dict, driver: Driver) -> dict:
        viewer = VolumeResource(records, {})
        volumes = sorted(records.find(VOLUME, name=params.get("name"), status=params.get("status")),
                         key=lambda v: (v.name, v.id))
        volume_id = _filter(params, "id")
        return {"volumes": [viewer.view(v) for v in volumes if volume_id in (None, v.id)]}


class SnapshotInfo(Query):
    result_key = "snapshots"
    noop_on_controller = True

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        volumes = Resource._by_ref(store, backend, VOLUME, _filter(params, "volume"))
        if params.get("volume") is not None and not volumes:
            return []
        snapshots = store.find(backend, SNAPSHOT, name=_filter(params, "name"), id=_filter(params, "id"),
                               volume_id=volumes[0]["id"] if len(volumes) == 1 else None)
        return volumes + snapshots

    @classmethod
    def run(cls, records: RecordSet, params: dict, driver: Driver) -> dict:
        volume_ids = None
        if params.get("volume") is not None:
            volume = records.lookup(VOLUME, params["volume"], "volume", required=False)
            volume_ids = {volume.id} if volume else set()
        snapshot_id = _filter(params, "id")
        snapshots = [s for s in records.find(SNAPSHOT, name=params.get("name"))
                     if (volume_ids is None or s.volume_id in volume_ids) and snapshot_id in (None, s.id)]
        return {"snapshots": [public_view(s) for s in sorted(snapshots, key=lambda s: (s.name, s.id))]}


def _check_drift(params: dict) -> bool:
    value = params.get("check_drift")
    if value is not None and not isinstance(value, bool):
        raise InvalidParameter(f"check_drift: must be a boolean, got {value!r}", "check_drift")
    return bool(value)


class BackendInfo(Query):
    result_key = "backend"

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        # The drift check compares every record of the backend with what is on it.
        return store.find(backend) if _check_drift(params) else []

    @classmethod
    def run(cls, records: RecordSet, params: dict, driver: Driver) -> dict:
        result = {"backend": {"name": driver.backend_name, "driver": driver.name,
                              "stats": driver.get_stats(), "capabilities": driver.capabilities}}
        if _check_drift(params):
            from .drift import check
            result["drift"] = check(records, driver)
        return result

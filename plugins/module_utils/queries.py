# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The read-only queries behind the *_info modules: select records, shape results.

Each query is a handler (handler.py) whose host half answers from the records it is
sent (and the driver, for storage_backend_info); storage_host_info needs neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from . import drift
from .attachments import device_view
from .drivers.base import Driver
from .errors import InvalidParameter
from .handler import Handler, Task
from .objects import CONNECTION, SNAPSHOT, STALE, VOLUME, VOLUME_STATUSES, Connection, RecordSet, Volume, public_view
from .plan import by_ref, check_id
from .volumes import VolumeResource

if TYPE_CHECKING:  # the stores are not imported where the module runs (docs/performance.md)
    from .persistence.base import Store

# Above this many volumes one query for all snapshots beats one per volume.
_PER_VOLUME_QUERY_LIMIT = 20
# What storage_volume_info shows of a connection's connector: who the host is, nothing more (a
# connector is os-brick's free-form dict; only these keys are known to hold no secret).
CONNECTOR_SUMMARY = ("host", "ip", "initiator", "nqn", "wwpns", "wwnns", "platform", "os_type", "multipath")


class Query(Handler):
    """A handler that changes nothing: `answer()` is the value of the result's `result_key`."""

    @classmethod
    def on_host(cls, task: Task) -> tuple[dict, None]:
        records = RecordSet(task.backend, task.records or [])
        return {"changed": False, **cls.run(records, task.params, task.driver)}, None

    @classmethod
    def run(cls, records: RecordSet, params: dict, driver: Driver) -> dict:
        return {cls.result_key: cls.answer(records, params, driver)}

    @classmethod
    def answer(cls, records: RecordSet, params: dict, driver: Driver) -> Any:
        raise NotImplementedError


def _filter(params: dict, key: str) -> str | None:
    value = params.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidParameter(f"{key}: must be a non-empty string", key)
    return check_id(value, key) if key == "id" else value


def _flag(params: dict, key: str) -> bool:
    value = params.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidParameter(f"{key}: must be a boolean, got {value!r}", key)
    return bool(value)


class VolumeInfo(Query):
    result_key = "volumes"
    noop_on_controller = True

    @classmethod
    def on_store(cls, task: Task, store: Store, ship: Callable, answer_noop: Callable | None = None) -> dict:
        # Usage is measured on the backend, where the module runs: not answered from the store alone.
        return super().on_store(task, store, ship, None if _flag(task.params, "usage") else answer_noop)

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        status = _filter(params, "status")
        if status is not None and status not in VOLUME_STATUSES:
            raise InvalidParameter(f"status: {status!r} is not one of {', '.join(VOLUME_STATUSES)}", "status")
        volumes = store.find(backend, VOLUME, name=_filter(params, "name"), id=_filter(params, "id"), status=status)
        if len(volumes) > _PER_VOLUME_QUERY_LIMIT:
            return volumes + store.find(backend, SNAPSHOT) + store.find(backend, CONNECTION)
        return volumes + [r for v in volumes for kind in (SNAPSHOT, CONNECTION)
                          for r in store.find(backend, kind, volume_id=v["id"])]

    @classmethod
    def answer(cls, records: RecordSet, params: dict, driver: Driver) -> list[dict]:
        viewer = VolumeResource(records, {})
        volumes = sorted(records.find(VOLUME, name=params.get("name"), status=params.get("status")),
                         key=lambda v: (v.name, v.id))
        volume_id = _filter(params, "id")
        measure = _flag(params, "usage")
        shown = []
        for volume in volumes:
            if volume_id in (None, volume.id):
                view = dict(viewer.view(volume), connections=cls.connections(records, volume))
                if measure:
                    view["allocated_bytes"] = driver.allocated_bytes(volume)
                shown.append(view)
        return shown

    @staticmethod
    def connections(records: RecordSet, volume: Volume) -> list[dict]:
        return [connection_summary(c) for c in sorted(records.find(CONNECTION, volume_id=volume.id),
                                                      key=lambda c: (c.host, c.id))]


def connection_summary(conn: Connection) -> dict:
    """A connection as storage_volume_info lists it: whose it is and what it made, never its
    connection_info (credentials) - so a host that is gone can still be found by its connector."""
    return {"id": conn.id, "host": conn.host, "status": conn.status, "mode": conn.mode, "stale": conn.status == STALE,
            "connector": {k: conn.connector[k] for k in CONNECTOR_SUMMARY if k in (conn.connector or {})},
            "device": device_view(conn.device), "created_at": conn.created_at, "updated_at": conn.updated_at}


class SnapshotInfo(Query):
    result_key = "snapshots"
    noop_on_controller = True

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        volumes = by_ref(store, backend, VOLUME, _filter(params, "volume"))
        if params.get("volume") is not None and not volumes:
            return []
        snapshots = store.find(backend, SNAPSHOT, name=_filter(params, "name"), id=_filter(params, "id"),
                               volume_id=volumes[0]["id"] if len(volumes) == 1 else None,
                               group=_filter(params, "group"))
        return volumes + snapshots

    @classmethod
    def answer(cls, records: RecordSet, params: dict, driver: Driver) -> list[dict]:
        volume_ids = None
        if params.get("volume") is not None:
            volume = records.lookup(VOLUME, params["volume"], "volume", required=False)
            volume_ids = {volume.id} if volume else set()
        snapshot_id = _filter(params, "id")
        snapshots = [s for s in records.find(SNAPSHOT, name=params.get("name"), group=_filter(params, "group"))
                     if (volume_ids is None or s.volume_id in volume_ids) and snapshot_id in (None, s.id)]
        return [public_view(s) for s in sorted(snapshots, key=lambda s: (s.name, s.id))]


# Set by the action plugin when the host view runs apart from the backend view: the name of the host it runs on,
# so that host is sent its own connections only. Read on the controller; never sent to the module.
DRIFT_HOST_PARAM = "_blockstore_drift_host"


class BackendInfo(Query):
    result_key = "backend"

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        views = drift.views_of(params.get("check_drift"))
        if not views:
            return []
        if drift.BACKEND_VIEW not in views and params.get(DRIFT_HOST_PARAM):
            # The host view alone, for a known host: the volumes, and that host's connections only.
            connections = store.find(backend, CONNECTION, host=params[DRIFT_HOST_PARAM])
            return store.find(backend, VOLUME) + connections
        # The backend view compares every record of the backend with what is on it.
        return store.find(backend)

    @classmethod
    def on_host(cls, task: Task) -> tuple[dict, None]:
        records = RecordSet(task.backend, task.records or [])
        views = drift.views_of(task.params.get("check_drift"))
        result = {"changed": False, cls.result_key: cls.answer(records, task.params, task.driver, views)}
        if drift.BACKEND_VIEW in views and drift.HOST_VIEW in views:
            result["drift"] = drift.check(records, task.driver, host=task.host)
        elif views:
            view = drift.backend_view if drift.BACKEND_VIEW in views else drift.host_view
            result["drift"] = drift.merge([view(records, task.driver, task.host)])
        return result, None

    @classmethod
    def answer(cls, records: RecordSet, params: dict, driver: Driver, views: tuple = ()) -> dict:
        answer = {"name": driver.backend_name, "driver": driver.name, "capabilities": driver.capabilities}
        if not views or drift.BACKEND_VIEW in views:
            # Measured where the backend is: the host view alone runs where it may not be, and touches nothing there.
            answer["stats"] = driver.get_stats()
        return answer


class HostInfo(Query):
    """storage_host_info: this host's connector properties; needs no backend and no store."""

    result_key = "connector"
    needs_backend = False
    needs_store = False

    @classmethod
    def on_host(cls, task: Task) -> tuple[dict, None]:
        return {"changed": False, cls.result_key: task.host.properties()}, None

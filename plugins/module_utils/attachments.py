# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connections and local attachments (storage_attachment), on plan.Resource's engine.

A connection exports a volume to one host (the driver's initialize_connection); an attachment is a
connection whose host also made a local block device of it (connectors/). States of storage_attachment:

  attached   a connection for the host the task runs on, and a local device
  connected  a connection for the host `connector` describes (default: this host), no local device
  detached   no device and no connection for that host (`force` and `host`: forced_detach.py)

Host facts (this host's name and connector properties, whether a recorded device still exists) are known only
where the module runs (`LocalHost`, host_devices.py; `prepare()` reads them). The controller runs the same plan
without them, to validate the task and reserve a new connection's id. A task split between the backend's host
and its own (HALF_PARAM, docs/architecture.md) runs as two plans.

Secret fields of connection_info arrive here in clear through the handler's secret gate (handler.py), which
seals them again before a record leaves the module; results mask them.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import TYPE_CHECKING, ClassVar

from .connectors import METHODS
from .drivers.base import Driver
from .errors import BlockstoreError, Conflict, DriverError, InvalidParameter
from .forced_detach import ForcedDetach
from .handler import HALF_PARAM, HOST_HALF
from .host_devices import sweep
from .objects import (
    ATTACHED,
    ATTACHING,
    AVAILABLE,
    CONNECTED,
    CONNECTING,
    CONNECTION,
    DETACHING,
    IN_USE,
    VOLUME,
    Connection,
    Volume,
    now,
    to_record,
)
from .plan import Action, Plan, Step, by_ref
from .sealing import mask
from .units import GiB

if TYPE_CHECKING:  # the stores are not imported where the module runs (docs/performance.md)
    from .persistence.base import Store

STATES = ("attached", "connected", "detached")
MODES = ("rw", "ro")
CHOICE_DEFAULTS = (("state", "attached"), ("mode", "rw"), ("method", "auto"))
# Steps, in the order they run.
CONNECT, ATTACH, GROW, DETACH_DEVICE, DISCONNECT, VOLUME_STATUS, FORGET = (
    "connect", "attach", "grow_device", "detach_device", "disconnect", "volume_status", "forget_connection")
DEVICE_FIELDS = ("path", "type", "method", "protocol", "multipath")
# Steps that make, change or remove a block device on this host: root only.
DEVICE_ACTIONS = (ATTACH, GROW, DETACH_DEVICE)
# The status of the record the controller writes before the module runs, by state.
PENDING_STATUS = {"attached": ATTACHING, "connected": CONNECTING, "detached": DETACHING}


@dataclasses.dataclass
class AttachPlan(Plan):
    reserved_id: str | None = None
    # Written by the controller before the module runs (see pending_connection).
    placeholder: dict | None = None

    def pending(self) -> list[dict]:
        return [self.placeholder] if self.placeholder else []

    def new_ids(self) -> list[str]:
        return [self.reserved_id] if self.reserved_id else []


def pending_connection(volume: Volume, connection_id: str, state: str, host: str = "") -> dict:
    """The record written before the module runs, naming the host when the controller knows it (a `connector`).
    The module's result replaces it (a new connection takes its id) or drops it; if the module dies, it stays,
    in status attaching, connecting or detaching, and the next task on the volume on that host (any host, for
    one naming none) cleans up after the killed one there (host_devices.sweep)."""
    return to_record(Connection(id=connection_id, backend=volume.backend, volume_id=volume.id, host=host,
                                status=PENDING_STATUS[state]))


def device_view(device: dict | None) -> dict | None:
    if not device:
        return None
    return {k: device[k] for k in DEVICE_FIELDS if device.get(k) is not None}


def connection_view(conn: Connection | None, volume: Volume | None) -> dict:
    return {} if conn is None else mask({
        "id": conn.id, "volume_id": conn.volume_id, "volume_name": volume.name if volume else None,
        "backend": conn.backend, "host": conn.host, "mode": conn.mode, "status": conn.status,
        "connector": conn.connector, "connection_info": conn.connection_info,
        "device": device_view(conn.device), "created_at": conn.created_at, "updated_at": conn.updated_at})


# steps (the table is AttachmentResource.ACTIONS); each stores its own record --------
def _connect(resource: AttachmentResource, step: Step, driver: Driver) -> None:
    conn = step.target
    conn.connection_info = driver.initialize_connection(step.source, copy.deepcopy(conn))
    resource._stored(conn)
    resource.made = conn


def _attach(resource: AttachmentResource, step: Step, driver: Driver) -> None:
    conn = step.target
    current = resource.records.get(CONNECTION, conn.id) or conn
    if current.device:  # a vanished device: remove what is left of it, and say so in the record
        resource.host.detach(current.device, current.connection_info)
        current.device, current.status = None, CONNECTED
        resource._stored(current)
    info = copy.deepcopy(conn.connection_info)  # the initiator name is for this attach, not the record
    if conn.connector.get("initiator"):
        info.setdefault("data", {}).setdefault("initiator_name", conn.connector["initiator"])
    conn.device = resource.host.attach(info, step.source.id, conn.mode == "ro", resource.params.get("method") or "auto",
                                       multipath=bool(resource.params.get("multipath")))
    conn.status = ATTACHED
    resource._stored(conn)


def _grow(resource: AttachmentResource, step: Step, driver: Driver) -> None:
    resource.host.grow(step.target.device, step.target.connection_info, step.source.size * GiB)


def _detach_device(resource: AttachmentResource, step: Step, driver: Driver) -> None:
    conn = step.target
    current = resource.records.get(CONNECTION, conn.id) or conn  # the plan's target already shows no device
    resource.host.detach(current.device, current.connection_info)
    conn.device, conn.status = None, CONNECTED
    resource._stored(conn)


def _disconnect(resource: AttachmentResource, step: Step, driver: Driver) -> None:
    driver.terminate_connection(step.source, copy.deepcopy(step.target))
    resource.records.remove(step.target)


def _volume_status(resource: AttachmentResource, step: Step, driver: Driver) -> None:
    resource._stored(step.target)


def _forget(resource: AttachmentResource, step: Step, driver: Driver) -> None:
    sweep(resource.host, driver, step.source, resource.records.find(CONNECTION, volume_id=step.source.id))
    resource.records.remove(step.target)


class AttachmentResource(ForcedDetach):
    kind = CONNECTION
    result_key = "attachment"
    # Drivers and connectors get the connection's credentials (CHAP, keys) in clear; a new export's are sealed.
    needs_secrets = True
    makes_secrets = True
    own_connections_only = True  # a host is sent its own connection whole, others' only in part (handler.py)
    ACTIONS: ClassVar[dict[str, Action]] = {
        CONNECT: Action(_connect), ATTACH: Action(_attach, host_only=True),
        GROW: Action(_grow, host_only=True), DETACH_DEVICE: Action(_detach_device, host_only=True),
        DISCONNECT: Action(_disconnect, deletes=True),
        **ForcedDetach.FORCED_ACTIONS,
        VOLUME_STATUS: Action(_volume_status, host_only=True),
        FORGET: Action(_forget, deletes=True),
    }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.local_host: str | None = None
        self._connector: dict | None = None
        self.made: Connection | None = None

    def prepare(self) -> None:
        """Where the module runs: host facts become available."""
        super().prepare()
        self.local_host = self.host.name()

    # selection (controller side) ------------------------------------------
    @classmethod
    def referenced_names(cls, params: dict) -> dict[str, list[str]]:
        return {VOLUME: [params.get("volume")]}

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        volumes = by_ref(store, backend, VOLUME, params.get("volume"))
        return volumes + [c for v in volumes for c in store.find(backend, CONNECTION, volume_id=v["id"])]

    # planning -----------------------------------------------------------
    def _validate(self) -> tuple[str, str, str, str, dict | None]:
        params = self.params
        ref = params.get("volume")
        if not isinstance(ref, str) or not ref:
            raise InvalidParameter("volume: required, the name or id of a volume", "volume")
        state, mode, method = (params.get(k) or default for k, default in CHOICE_DEFAULTS)
        for key, value, allowed in (("state", state, STATES), ("mode", mode, MODES), ("method", method, METHODS)):
            if value not in allowed:
                raise InvalidParameter(f"{key}: {value!r} is not one of {', '.join(allowed)}", key)
        if params.get("multipath") not in (None, True, False):
            raise InvalidParameter(f"multipath: {params['multipath']!r} is not a boolean (true/false)", "multipath")
        connector = params.get("connector")
        if connector is not None:
            if not isinstance(connector, dict) or not connector.get("host") or not isinstance(connector["host"], str):
                raise InvalidParameter("connector: must be a dict of connector properties with at least 'host' "
                                       "(as storage_host_info returns)", "connector")
            if state == "attached" and self.on_host and connector["host"] != self.local_host:
                raise Conflict(f"connector: state attached makes a device on the host the task runs on "
                               f"({self.local_host}), but the connector describes {connector['host']!r}; use "
                               "state connected to export to another host", "connector")
        return ref, state, mode, method, connector

    def _this_connector(self) -> dict:
        if self._connector is None:
            self._connector = self.host.properties()
        return self._connector

    def make_plan(self) -> AttachPlan:
        ref, state, mode, _method, connector = self._validate()
        if self.on_host and state == "attached" and connector is None:
            # Before anything else: gathering this host's connector properties already needs root.
            self.host.require_root("state attached")
        volume = self.records.lookup(VOLUME, ref, "volume", required=state != "detached")
        if volume is None:
            return AttachPlan([], None, None)
        connections = self.records.find(CONNECTION, volume_id=volume.id)
        live = self._sort_out(connections)  # sets self.interrupted and self.stale
        gone = self._validate_force(state, connector)
        plan = self._plan_volume(volume, state, mode, connector, live) if gone is None else \
            AttachPlan(*self._plan_forced(volume, gone, connections, live, connection_view))
        if self.on_host and any(step.action in DEVICE_ACTIONS for step in plan.steps):
            self.host.require_root(f"state {state}")
        export = next((s for s in plan.steps if s.action == CONNECT), None)
        if export is not None and self.params.get(HALF_PARAM) == HOST_HALF:  # split: made on backend.host first
            raise Conflict(f"volume {volume.name!r}: {export.message} is a backend-side step; run the task again: it "
                           "makes the export on the backend's host (backend.host) first", "backend.host")
        if not self.on_host:
            # On the controller: a record in a transient status goes to the store before the module runs.
            plan.reserved_id = plan.reserved_id or self._next_id()
            plan.placeholder = pending_connection(volume, plan.reserved_id, state, (connector or {}).get("host", ""))
        return plan

    def _forget_steps(self, volume: Volume) -> list[Step]:
        """Clean up after killed tasks on the volume on the host each record names (any, for one naming none)."""
        return [Step(FORGET, c, volume, message=f"clean up after an interrupted task on volume {volume.name!r} "
                     f"(connection {c.id} was left {c.status})") for c in self.interrupted
                if self.on_host and c.host in ("", self.local_host)] + self._stale_steps(volume)

    def _plan_volume(self, volume: Volume, state: str, mode: str, connector: dict | None,
                     connections: list[Connection]) -> AttachPlan:
        host = connector["host"] if connector else self.local_host
        if host is None:
            # On the controller: the host is known only where the module runs.
            return AttachPlan(steps=[], before=None, after=None, reserved_id=self._next_id())
        others = [c for c in connections if c.host != host]
        existing = next((c for c in connections if c.host == host), None)
        before = connection_view(existing, volume) or None
        if state == "detached":
            return self._plan_detached(volume, existing, others, before)
        if existing is not None and existing.mode != mode:
            raise Conflict(f"mode: volume {volume.name!r} is connected to {host} in mode {existing.mode}; "
                           f"detach it first to change the mode to {mode}", "mode")
        steps = self._forget_steps(volume)
        target = copy.deepcopy(existing)
        unexported = existing is None or existing.status not in (CONNECTED, ATTACHED)
        if unexported and state == "connected" and self.params.get(HALF_PARAM) == HOST_HALF:
            return AttachPlan(steps, before, before)  # the host half of a split detach: no device here
        if unexported:
            target = self._plan_connect(volume, existing, others, host, mode, connector, steps)
        local = host == self.local_host
        if state == "attached":
            self._plan_device(volume, existing, target, steps)
        elif existing is not None and existing.device and local:
            self._refuse_busy(existing, volume)
            steps.append(Step(DETACH_DEVICE, target, volume, message=f"detach {existing.device.get('path')} "
                              f"of volume {volume.name!r} on {host}; keep the connection"))
            target.device, target.status = None, CONNECTED
        # A new read-write connection can change the data: a revert to the same snapshot is needed again.
        writable = bool(volume.reverted_to) and mode == "rw" and any(s.action == CONNECT for s in steps)
        if volume.status != IN_USE or writable:
            steps.append(self._status_step(volume, IN_USE, forget_revert=writable))
        after = connection_view(target, volume)
        return AttachPlan(steps=steps, before=before, after=after, reserved_id=target.id if existing is None else None)

    def _plan_connect(self, volume: Volume, existing: Connection | None, others: list[Connection], host: str,
                      mode: str, connector: dict | None, steps: list[Step]) -> Connection:
        if volume.status not in (AVAILABLE, IN_USE):
            raise Conflict(f"volume: {volume.name!r} is {volume.status}; it must be available or in-use to "
                           "connect", "volume")
        if others and not volume.multiattach:
            hosts = ", ".join(sorted({c.host for c in others}))
            raise Conflict(f"volume: {volume.name!r} is already connected to {hosts} and is not multiattach; "
                           "set multiattach: true on storage_volume to share it between hosts", "volume")
        connector = copy.deepcopy(connector) if connector else (
            existing.connector if existing is not None else self._this_connector())
        initiator = connector.get("initiator")
        for other in others:
            if initiator and other.connector.get("initiator") == initiator:
                raise Conflict(f"connector.initiator: {initiator} is already used by the connection of host "
                               f"{other.host}; initiator names must be unique per host", "connector.initiator")
        if existing is None:
            # A killed task's record lends its id: an export it made under that id is made again, not twice.
            mine = [c.id for c in self.interrupted if c.host in ("", self.local_host, host) and self.on_host]
            new_id = mine[0] if mine else self._next_id()
            target = Connection(id=new_id, backend=self.records.backend, volume_id=volume.id, host=host,
                                connector=connector, mode=mode, status=CONNECTED)
            message = f"connect volume {volume.name!r} to {host}"
        else:
            target = copy.deepcopy(existing)
            target.connector, target.status = connector, CONNECTED
            message = f"connect volume {volume.name!r} to {host} again (was {existing.status})"
        steps.append(Step(CONNECT, target, volume, message=message))
        return target

    def _plan_device(self, volume: Volume, existing: Connection | None, target: Connection, steps: list[Step]) -> None:
        host = target.host
        if existing is not None and existing.device:
            if not self.host.present(existing.device):
                steps.append(Step(ATTACH, target, volume, message=f"attach volume {volume.name!r} on {host} again "
                                  f"(device {existing.device.get('path')} vanished)"))
                target.status = ATTACHED
                return
            size = self.host.size(existing.device)
            if size is not None and size < volume.size * GiB:
                steps.append(Step(GROW, target, volume, message=f"grow device {existing.device.get('path')} to "
                                  f"{volume.size} GiB"))
            return
        steps.append(Step(ATTACH, target, volume, message=f"attach volume {volume.name!r} on {host}"))
        target.status = ATTACHED

    def _plan_detached(self, volume: Volume, existing: Connection | None, others: list[Connection],
                       before: dict | None) -> AttachPlan:
        steps = self._forget_steps(volume)
        if existing is None:
            if steps and not others and volume.status == IN_USE:
                steps.append(self._status_step(volume, AVAILABLE))
            return AttachPlan(steps, None, None)
        if existing.device and self.on_host:
            if existing.host != self.local_host:
                raise Conflict(f"volume {volume.name!r} is attached on {existing.host} as "
                               f"{existing.device.get('path')}; run this task on that host to detach it there (if "
                               f"{existing.host} is gone, force: true with host: {existing.host} removes its export "
                               "without reaching it)", "connector")
            self._refuse_busy(existing, volume)
            steps.append(Step(DETACH_DEVICE, existing, volume,
                              message=f"detach {existing.device.get('path')} of volume {volume.name!r} on "
                                      f"{existing.host}"))
        steps.append(Step(DISCONNECT, existing, volume,
                          message=f"disconnect volume {volume.name!r} from {existing.host}"))
        if not others and volume.status == IN_USE:
            steps.append(self._status_step(volume, AVAILABLE))
        return AttachPlan(steps, before, None)

    def _refuse_busy(self, conn: Connection, volume: Volume) -> None:
        if self.on_host and self.host.present(conn.device) and (users := self.host.users(conn.device)):
            raise Conflict(f"volume {volume.name!r}: device {conn.device.get('path')} is in use "
                           f"({', '.join(users)}); unmount it first")

    @staticmethod
    def _status_step(volume: Volume, status: str, forget_revert: bool = False) -> Step:
        target = copy.deepcopy(volume)
        target.status, target.reverted_to = status, None if forget_revert else volume.reverted_to
        what = "; writable again since its revert" if forget_revert else ""
        return Step(VOLUME_STATUS, target, message=f"volume {volume.name!r}: status {status}{what}")

    # execution ----------------------------------------------------------
    def _stored(self, conn: Connection) -> None:
        conn.updated_at = now()
        self.records.put(conn)

    def execute(self, plan: Plan, driver: Driver) -> None:
        self.executed = True
        self.made = None  # a connection this task created, removed again if the attach fails
        for step in plan.steps:
            try:
                self.ACTIONS[step.action].run(self, step, driver)
            except (BlockstoreError, OSError) as exc:
                reason = str(exc) if isinstance(exc, BlockstoreError) else f"{type(exc).__name__}: {exc}"
                undone = self._undo_connect(self.made, step, driver) if self.made is not None else ""
                raise DriverError(f"{step.message} failed: {reason}{undone}", getattr(exc, "option", None)) from None

    def _undo_connect(self, made: Connection, step: Step, driver: Driver) -> str:
        """Leave no half state: remove the connection this task made (and its export)."""
        try:
            driver.terminate_connection(step.source, copy.deepcopy(made))
        except (BlockstoreError, OSError) as exc:
            self._stored(made)  # keep it visible so a detached run can remove the export
            return f"; removing the new connection failed too ({exc}), it stays recorded for state detached"
        self.records.remove(made)
        return "; the new connection and its export were removed again"

    # result -------------------------------------------------------------
    def shown(self, plan: Plan) -> dict | None:
        if plan.after is None:
            return dict(plan.before, status="detached", device=None) if plan.before else None
        current = self.records.get(CONNECTION, plan.after["id"]) if self.executed else None
        volume = self.records.get(VOLUME, current.volume_id) if current is not None else None
        return connection_view(current, volume) if current is not None else plan.after

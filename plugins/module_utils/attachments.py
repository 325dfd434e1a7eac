# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connections and local attachments, in the plan-then-apply style of resources.py.

A connection exports a volume to one host (the driver's initialize_connection);
an attachment is a connection whose host also made a local block device of it
(connectors/). States of storage_attachment:

  attached   a connection for the host the task runs on, and a local device
  connected  a connection for the host `connector` describes (default: this
             host), without a local device (one made here before is removed)
  detached   no device and no connection for that host

Host facts (this host's name and connector properties, whether a recorded device
still exists) are known only where the module runs: `prepare()` sets them there.
On the controller the same plan runs without them, to validate the task and to
reserve the id of a connection the module may create.

Secret fields of connection_info are sealed (sealing.py) before a record leaves
the module, unsealed only to hand them to the driver or the connector, and
masked in every result and diff.
"""

from __future__ import annotations

import copy
import dataclasses
import os

from . import connectors
from .drivers.base import Driver
from .errors import BlockstoreError, Conflict, DriverError, InvalidParameter
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
    RecordSet,
    Volume,
    now,
    to_record,
)
from .persistence.base import Store
from .resources import Plan, Resource, Step
from .sealing import Sealer, mask
from .units import GiB

STATES = ("attached", "connected", "detached")
MODES = ("rw", "ro")
# Steps, in the order they run.
CONNECT, ATTACH, GROW, DETACH_DEVICE, DISCONNECT, VOLUME_STATUS, FORGET = (
    "connect", "attach", "grow_device", "detach_device", "disconnect", "volume_status", "forget_connection")
DEVICE_FIELDS = ("path", "type", "method", "protocol")
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


def is_interrupted(conn: Connection) -> bool:
    """A connection record with no host is what the controller writes before an attachment task
    runs; one that outlived its task marks a task that was killed on the way."""
    return not conn.host


def pending_connection(volume: Volume, connection_id: str, state: str) -> dict:
    """The record written before the module runs: the host is known only where the module runs, so
    it has none. The module's result replaces it (a new connection takes its id) or drops it; if the
    module dies, it stays, in status attaching, connecting or detaching, and the next task on the volume
    cleans up after the killed one (`sweep_devices`)."""
    return to_record(Connection(id=connection_id, backend=volume.backend, volume_id=volume.id, host="",
                                status=PENDING_STATUS[state]))


def device_view(device: dict | None) -> dict | None:
    if not device:
        return None
    return {k: device[k] for k in DEVICE_FIELDS if device.get(k) is not None}


def connection_view(conn: Connection | None, volume: Volume | None) -> dict:
    if conn is None:
        return {}
    return mask({
        "id": conn.id, "volume_id": conn.volume_id, "volume_name": volume.name if volume else None,
        "backend": conn.backend, "host": conn.host, "mode": conn.mode, "status": conn.status,
        "connector": conn.connector, "connection_info": conn.connection_info,
        "device": device_view(conn.device), "created_at": conn.created_at, "updated_at": conn.updated_at})


class AttachmentResource(Resource):
    kind = CONNECTION
    # The module must seal and unseal connection secrets: the action plugin passes it the key.
    needs_key = True

    def __init__(self, records: RecordSet, params: dict, new_ids: list[str] | None = None) -> None:
        super().__init__(records, params, new_ids)
        self.interrupted: list[Connection] = []
        self.on_host = False
        self.local_host: str | None = None
        self.sealer: Sealer | None = None
        self._connector: dict | None = None

    def prepare(self, sealer: Sealer | None) -> None:
        """Where the module runs: host facts and the key become available."""
        self.sealer = sealer
        self.on_host = True
        self.local_host = connectors.this_host()

    # selection (controller side) ------------------------------------------
    @classmethod
    def referenced_names(cls, params: dict) -> dict[str, list[str]]:
        return {VOLUME: [params.get("volume")]}

    @classmethod
    def select(cls, store: Store, backend: str, params: dict) -> list[dict]:
        volumes = cls._by_ref(store, backend, VOLUME, params.get("volume"))
        return volumes + [c for v in volumes for c in store.find(backend, CONNECTION, volume_id=v["id"])]

    # planning -----------------------------------------------------------
    def _validate(self) -> tuple[str, str, str, str, dict | None]:
        params = self.params
        ref = params.get("volume")
        if not isinstance(ref, str) or not ref:
            raise InvalidParameter("volume: required, the name or id of a volume", "volume")
        state = params.get("state") or "attached"
        if state not in STATES:
            raise InvalidParameter(f"state: {state!r} is not one of {', '.join(STATES)}", "state")
        mode = params.get("mode") or "rw"
        if mode not in MODES:
            raise InvalidParameter(f"mode: {mode!r} is not one of {', '.join(MODES)}", "mode")
        method = params.get("method") or "auto"
        if method not in connectors.METHODS:
            raise InvalidParameter(f"method: {method!r} is not one of {', '.join(connectors.METHODS)}", "method")
        connector = params.get("connector")
        if connector is not None:
            if not isinstance(connector, dict) or not isinstance(connector.get("host"), str) \
                    or not connector["host"]:
                raise InvalidParameter("connector: must be a dict of connector properties with at least 'host' "
                                       "(as storage_host_info returns)", "connector")
            if state == "attached" and self.on_host and connector["host"] != self.local_host:
                raise Conflict(f"connector: state attached makes a device on the host the task runs on "
                               f"({self.local_host}), but the connector describes {connector['host']!r}; use "
                               "state connected to export to another host", "connector")
        return ref, state, mode, method, connector

    def _this_connector(self) -> dict:
        if self._connector is None:
            self._connector = connectors.host_properties()
        return self._connector

    def plan(self) -> AttachPlan:
        ref, state, mode, _method, connector = self._validate()
        volume = self.records.lookup(VOLUME, ref, "volume", required=state != "detached")
        if volume is None:
            return AttachPlan([], None, None)
        connections = self.records.find(CONNECTION, volume_id=volume.id)
        self.interrupted = [c for c in connections if is_interrupted(c)]
        plan = self._plan_volume(volume, state, mode, connector, [c for c in connections if not is_interrupted(c)])
        if not self.on_host:
            # On the controller: a record in a transient status goes to the store before the module runs.
            plan.reserved_id = plan.reserved_id or self._next_id()
            plan.placeholder = pending_connection(volume, plan.reserved_id, state)
        return plan

    def _forget_steps(self, volume: Volume) -> list[Step]:
        """Clean up after killed tasks on the volume: their records, and on this host their devices."""
        return [Step(FORGET, c, volume, message=f"clean up after an interrupted task on volume {volume.name!r} "
                     f"(connection {c.id} was left {c.status})") for c in self.interrupted if self.on_host]

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
        if existing is None or existing.status not in (CONNECTED, ATTACHED):
            target = self._plan_connect(volume, existing, others, host, mode, connector, steps)
        local = host == self.local_host
        if state == "attached":
            self._plan_device(volume, existing, target, steps)
        elif existing is not None and existing.device and local:
            self._refuse_busy(existing, volume)
            steps.append(Step(DETACH_DEVICE, target, volume, message=f"detach {existing.device.get('path')} "
                              f"of volume {volume.name!r} on {host}; keep the connection"))
            target.device, target.status = None, CONNECTED
        if volume.status != IN_USE:
            steps.append(self._status_step(volume, IN_USE))
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
            new_id = self.interrupted[0].id if self.interrupted and self.on_host else self._next_id()
            target = Connection(id=new_id, backend=self.records.backend, volume_id=volume.id, host=host,
                                connector=connector, mode=mode, status=CONNECTED)
            message = f"connect volume {volume.name!r} to {host}"
        else:
            target = copy.deepcopy(existing)
            target.connector, target.status = connector, CONNECTED
            message = f"connect volume {volume.name!r} to {host} again (was {existing.status})"
        steps.append(Step(CONNECT, target, volume, message=message))
        return target

    def _plan_device(self, volume: Volume, existing: Connection | None, target: Connection,
                     steps: list[Step]) -> None:
        host = target.host
        if existing is not None and existing.device:
            if not connectors.present(existing.device):
                steps.append(Step(ATTACH, target, volume, message=f"attach volume {volume.name!r} on {host} again "
                                  f"(device {existing.device.get('path')} vanished)"))
                target.status = ATTACHED
                return
            size = connectors.size(existing.device)
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
                               f"{existing.device.get('path')}; run this task on that host to detach it there",
                               "connector")
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
        if self.on_host and connectors.present(conn.device):
            users = connectors.users(conn.device)
            if users:
                raise Conflict(f"volume {volume.name!r}: device {conn.device.get('path')} is in use "
                               f"({', '.join(users)}); unmount it first")

    @staticmethod
    def _status_step(volume: Volume, status: str) -> Step:
        target = copy.deepcopy(volume)
        target.status = status
        return Step(VOLUME_STATUS, target, message=f"volume {volume.name!r}: status {status}")

    # execution ----------------------------------------------------------
    def _clear(self, conn: Connection) -> Connection:
        """The connection with its secrets unsealed, for the driver and the connector only."""
        clear = copy.deepcopy(conn)
        if self.sealer is not None:
            clear.connection_info = self.sealer.unseal_tree(conn.connection_info)
        return clear

    def _store(self, conn: Connection) -> None:
        conn.updated_at = now()
        if self.sealer is not None:
            conn.connection_info = self.sealer.seal_tree(conn.connection_info)
        self.records.put(conn)

    def execute(self, plan: Plan, driver: Driver) -> None:
        self.executed = True
        made: Connection | None = None  # a connection this task created, removed again if the attach fails
        for step in plan.steps:
            try:
                if step.action == CONNECT:
                    self._do_connect(step, driver)
                    made = step.target
                elif step.action == ATTACH:
                    self._do_attach(step)
                elif step.action == GROW:
                    self._do_grow(step)
                elif step.action == DETACH_DEVICE:
                    self._do_detach_device(step)
                elif step.action == DISCONNECT:
                    self._do_disconnect(step, driver)
                elif step.action == FORGET:
                    sweep_devices(driver, step.source, self.records.find(CONNECTION, volume_id=step.source.id))
                    self.records.remove(step.target)
                else:
                    step.target.updated_at = now()
                    self.records.put(step.target)
            except (BlockstoreError, OSError) as exc:
                reason = str(exc) if isinstance(exc, BlockstoreError) else f"{type(exc).__name__}: {exc}"
                undone = self._undo(made, step, driver) if made is not None else ""
                error = DriverError(f"{step.message} failed: {reason}{undone}", getattr(exc, "option", None))
                raise error from None

    def _undo(self, made: Connection, step: Step, driver: Driver) -> str:
        """Leave no half state: remove the connection this task made (and its export)."""
        try:
            driver.terminate_connection(step.source, self._clear(made))
        except (BlockstoreError, OSError) as exc:
            self._store(made)  # keep it visible so a detached run can remove the export
            return f"; removing the new connection failed too ({exc}), it stays recorded for state detached"
        self.records.remove(made)
        return "; the new connection and its export were removed again"

    def _do_connect(self, step: Step, driver: Driver) -> None:
        conn = step.target
        clear = self._clear(conn)
        conn.connection_info = driver.initialize_connection(step.source, clear)
        self._store(conn)

    def _do_attach(self, step: Step) -> None:
        conn = step.target
        current = self.records.get(CONNECTION, conn.id) or conn
        if current.device:  # a vanished device: remove what is left of it, and say so in the record
            connectors.detach(current.device, self._clear(current).connection_info)
            current.device, current.status = None, CONNECTED
            self._store(current)
        info = self._clear(conn).connection_info
        data = info.setdefault("data", {})
        if conn.connector.get("initiator"):
            data.setdefault("initiator_name", conn.connector["initiator"])
        conn.device = connectors.attach(info, step.source.id, conn.mode == "ro", self.params.get("method") or "auto")
        conn.status = ATTACHED
        self._store(conn)

    def _do_grow(self, step: Step) -> None:
        conn = step.target
        connectors.grow(conn.device, self._clear(conn).connection_info, step.source.size * GiB)

    def _do_detach_device(self, step: Step) -> None:
        conn = step.target
        current = self.records.get(CONNECTION, conn.id) or conn  # the plan's target already shows no device
        connectors.detach(current.device, self._clear(current).connection_info)
        conn.device, conn.status = None, CONNECTED
        self._store(conn)

    def _do_disconnect(self, step: Step, driver: Driver) -> None:
        driver.terminate_connection(step.source, self._clear(step.target))
        self.records.remove(step.target)

    # result -------------------------------------------------------------
    def result(self, plan: Plan, result_key: str) -> dict:
        if plan.after is None:
            shown = dict(plan.before, status="detached", device=None) if plan.before else None
        else:
            current = self.records.get(CONNECTION, plan.after["id"]) if self.executed else None
            volume = self.records.get(VOLUME, current.volume_id) if current is not None else None
            shown = connection_view(current, volume) if current is not None else plan.after
        return {
            "changed": plan.changed,
            "actions": [s.message for s in plan.steps],
            "attachment": shown,
            "diff": {"before": plan.before or {}, "after": plan.after or {}},
        }


class HostInfo:
    """storage_host_info: this host's connector properties; needs no backend and no store."""

    needs_backend = False

    @classmethod
    def run(cls, records: object, params: dict, driver: object) -> dict:
        return {"connector": connectors.host_properties()}


# Used by storage_volume (resources.py) ---------------------------------------
def plan_force_disconnect(volume: Volume, connections: list[Connection], force: bool, on_host: bool) -> list[Step]:
    """Steps that remove a volume's connections before it is deleted, or a clear refusal."""
    interrupted = [c for c in connections if is_interrupted(c)]
    connections = [c for c in connections if not is_interrupted(c)]
    described = ", ".join(sorted(f"{c.host} (attached as {c.device.get('path')})" if c.device else c.host
                                 for c in connections))
    if connections and not force:
        raise Conflict(f"volume {volume.name!r} is connected to {described}; detach it first (storage_attachment "
                       "state: detached) or set force: true to detach and delete it", "force")
    here = connectors.this_host() if on_host else None
    steps = []
    for conn in connections:
        if conn.device and conn.host == here and connectors.present(conn.device):
            users = connectors.users(conn.device)
            if users:
                raise Conflict(f"force: volume {volume.name!r} is attached here as {conn.device.get('path')}, "
                               f"which is in use ({', '.join(users)}); unmount it first", "force")
        if conn.device and conn.host != here:
            what = f"disconnect volume {volume.name!r} from {conn.host} (its device there goes stale)"
        elif conn.device:
            what = f"detach {conn.device.get('path')} and disconnect volume {volume.name!r} from {conn.host}"
        else:
            what = f"disconnect volume {volume.name!r} from {conn.host}"
        steps.append(Step("delete_connection", conn, volume, message=what))
    steps += [Step("forget_connection", c, volume, message=f"clean up after an interrupted task on volume "
                   f"{volume.name!r} (connection {c.id} was left {c.status})") for c in interrupted]
    return steps


def sweep_devices(driver: Driver, volume: Volume, connections: list[Connection]) -> list[str]:
    """Remove this host's loop devices and qemu-storage-daemon serving `volume` that no connection
    records: what a task killed during an attach or detach leaves. Returns what it removed."""
    from .connectors import loop, qsd

    here = connectors.this_host()
    mine = [c for c in connections if c.host == here and c.device and not is_interrupted(c)]
    recorded = {c.device.get("path") for c in mine}
    directory = os.path.join(connectors.run_dir(), volume.id)
    served = {os.path.normpath(qsd.paths(directory)["export"])}
    if hasattr(driver, "volume_path"):
        served.add(os.path.normpath(driver.volume_path(volume)))
    removed = []
    for device, backing in sorted(loop.bound_devices().items()):
        path = os.path.normpath(backing.replace(" (deleted)", ""))
        if path not in served or device in recorded:
            continue
        busy = loop.users(device)
        if busy:
            raise Conflict(f"volume {volume.name!r}: {device} was made by an interrupted task and is in use "
                           f"({', '.join(busy)}); unmount it, then run the task again")
        loop.detach(device, path)
        removed.append(device)
    if directory not in {(c.device.get("daemon") or {}).get("dir") for c in mine} and os.path.isdir(directory):
        qsd.stop({"dir": directory})
        removed.append(directory)
    return removed


def force_disconnect(driver: Driver, volume: Volume, conn: Connection) -> None:
    """Detach a connection's device if it is on this host, then remove the export."""
    if conn.device and conn.host == connectors.this_host():
        connectors.detach(conn.device, conn.connection_info)
    driver.terminate_connection(volume, conn)


def extend_attached(driver: Driver, volume: Volume, connections: list[Connection]) -> dict:
    """Extend a volume and make its devices on this host show the new size.

    A daemon that holds a qcow2 image open must grow it itself (qemu-img would
    find the image locked); everything else grows on the backend first, then the
    device re-reads its size. Devices on other hosts grow at their next
    `state: attached` run there.
    """
    here = connectors.this_host()
    local = [c for c in connections if c.device and c.host == here and connectors.present(c.device)]
    size = volume.size * GiB
    for conn in local:
        if connectors.owns_image(conn.device):
            connectors.grow(conn.device, conn.connection_info, size)
    driver_data = driver.extend_volume(volume, volume.size)
    for conn in local:
        if not connectors.owns_image(conn.device):
            connectors.grow(conn.device, conn.connection_info, size)
    return driver_data

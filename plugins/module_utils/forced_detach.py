# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A forced detach of a host that is gone, and that host removing its stale device: part of storage_attachment.

`storage_attachment` with `state: detached`, `force: true` and `host: NAME` runs wherever the backend's
work runs (never on NAME, which may be down or unreachable): the export to NAME is removed and, when NAME
had a device, its connection record stays in status `stale` (objects.STALE), naming that device (loop
device, qemu-storage-daemon). storage_volume_info lists it with `stale: true`. When NAME is back, its next
storage_attachment task on the volume removes the dead device (the daemon first, whose export can answer
nothing any more) and the record. A stale record is no connection: it does not keep the volume in-use,
nor count against multiattach, nor hold a revert back. Refused where the export is not what gives the host
its access (driver.export_expected false: an rbd map, a local image path), since it frees the volume.

`ForcedDetach` is a part of attachments.AttachmentResource, whose ACTIONS table runs these steps.
"""

from __future__ import annotations

import copy
from typing import Callable, ClassVar

from .drivers.base import Driver
from .errors import Conflict, InvalidParameter, NotFound
from .objects import AVAILABLE, IN_USE, STALE, Connection, Volume, is_interrupted, is_live, own_connections
from .plan import Action, Resource, Step

FORCE_DISCONNECT, DROP_STALE = "force_disconnect", "drop_stale_device"
DISCONNECT = "disconnect"  # attachments.DISCONNECT: the export and the record go (a host with no device)


def force_disconnect(resource: Resource, step: Step, driver: Driver) -> None:
    """The export goes; the record stays, stale, naming the device its host still has (step.target)."""
    driver.terminate_connection(step.source, copy.deepcopy(step.target))
    resource._stored(step.target)


def drop_stale(resource: Resource, step: Step, driver: Driver) -> None:
    resource.host.detach(step.target.device, step.target.connection_info, stale=True)
    resource.records.remove(step.target)


class ForcedDetach(Resource):
    """AttachmentResource's plans of a forced detach and of a stale device's removal (a part of it)."""

    FORCED_ACTIONS: ClassVar[dict[str, Action]] = {
        FORCE_DISCONNECT: Action(force_disconnect),
        DROP_STALE: Action(drop_stale, host_only=True),
    }

    @classmethod
    def host_records(cls, records: list[dict], params: dict, whoami: Callable[[], str]) -> tuple[list[dict], set[str]]:
        """A forced detach is sent the connection of the host it is for whole (it removes that host's export and
        keeps its record, stale, naming its device), other hosts' in part, as that host would be."""
        if params.get("force") and isinstance(params.get("host"), str):
            return own_connections(records, lambda: params["host"])
        return super().host_records(records, params, whoami)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.interrupted: list[Connection] = []  # records of killed tasks, cleaned up by the host each names
        self.stale: list[Connection] = []

    def _sort_out(self, connections: list[Connection]) -> list[Connection]:
        """The live connections of `connections`; the records of killed tasks and the stale ones are kept aside."""
        self.interrupted = [c for c in connections if is_interrupted(c)]
        self.stale = [c for c in connections if c.status == STALE and not is_interrupted(c)]
        return [c for c in connections if is_live(c)]

    def _validate_force(self, state: str, connector: dict | None) -> str | None:
        """The host a forced detach is for (None: no force), or a clear refusal of the options."""
        force, gone = self.params.get("force"), self.params.get("host")
        if force is not None and not isinstance(force, bool):
            raise InvalidParameter(f"force: must be a boolean, got {force!r}", "force")
        if gone is not None and (not isinstance(gone, str) or not gone):
            raise InvalidParameter("host: must be the name of the host whose connection to remove", "host")
        if force and state != "detached":
            raise InvalidParameter(f"force: only with state detached (got state {state}): it removes the connection "
                                   "of a host that is gone, named by host", "force")
        if force and gone is None:
            raise InvalidParameter("force: name the host whose connection to remove without reaching it, with "
                                   "host: NAME (the host as the volume's connections list it, storage_volume_info)",
                                   "force")
        if gone is not None and not force:
            raise InvalidParameter(f"host: only with force: true and state: detached, to remove the connection of "
                                   f"{gone!r} without reaching it; a host that can be reached detaches its own "
                                   "(run the task there)", "host")
        if gone is not None and connector is not None:
            raise InvalidParameter("connector: not with host; a forced detach takes the host's connector from its "
                                   "record", "connector")
        if gone is not None and self.on_host and gone == self.local_host:
            raise Conflict(f"host: {gone} is the host this task runs on; detach here without force (state "
                           "detached removes its device too)", "host")
        return gone

    def _plan_forced(self, volume: Volume, gone: str, connections: list[Connection], live: list[Connection],
                     view: Callable[[Connection | None, Volume], dict]) -> tuple[list[Step], dict | None, dict | None]:
        """The steps of a forced detach of `gone`, and its connection before and after (as `view` shows one).
        A task killed on that host (its pending record names it) may have made an export: removed too."""
        mine = [c for c in connections if c.host == gone and c.status != STALE]
        stale = [c for c in self.stale if c.host == gone]
        if not mine:
            if stale:  # done before: nothing to do until that host is back
                return [], view(stale[0], volume), view(stale[0], volume)
            hosts = sorted({c.host for c in connections if c.host})
            listed = f"its connections: {', '.join(hosts)}" if hosts else "it has none"
            raise NotFound(f"host: volume {volume.name!r} has no connection to {gone!r} ({listed})", "host")
        self._refuse_unfenceable(volume, gone, mine)
        steps, after = [], None
        for conn in mine:
            if conn.device:
                after = copy.deepcopy(conn)
                after.status = STALE
                steps.append(Step(FORCE_DISCONNECT, after, volume, message=f"disconnect volume {volume.name!r} "
                                  f"from {gone} without reaching it; its device there ({conn.device.get('path')}) "
                                  "is recorded stale"))
            else:
                steps.append(Step(DISCONNECT, conn, volume, message=f"disconnect volume {volume.name!r} from "
                                  f"{gone} without reaching it"))
        if not [c for c in live if c.host != gone] and volume.status == IN_USE:
            steps.append(self._status_step(volume, AVAILABLE))
        return steps, view(mine[0], volume), view(after, volume) or None

    def _refuse_unfenceable(self, volume: Volume, gone: str, connections: list[Connection]) -> None:
        """A forced detach frees the volume for other hosts: only where removing the export really ends the gone
        host's access (an rbd map or a local image path has no export the backend can take back)."""
        if self.driver is None:
            return  # planned again where the driver is (the backend's side), which refuses there
        for conn in connections:
            info = conn.connection_info or {}
            if info and not self.driver.export_expected(conn):
                raise Conflict(f"force: the {info.get('driver_volume_type')} connection of volume {volume.name!r} "
                               f"to {gone} has no export the backend can remove, so a forced detach cannot cut "
                               f"{gone} off (it could go on writing); run storage_attachment state: detached on "
                               f"{gone} when it is back", "force")

    def _stale_steps(self, volume: Volume) -> list[Step]:
        """This host's stale devices of the volume, removed by its next task on it (whatever its state)."""
        steps = []
        for conn in self.stale:
            if self.on_host and conn.host == self.local_host:
                self._refuse_busy(conn, volume)
                steps.append(Step(DROP_STALE, conn, volume, message=f"remove the stale device "
                                  f"{(conn.device or {}).get('path')} of volume {volume.name!r} on {conn.host} (its "
                                  "export was removed by a forced detach)"))
        return steps

# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""This host's devices: what serves a volume here; force-detach, extend-attached, sweep.

`LocalHost` is the seam between the core and the host the module runs on: its name and
connector properties, and the devices connectors make (connectors/). Everything in the
core that looks at or changes this host's devices goes through one, so unit tests of the
pure logic pass a stand-in. `serving()` is the one answer to "which loop devices and
qemu-storage-daemon processes here serve these volumes without a connection recording
them", used by the sweep after a killed task and by the drift check.
"""

from __future__ import annotations

import dataclasses
import os

from .drivers.base import Driver
from .errors import Conflict
from .objects import CONNECTION, Connection, RecordSet, Volume, is_interrupted
from .units import GiB


# The connectors (loop, qemu-storage-daemon, os-brick...) are imported on first use: a task with no
# device work (most tasks with nothing to do) never compiles them.
def _connectors():
    from . import connectors
    return connectors


def _loop():
    from .connectors import loop
    return loop


def _qsd():
    from .connectors import qsd
    return qsd


def device_users(path: str) -> list[str]:
    from .connectors.base import device_users as users
    return users(path)


class LocalHost:
    """The host the module runs on."""

    def name(self) -> str:
        return _connectors().this_host()

    def euid(self) -> int:
        return os.geteuid()

    def require_root(self, what: str) -> None:
        """Refuse device work as another user before it starts, saying why root is needed.

        Without root each tool fails its own way (losetup: permission denied, os-brick: "privsep
        helper command exited non-zero"), after the task has already written its records.
        """
        uid = self.euid()
        if uid != 0:
            raise Conflict(f"{what}: making or removing a block device on this host needs root: run the task with "
                           f"become: true (the module runs as uid {uid}). Loop devices (losetup), the FUSE "
                           "export of qemu-storage-daemon and os-brick's privileged commands (through privsep) "
                           "all create or remove device nodes, which only root may do")

    def properties(self) -> dict:
        return _connectors().host_properties()

    def run_dir(self) -> str:
        return _connectors().run_dir()

    # devices a connection made (connectors/) -------------------------------
    def attach(self, connection_info: dict, volume_id: str, read_only: bool, method: str,
               multipath: bool = False) -> dict:
        return _connectors().attach(connection_info, volume_id, read_only, method, multipath)

    def detach(self, device: dict | None, connection_info: dict, stale: bool = False) -> None:
        """Remove a device; `stale`: its export is gone (a forced detach), so nothing can be flushed to it."""
        if device:
            connector = _connectors().for_device(device)
            if stale:
                connector.discard_volume(device, connection_info)
            else:
                connector.disconnect_volume(device, connection_info)

    def present(self, device: dict | None) -> bool:
        return bool(device and device.get("path")) and _connectors().for_device(device).check_valid_device(device)

    def size(self, device: dict) -> int | None:
        try:
            return _connectors().for_device(device).size(device)
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def users(self, device: dict) -> list[str]:
        return device_users(device["path"]) if device.get("path") else []

    def grow(self, device: dict, connection_info: dict, size_bytes: int) -> None:
        _connectors().for_device(device).extend_volume(device, connection_info, size_bytes)

    def owns_image(self, device: dict | None) -> bool:
        return bool(device) and _connectors().for_device(device).owns_image(device)

    # what runs here, recorded or not ----------------------------------------
    def bound_loops(self) -> dict[str, str]:
        return _loop().bound_devices()

    def bound_here(self, device: str, backing: str) -> bool:
        return _loop().bound_here(device, backing)

    def loop_users(self, device: str) -> list[str]:
        return device_users(device)

    def free_loop(self, device: str, path: str) -> None:
        _loop().detach(device, path)

    def daemon_pid(self, directory: str) -> int | None:
        return _qsd().daemon_pid(directory)

    def watchdog_pid(self, directory: str) -> int | None:
        from .connectors import watchdog
        return watchdog.pid(directory)

    def stop_daemon(self, directory: str) -> None:
        # Its watchdog too (qsd.stop stops that first).
        _qsd().stop({"dir": directory})


@dataclasses.dataclass
class Serving:
    """What serves volumes on this host without a connection of this host recording it."""

    loops: list[dict]    # {"device", "backing_file", "volume_id"}
    daemons: list[dict]  # {"dir", "volume_id"}


def _backing(path: str) -> str:
    # The kernel shows a removed backing file with " (deleted)" after its path.
    return os.path.normpath(path.replace(" (deleted)", ""))


def recorded_here(host: LocalHost, connections: list[Connection]) -> list[Connection]:
    """Connections of this host with a device."""
    here = host.name()
    return [c for c in connections if c.host == here and c.device and not is_interrupted(c)]


def serving(host: LocalHost, driver: Driver, volume_ids: list[str], connections: list[Connection]) -> Serving:
    """Loop devices and daemon directories here that serve `volume_ids` and that no connection records."""
    mine = recorded_here(host, connections)
    recorded_paths = {c.device.get("path") for c in mine}
    recorded_dirs = {(c.device.get("daemon") or {}).get("dir") for c in mine}
    served: dict[str, str] = {}  # backing file -> volume id
    for volume_id in volume_ids:
        served[os.path.normpath(_qsd().paths(os.path.join(host.run_dir(), volume_id))["export"])] = volume_id
        local = driver.local_path(volume_id)
        if local is not None:
            served[os.path.normpath(local)] = volume_id

    def unrecorded_here(device: str, backing: str) -> bool:
        if _backing(backing) not in served or device in recorded_paths:
            return False
        return backing.endswith(" (deleted)") or host.bound_here(device, _backing(backing))
    loops = [{"device": device, "backing_file": backing, "volume_id": served[_backing(backing)]}
             for device, backing in sorted(host.bound_loops().items()) if unrecorded_here(device, backing)]
    daemons = [{"dir": os.path.join(host.run_dir(), volume_id), "volume_id": volume_id}
               for volume_id in sorted(volume_ids)
               if os.path.join(host.run_dir(), volume_id) not in recorded_dirs]
    return Serving(loops, daemons)


def sweep(host: LocalHost, driver: Driver, volume: Volume, connections: list[Connection]) -> list[str]:
    """Remove this host's loop devices and qemu-storage-daemon serving `volume` that no connection
    records: what a task killed during an attach or detach leaves. Returns what it removed."""
    found = serving(host, driver, [volume.id], connections)
    removed = []
    for item in found.loops:
        busy = host.loop_users(item["device"])
        if busy:
            raise Conflict(f"volume {volume.name!r}: {item['device']} was made by an interrupted task and is in use "
                           f"({', '.join(busy)}); unmount it, then run the task again")
        host.free_loop(item["device"], _backing(item["backing_file"]))
        removed.append(item["device"])
    for item in found.daemons:
        if os.path.isdir(item["dir"]):
            host.stop_daemon(item["dir"])
            removed.append(item["dir"])
    return removed


def force_detach(host: LocalHost, driver: Driver, volume: Volume, conn: Connection) -> None:
    """Detach a connection's device if it is on this host, then remove the export."""
    if conn.device and conn.host == host.name():
        host.detach(conn.device, conn.connection_info)
    driver.terminate_connection(volume, conn)


def extend_attached(host: LocalHost, driver: Driver, volume: Volume, connections: list[Connection]) -> dict:
    """Extend a volume and make its devices on this host show the new size.

    A daemon that holds a qcow2 image open must grow it itself (qemu-img would
    find the image locked); everything else grows on the backend first, then the
    device re-reads its size. Devices on other hosts grow at their next
    `state: attached` run there.
    """
    here = host.name()
    local = [c for c in connections if c.device and c.host == here and host.present(c.device)]
    size = volume.size * GiB
    for conn in local:
        if host.owns_image(conn.device):
            host.grow(conn.device, conn.connection_info, size)
    driver_data = driver.extend_volume(volume, volume.size)
    for conn in local:
        if not host.owns_image(conn.device):
            host.grow(conn.device, conn.connection_info, size)
    return driver_data


def lost(host: LocalHost, connections: list[Connection]) -> list[dict]:
    """Connections of this host whose recorded device is gone."""
    return [{"connection_id": c.id, "volume_id": c.volume_id, "device": c.device.get("path")}
            for c in recorded_here(host, connections) if not host.present(c.device)]


def refuse_held_open(driver: Driver | None, records: RecordSet, volume: Volume, what: str, option: str) -> None:
    """Refuse a snapshot or clone that freezes the image (the driver says so) while a local
    daemon holds it open: the daemon would keep writing to the frozen file."""
    if driver is None or not driver.copy_freezes_image(volume):
        return
    for conn in records.find(CONNECTION, volume_id=volume.id):
        if LocalHost().owns_image(conn.device):
            raise Conflict(f"{option}: {volume.name!r} is a qcow2 image attached on {conn.host} as "
                           f"{conn.device.get('path')}; detach it before taking a {what} of it (its daemon holds "
                           "the image open)", option)

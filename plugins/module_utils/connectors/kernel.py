# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel connector: os-brick's connector for the protocol (open-iscsi, nvme-cli, krbd...).

The device records whether it was made over every portal (`multipath`): its detach and extend build
os-brick's connector the same way, since a multipath connector removes the dm map and every path, a
single-path one only its own device.
"""

from __future__ import annotations

import contextlib
import os
import subprocess

from ..commands import run
from . import brick
from .base import Connector

# Modules a protocol's tools need loaded before they run: nvme-cli scans /sys/class/nvme-subsystem before it
# connects and fails ("Failed to scan topology") where no NVMe module is loaded yet. iscsid and rbd load theirs.
PRELOAD = {"nvmeof": "nvme_tcp"}


class KernelConnector(Connector):
    method = "kernel"

    def __init__(self, multipath: bool = False) -> None:
        self.multipath = multipath

    def connect_volume(self, connection_info: dict, directory: str, read_only: bool) -> dict:
        protocol = connection_info.get("driver_volume_type")
        if protocol in PRELOAD:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):  # else os-brick's failure says why
                run(["modprobe", PRELOAD[protocol]], timeout=60)
        info = brick.connect(protocol, dict(connection_info.get("data") or {}), self.multipath)
        return {"path": info.get("path"), "type": info.get("type", "block"), "method": self.method,
                "protocol": protocol, "multipath": self.multipath, "device_info": info}

    def disconnect_volume(self, device: dict, connection_info: dict) -> None:
        brick.disconnect(device.get("protocol"), dict(connection_info.get("data") or {}),
                         device.get("device_info") or {}, bool(device.get("multipath")))

    def extend_volume(self, device: dict, connection_info: dict, size_bytes: int) -> None:
        brick.extend(device.get("protocol"), dict(connection_info.get("data") or {}), bool(device.get("multipath")))

    def size(self, device: dict) -> int | None:
        """The size the host sees (sysfs, in 512-byte sectors): below the volume's after an extend on the backend,
        so the next `state: attached` run here asks os-brick to re-read it."""
        name = os.path.basename(os.path.realpath(device["path"]))
        with open(f"/sys/class/block/{name}/size", encoding="ascii") as handle:
            return int(handle.read()) * 512

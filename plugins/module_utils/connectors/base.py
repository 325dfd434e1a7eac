# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connector contract, in os-brick's shape: connect, disconnect, extend, check a device.

A connector turns connection info (os-brick's shape, secrets in clear) into a local block
device and back. `connect_volume` returns the `device` facts kept in the connection record;
every other call gets those facts back, so a detach on a later run needs nothing else.
"""

from __future__ import annotations

import os
from typing import ClassVar


def device_users(path: str) -> list[str]:
    """What keeps a block device busy: mount points and holders (device-mapper, md...)."""
    found = []
    try:
        real = os.path.realpath(path)
        with open("/proc/self/mounts", encoding="utf-8") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) > 1 and os.path.realpath(fields[0]) == real:
                    found.append(fields[1].replace("\\040", " "))
    except OSError:
        pass
    name = os.path.basename(os.path.realpath(path))
    try:
        found += [f"holder {h}" for h in os.listdir(os.path.join("/sys/block", name, "holders"))]
    except OSError:
        pass
    return found


class Connector:
    """A way to attach; this base also serves devices whose method is unknown (kept as they are)."""

    method: ClassVar[str] = ""

    def connect_volume(self, connection_info: dict, directory: str, read_only: bool) -> dict:
        """Make the local device; `directory` is this attachment's own run directory. On failure
        nothing is left behind."""
        raise NotImplementedError

    def disconnect_volume(self, device: dict, connection_info: dict) -> None:
        """Remove the device and whatever serves it; idempotent, tolerant of a vanished device."""

    def discard_volume(self, device: dict, connection_info: dict) -> None:
        """Remove a device whose export is gone (a forced detach while its host was away): nothing it holds
        can reach the volume any more, so this must not wait on it. By default the same as a disconnect."""
        self.disconnect_volume(device, connection_info)

    def extend_volume(self, device: dict, connection_info: dict, size_bytes: int) -> None:
        """Make the attached device show the volume's new size."""

    def check_valid_device(self, device: dict) -> bool:
        """Whether the recorded device is still there and whole (false after a reboot...)."""
        return os.path.exists(device["path"])

    def size(self, device: dict) -> int | None:
        """The device's size in bytes, where this connector can tell."""
        return None

    def owns_image(self, device: dict) -> bool:
        """Whether a local daemon holds the image file open (then it, not the driver, must resize it)."""
        return False

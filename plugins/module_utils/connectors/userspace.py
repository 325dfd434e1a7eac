# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The userspace connector: qemu-storage-daemon opens the image, a loop device serves its export.

Works for local qcow2 and raw images, iscsi:// (with CHAP) and rbd, with no kernel protocol
module, so in containers and on hosts without iscsi_tcp or rbd. Secrets go to the daemon
in a 0600 file that lives while it starts, never on a command line.
"""

from __future__ import annotations

import os
import time

from ..errors import Conflict
from . import loop, qsd, watchdog
from .base import Connector


def _blockdev(protocol: str, data: dict, image_format: str, read_only: bool) -> tuple[dict, str | None]:
    """The qemu blockdev that opens the volume, and the secret it needs (or None)."""
    common = {"read-only": read_only, "cache": {"direct": False}}
    if protocol == "local":
        file_node = {"driver": "file", "filename": data["device_path"]}
        if image_format == "raw":
            return dict(common, **file_node), None
        return dict(common, driver=image_format, file=file_node), None
    if protocol == "iscsi":
        portal = data.get("target_portal") or ""
        node = dict(common, driver="iscsi", transport="tcp", portal=portal, target=data["target_iqn"],
                    lun=int(data.get("target_lun") or 0))
        if data.get("initiator_name"):
            node["initiator-name"] = data["initiator_name"]
        secret = None
        if (data.get("auth_method") or "").upper() == "CHAP":
            node["user"] = data["auth_username"]
            node["password-secret"] = qsd.SECRET_ID
            secret = data["auth_password"]
        return node, secret
    if protocol == "rbd":
        pool, _slash, image = (data.get("name") or "").partition("/")
        node = dict(common, driver="rbd", pool=pool, image=image)
        conf = data.get("ceph_conf") or data.get("conf")
        if conf:
            node["conf"] = conf
        if data.get("auth_username"):
            node["user"] = data["auth_username"]
        servers = [{"host": h, "port": str(p)} for h, p in zip(data.get("hosts") or [], data.get("ports") or [])]
        if servers and not (conf and os.path.exists(conf)):
            # qemu writes these as msgr1 addresses; a conf file (mon host = v2:...) is better when there is one.
            node["server"] = servers
        secret = data.get("keyring") or _keyring_key(data.get("keyring_path"), data.get("auth_username"))
        if secret:
            node["key-secret"] = qsd.SECRET_ID
            node["auth-client-required"] = ["cephx"]
        elif data.get("auth_enabled") is False:
            node["auth-client-required"] = ["none"]
        return node, secret
    raise Conflict(f"attach: no userspace path for {protocol} connections")


def _keyring_key(path: str | None, user: str | None) -> str | None:
    """The key of client.<user> from a Ceph keyring file (qemu takes the key itself, as a secret)."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    wanted, section = f"[client.{user or 'admin'}]", None
    for raw in lines:
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif section == wanted and line.partition("=")[0].strip() == "key":
            return line.partition("=")[2].strip()
    return None


def _await_size(path: str, size_bytes: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while os.stat(path).st_size < size_bytes and time.monotonic() < deadline:
        time.sleep(0.1)


class UserspaceConnector(Connector):
    method = "userspace"

    def connect_volume(self, connection_info: dict, directory: str, read_only: bool) -> dict:
        protocol = connection_info.get("driver_volume_type")
        data = dict(connection_info.get("data") or {})
        blockdev, secret = _blockdev(protocol, data, data.get("format", "raw"), read_only)
        # Front-end QoS specs, where Cinder puts them in the connection info (and the file driver too).
        daemon = qsd.start(directory, blockdev, writable=not read_only, secret=secret,
                           secret_format="base64" if protocol == "rbd" else "raw", qos_specs=data.get("qos_specs"))
        try:
            device = loop.attach(daemon["export"], read_only)
        except Exception:
            qsd.stop(daemon)
            raise
        try:
            # I/O on an export that stops answering (its target or cluster gone) fails after a while instead
            # of blocking for ever.
            watchdog.start(daemon, device)
        except Exception:
            loop.detach(device, daemon["export"])
            qsd.stop(daemon)
            raise
        return {"path": device, "type": "block", "method": self.method, "protocol": protocol,
                "backing_file": daemon["export"], "daemon": daemon}

    def disconnect_volume(self, device: dict, connection_info: dict) -> None:
        if device.get("path"):
            loop.detach(device["path"], device.get("backing_file", ""))
        qsd.stop(device.get("daemon") or {})

    def discard_volume(self, device: dict, connection_info: dict) -> None:
        # The daemon first: once it is gone its FUSE connection is aborted, so I/O the loop device still has
        # on the dead export fails at once and the loop device can be freed (the other order waits on it).
        # Whether the loop device is ours is asked before: a killed daemon's export is unmounted lazily, and
        # the kernel then shows the loop device's file as "/".
        ours = bool(device.get("path")) and loop.bound_to(device["path"], device.get("backing_file", ""))
        qsd.stop(device.get("daemon") or {})
        if ours:
            loop.release(device["path"])

    def extend_volume(self, device: dict, connection_info: dict, size_bytes: int) -> None:
        # The daemon resizes its node (a qcow2 image grows itself; iscsi and rbd re-read the
        # target's capacity), then the loop device follows. The FUSE export's size is cached by
        # the kernel for a second, and losetup takes the cached one: stat until the new size shows.
        qsd.resize(device.get("daemon") or {}, size_bytes)
        _await_size(device["backing_file"], size_bytes)
        loop.refresh(device["path"])

    def check_valid_device(self, device: dict) -> bool:
        return loop.bound_to(device["path"], device.get("backing_file", "")) and qsd.running(
            device.get("daemon") or {})

    def size(self, device: dict) -> int | None:
        return loop.size(device["path"])

    def owns_image(self, device: dict) -> bool:
        return device.get("protocol") == "local"

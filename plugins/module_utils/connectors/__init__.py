# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side of a connection: connection info -> a local block device, and back.

Three ways to make the device (`method`):
  loop       a local raw file -> loop device (losetup)
  userspace  qemu-storage-daemon opens the image (local qcow2, iscsi:// with
             CHAP, rbd) and exports it as a file over FUSE -> loop device.
             Needs no kernel protocol module, so it works in containers and on
             hosts without iscsi_tcp or rbd.
  kernel     os-brick's connector for the protocol (open-iscsi, krbd...)
`choose()` picks one from the connection type, the image format, the method
the task asks for (auto, kernel, userspace) and what this kernel can do.
Secrets in the connection info arrive here in clear and leave only in files
of mode 0600 that live while a daemon starts.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import time

from ..errors import Conflict, InvalidParameter, MissingDependency
from . import loop, qsd

METHODS = ("auto", "kernel", "userspace")
LOOP, USERSPACE, KERNEL = "loop", "userspace", "kernel"
ENV_RUN_DIR = "BLOCKSTORE_RUN_DIR"
DEFAULT_RUN_DIR = "/run/blockstore"
# Where this kernel shows that it has the protocol (no modprobe: we never load modules).
KERNEL_PROTOCOL_PATHS = {"iscsi": "/sys/module/iscsi_tcp", "rbd": "/sys/bus/rbd"}
USERSPACE_PROTOCOLS = ("local", "iscsi", "rbd")
INITIATOR_FILE = "/etc/iscsi/initiatorname.iscsi"
GENERATED_INITIATOR_PREFIX = "iqn.2010-10.org.blockstore.host:"


def kernel_has(protocol: str) -> bool:
    path = KERNEL_PROTOCOL_PATHS.get(protocol)
    return path is not None and os.path.exists(path)


def choose(protocol: str, image_format: str, method: str, kernel: bool) -> str:
    """How to attach: loop, userspace or kernel. Pure, so it is unit-tested alone."""
    if method not in METHODS:
        raise InvalidParameter(f"method: {method!r} is not one of {', '.join(METHODS)}", "method")
    if protocol == "local":
        if image_format == "raw":
            return USERSPACE if method == USERSPACE else LOOP
        if method == KERNEL:
            raise Conflict(f"method: kernel cannot attach a local {image_format} image (that needs nbd); "
                           "use method auto or userspace (qemu-storage-daemon)", "method")
        return USERSPACE
    if method == USERSPACE or (method == "auto" and not kernel and protocol in USERSPACE_PROTOCOLS):
        if protocol not in USERSPACE_PROTOCOLS:
            raise Conflict(f"method: no userspace path for {protocol} connections; use method kernel", "method")
        return USERSPACE
    if method == KERNEL and not kernel and protocol in KERNEL_PROTOCOL_PATHS:
        raise Conflict(f"method: this host's kernel has no {protocol} support "
                       f"({KERNEL_PROTOCOL_PATHS[protocol]} is missing); use method auto or userspace", "method")
    return KERNEL


def run_dir() -> str:
    return os.environ.get(ENV_RUN_DIR) or DEFAULT_RUN_DIR


def this_host() -> str:
    """This host's name as os-brick reports it in connector properties."""
    return socket.gethostname()


def _my_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def _read_initiator() -> str | None:
    try:
        with open(INITIATOR_FILE, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("InitiatorName="):
                    return line.split("=", 1)[1].strip() or None
    except OSError:
        pass
    return None


def host_properties() -> dict:
    """This host's connector properties, as os-brick gathers them.

    Without os-brick, a minimal set (host, ip, platform, os_type, initiator);
    without an initiator name (no open-iscsi), one derived from the host name,
    which the userspace iscsi path uses as its initiator.
    """
    from . import brick
    try:
        props = brick.properties(_my_ip())
        props["gathered_by"] = "os-brick"
    except MissingDependency as exc:
        props = {"host": this_host(), "ip": _my_ip(), "platform": platform.machine(), "os_type": sys.platform,
                 "multipath": False, "enforce_multipath": False, "initiator": _read_initiator(),
                 "gathered_by": "blockstore", "os_brick_error": str(exc)}
    if not props.get("initiator"):
        props["initiator"] = GENERATED_INITIATOR_PREFIX + props.get("host", this_host())
    return props


# attach ---------------------------------------------------------------------
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


def attach(connection_info: dict, volume_id: str, read_only: bool, method: str) -> dict:
    """Make a local block device; returns the `device` facts a later detach needs.

    On failure nothing is left behind (loop device, daemon, directory).
    """
    protocol = connection_info.get("driver_volume_type")
    data = dict(connection_info.get("data") or {})
    image_format = data.get("format", "raw")
    how = choose(protocol, image_format, method, kernel_has(protocol))
    if how == LOOP:
        path = data["device_path"]
        device = loop.attach(path, read_only)
        return {"path": device, "type": "block", "method": LOOP, "backing_file": path}
    if how == USERSPACE:
        blockdev, secret = _blockdev(protocol, data, image_format, read_only)
        daemon = qsd.start(os.path.join(run_dir(), volume_id), blockdev, writable=not read_only, secret=secret,
                           secret_format="base64" if protocol == "rbd" else "raw")
        try:
            device = loop.attach(daemon["export"], read_only)
        except Exception:
            qsd.stop(daemon)
            raise
        return {"path": device, "type": "block", "method": USERSPACE, "protocol": protocol,
                "backing_file": daemon["export"], "daemon": daemon}
    from . import brick
    info = brick.connect(protocol, data)
    return {"path": info.get("path"), "type": info.get("type", "block"), "method": KERNEL, "protocol": protocol,
            "device_info": info}


def present(device: dict | None) -> bool:
    """Whether the recorded device is still there and whole (false after a reboot, a killed daemon...)."""
    if not device or not device.get("path"):
        return False
    how = device.get("method")
    if how in (LOOP, USERSPACE):
        if not loop.bound_to(device["path"], device.get("backing_file", "")):
            return False
        return how == LOOP or qsd.running(device.get("daemon") or {})
    return os.path.exists(device["path"])


def users(device: dict) -> list[str]:
    return loop.users(device["path"]) if device.get("path") else []


def detach(device: dict | None, connection_info: dict) -> None:
    """Remove the local device and whatever serves it; idempotent, tolerant of a vanished device."""
    if not device:
        return
    how = device.get("method")
    if how in (LOOP, USERSPACE) and device.get("path"):
        loop.detach(device["path"], device.get("backing_file", ""))
    if how == USERSPACE:
        qsd.stop(device.get("daemon") or {})
    elif how == KERNEL:
        from . import brick
        brick.disconnect(device.get("protocol"), dict(connection_info.get("data") or {}),
                         device.get("device_info") or {})


def size(device: dict) -> int | None:
    try:
        return loop.size(device["path"]) if device.get("method") in (LOOP, USERSPACE) else None
    except (OSError, ValueError, TypeError, KeyError):
        return None


def grow(device: dict, connection_info: dict, size_bytes: int) -> None:
    """Make an attached device show the volume's new size.

    userspace: the daemon resizes its node (a qcow2 image grows itself; iscsi and
    rbd re-read the target's capacity), then the loop device follows.
    """
    how = device.get("method")
    if how == USERSPACE:
        qsd.resize(device.get("daemon") or {}, size_bytes)
        # The FUSE export's size is cached by the kernel for a second, and losetup takes
        # the cached one: stat until the new size shows.
        _await_size(device["backing_file"], size_bytes)
    if how in (LOOP, USERSPACE):
        loop.refresh(device["path"])
    elif how == KERNEL:
        from . import brick
        brick.extend(device.get("protocol"), dict(connection_info.get("data") or {}))


def _await_size(path: str, size_bytes: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while os.stat(path).st_size < size_bytes and time.monotonic() < deadline:
        time.sleep(0.1)


def owns_image(device: dict | None) -> bool:
    """Whether a local daemon holds the image file open (then it, not qemu-img, must resize it)."""
    return bool(device) and device.get("method") == USERSPACE and device.get("protocol") == "local"

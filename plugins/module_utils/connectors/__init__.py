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

from ..errors import Conflict, DriverError, InvalidParameter, MissingDependency
from .base import Connector
from .kernel import KernelConnector
from .loop import LoopConnector
from .userspace import UserspaceConnector

METHODS = ("auto", "kernel", "userspace")
LOOP, USERSPACE, KERNEL = "loop", "userspace", "kernel"
ENV_RUN_DIR = "BLOCKSTORE_RUN_DIR"
DEFAULT_RUN_DIR = "/run/blockstore"
# Where this kernel shows that it has the protocol (no modprobe: we never load modules).
KERNEL_PROTOCOL_PATHS = {"iscsi": "/sys/module/iscsi_tcp", "rbd": "/sys/bus/rbd"}
USERSPACE_PROTOCOLS = ("local", "iscsi", "rbd")
INITIATOR_FILE = "/etc/iscsi/initiatorname.iscsi"
# method -> connector class, as os-brick maps a protocol to its connector.
CONNECTORS: dict[str, type[Connector]] = {LOOP: LoopConnector, USERSPACE: UserspaceConnector,
                                          KERNEL: KernelConnector}
GENERATED_INITIATOR_PREFIX = "iqn.2010-10.org.blockstore.host:"


def kernel_has(protocol: str) -> bool:
    path = KERNEL_PROTOCOL_PATHS.get(protocol)
    return path is not None and os.path.exists(path)


def choose(protocol: str, image_format: str, method: str, kernel: bool, qos: bool = False) -> str:
    """How to attach: loop, userspace or kernel. Pure, so it is unit-tested alone.

    A connection with QoS limits (`qos`) goes the userspace path, the only one that enforces them."""
    if method not in METHODS:
        raise InvalidParameter(f"method: {method!r} is not one of {', '.join(METHODS)}", "method")
    if qos:
        if protocol not in USERSPACE_PROTOCOLS:
            raise Conflict(f"method: the volume has QoS limits (storage_volume qos), which only the userspace path "
                           f"(qemu-storage-daemon) enforces, and {protocol} connections have no userspace path; "
                           "remove the volume's qos (storage_volume qos: {}) to attach it", "method")
        if method == KERNEL:
            raise Conflict(f"method: the volume has QoS limits (storage_volume qos), which only the userspace "
                           f"path (qemu-storage-daemon) enforces; a kernel attach of this {protocol} connection "
                           "would ignore them. Use method auto or userspace", "method")
        return USERSPACE
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

    Without os-brick, or not root (its privsep needs root), a minimal set (host, ip, platform, os_type, initiator);
    without an initiator name (no open-iscsi), one derived from the host name,
    which the userspace iscsi path uses as its initiator.
    """
    from . import brick
    try:
        props = brick.properties(_my_ip())
        props["gathered_by"] = "os-brick"
    except (MissingDependency, DriverError) as exc:  # DriverError: os-brick run without root (brick.properties)
        props = {"host": this_host(), "ip": _my_ip(), "platform": platform.machine(), "os_type": sys.platform,
                 "multipath": False, "enforce_multipath": False, "initiator": _read_initiator(),
                 "gathered_by": "blockstore", "os_brick_error": str(exc)}
    if not props.get("initiator"):
        props["initiator"] = GENERATED_INITIATOR_PREFIX + props.get("host", this_host())
    return props


# attach -----------------------------------------------------------------------
def attach(connection_info: dict, volume_id: str, read_only: bool, method: str) -> dict:
    """Make a local block device; returns the `device` facts a later detach needs.

    On failure nothing is left behind (loop device, daemon, directory).
    """
    protocol = connection_info.get("driver_volume_type")
    data = connection_info.get("data") or {}
    how = choose(protocol, data.get("format", "raw"), method, kernel_has(protocol), bool(data.get("qos_specs")))
    return CONNECTORS[how]().connect_volume(connection_info, os.path.join(run_dir(), volume_id), read_only)


def for_device(device: dict) -> Connector:
    """The connector that made a recorded device."""
    return CONNECTORS.get(device.get("method"), Connector)()

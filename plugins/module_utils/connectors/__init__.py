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
  kernel     os-brick's connector for the protocol (open-iscsi, nvme-cli, krbd...),
             over every portal with `multipath`
`choose()` picks one from the connection type, the image format, the method
the task asks for (auto, kernel, userspace) and what this kernel can do: a
protocol module that is loaded, built in, or loadable (listed in modules.dep;
iscsid loads iscsi_tcp on first use, the kernel connector nvme_tcp).
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
# The kernel module of each protocol's initiator (we never load one: its tools do, on first use).
KERNEL_MODULES = {"iscsi": "iscsi_tcp", "nvmeof": "nvme_tcp", "rbd": "rbd"}
MODULES_DIR = "/lib/modules"
USERSPACE_PROTOCOLS = ("local", "iscsi", "rbd")
INITIATOR_FILE = "/etc/iscsi/initiatorname.iscsi"
# method -> connector class, as os-brick maps a protocol to its connector.
CONNECTORS: dict[str, type[Connector]] = {LOOP: LoopConnector, USERSPACE: UserspaceConnector,
                                          KERNEL: KernelConnector}
GENERATED_INITIATOR_PREFIX = "iqn.2010-10.org.blockstore.host:"
HOSTNQN_FILE = "/etc/nvme/hostnqn"


def module_available(name: str, loaded: set[str], module_lists: list[str]) -> bool:
    """Whether a kernel module is loaded, built in or loadable, from /sys/module's names and the lines of
    modules.dep and modules.builtin (a path per module: kernel/.../iscsi_tcp.ko[.xz], with '-' or '_')."""
    if name in loaded:
        return True
    wanted = name.replace("-", "_")
    for line in module_lists:
        path = line.split(":", 1)[0].strip()
        base = os.path.basename(path).split(".ko", 1)[0].replace("-", "_")
        if base == wanted:
            return True
    return False


def kernel_has(protocol: str) -> bool:
    """Whether this host's kernel can do the protocol (its module loaded, built in, or loadable)."""
    name = KERNEL_MODULES.get(protocol)
    if name is None:
        return False
    if protocol == "rbd" and os.path.exists("/sys/bus/rbd"):
        return True
    try:
        loaded = set(os.listdir("/sys/module"))
    except OSError:
        loaded = set()
    lines = []
    for listing in ("modules.dep", "modules.builtin"):
        try:
            with open(os.path.join(MODULES_DIR, platform.release(), listing), encoding="utf-8") as handle:
                lines += handle.readlines()
        except OSError:
            pass  # a container without the host's /lib/modules: only what is loaded counts
    return module_available(name, loaded, lines)


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
    if method == KERNEL and not kernel and protocol in KERNEL_MODULES:
        raise Conflict(f"method: this host's kernel has no {protocol} support (module {KERNEL_MODULES[protocol]} "
                       "is neither loaded nor in modules.dep); use method auto or userspace", "method")
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


def _read_first_line(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().strip() or None
    except OSError:
        return None


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
    if not props.get("nqn"):  # os-brick gives it only where it could run nvme-cli
        nqn = _read_first_line(HOSTNQN_FILE)
        if nqn:
            props["nqn"] = nqn
    return props


# attach -----------------------------------------------------------------------
def attach(connection_info: dict, volume_id: str, read_only: bool, method: str, multipath: bool = False) -> dict:
    """Make a local block device; returns the `device` facts a later detach needs (its `method` says which
    path made it; `multipath`: the kernel path over every portal).

    On failure nothing is left behind (loop device, daemon, directory).
    """
    protocol = connection_info.get("driver_volume_type")
    data = connection_info.get("data") or {}
    how = choose(protocol, data.get("format", "raw"), method, kernel_has(protocol), bool(data.get("qos_specs")))
    connector = KernelConnector(multipath) if how == KERNEL else CONNECTORS[how]()
    return connector.connect_volume(connection_info, os.path.join(run_dir(), volume_id), read_only)


def for_device(device: dict) -> Connector:
    """The connector that made a recorded device."""
    return CONNECTORS.get(device.get("method"), Connector)()

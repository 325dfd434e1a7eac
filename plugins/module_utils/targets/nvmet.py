# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel's NVMe-oF target (nvmet), NVMe/TCP, driven through configfs (/sys/kernel/config/nvmet).

A subsystem per connection with `attr_allow_any_host` 0 and that host's NQN alone in `allowed_hosts`,
namespace 1 on the volume's block device or raw file (nvmet serves a regular file itself, no loop device),
linked into one port per portal (a port with the same address, port and transport is shared by all
subsystems; one this module made goes when no subsystem uses it). Changes to ports happen under an flock,
so parallel tasks never pick the same port id.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from typing import Iterator

from ..commands import run
from ..errors import DriverError, MissingDependency

ROOT = "/sys/kernel/config/nvmet"
LOCK_DIR = "/run/blockstore"
NAMESPACE = "1"


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(value)
    except OSError as exc:
        raise DriverError(f"nvmet: cannot write {value!r} to {path}: {exc.strerror}") from None


def port_for(ports: dict[str, dict], address: str, port: int) -> str | None:
    """The id of the TCP port listening on address:port among {id: {"addr_traddr", ...}}, or None."""
    for pid, attrs in sorted(ports.items()):
        if (attrs.get("addr_trtype"), attrs.get("addr_traddr"), attrs.get("addr_trsvcid")) == \
                ("tcp", address, str(port)):
            return pid
    return None


def free_port_id(ports: dict[str, dict]) -> str:
    used = {int(p) for p in ports if p.isdigit()}
    return str(next(n for n in range(1, len(used) + 2) if n not in used))


class Nvmet:
    def __init__(self, portals: list[tuple[str, int]]) -> None:
        self.portals = portals

    def _path(self, *parts: str) -> str:
        return os.path.join(ROOT, *parts)

    def _check(self) -> None:
        # As rtslib does for LIO: the target's modules are loaded when missing (a port needs nvmet_tcp too).
        if not os.path.isdir(self._path("ports")) or not os.path.isdir("/sys/module/nvmet_tcp"):
            with contextlib.suppress(OSError):
                run(["modprobe", "-a", "nvmet", "nvmet_tcp"], timeout=60)
        if not os.path.isdir(ROOT):
            raise MissingDependency("backend.target: nvmet needs the kernel's NVMe target on the backend host "
                                    "(modprobe nvmet nvmet_tcp; configfs mounted at /sys/kernel/config)", "nvmet")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(LOCK_DIR, mode=0o755, exist_ok=True)
        fd = os.open(os.path.join(LOCK_DIR, "nvmet.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _ports(self) -> dict[str, dict]:
        ports = {}
        with contextlib.suppress(FileNotFoundError):
            for pid in os.listdir(self._path("ports")):
                ports[pid] = {a: _read(self._path("ports", pid, a))
                              for a in ("addr_trtype", "addr_traddr", "addr_trsvcid")}
        return ports

    def _mkdir(self, path: str) -> None:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)

    def _rmdir(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(path)

    def _unlink(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    def export(self, nqn: str, source: str, host_nqn: str) -> None:
        """Make (or complete) the subsystem `nqn` serving `source` to `host_nqn` alone, on every portal."""
        self._check()
        if not os.path.exists(source):
            raise DriverError(f"nvmet: {source} does not exist")
        subsystem = self._path("subsystems", nqn)
        with self._locked():
            try:
                self._mkdir(subsystem)
                _write(os.path.join(subsystem, "attr_allow_any_host"), "0")
                self._mkdir(self._path("hosts", host_nqn))
                allowed = os.path.join(subsystem, "allowed_hosts", host_nqn)
                if not os.path.islink(allowed):
                    os.symlink(self._path("hosts", host_nqn), allowed)
                namespace = os.path.join(subsystem, "namespaces", NAMESPACE)
                self._mkdir(namespace)
                if _read(os.path.join(namespace, "enable")) != "1":
                    _write(os.path.join(namespace, "device_path"), source)
                    _write(os.path.join(namespace, "enable"), "1")
                for address, port in self.portals:
                    self._link(subsystem, nqn, address, port)
            except OSError as exc:
                raise DriverError(f"nvmet: cannot export {source} as {nqn}: {exc.strerror}") from None

    def _link(self, subsystem: str, nqn: str, address: str, port: int) -> None:
        ports = self._ports()
        pid = port_for(ports, address, port)
        if pid is None:
            pid = free_port_id(ports)
            self._mkdir(self._path("ports", pid))
            for attr, value in (("addr_trtype", "tcp"), ("addr_adrfam", "ipv6" if ":" in address else "ipv4"),
                                ("addr_traddr", address), ("addr_trsvcid", str(port))):
                _write(self._path("ports", pid, attr), value)
        link = self._path("ports", pid, "subsystems", nqn)
        if not os.path.islink(link):
            os.symlink(subsystem, link)

    def unexport(self, nqn: str) -> None:
        """Remove the subsystem with its port links, namespace and allowed hosts; hosts and this target's
        portals no subsystem uses any more go too."""
        if not os.path.isdir(ROOT):
            return  # no nvmet on this host: nothing can be exported here
        subsystem = self._path("subsystems", nqn)
        with self._locked():
            try:
                for pid in self._ports():
                    self._unlink(self._path("ports", pid, "subsystems", nqn))
                namespace = os.path.join(subsystem, "namespaces", NAMESPACE)
                if os.path.isdir(namespace):
                    _write(os.path.join(namespace, "enable"), "0")
                    self._rmdir(namespace)
                hosts = []
                with contextlib.suppress(FileNotFoundError):
                    hosts = os.listdir(os.path.join(subsystem, "allowed_hosts"))
                for host in hosts:
                    self._unlink(os.path.join(subsystem, "allowed_hosts", host))
                self._rmdir(subsystem)
                for host in hosts:
                    with contextlib.suppress(OSError):  # another subsystem still allows it (EBUSY)
                        os.rmdir(self._path("hosts", host))
                ours = {(a, str(p)) for a, p in self.portals}
                for pid, attrs in self._ports().items():
                    if (attrs["addr_traddr"], attrs["addr_trsvcid"]) in ours \
                            and not os.listdir(self._path("ports", pid, "subsystems")):
                        self._rmdir(self._path("ports", pid))
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise DriverError(f"nvmet: cannot remove subsystem {nqn}: {exc.strerror}") from None

    def refresh(self, source: str) -> None:
        """Every namespace on `source` reports its new size to the hosts (revalidate_size)."""
        for nqn, device, _host in self.exports():
            if device == source:
                _write(self._path("subsystems", nqn, "namespaces", NAMESPACE, "revalidate_size"), "1")

    def exports(self) -> list[tuple[str, str, str | None]]:
        """(subsystem NQN, its namespace's device path, its first allowed host) for every subsystem."""
        found = []
        subsystems = []
        with contextlib.suppress(FileNotFoundError):
            subsystems = sorted(os.listdir(self._path("subsystems")))
        for nqn in subsystems:
            device = _read(self._path("subsystems", nqn, "namespaces", NAMESPACE, "device_path"))
            hosts = []
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile by another task
                hosts = sorted(os.listdir(self._path("subsystems", nqn, "allowed_hosts")))
            found.append((nqn, os.path.normpath(device) if device else "", hosts[0] if hosts else None))
        return found

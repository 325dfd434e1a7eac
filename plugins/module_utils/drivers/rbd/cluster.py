# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rbd driver's connection to the Ceph cluster: the bindings, cephx files, connect, errors, monitors, df.

A part of RbdDriver (drivers/rbd/__init__.py), which holds its state (pool, conf, the open
cluster handle); `rados` and `rbd` are imported on first use only.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, Iterator

from ...errors import DriverError, MissingDependency
from ...units import GiB

# librados' own limit when rados_connect_timeout is negative (client_mount_timeout).
LIBRADOS_MOUNT_TIMEOUT = 300
# librados' settings that rados_connect_timeout sets (here, and in qemu's rbd: filenames: qemu_image.py).
TIMEOUT_SETTINGS = ("client_mount_timeout", "rados_mon_op_timeout", "rados_osd_op_timeout")
BINDINGS_HELP = (
    "the Ceph Python bindings (modules rados and rbd) on the host the module runs on: Debian/Ubuntu "
    "packages python3-rados and python3-rbd (RHEL/CentOS: python3-rados and python3-rbd from the Ceph "
    "repositories). There is no pip package; the bindings load only in the Python the distribution built "
    "them for (Debian 12: /usr/bin/python3.11), so point ansible_python_interpreter at that Python or at a "
    "venv made from it with --system-site-packages")


class ClusterConnection:
    """How RbdDriver talks to the cluster."""

    def _bindings(self) -> tuple[Any, Any]:
        if self._rbd is None:
            try:
                import rados
                import rbd
            except ImportError as exc:
                python = f"{sys.executable} (Python {sys.version_info[0]}.{sys.version_info[1]})"
                raise MissingDependency(f"backend.driver: rbd needs {BINDINGS_HELP}. This module ran under "
                                        f"{python}, where importing them failed: {exc}", "rados") from None
            self._rados, self._rbd = rados, rbd
        return self._rados, self._rbd

    def _errors(self) -> tuple[type[Exception], ...]:
        """The bindings' error classes; loading them first also means a missing binding
        is reported as such, before any except clause needs them."""
        rados, rbd = self._bindings()
        return rbd.Error, rados.Error

    def _user_text(self) -> str:
        return f"client.{self.conf['rbd_user'] or 'admin'}"

    def _timeout_text(self) -> str:
        timeout = self.conf["rados_connect_timeout"]
        if timeout < 0:
            return f"librados' default of {LIBRADOS_MOUNT_TIMEOUT} s (rados_connect_timeout is {timeout})"
        return f"rados_connect_timeout ({timeout} s)"

    def _check_files(self) -> None:
        for option, what in (("rbd_ceph_conf", "Ceph configuration file"), ("rbd_keyring_conf", "keyring")):
            path = self.conf[option]
            if path is not None and not os.access(path, os.R_OK):
                problem = "cannot be read" if os.path.exists(path) else "does not exist"
                raise DriverError(f"backend.{option}: the {what} {path} {problem} on this host", f"backend.{option}")
        keyring = self.conf["rbd_keyring_conf"]
        if keyring is not None:
            # librados reports a keyring without the user's entry as a refused key: say what is wrong.
            names = self._keyring_names(keyring)
            if names and self._user_text() not in names:
                raise DriverError(f"backend.rbd_keyring_conf: the keyring {keyring} holds no key for "
                                  f"{self._user_text()} (it has {', '.join(names)}); check rbd_user and "
                                  "rbd_keyring_conf", "backend.rbd_keyring_conf")

    @staticmethod
    def _keyring_names(path: str) -> list[str]:
        """Entity names of a text keyring ([client.cinder] sections); none for other formats."""
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except (OSError, UnicodeDecodeError):
            return []
        return [line.strip()[1:-1].strip() for line in lines
                if line.strip().startswith("[") and line.strip().endswith("]")]

    def _connect(self) -> tuple[Any, Any]:
        """The cluster handle and the pool's I/O context, opened once per driver."""
        if self._ioctx is not None:
            return self._cluster, self._ioctx
        rados = self._bindings()[0]
        self._check_files()
        conf = self.conf
        cluster = rados.Rados(rados_id=conf["rbd_user"], clustername=conf["rbd_cluster_name"],
                              conffile=conf["rbd_ceph_conf"] or "")
        try:
            if conf["rbd_keyring_conf"]:
                cluster.conf_set("keyring", conf["rbd_keyring_conf"])
            if conf["rados_connect_timeout"] >= 0:
                for setting in TIMEOUT_SETTINGS:
                    cluster.conf_set(setting, str(conf["rados_connect_timeout"]))
        except rados.Error as exc:
            raise DriverError(f"rbd driver: cannot configure librados: {exc}") from None
        try:
            cluster.connect()
        except rados.Error as exc:
            error = self._connect_error(cluster, exc)  # before shutdown: it reads the handle's settings
            self._shutdown(cluster)
            raise error from None
        try:
            ioctx = cluster.open_ioctx(self.pool)
        except rados.ObjectNotFound:
            pools = ", ".join(sorted(cluster.list_pools())) or "none"
            self._shutdown(cluster)
            raise DriverError(f"backend.rbd_pool: the Ceph cluster has no pool {self.pool!r} (pools: {pools})",
                              "backend.rbd_pool") from None
        except rados.Error as exc:
            self._shutdown(cluster)
            raise DriverError(f"backend.rbd_pool: cannot open pool {self.pool!r}: {exc}", "backend.rbd_pool") from None
        self._cluster, self._ioctx = cluster, ioctx
        return cluster, ioctx

    def _connect_error(self, cluster: Any, exc: Exception) -> DriverError:
        rados = self._rados
        conf_path = self.conf["rbd_ceph_conf"]
        where = conf_path or f"librados' default search for {self.conf['rbd_cluster_name']}.conf"
        keyring = self.conf["rbd_keyring_conf"] or "the keyring named in the configuration file, else " \
            f"/etc/ceph/{self.conf['rbd_cluster_name']}.{self._user_text()}.keyring"
        if "conf_read_file" in str(exc):
            return DriverError(f"backend.rbd_ceph_conf: no Ceph configuration file found ({where}); set "
                               "rbd_ceph_conf to its path", "backend.rbd_ceph_conf")
        if isinstance(exc, rados.TimedOut):
            try:
                monitors = cluster.conf_get("mon_host") or "none configured"
            except rados.Error:
                monitors = "unknown"
            return DriverError(f"backend: the Ceph cluster did not answer within {self._timeout_text()}; "
                               f"monitors {monitors} (from {where}). Check that they run and are reachable "
                               "from this host", "backend.rados_connect_timeout")
        if isinstance(exc, rados.PermissionDeniedError):
            return DriverError(f"backend.rbd_user: the Ceph cluster refused {self._user_text()} (authentication "
                               f"failed with the key from {keyring}); check rbd_user and rbd_keyring_conf",
                               "backend.rbd_keyring_conf")
        if isinstance(exc, rados.ObjectNotFound):
            return DriverError(f"backend.rbd_keyring_conf: no key for {self._user_text()} found in {keyring}; "
                               "check rbd_user and rbd_keyring_conf", "backend.rbd_keyring_conf")
        return DriverError(f"backend: cannot connect to the Ceph cluster as {self._user_text()} "
                           f"(configuration {where}): {exc}")

    @staticmethod
    def _shutdown(cluster: Any) -> None:
        try:
            cluster.shutdown()
        except Exception:  # best effort on a handle that already failed
            pass

    def close(self) -> None:
        """Close the pool context and the cluster connection (also done at process exit)."""
        if self._ioctx is not None:
            self._ioctx.close()
            self._shutdown(self._cluster)
        self._cluster = self._ioctx = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown may have torn down the bindings
            pass

    @contextlib.contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        """The bindings' errors in the block become one DriverError saying what failed (loading the
        bindings first, so a missing one is reported as such)."""
        errors = self._errors()
        try:
            yield
        except errors as exc:
            raise DriverError(f"rbd driver: {what} in pool {self.pool!r} failed: {exc}") from None

    def _monitors(self) -> tuple[list[str], list[str]]:
        """Monitor hosts and ports from the cluster's monitor map (msgr v1 address preferred:
        older kernel clients speak only v1)."""
        cluster = self._connect()[0]
        ret, out, err = cluster.mon_command(json.dumps({"prefix": "mon dump", "format": "json"}), b"")
        if ret:
            raise DriverError(f"rbd driver: cannot read the monitor map ({err or ret})")
        hosts, ports = [], []
        for mon in json.loads(out)["mons"]:
            addrs = {a["type"]: a["addr"] for a in mon.get("public_addrs", {}).get("addrvec", [])}
            addr = addrs.get("v1") or addrs.get("v2") or mon["addr"].split("/")[0]
            host, port = addr.rsplit(":", 1)
            hosts.append(host.strip("[]"))
            ports.append(port)
        return hosts, ports

    def _auth_enabled(self) -> bool:
        cluster = self._connect()[0]
        return "cephx" in (cluster.conf_get("auth_client_required") or "")

    def _df(self) -> tuple[Any, Any, int]:
        """(total, free) in GiB from the cluster's df report, or 'unknown', and the pool's quota."""
        cluster = self._connect()[0]
        ret, out, _err = cluster.mon_command(json.dumps({"prefix": "df", "format": "json"}), b"")
        if ret:
            return "unknown", "unknown", 0
        pools = [p for p in json.loads(out).get("pools", []) if p.get("name") == self.pool]
        if not pools:  # no ceph-mgr has reported yet
            return "unknown", "unknown", 0
        stats = pools[0]["stats"]
        ret, out, _err = cluster.mon_command(
            json.dumps({"prefix": "osd pool get-quota", "pool": self.pool, "format": "json"}), b"")
        quota = json.loads(out).get("quota_max_bytes", 0) if not ret else 0
        free = stats["max_avail"]
        if quota:
            free = max(min(quota - stats["bytes_used"], free), 0)
        total = free + stats["bytes_used"]
        return round(total / GiB, 2), round(free / GiB, 2), quota

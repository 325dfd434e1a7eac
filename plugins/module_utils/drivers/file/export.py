# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the file driver exports a volume: its image's own path, an iSCSI target (tgt, LIO) or NVMe-oF/TCP (nvmet).

`target: local` hands the host the image's path; `target: iscsi` makes a tgtd target
(raw images only) for each connection: `<prefix>volume-<volume id>:<connection id>`,
LUN 1 on the volume's image, open to that host's initiator name alone, with that
connection's CHAP account alone. tgt binds accounts to targets, so one target shared by
several hosts would let each log in with the others' accounts. The ACL is an initiator name, never an
address (tgt lets in a login that matches the name list or the address list). A host trying another's
target is answered "target not found"; another's account on its own target fails CHAP. The targets share the
file's data: tgt reads and writes the file itself, with no cache of its own. `target: lio` and
`target: nvmet` are the kernel's targets (targets/: `KernelExport`), made the same way per connection.

Older versions made one shared target per volume (`<prefix>volume-<volume id>`). Its
connections keep working on it (the initiators of other hosts keep their sessions);
unexporting one removes it from that target, the last one the target; exporting one
again (connect after an error) moves it to a target of its own. New connections always
get their own, also beside such a target.

A volume's QoS limits travel in the connection info as Cinder's front-end QoS specs (`qos_specs`),
which the host's userspace connector enforces (connectors/qsd.py) and every other attach path refuses.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import string
import uuid

from ...config import Opt
from ...errors import Conflict, DriverError, InvalidParameter, MissingDependency
from ...objects import Connection, Volume
from ...targets import KINDS as KERNEL_TARGETS
from ...targets import PROTOCOL, KernelExport
from ...volume_types import with_front_end_qos

# What an iSCSI name may hold (RFC 3722): a connection id outside it is named by its digest instead.
_IQN_SAFE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")

# The options of `target: iscsi`, the same for every driver that exports through IscsiExport.
ISCSI_OPTIONS = (
    Opt("iscsi_ip_address", default="127.0.0.1", help="Address of the tgt portal (target iscsi)."),
    Opt("iscsi_port", "int", default=3260, min=1, help="Port of the tgt portal (target iscsi)."),
    Opt("iscsi_target_prefix", default="iqn.2010-10.org.blockstore:",
        help="Prefix of target names; a connection's target is <prefix>volume-<volume id>:<connection id>."),
    Opt("tgt_control_port", "int", default=0, min=0,
        help="tgtd's control port (tgtd -C N; tgtadm talks to /var/run/tgtd/socket.N)."),
)


class IscsiExport(KernelExport):
    """The connection half of FileDriver (a mixin: it uses the driver's conf, volume_path and format_of).

    `target: lio` and `target: nvmet` are the kernel targets (targets/), serving the raw image's file."""

    # QoS is enforced where the volume is attached, so a change applies at its next attach.
    qos_change = "attach"

    def check_spec(self, spec: dict | None, pool: str | None) -> None:
        # The file driver honours QoS (at attach); extra specs and pools it refuses as every driver does.
        super().check_spec({k: v for k, v in (spec or {}).items() if k != "qos_specs"}, pool)

    def _tgt(self):
        from ..tgt import Tgt
        return Tgt(self.conf["tgt_control_port"])

    def _shared_iqn(self, volume: Volume) -> str:
        """The one target per volume that older versions shared between its connections."""
        return f"{self.conf['iscsi_target_prefix']}volume-{volume.id}"

    def _iqn(self, volume: Volume, connection: Connection) -> str:
        """The connection's own target: the same name for the same connection id (a killed connect's
        record lends its id to the next, which then finds the target it made)."""
        tag = connection.id if _IQN_SAFE.match(connection.id) else \
            "c" + hashlib.sha256(connection.id.encode()).hexdigest()[:32]
        return f"{self._shared_iqn(volume)}:{tag}"

    @staticmethod
    def chap_user(connection: Connection) -> str:
        return "bs" + connection.id.replace("-", "")

    @staticmethod
    def connection_of_user(user: str) -> str | None:
        """The connection id a CHAP account was made for (chap_user's inverse); None for other accounts."""
        if not user.startswith("bs"):
            return None
        try:
            return str(uuid.UUID(hex=user[2:]))
        except ValueError:
            return None

    def export_source(self, volume: Volume) -> str:
        return self.volume_path(volume)

    def export_expected(self, connection: Connection) -> bool:
        return (connection.connection_info or {}).get("driver_volume_type") in ("iscsi", "nvmeof")

    def list_exports(self) -> list[dict] | None:
        """Each connection's account on a tgt target serving one of this backend's images (found by the
        target's backing file, whatever the target is called); a target with no account is listed alone."""
        if self.conf["target"] in KERNEL_TARGETS:
            return self.kernel_exports({self.local_path(v): v for v in self.list_volume_ids()})
        if self.conf["target"] != "iscsi":
            return None
        from ..tgt import TgtdUnreachable
        try:
            targets = self._tgt().targets()
        except (TgtdUnreachable, MissingDependency):
            return []  # no tgt daemon (or no tgt) on this host: no target exists; any other failure is told
        prefix = self.file("volume-")
        found = []
        for iqn, target in sorted(targets.items()):
            volumes = sorted({os.path.normpath(p)[len(prefix):] for p in target["backing"]
                              if os.path.normpath(p).startswith(prefix)})
            for volume_id in volumes:
                users = target["accounts"] or [None]
                found += [{"volume_id": volume_id, "connection_id": self.connection_of_user(u) if u else None,
                           "export": f"tgt target {iqn}" + (f" account {u}" if u else "")} for u in users]
        return found

    def initialize_connection(self, volume: Volume, connection: Connection) -> dict:
        path = self.volume_path(volume)
        if not os.path.exists(path):
            raise DriverError(f"file driver: volume image {path} is missing")
        fmt = self.format_of(volume)
        if self.conf["target"] == "local":
            return with_front_end_qos({"driver_volume_type": "local",
                                       "data": {"device_path": path, "format": fmt.name, "volume_id": volume.id,
                                                "access_mode": connection.mode}}, volume.volume_type)
        if "iscsi" not in fmt.targets:
            raise Conflict(f"backend.target: volume {volume.name!r} is {fmt.name}; the {self.conf['target']} target "
                           "exports raw volumes only", "backend.target")
        if self.conf["target"] in KERNEL_TARGETS:
            return with_front_end_qos(self.kernel_initialize(volume, connection), volume.volume_type)
        initiator = connection.connector.get("initiator")
        if not initiator:
            raise InvalidParameter("connector.initiator: an iscsi export needs the host's initiator IQN "
                                   "(storage_host_info returns it)", "connector.initiator")
        old = connection.connection_info.get("data") or {}
        user = self.chap_user(connection)
        # Same connection, same secret: a re-export (tgtd restarted) keeps working credentials.
        known = old.get("auth_password") if old.get("auth_username") == user else None
        password = known or "".join(secrets.choice(string.ascii_letters + string.digits) for _position in range(16))
        tgt = self._tgt()
        iqn = self._iqn(volume, connection)
        if old.get("target_iqn") == self._shared_iqn(volume):
            # Exported again (it was in error): out of the shared target, then into a target of its own.
            tgt.revoke(old["target_iqn"], initiator, user)
        elif not known:
            # A killed connect's target and account under this id: nobody has their password, so no host
            # has a session; made again with the password that will be recorded.
            tgt.remove(iqn, user)
        target = tgt.ensure_target(iqn, path)
        try:
            tgt.allow(target, initiator, user, password)
        except DriverError:
            with contextlib.suppress(DriverError):
                tgt.remove(iqn, user)  # no target left that nobody can log in to, no account without one
            raise
        data = {"target_discovered": False,
                "target_portal": f"{self.conf['iscsi_ip_address']}:{self.conf['iscsi_port']}",
                "target_iqn": iqn, "target_lun": 1, "volume_id": volume.id,
                "auth_method": "CHAP", "auth_username": user, "auth_password": password,
                "access_mode": connection.mode, "encrypted": False, "discard": False}
        return with_front_end_qos({"driver_volume_type": "iscsi", "data": data}, volume.volume_type)

    def terminate_connection(self, volume: Volume, connection: Connection) -> None:
        info = connection.connection_info or {}
        if self.conf["target"] in KERNEL_TARGETS and info.get("driver_volume_type") == PROTOCOL[self.conf["target"]]:
            self.kernel_terminate(volume, connection)
            return
        if info.get("driver_volume_type") != "iscsi":
            return
        user = self.chap_user(connection)
        if (info.get("data") or {}).get("target_iqn") == self._shared_iqn(volume):
            self._tgt().revoke(self._shared_iqn(volume), connection.connector.get("initiator"), user)
        else:
            self._tgt().remove(self._iqn(volume, connection), user)

# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the file driver exports a volume: its image's own path, or an iSCSI target.

`target: local` hands the host the image's path; `target: iscsi` makes a tgtd target
(raw images only) with one CHAP account per connection. A volume's QoS limits travel in the
connection info as Cinder's front-end QoS specs (`qos_specs`), which the host's userspace
connector enforces (connectors/qsd.py) and every other attach path refuses.
"""

from __future__ import annotations

import os
import secrets
import string

from ...errors import Conflict, DriverError, InvalidParameter
from ...objects import Connection, Volume
from ...volume_types import qos_of


class IscsiExport:
    """The connection half of FileDriver (a mixin: it uses the driver's conf, volume_path and format_of)."""

    # QoS is enforced where the volume is attached, so a change applies at its next attach.
    qos_change = "attach"

    def check_spec(self, spec: dict | None, pool: str | None) -> None:
        # The file driver honours QoS (at attach); extra specs and pools it refuses as every driver does.
        super().check_spec({k: v for k, v in (spec or {}).items() if k != "qos_specs"}, pool)

    @staticmethod
    def _with_qos(info: dict, volume: Volume) -> dict:
        if qos_of(volume.volume_type):
            info["data"]["qos_specs"] = qos_of(volume.volume_type)
        return info

    def _tgt(self):
        from ..tgt import Tgt
        return Tgt(self.conf["tgt_control_port"])

    def _iqn(self, volume: Volume) -> str:
        return f"{self.conf['iscsi_target_prefix']}volume-{volume.id}"

    @staticmethod
    def chap_user(connection: Connection) -> str:
        return "bs" + connection.id.replace("-", "")

    def initialize_connection(self, volume: Volume, connection: Connection) -> dict:
        path = self.volume_path(volume)
        if not os.path.exists(path):
            raise DriverError(f"file driver: volume image {path} is missing")
        fmt = self.format_of(volume)
        if self.conf["target"] == "local":
            return self._with_qos({"driver_volume_type": "local",
                                   "data": {"device_path": path, "format": fmt.name, "volume_id": volume.id,
                                            "access_mode": connection.mode}}, volume)
        if "iscsi" not in fmt.targets:
            raise Conflict(f"backend.target: volume {volume.name!r} is {fmt.name}; the iscsi target exports raw "
                           "volumes only", "backend.target")
        initiator = connection.connector.get("initiator")
        if not initiator:
            raise InvalidParameter("connector.initiator: an iscsi export needs the host's initiator IQN "
                                   "(storage_host_info returns it)", "connector.initiator")
        old = connection.connection_info.get("data") or {}
        user = self.chap_user(connection)
        # Same connection, same secret: a re-export (tgtd restarted) keeps working credentials.
        password = old.get("auth_password") if old.get("auth_username") == user else None
        password = password or "".join(secrets.choice(string.ascii_letters + string.digits) for _position in range(16))
        tgt = self._tgt()
        target = tgt.ensure_target(self._iqn(volume), path)
        tgt.allow(target, initiator, user, password)
        data = {"target_discovered": False,
                "target_portal": f"{self.conf['iscsi_ip_address']}:{self.conf['iscsi_port']}",
                "target_iqn": self._iqn(volume), "target_lun": 1, "volume_id": volume.id,
                "auth_method": "CHAP", "auth_username": user, "auth_password": password,
                "access_mode": connection.mode, "encrypted": False, "discard": False}
        return self._with_qos({"driver_volume_type": "iscsi", "data": data}, volume)

    def terminate_connection(self, volume: Volume, connection: Connection) -> None:
        if (connection.connection_info or {}).get("driver_volume_type") != "iscsi":
            return
        self._tgt().revoke(self._iqn(volume), connection.connector.get("initiator"), self.chap_user(connection))

# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel export targets for block backends: LIO (iSCSI) and nvmet (NVMe-oF/TCP).

A driver that holds a volume as a block device or a raw file gets both with `KernelExport` (a mixin: it
reads the driver's `conf` and calls its `export_source(volume)`) and `OPTIONS` in its option list. As the
tgt export does (drivers/file/export.py), every connection gets a target (an iSCSI target or an NVMe
subsystem) of its own, `<prefix>volume-<volume id>:<connection id>`, open to that host's initiator IQN or
host NQN alone (LIO: with that connection's CHAP account), so no host can use another's access. The
connection info is what os-brick's ISCSI and NVMEOF connectors take, with every configured portal.

Options are named as Cinder names them (target_ip_address, target_secondary_ip_addresses, target_port,
target_prefix), so a cinder.conf section carries over. The exports live in the kernel only (not saved with
targetcli saveconfig or nvmetcli): a reboot of the backend's host drops them; detach and attach again.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import uuid

from ..config import Opt
from ..errors import InvalidParameter
from ..objects import Connection, Volume

KINDS = ("lio", "nvmet")
PROTOCOL = {"lio": "iscsi", "nvmet": "nvmeof"}
DEFAULT_PORT = {"lio": 3260, "nvmet": 4420}
DEFAULT_PREFIX = {"lio": "iqn.2010-10.org.blockstore:", "nvmet": "nqn.2010-10.org.blockstore:"}
# A connection id outside what an IQN or NQN may hold is named by its digest instead.
_NAME_SAFE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")

OPTIONS = (
    Opt("target_ip_address", default="127.0.0.1",
        help="Address of the kernel target's first portal (target lio or nvmet), as in cinder.conf."),
    Opt("target_secondary_ip_addresses", default="",
        help="More portal addresses, comma-separated (target lio or nvmet): hosts get every portal in the "
             "connection info, for multipath."),
    Opt("target_port", "int", default=0, min=0,
        help="Port of every kernel target portal; 0: 3260 for lio, 4420 for nvmet."),
    Opt("target_prefix", default="",
        help="Prefix of kernel target names (an IQN for lio, an NQN for nvmet); empty: "
             "iqn.2010-10.org.blockstore: or nqn.2010-10.org.blockstore:. A connection's target is "
             "<prefix>volume-<volume id>:<connection id>."),
)


def portals(conf: dict, kind: str) -> list[tuple[str, int]]:
    """Every (address, port) the target listens on, first the main one; duplicates dropped."""
    port = conf.get("target_port") or DEFAULT_PORT[kind]
    named = [("target_ip_address", conf.get("target_ip_address") or "127.0.0.1")]
    named += [("target_secondary_ip_addresses", a.strip())
              for a in (conf.get("target_secondary_ip_addresses") or "").split(",") if a.strip()]
    for option, address in named:
        if any(c.isspace() or c in "/[]" for c in address):
            raise InvalidParameter(f"backend.{option}: {address!r} is not an IP address (several addresses go "
                                   "in target_secondary_ip_addresses, comma-separated)", f"backend.{option}")
    addresses = [a for _option, a in named]
    return [(a, port) for a in dict.fromkeys(addresses)]


def target_name(conf: dict, kind: str, volume_id: str, connection_id: str) -> str:
    """A connection's own target: the same name for the same ids (a killed export's is found again)."""
    tag = connection_id if _NAME_SAFE.match(connection_id) else \
        "c" + hashlib.sha256(connection_id.encode()).hexdigest()[:32]
    return f"{conf.get('target_prefix') or DEFAULT_PREFIX[kind]}volume-{volume_id}:{tag}"


def chap_user(connection_id: str) -> str:
    return "bs" + connection_id.replace("-", "")


def connection_of_user(user: str | None) -> str | None:
    """The connection id a CHAP account was made for (chap_user's inverse); None for other accounts."""
    if not user or not user.startswith("bs"):
        return None
    try:
        return str(uuid.UUID(hex=user[2:]))
    except ValueError:
        return None


def connection_data(kind: str, name: str, conf: dict, host_id: str, user: str = "", password: str = "") -> dict:
    """The `data` os-brick's connector for the protocol takes (ISCSI: target_portal(s)/iqn(s)/lun(s) and
    CHAP; NVMEOF: target_nqn, ns_id and portals as [address, port, transport])."""
    found = portals(conf, kind)
    if kind == "nvmet":
        return {"target_nqn": name, "ns_id": "1", "host_nqn": host_id,
                "portals": [[a, str(p), "tcp"] for a, p in found]}
    data = {"target_discovered": False, "target_portal": f"{found[0][0]}:{found[0][1]}", "target_iqn": name,
            "target_lun": 0, "auth_method": "CHAP", "auth_username": user, "auth_password": password}
    if len(found) > 1:
        data.update(target_portals=[f"{a}:{p}" for a, p in found], target_iqns=[name] * len(found),
                    target_luns=[0] * len(found))
    return data


def build(kind: str, conf: dict):
    """The target object for `kind` (lio or nvmet); its module is imported only when used."""
    if kind == "lio":
        from .lio import Lio
        return Lio(portals(conf, kind))
    from .nvmet import Nvmet
    return Nvmet(portals(conf, kind))


class KernelExport:
    """Exports through LIO or nvmet for a driver (a mixin: uses `conf` and `export_source(volume)`)."""

    def export_source(self, volume: Volume) -> str:
        raise NotImplementedError

    def kernel_target(self):
        return build(self.conf["target"], self.conf)

    def kernel_initialize(self, volume: Volume, connection: Connection) -> dict:
        kind = self.conf["target"]
        key = "nqn" if kind == "nvmet" else "initiator"
        host_id = connection.connector.get(key)
        if not host_id:
            what = "host NQN (nvme-cli's /etc/nvme/hostnqn)" if kind == "nvmet" else "initiator IQN"
            raise InvalidParameter(f"connector.{key}: a {kind} export needs the host's {what}; storage_host_info "
                                   "returns it", f"connector.{key}")
        name = target_name(self.conf, kind, volume.id, connection.id)
        old = connection.connection_info.get("data") or {}
        target = self.kernel_target()
        if kind == "nvmet":
            target.export(name, self.export_source(volume), host_id)
            return {"driver_volume_type": PROTOCOL[kind],
                    "data": dict(connection_data(kind, name, self.conf, host_id), volume_id=volume.id,
                                 access_mode=connection.mode)}
        user = chap_user(connection.id)
        # Same connection, same secret: exported again (the target host rebooted), its host's login still works.
        password = old.get("auth_password") if old.get("auth_username") == user else None
        password = password or "".join(secrets.choice(string.ascii_letters + string.digits) for _position in range(16))
        target.export(name, self.export_source(volume), host_id, user, password)
        data = connection_data(kind, name, self.conf, host_id, user, password)
        data.update(volume_id=volume.id, access_mode=connection.mode, encrypted=False, discard=False)
        return {"driver_volume_type": PROTOCOL[kind], "data": data}

    def kernel_terminate(self, volume: Volume, connection: Connection) -> None:
        kind = self.conf["target"]
        self.kernel_target().unexport(target_name(self.conf, kind, volume.id, connection.id))

    def kernel_refresh(self, volume: Volume) -> None:
        """After an extend: every target serving the volume reports the new size."""
        self.kernel_target().refresh(self.export_source(volume))

    def kernel_exports(self, volume_ids: dict[str, str]) -> list[dict]:
        """Exports serving this backend's volumes ({source path: volume id}), for the drift check."""
        kind = self.conf["target"]
        found = []
        for name, source, user in self.kernel_target().exports():
            if source in volume_ids:
                tag = name.rpartition(":")[2]
                connection = connection_of_user(user) if kind == "lio" else _connection_of_tag(tag)
                found.append({"volume_id": volume_ids[source], "connection_id": connection,
                              "export": f"{kind} target {name}"})
        return found


def _connection_of_tag(tag: str) -> str | None:
    try:
        return str(uuid.UUID(tag))
    except ValueError:
        return None

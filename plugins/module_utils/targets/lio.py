# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel's iSCSI target (LIO), driven in-process with rtslib-fb (no targetcli process per command).

An iSCSI target per connection, TPG 1 with CHAP on and no generated ACLs, a portal per configured address,
LUN 0, and one ACL: that host's initiator IQN with that connection's CHAP account. The backstore is one per
volume, shared by its connections' targets: iblock opens a block device exclusively, so a second backstore
on it would fail (a raw file gets a fileio backstore of its size). The configuration lives in the kernel:
it is not saved (`targetcli saveconfig`), so a reboot of the target host drops it until the next export.
"""

from __future__ import annotations

import hashlib
import os
import stat

from ..errors import DriverError, MissingDependency

LUN = 0


def _rtslib():
    try:
        import rtslib_fb
    except ImportError as exc:
        raise MissingDependency(f"backend.target: lio needs rtslib-fb on the backend host (Debian/Ubuntu "
                                f"python3-rtslib-fb, RHEL python3-rtslib): {exc}", "rtslib-fb") from None
    return rtslib_fb


def backstore_name(source: str) -> str:
    """One backstore per volume, named by its device or file (LIO names may not hold '/')."""
    return "bs-" + hashlib.sha256(os.path.normpath(source).encode()).hexdigest()[:24]


class Lio:
    def __init__(self, portals: list[tuple[str, int]]) -> None:
        self.portals = portals

    def _root(self):
        rts = _rtslib()
        try:
            return rts, rts.RTSRoot()
        except Exception as exc:  # rtslib raises its own and OSError types: both mean no usable LIO here
            raise MissingDependency(f"backend.target: lio cannot reach the kernel's target (modprobe "
                                    f"target_core_mod iscsi_target_mod; configfs at /sys/kernel/config): {exc}",
                                    "lio") from None

    def _backstore(self, rts, root, source: str):
        name = backstore_name(source)
        for so in root.storage_objects:
            if so.name == name:
                return so
        if stat.S_ISBLK(os.stat(source).st_mode):
            return rts.BlockStorageObject(name, dev=source)
        return rts.FileIOStorageObject(name, dev=source, size=os.path.getsize(source), write_back=False)

    def export(self, iqn: str, source: str, initiator: str, user: str, password: str) -> None:
        """Make (or complete) the target `iqn` serving `source` to `initiator` with this CHAP account."""
        rts, root = self._root()
        if not os.path.exists(source):
            raise DriverError(f"lio: {source} does not exist")
        try:
            so = self._backstore(rts, root, source)
            target = rts.Target(rts.FabricModule("iscsi"), wwn=iqn)
            tpg = rts.TPG(target, 1)
            tpg.set_attribute("authentication", "1")
            tpg.set_attribute("generate_node_acls", "0")
            known = {(p.ip_address, p.port) for p in tpg.network_portals}
            for address, port in self.portals:
                if (address, port) not in known:
                    rts.NetworkPortal(tpg, address, port)
            lun = next((x for x in tpg.luns if x.lun == LUN), None) or rts.LUN(tpg, LUN, so)
            for acl in list(tpg.node_acls):
                if acl.node_wwn != initiator:
                    acl.delete()  # a stale one: this target is for one host alone
            acl = rts.NodeACL(tpg, initiator)
            acl.chap_userid = user
            acl.chap_password = password
            if not any(m.mapped_lun == LUN for m in acl.mapped_luns):
                rts.MappedLUN(acl, LUN, lun)
            tpg.enable = True
        except (rts.RTSLibError, OSError) as exc:
            raise DriverError(f"lio: cannot export {source} as {iqn}: {exc}") from None

    def unexport(self, iqn: str) -> None:
        """Remove the target (its TPG, portals, LUN and ACL) and the backstore no other target uses."""
        rts = _rtslib()
        try:
            root = rts.RTSRoot()
        except Exception:
            return  # no LIO on this host: nothing can be exported here
        try:
            for target in list(root.targets):
                if target.wwn != iqn:
                    continue
                stores = [lun.storage_object for tpg in target.tpgs for lun in tpg.luns]
                target.delete()
                for so in stores:
                    if so.name.startswith("bs-") and not list(so.attached_luns):
                        so.delete()
        except (rts.RTSLibError, OSError) as exc:
            raise DriverError(f"lio: cannot remove target {iqn}: {exc}") from None

    def refresh(self, source: str) -> None:
        """After an extend: a fileio backstore is told the file's new size (a block device's is read live)."""
        _rts, root = self._root()
        for so in root.storage_objects:
            if so.name == backstore_name(source) and so.plugin == "fileio" and not stat.S_ISBLK(
                    os.stat(source).st_mode):
                try:
                    with open(os.path.join(so.path, "control"), "w", encoding="utf-8") as control:
                        control.write(f"fd_dev_size={os.path.getsize(source)}")
                except OSError as exc:
                    raise DriverError(f"lio: cannot resize backstore {so.name} of {source}: {exc.strerror}") from None

    def exports(self) -> list[tuple[str, str, str | None]]:
        """(target IQN, its backstore's device path, its ACL's CHAP user) for every iSCSI target."""
        rts = _rtslib()
        try:
            root = rts.RTSRoot()
        except Exception:
            return []
        found = []
        for target in root.targets:
            if target.fabric_module.name != "iscsi":
                continue
            for tpg in target.tpgs:
                users = [acl.chap_userid for acl in tpg.node_acls] or [None]
                for lun in tpg.luns:
                    found += [(target.wwn, os.path.normpath(lun.storage_object.udev_path), u) for u in users]
        return found

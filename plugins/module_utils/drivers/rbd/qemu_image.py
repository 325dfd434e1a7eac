# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rbd driver's images as qemu-img opens them, for backups (Driver.image_of).

A part of RbdDriver (drivers/rbd/__init__.py). storage_backup reads a temporary snapshot
(volume-<id>@snapshot-<backup id>, deleted when the backup is stored) and writes a restored
volume with qemu-img, whose rbd driver (Debian: qemu-block-extra) must reach the cluster as
the driver does: the same pool, cephx user, configuration file, keyring file and timeouts.
They go in qemu's filename, rbd:<pool>/<image>[@<snapshot>][:<setting>=<value>]...: `id` is
the user, `conf` the configuration file, every other setting is given to librados as it is
(`keyring` is the keyring's path). The key itself never goes on the command line, where any
process on the host can read it; the keyring file is read by librados.
"""

from __future__ import annotations

from ...errors import DriverError
from ...objects import Snapshot, Volume
from .cluster import TIMEOUT_SETTINGS

# qemu splits an rbd: filename at these characters unless a backslash stands before them.
_NAME_SPECIALS = "\\/@:"  # pool, image and snapshot names
_VALUE_SPECIALS = "\\:"  # the value of a setting (paths, user names)


def _escaped(text: str, specials: str) -> str:
    return "".join(f"\\{c}" if c in specials else c for c in text)


class QemuImages:
    """RbdDriver's image_of: qemu filenames of its images."""

    def image_of(self, obj: Volume | Snapshot) -> tuple[str, str]:
        """(qemu filename, format) of a volume's image or of a snapshot of it: always raw."""
        if isinstance(obj, Snapshot):
            return self.qemu_filename(self.volume_image(obj.volume_id), self.snapshot_name(obj)), "raw"
        return self.qemu_filename(self.volume_image(obj.id)), "raw"

    def qemu_filename(self, image: str, snapshot: str | None = None) -> str:
        conf = self.conf
        cluster = conf["rbd_cluster_name"]
        # qemu names no cluster to librados (it reads ceph.conf when given none, and refuses a `cluster` setting):
        # another cluster's file is librados' first default for it.
        ceph_conf = conf["rbd_ceph_conf"] or (None if cluster == "ceph" else f"/etc/ceph/{cluster}.conf")
        for option, value in (("rbd_ceph_conf", ceph_conf), ("rbd_user", conf["rbd_user"]),
                              ("rbd_keyring_conf", conf["rbd_keyring_conf"])):
            # qemu looks for a snapshot's '@' in the whole rest of the filename, escaped or not: a value holding
            # one would be read as part of the image's name.
            if value is not None and "@" in value:
                raise DriverError(f"{option}: {value!r} holds an '@': qemu-img cannot open rbd images for "
                                  "backups with it", option)
        settings = [("conf", ceph_conf), ("id", conf["rbd_user"]), ("keyring", conf["rbd_keyring_conf"])]
        if conf["rados_connect_timeout"] >= 0:
            settings += [(name, str(conf["rados_connect_timeout"])) for name in TIMEOUT_SETTINGS]
        spec = f"{_escaped(self.pool, _NAME_SPECIALS)}/{_escaped(image, _NAME_SPECIALS)}"
        if snapshot is not None:
            spec += f"@{_escaped(snapshot, _NAME_SPECIALS)}"
        return "rbd:" + spec + "".join(f":{key}={_escaped(value, _VALUE_SPECIALS)}"
                                       for key, value in settings if value is not None)

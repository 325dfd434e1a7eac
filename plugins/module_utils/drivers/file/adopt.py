# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The file driver's adopting (storage_volume source.existing): which files it takes over, and how.

A part of FileDriver (drivers/file/__init__.py). A raw backend takes any regular file as raw (its
bytes are the data, even when a guest wrote a qcow2 header into them: they are never probed); a
qcow2 backend takes a qcow2 image without a backing file (a chain the store does not know could
be deleted under it).
"""

from __future__ import annotations

import os
import stat

from ...errors import DriverError
from ...objects import Volume
from .owner import OWNER_MARKER
from .qcow2 import HIDDEN_MARK, qcow2_header


def find_existing(driver, name: str) -> dict | None:
    """The file `name` in the directory, as Driver.find_existing describes it; refuses what is not a volume."""
    path = driver.file(name)
    if name == OWNER_MARKER or name.startswith((".", "snapshot-", "clone-base-")) \
            or name.endswith((".tmp", HIDDEN_MARK)):
        raise DriverError(f"source.existing: {path} is a snapshot or an internal file of this backend, not a "
                          "volume", "source.existing")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        # A link could lead out of the directory: the object must be the file itself.
        raise DriverError(f"source.existing: {path} is not a regular file (links and directories are not "
                          "taken over)", "source.existing")
    if driver.conf["format"] == "raw":
        # Its bytes are the data whatever they look like: a guest may have written a qcow2 header.
        return {"object": path, "size": info.st_size, "format": "raw"}
    backing, virtual_size = qcow2_header(path)
    if not virtual_size:
        raise DriverError(f"source.existing: {path} is not a qcow2 image, and backend {driver.backend_name!r} "
                          "keeps qcow2 images (format qcow2); convert it with qemu-img convert -O qcow2 first",
                          "source.existing")
    if backing:
        raise DriverError(f"source.existing: {path} is a qcow2 image on top of {backing!r}; only a "
                          "self-contained image is taken over (qemu-img rebase -b '' or convert it first)",
                          "source.existing")
    return {"object": path, "size": virtual_size, "format": "qcow2"}


def adopt_volume(driver, volume: Volume, name: str) -> dict:
    """Take over the file `name` as `volume`, renamed volume-<id> within the directory when it is not."""
    source, path = driver.file(name), driver.volume_path(volume)
    if source != path:
        if os.path.lexists(path):
            raise DriverError(f"source.existing: cannot rename {source} to {path}: that file exists",
                              "source.existing")
        os.rename(source, path)  # same directory: atomic, the data is not copied
    return {"format": driver.conf["format"]}

# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The driver interface: the few storage operations the object model needs.

A driver is described by class attributes (name, options, capabilities) and
implements the operations; it never sees the state store. `driver_data`
returned by an operation is kept with the record and handed back later.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

from ..config import Opt, secret_names, validate_options
from ..errors import DriverError
from ..objects import Connection, Snapshot, Volume


class Driver:
    name: ClassVar[str] = ""
    options: ClassVar[Sequence[Opt]] = ()
    # Facts shown by storage_backend_info and used in docs.
    capabilities: ClassVar[dict] = {}

    def __init__(self, backend_name: str, conf: dict) -> None:
        self.backend_name = backend_name
        self.conf = conf

    @classmethod
    def from_options(cls, backend_name: str, given: dict, where: str = "backend") -> Driver:
        return cls(backend_name, validate_options(cls.options, given, where, cls.name))

    @classmethod
    def secret_option_names(cls, given: dict) -> list[str]:
        """Names of the options in the task's `backend` whose values are masked in results and logs."""
        return secret_names(cls.options)

    # Called before any storage work of a task: checks tools and reachability.
    def check_setup(self) -> None:
        """Raise a BlockstoreError when the backend cannot be used from this host."""

    # volumes ------------------------------------------------------------
    def create_volume(self, volume: Volume) -> dict:
        raise NotImplementedError

    def create_volume_from_snapshot(self, volume: Volume, snapshot: Snapshot) -> dict:
        raise NotImplementedError

    def create_cloned_volume(self, volume: Volume, source: Volume) -> tuple[dict, dict]:
        """Return (new volume's driver_data, source volume's driver_data)."""
        raise NotImplementedError

    def extend_volume(self, volume: Volume, new_size: int) -> dict:
        raise NotImplementedError

    def delete_volume(self, volume: Volume) -> None:
        raise NotImplementedError

    def volume_exists(self, volume: Volume) -> bool:
        raise NotImplementedError

    def revert_to_snapshot(self, volume: Volume, snapshot: Snapshot) -> dict:
        """Optional: make `volume` hold the data of its `snapshot` again, keeping the volume's
        size (volumes only grow). Returns the volume's driver_data."""
        raise DriverError(f"driver {self.name!r} cannot revert a volume to a snapshot; "
                          "create a new volume from the snapshot instead", "revert_to")

    def allocated_bytes(self, volume: Volume) -> int | None:
        """Optional: the bytes the volume itself takes on the backend (without what it shares with
        its snapshots or clones); None when the driver cannot tell or the object is gone."""
        return None

    def local_path(self, volume_id: str) -> str | None:
        """The file on this host that backs the volume, for drivers that keep volumes as local
        files (a loop device may serve it); None for the others."""
        return None

    def copy_freezes_image(self, volume: Volume) -> bool:
        """Whether a snapshot or clone of `volume` freezes its current image file (then a local
        daemon holding that file open would lose its later writes, so the core refuses)."""
        return False

    # snapshots ----------------------------------------------------------
    def create_snapshot(self, snapshot: Snapshot, volume: Volume) -> tuple[dict, dict]:
        """Return (snapshot's driver_data, volume's driver_data)."""
        raise NotImplementedError

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        raise NotImplementedError

    def snapshot_exists(self, snapshot: Snapshot) -> bool:
        raise NotImplementedError

    # connections --------------------------------------------------------
    def initialize_connection(self, volume: Volume, connection: Connection) -> dict:
        """Export `volume` to the host described by `connection.connector`.

        Returns the connection info in os-brick's shape:
        {"driver_volume_type": "local" | "iscsi" | "rbd", "data": {...}}.
        Secrets in it (CHAP password, keys) are listed by `secret_fields`.
        Idempotent: called again for the same connection it returns the same export.
        """
        raise NotImplementedError

    def terminate_connection(self, volume: Volume, connection: Connection) -> None:
        """Remove the export made for `connection`; a missing export is not an error."""
        raise NotImplementedError

    # backend ------------------------------------------------------------
    def get_stats(self) -> dict:
        raise NotImplementedError

    def list_volume_ids(self) -> list[str]:
        """Ids of the volumes that exist on the backend (for drift detection)."""
        raise NotImplementedError

    def list_snapshot_ids(self) -> list[str] | None:
        """Ids of the user snapshots that exist on the backend (for drift detection), without the
        objects the driver keeps hidden; None when the driver cannot list them."""
        return None

    def list_leftovers(self) -> list[str]:
        """Internal objects nothing needs any more (temp files, hidden images or snapshots whose
        last dependent is gone), as left by an interrupted task: named for the drift report."""
        return []

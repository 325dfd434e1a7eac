# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The driver interface: the few storage operations the object model needs.

A driver is described by class attributes (name, options, capabilities) and
implements the operations; it never sees the state store. `driver_data`
returned by an operation is kept with the record and handed back later.
"""

from __future__ import annotations

from typing import Callable, ClassVar, Sequence

from ..config import Opt, secret_names, validate_options
from ..errors import Conflict, DriverError, InvalidParameter
from ..objects import Connection, Snapshot, Volume
from ..volume_types import extra_specs_of, qos_of


class Driver:
    name: ClassVar[str] = ""
    options: ClassVar[Sequence[Opt]] = ()
    # Facts shown by storage_backend_info and used in docs.
    capabilities: ClassVar[dict] = {}
    # The options that say where the backend's data is (never secret ones): the store keeps their
    # values with the backend's name, and refuses a task whose values differ (backend_identity.py).
    locating_options: ClassVar[Sequence[str]] = ()
    # Whether inspect_volume/inspect_snapshot can tell the backend's truth (Cinder drivers cannot):
    # a task with nothing to do checks its object on the backend only then.
    can_verify: ClassVar[bool] = True

    def __init__(self, backend_name: str, conf: dict) -> None:
        self.backend_name = backend_name
        self.conf = conf
        # The store this task runs for ({"id", "store", "adopted"}, backend_identity.owner_of): a driver
        # that keeps an owner marker on the backend claims it with this; None when no store is known.
        self.owner: dict | None = None
        # Set on the controller only (the action plugin), when it can run probe.py on the task's host:
        # runs a list of probe_request()s there and returns their reports, or None when it could not.
        self.probe_on_host: Callable[[list], list | None] | None = None
        # The inventory host where this backend's backend-side work runs (the backend's `host` key):
        # read by the action plugin only; None runs it where the task runs (build_driver sets it).
        self.backend_host: str | None = None
        # The backend's named volume types (volume_types.check_types), set by build_driver.
        self.volume_types: dict[str, dict] = {}

    @classmethod
    def from_options(cls, backend_name: str, given: dict, where: str = "backend") -> Driver:
        return cls(backend_name, validate_options(cls.options, given, where, cls.name))

    @classmethod
    def secret_option_names(cls, given: dict) -> list[str]:
        """Names of the options in the task's `backend` whose values are masked in results and logs."""
        return secret_names(cls.options)

    def locator(self) -> dict:
        """{option: value} of the locating options, as the driver uses them (a path normalized)."""
        return {name: self.conf.get(name) for name in self.locating_options}

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

    def inspect_volume(self, volume: Volume) -> dict:
        """What the backend holds for `volume`: `object` (how a user finds it: a path, pool/image),
        `exists`, and where the driver can tell cheaply, `size` (bytes) and `format`."""
        return {"object": f"volume-{volume.id}", "exists": self.volume_exists(volume)}

    def probe_request(self, obj: Volume | Snapshot) -> dict | None:
        """The file check (probe.py: {"path", "head"}) whose report answers inspect_volume or
        inspect_snapshot for `obj` (inspect_from_probe); None when this driver's check needs more."""
        return None

    def inspect_from_probe(self, obj: Volume | Snapshot, report: dict) -> dict:
        """inspect_volume's (or inspect_snapshot's) answer, made from probe_request's report."""
        raise NotImplementedError

    def revert_to_snapshot(self, volume: Volume, snapshot: Snapshot) -> dict:
        """Optional: make `volume` hold the data of its `snapshot` again, keeping the volume's
        size (volumes only grow). Returns the volume's driver_data."""
        raise DriverError(f"driver {self.name!r} cannot revert a volume to a snapshot; "
                          "create a new volume from the snapshot instead", "revert_to")

    def image_of(self, obj: Volume | Snapshot) -> tuple[str, str]:
        """Optional: (path, qemu-img format) of a volume's or snapshot's image on this host, for backups
        (backups.py reads a snapshot's and writes a volume's through qemu-img): a file, or a filename of a
        qemu block driver (rbd:...) that carries no secret, since it is on qemu-img's command line."""
        raise self._no_backups()

    def refuse_without_backups(self) -> None:
        """Raise image_of's refusal when the driver has none: a backup task is refused in its plan, before
        it makes a temporary snapshot (on lvm thick, as large as the volume) or the target directory."""
        if type(self).image_of is Driver.image_of:
            raise self._no_backups()

    def _no_backups(self) -> DriverError:
        return DriverError(f"driver {self.name!r} cannot back up or restore volumes yet (the file and rbd drivers "
                           "can)", "backend.driver")

    def refuse_snapshots_without_room(self, volumes: list[Volume], what: str) -> None:
        """Optional: refuse, before any is taken, snapshots of all `volumes` the backend has no room for
        (a group snapshot takes its members one after the other); `what` names them in the message."""

    def allocated_bytes(self, volume: Volume) -> int | None:
        """Optional: the bytes the volume itself takes on the backend (without what it shares with
        its snapshots or clones); None when the driver cannot tell or the object is gone."""
        return None

    def half_made_data(self, obj: Volume | Snapshot, source: Volume | Snapshot) -> dict:
        """The driver_data of `obj`, a snapshot or volume made from `source` whose create may not
        have returned (killed, or failed): what deleting it must know to undo exactly what that
        create began. The record keeps what the create never got to write, so drivers whose
        delete depends on it infer it from the source. Default: the record's own."""
        return obj.driver_data

    def local_path(self, volume_id: str) -> str | None:
        """The file on this host that backs the volume, for drivers that keep volumes as local
        files (a loop device may serve it); None for the others."""
        return None

    def copy_freezes_image(self, volume: Volume) -> bool:
        """Whether a snapshot or clone of `volume` freezes its current image file (then a local
        daemon holding that file open would lose its later writes, so the core refuses)."""
        return False

    # volume types, extra specs, QoS, pool (volume_types.py) --------------
    # How this driver changes the QoS of an existing volume: "backend" (change_qos runs a step on the
    # backend), "attach" (the record changes; it applies at the next attach), None (refused).
    qos_change: ClassVar[str | None] = None

    def check_spec(self, spec: dict | None, pool: str | None) -> None:
        """Refuse, before anything changes, what this driver cannot honour of a volume's spec
        (volume_types.requested_spec) and pool, naming the option and the driver: never ignored.
        Default: none of it."""
        if extra_specs_of(spec):
            raise InvalidParameter(f"extra_specs: driver {self.name!r} honours no extra specs (given "
                                   f"{', '.join(sorted(extra_specs_of(spec)))})", "extra_specs")
        if qos_of(spec):
            raise InvalidParameter(f"qos: driver {self.name!r} cannot limit a volume's rate", "qos")
        if pool is not None:
            raise InvalidParameter(f"pool: driver {self.name!r} has no pools to choose from", "pool")

    def default_pool(self) -> str | None:
        """The pool a volume goes to when the task names none (kept in its record); None: no pools."""
        return None

    def change_qos(self, volume: Volume) -> dict:
        """With qos_change "backend": apply `volume.volume_type`'s qos_specs to the existing volume
        (none: remove its limits). Returns the volume's driver_data."""
        raise DriverError(f"qos: driver {self.name!r} cannot change the QoS of an existing volume", "qos")

    # adopting (storage_volume source.existing) ----------------------------
    def find_existing(self, name: str) -> dict | None:
        """The object called `name` on the backend that a volume would take over: `object` (how a user
        finds it), `size` (bytes) and `format`; None when there is none. An object the driver cannot
        take over whole (a snapshot, an image that depends on others) is refused, naming source.existing."""
        raise DriverError(f"source.existing: driver {self.name!r} cannot take over existing objects; create "
                          "the volume, and copy the data into it", "source.existing")

    def adopt_volume(self, volume: Volume, name: str) -> dict:
        """Take over `name` (find_existing's object) as `volume`: renamed to the volume's own object
        name when they differ; its data is not touched. Returns the volume's driver_data."""
        raise DriverError(f"source.existing: driver {self.name!r} cannot take over existing objects; create "
                          "the volume, and copy the data into it", "source.existing")

    # snapshots ----------------------------------------------------------
    def create_snapshot(self, snapshot: Snapshot, volume: Volume) -> tuple[dict, dict]:
        """Return (snapshot's driver_data, volume's driver_data)."""
        raise NotImplementedError

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        raise NotImplementedError

    def volumes_share_snapshot_data(self, snapshot: Snapshot) -> bool:
        """Whether volumes made from `snapshot` may share its data (a backing file, a copy-on-write
        clone), so that deleting it merges, hides or flattens: snapshot retention keeps such a
        snapshot. Default: they may (a driver that cannot tell is not guessed about)."""
        return True

    def snapshot_exists(self, snapshot: Snapshot) -> bool:
        raise NotImplementedError

    def inspect_snapshot(self, snapshot: Snapshot) -> dict:
        """As inspect_volume, for a snapshot: `object` and `exists`."""
        return {"object": f"snapshot-{snapshot.id}", "exists": self.snapshot_exists(snapshot)}

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

    def read_owner(self) -> dict | None:
        """The owner marker on the backend ({"id", "store", "backend"}): which state store uses it;
        None when there is none, or the driver keeps none."""
        return None

    def owned_elsewhere(self, marker: dict | None) -> bool:
        """Whether the owner marker found on the backend names another store than this task's."""
        if marker is None:
            return False
        # The same store under its id or its name: a store made again in the same place (its state lost) is this one.
        if self.owner is None:
            return True
        return marker.get("id") != self.owner.get("id") and marker.get("store") != self.owner.get("store")

    def refuse_foreign_owner(self, marker: dict | None, option: str) -> None:
        """Before a change: a backend another store owns is refused, unless this store used it before owner
        markers existed (its backend record was adopted): two stores on one backend cannot tell whose objects
        are whose, and each one's drift check would call the other's volumes unknown."""
        if not self.owned_elsewhere(marker) or self.owner is None or self.owner.get("adopted"):
            return
        where = ", ".join(f"{k} {v!r}" for k, v in self.locator().items())
        raise Conflict(f"{option}: backend {self.backend_name!r} ({where}) belongs to another state store, "
                       f"{marker.get('store')!r} (as its backend {marker.get('backend')!r}); this task's store is "
                       f"{self.owner.get('store')!r}. Give this backend its own place (another {option}), or use "
                       "that store; nothing was changed", option)

    def unseen_reason(self) -> str | None:
        """Why this host cannot see the backend (a file driver's directory that is not here), or None.
        The drift check's backend view refuses to call objects gone from a backend it cannot see."""
        return None

    def list_exports(self) -> list[dict] | None:
        """The exports the backend holds for this backend's volumes, for the drift check: each
        {"volume_id", "connection_id" (None when the export names no connection), "export" (how a user
        finds it)}; None when the driver keeps no export state of its own (the connection info is all)."""
        return None

    def export_expected(self, connection: Connection) -> bool:
        """Whether an established connection has an export that list_exports would show."""
        return False

    def list_leftovers(self) -> list[str]:
        """Internal objects nothing needs any more (temp files, hidden images or snapshots whose
        last dependent is gone), as left by an interrupted task: named for the drift report."""
        return []

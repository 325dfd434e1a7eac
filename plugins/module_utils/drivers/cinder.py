# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `cinder` driver: any Cinder volume driver class, run in the module's process.

    backend:
      name: ceph-via-cinder
      driver: cinder
      volume_driver: cinder.volume.drivers.rbd.RBDDriver
      rbd_pool: volumes                 # the Cinder driver's own options, as in cinder.conf
      rbd_ceph_conf: /etc/ceph/ceph.conf

The adapter declares only its own option (`volume_driver`); every other key is an option
of the Cinder driver. Those are known only where the `cinder` package is installed (the
host the module runs on), so they are checked there, by oslo.config, against the options
the driver registers: an unknown name or a wrong type fails naming the option and the
driver's own options.

Cinder drivers take volume and snapshot objects: they get light objects (`CinderObject`)
built from our records, with the fields Cinder's versioned objects have (id, name
`volume-<id>`, size, provider_location, ...). What a driver returns (its model update:
provider_location, provider_auth, ...) is kept in the record's driver_data and put back
on the object next time: our records stay the source of truth, nothing is read from or
written to a Cinder database.

Process-wide effects, exactly (measured by tests/utils/cinder_side_effects.py with
Cinder's RBDDriver; nothing else is patched, faked or configured):
  - importing `cinder` sets os.environ['EVENTLET_NO_GREENDNS'] = 'yes' and imports
    eventlet, without monkey patching (Cinder then runs in its native-threads mode);
  - importing Cinder's modules registers their option declarations on oslo.config's
    global cfg.CONF (declarations only: cfg.CONF is never parsed and no value is set on
    it; the driver's values live in a private ConfigOpts, see `Configuration`);
  - importing Cinder's config module makes oslo.log add a stderr handler to the root
    logger when it has none; the adapter removes it again right after the import, so
    logging is left as it was (the drivers' loggers get no handler, level or format:
    their warnings go wherever the process's logging sends them);
  - Cinder's dependencies add warning filters for their own warning categories when
    imported (urllib3's SecurityWarning/InsecurePlatformWarning, requests'
    DependencyWarning/FileModeWarning) and NullHandlers on their own loggers, as
    libraries do;
  - `cinder.volume.volume_utils.setup_tracing(None)`, called by every driver's __init__,
    sets that Cinder module's own trace flags to off; RBDDriver makes one
    multiprocessing semaphore (rbd_concurrent_flatten_operations) for itself.
No signal handlers, threads, stdout/stderr or global configuration values change.
No logging configuration, no fake packages in sys.modules, no monkey patching, no
rootwrap/privsep set-up: a driver that runs commands as root needs the module to run as
root (become), where oslo.concurrency runs them directly.
"""

from __future__ import annotations

import copy
import importlib
import logging
import re
from typing import Any, Callable

from ..config import Opt, validate_options
from ..errors import BlockstoreError, DriverError, InvalidParameter, MissingDependency
from ..objects import Connection, Snapshot, Volume
from ..volume_types import with_front_end_qos
from .base import Driver
from .cinder_objects import (
    SNAPSHOT_FIELDS,
    VOLUME_FIELDS,
    CinderObject,
    Configuration,
    is_plain,
    model_fields,
    unsealed,
    volume_type_object,
)

REQUIREMENTS_FILE = "requirements-cinder.txt"
CLASS_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")
OPTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names that hold credentials in Cinder drivers' options (san_password, chap_password,
# *_secret, api tokens): masked in results before cinder itself is importable.
SECRET_NAME = re.compile(r"password|secret|token|passphrase", re.IGNORECASE)
# Options some Cinder drivers read as plain attributes of their configuration without
# declaring them (cinderlib set them the same way).
ATTRIBUTE_OPTIONS = {"cinder.volume.drivers.rbd.RBDDriver": ("rbd_keyring_conf",)}
# Per Cinder driver class, the driver options that say where its volumes are (backend_identity.py);
# a class not listed is located by the common ones of DEFAULT_LOCATING it is given.
LOCATING_BY_CLASS = {
    "cinder.volume.drivers.rbd.RBDDriver": ("rbd_pool", "rbd_cluster_name", "rbd_ceph_conf"),
    "cinder.volume.drivers.lvm.LVMVolumeDriver": ("volume_group", "target_ip_address"),
    "cinder.volume.drivers.nfs.NfsDriver": ("nfs_shares_config", "nfs_mount_point_base"),
}
DEFAULT_LOCATING = ("san_ip", "san_hosts", "volume_group", "rbd_pool", "rbd_ceph_conf", "nfs_shares_config",
                    "storage_pool", "pool_name")
# Cinder's default volume_name_template; hidden images (name.deleted) are not volumes.
VOLUME_IMAGE = re.compile(r"^volume-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
MAX_LISTED = 100000
HIDDEN_SUFFIX = ".deleted"


class CinderDriver(Driver):
    """Runs a Cinder volume driver class; see the module docstring for what it changes globally."""

    name = "cinder"
    # volume_exists cannot answer (below): the records stay the source of truth for a task with nothing to do.
    can_verify = False
    options = (
        Opt("volume_driver", required=True,
            help="The Cinder volume driver class to run, as in cinder.conf, e.g. "
                 "cinder.volume.drivers.rbd.RBDDriver. Every other key of the backend is an option of that "
                 "driver (as in its cinder.conf section), checked where the module runs. Needs the Python "
                 f"package cinder (29.x, {REQUIREMENTS_FILE}) on the host the module runs on."),
    )
    capabilities = {
        "formats": ["raw"],
        "snapshot": "the Cinder driver's create_snapshot",
        "clone": "the Cinder driver's create_cloned_volume",
        "volume_from_snapshot": "the Cinder driver's create_volume_from_snapshot",
        "revert_to_snapshot": "the Cinder driver's revert_to_snapshot, where it has one",
        "connection": "what the Cinder driver's initialize_connection returns (rbd, iscsi, fc, nvmeof...)",
        "capacity_stats": "the Cinder driver's get_volume_stats",
        "needs": f"the Python package cinder (29.x) on the host the module runs on ({REQUIREMENTS_FILE})",
    }

    locating_options = ("volume_driver",)

    def __init__(self, backend_name: str, conf: dict) -> None:
        super().__init__(backend_name, conf)
        self.class_path = conf["volume_driver"]
        self.driver_options = dict(conf.get("driver_options") or {})
        self._impl: Any = None
        self._context: Any = None
        self._hidden: list[str] = []

    @classmethod
    def from_options(cls, backend_name: str, given: dict, where: str = "backend") -> Driver:
        declared = {o.name for o in cls.options}
        own = {k: v for k, v in given.items() if k in declared}
        extra = {k: v for k, v in given.items() if k not in declared}
        for key, value in extra.items():
            if not isinstance(key, str) or not OPTION_NAME.match(key):
                raise InvalidParameter(f"{where}: {key!r} is not an option name", where)
            if value is not None and not is_plain(value):
                raise InvalidParameter(f"{where}.{key}: must be text, a number, a boolean, a list or a dict",
                                       f"{where}.{key}")
        conf = validate_options(cls.options, own, where, cls.name)
        if not CLASS_PATH.match(conf["volume_driver"]):
            raise InvalidParameter(f"{where}.volume_driver: {conf['volume_driver']!r} is not a class path like "
                                   "cinder.volume.drivers.rbd.RBDDriver", f"{where}.volume_driver")
        conf["driver_options"] = {k: v for k, v in extra.items() if v is not None}
        return cls(backend_name, conf)

    @classmethod
    def secret_option_names(cls, given: dict) -> list[str]:
        return [k for k in given if isinstance(k, str) and SECRET_NAME.search(k)]

    def locator(self) -> dict:
        """The driver class and its locating options (LOCATING_BY_CLASS), never a secret one."""
        names = LOCATING_BY_CLASS.get(self.class_path, DEFAULT_LOCATING)
        found = {n: self.driver_options[n] for n in names if n in self.driver_options and not SECRET_NAME.search(n)}
        return {"volume_driver": self.class_path, **found}

    # loading the Cinder driver (where the module runs) -----------------------
    def _load(self) -> Any:
        if self._impl is not None:
            return self._impl
        # oslo.log's register_options, run when Cinder's config module is imported, gives the
        # root logger a stderr handler if it has none: taken off again, logging stays as it was.
        root_handlers = list(logging.getLogger().handlers)
        try:
            try:
                import cinder  # noqa: F401 - sets EVENTLET_NO_GREENDNS; see the module docstring
                from cinder import context as cinder_context
                from oslo_config import cfg
            except ImportError as exc:
                raise MissingDependency(
                    f"backend.driver: Failed to import the required Python library (cinder) for driver 'cinder': "
                    f"{exc}. Install it on the host the module runs on: pip install -r {REQUIREMENTS_FILE} "
                    "(cinder 29.x)", "cinder", "backend.driver") from None
            module_name, _dot, class_name = self.class_path.rpartition(".")
            try:
                driver_cls = getattr(importlib.import_module(module_name), class_name)
            except (ImportError, AttributeError) as exc:
                raise InvalidParameter(f"backend.volume_driver: cannot load the Cinder driver {self.class_path}: "
                                       f"{type(exc).__name__}: {exc}", "backend.volume_driver") from None
        finally:
            root = logging.getLogger()
            for handler in [h for h in root.handlers if h not in root_handlers]:
                root.removeHandler(handler)
        attributes = {k: self.driver_options[k] for k in ATTRIBUTE_OPTIONS.get(self.class_path, ())
                      if k in self.driver_options}
        given = {k: v for k, v in self.driver_options.items() if k not in attributes}
        configuration = Configuration(cfg, self.backend_name, given, attributes)
        impl = self._call(f"loading {self.class_path}", lambda: driver_cls(
            configuration=configuration, host=f"blockstore@{self.backend_name}", cluster_name=None,
            active_backend_id=None, is_vol_db_empty=False))
        unknown = configuration.unknown()
        if unknown:
            own = sorted(o.dest for o in (getattr(driver_cls, "get_driver_options", list)() or []))
            raise InvalidParameter(
                f"backend: unknown option(s) {', '.join(unknown)} for Cinder driver {self.class_path}; its own "
                f"options: {', '.join(own) or 'none'} (Cinder's common volume options are accepted too)",
                f"backend.{unknown[0]}")
        self._context = cinder_context.get_admin_context()
        self._call("do_setup", lambda: impl.do_setup(self._context))
        self._call("check_for_setup_error", impl.check_for_setup_error)
        self._impl = impl
        return impl

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """Run a call into the Cinder driver. A foreign driver fails with its own exception
        classes (Cinder's, librados', oslo.concurrency's...): each becomes a DriverError
        naming the class, so the task fails cleanly and the store stays truthful."""
        try:
            return call()
        except BlockstoreError:
            raise
        except Exception as exc:
            message = getattr(exc, "msg", None) or str(exc) or repr(exc)
            raise DriverError(f"cinder driver {self.class_path}: {what} failed: {type(exc).__name__}: "
                              f"{message}") from None

    # light objects ------------------------------------------------------------
    def _volume(self, volume: Volume, size: int | None = None, model: dict | None = None) -> CinderObject:
        fields = dict(copy.deepcopy(VOLUME_FIELDS))
        fields.update(
            id=volume.id, name_id=volume.id, _name_id=None, name=f"volume-{volume.id}", size=size or volume.size,
            display_name=volume.name, display_description=volume.description, status=volume.status,
            host=f"blockstore@{self.backend_name}#{self.backend_name}", metadata=dict(volume.metadata),
            volume_metadata=[], multiattach=volume.multiattach, snapshot_id=volume.source_snapshot_id,
            source_volid=volume.source_volume_id, created_at=volume.created_at, obj_context=self._context)
        fields.update(unsealed(model if model is not None else volume.driver_data.get("model", {})))
        light_type = volume_type_object(volume.volume_type, self.backend_name, volume.id)
        if light_type is not None:
            fields.update(volume_type=light_type, volume_type_id=light_type.id)
        return CinderObject(**fields)

    def _snapshot(self, snapshot: Snapshot, volume: Volume | None = None) -> CinderObject:
        if volume is None:
            volume = Volume(id=snapshot.volume_id, name="", backend=self.backend_name, size=snapshot.volume_size,
                            status="available")
            volume_model = snapshot.driver_data.get("volume_model", {})
        else:
            volume_model = volume.driver_data.get("model", {})
        fields = dict(copy.deepcopy(SNAPSHOT_FIELDS))
        fields.update(
            id=snapshot.id, name=f"snapshot-{snapshot.id}", volume_id=snapshot.volume_id,
            volume_name=f"volume-{snapshot.volume_id}", volume_size=snapshot.volume_size,
            volume=self._volume(volume, model=volume_model), display_name=snapshot.name,
            display_description=snapshot.description, status=snapshot.status, metadata=dict(snapshot.metadata),
            created_at=snapshot.created_at, obj_context=self._context)
        fields.update(unsealed(snapshot.driver_data.get("model", {})))
        return CinderObject(**fields)

    def _volume_data(self, volume: Volume, light: CinderObject, update: dict | None, size: int) -> dict:
        model = dict(volume.driver_data.get("model", {}))
        model.update(model_fields(light.changes()))
        model.update(model_fields(update))
        for key in ("size", "status", "display_name", "display_description", "metadata"):
            model.pop(key, None)  # ours, not the driver's
        return {"volume_driver": self.class_path, "size": size, "model": model}

    # volumes ------------------------------------------------------------
    def create_volume(self, volume: Volume) -> dict:
        impl = self._load()
        light = self._volume(volume, model={})
        update = self._call(f"create_volume {light.name}", lambda: impl.create_volume(light))
        return self._volume_data(volume, light, update, volume.size)

    def create_volume_from_snapshot(self, volume: Volume, snapshot: Snapshot) -> dict:
        impl = self._load()
        light = self._volume(volume, model={})
        source = self._snapshot(snapshot)
        update = self._call(f"create_volume_from_snapshot {light.name} from {source.name}",
                            lambda: impl.create_volume_from_snapshot(light, source))
        return self._volume_data(volume, light, update, volume.size)

    def create_cloned_volume(self, volume: Volume, source: Volume) -> tuple[dict, dict]:
        impl = self._load()
        light = self._volume(volume, model={})
        src = self._volume(source)
        update = self._call(f"create_cloned_volume {light.name} from {src.name}",
                            lambda: impl.create_cloned_volume(light, src))
        return self._volume_data(volume, light, update, volume.size), source.driver_data

    def extend_volume(self, volume: Volume, new_size: int) -> dict:
        impl = self._load()
        # Cinder calls extend_volume with the volume at its old size, and the new one apart.
        old_size = volume.driver_data.get("size") or volume.size
        light = self._volume(volume, size=old_size)
        if old_size < new_size:
            self._call(f"extend_volume {light.name} to {new_size} GiB", lambda: impl.extend_volume(light, new_size))
        return self._volume_data(volume, light, None, max(old_size, new_size))

    def delete_volume(self, volume: Volume) -> None:
        impl = self._load()
        light = self._volume(volume)
        rbd_driver = _rbd_driver_module(impl)
        parents = self._call(f"reading the parent of {light.name}",
                             lambda: _rbd_clone_parents(rbd_driver, impl, light.name, volume.source_volume_id)
                             ) if rbd_driver else []
        self._call(f"delete_volume {light.name}", lambda: impl.delete_volume(light))
        for parent in parents:
            self._call(f"removing {parent}@{light.name}.clone_snap",
                       lambda parent=parent: _rbd_drop_clone_snap(rbd_driver, impl, parent, light.name))

    def volume_exists(self, volume: Volume) -> bool:
        raise DriverError("cinder driver: Cinder drivers cannot tell whether one volume exists; the records "
                          "are the source of truth")

    def revert_to_snapshot(self, volume: Volume, snapshot: Snapshot) -> dict:
        impl = self._load()
        if not hasattr(impl, "revert_to_snapshot"):
            return super().revert_to_snapshot(volume, snapshot)
        light = self._volume(volume)
        snap = self._snapshot(snapshot, volume)
        self._call(f"revert_to_snapshot {light.name} to {snap.name}",
                   lambda: impl.revert_to_snapshot(self._context, light, snap))
        # A revert may restore the snapshot's size; volumes only grow.
        if snapshot.volume_size < volume.size:
            self._call(f"extend_volume {light.name} to {volume.size} GiB",
                       lambda: impl.extend_volume(self._volume(volume, size=snapshot.volume_size), volume.size))
        return self._volume_data(volume, light, None, volume.size)

    # snapshots ----------------------------------------------------------
    def create_snapshot(self, snapshot: Snapshot, volume: Volume) -> tuple[dict, dict]:
        impl = self._load()
        light = self._snapshot(snapshot, volume)
        update = self._call(f"create_snapshot {light.name} of {light.volume_name}",
                            lambda: impl.create_snapshot(light))
        model = model_fields(light.changes())
        model.pop("status", None)
        model.update(model_fields(update))
        data = {"volume_driver": self.class_path, "model": model,
                "volume_model": volume.driver_data.get("model", {})}
        return data, volume.driver_data

    def delete_snapshot(self, snapshot: Snapshot) -> None:
        impl = self._load()
        light = self._snapshot(snapshot)
        self._call(f"delete_snapshot {light.name}", lambda: impl.delete_snapshot(light))

    def snapshot_exists(self, snapshot: Snapshot) -> bool:
        raise DriverError("cinder driver: Cinder drivers cannot tell whether one snapshot exists; the records "
                          "are the source of truth")

    # volume types -------------------------------------------------------
    def check_spec(self, spec: dict | None, pool: str | None) -> None:
        # The type (extra specs, QoS specs) goes to the Cinder driver as Cinder hands it over; pools are
        # the Cinder driver's own choice (its options), so a pool is refused.
        super().check_spec(None, pool)

    # connections --------------------------------------------------------
    def initialize_connection(self, volume: Volume, connection: Connection) -> dict:
        impl = self._load()
        light = self._volume(volume)
        connector = dict(connection.connector or {})
        connector.setdefault("host", connection.host)
        connector.setdefault("multipath", False)
        export = self._call(f"create_export {light.name}",
                            lambda: impl.create_export(self._context, light, connector))
        light.update(export or {})
        info = self._call(f"initialize_connection {light.name}",
                          lambda: impl.initialize_connection(light, connector))
        if not isinstance(info, dict) or "driver_volume_type" not in info:
            raise DriverError(f"cinder driver {self.class_path}: initialize_connection returned no connection "
                              f"info (got {type(info).__name__})")
        info = copy.deepcopy(info)
        info.setdefault("data", {}).setdefault("access_mode", connection.mode)
        info = with_front_end_qos(info, volume.volume_type)
        # The export's model update is needed again to remove it: kept with the connection.
        info["cinder_export"] = model_fields(export)
        return info

    def terminate_connection(self, volume: Volume, connection: Connection) -> None:
        impl = self._load()
        light = self._volume(volume)
        light.update(unsealed((connection.connection_info or {}).get("cinder_export") or {}))
        connector = dict(connection.connector or {})
        connector.setdefault("host", connection.host)
        self._call(f"terminate_connection {light.name}", lambda: impl.terminate_connection(light, connector))
        self._call(f"remove_export {light.name}", lambda: impl.remove_export(self._context, light))

    # backend ------------------------------------------------------------
    def check_setup(self) -> None:
        self._load()

    def _listed_volumes(self) -> dict[str, Any]:
        """{id: size in GiB} of the backend's volumes, from the driver's listing for Cinder's manage
        API (images named volume-<id>, as Cinder names them); drivers without it cannot say."""
        impl = self._load()
        listing = getattr(impl, "get_manageable_volumes", None)
        try:
            entries = self._call("get_manageable_volumes",
                                 lambda: listing([], None, MAX_LISTED, 0, ["size"], ["asc"]))
        except DriverError as exc:
            raise DriverError(f"cinder driver {self.class_path}: cannot list the backend's volumes ({exc})") from None
        volumes = {}
        self._hidden = []
        for entry in entries or []:
            name = str(((entry or {}).get("reference") or {}).get("source-name") or "")
            match = VOLUME_IMAGE.match(name)
            if match:
                volumes[match.group(1)] = entry.get("size")
            elif VOLUME_IMAGE.match(name.rsplit(".", 1)[0]) and name.endswith(HIDDEN_SUFFIX):
                self._hidden.append(name)
        return volumes

    def list_volume_ids(self) -> list[str]:
        return sorted(self._listed_volumes())

    def list_leftovers(self) -> list[str]:
        """Images the Cinder driver hid (volume-<id>.deleted, Cinder's RBDDriver keeps a deleted
        volume that clones use) and still lists: reported, never removed behind the driver (the
        adapter removes Cinder RBD's when their last clone is deleted, see `_rbd_drop_clone_snap`)."""
        try:
            self._listed_volumes()
        except DriverError:
            return []
        return sorted(self._hidden)

    def get_stats(self) -> dict:
        impl = self._load()
        stats = self._call("get_volume_stats", lambda: impl.get_volume_stats(refresh=True)) or {}
        stats = {k: v for k, v in stats.items() if is_plain(v)}
        pools = stats.get("pools") or [{**stats, "pool_name": stats.get("volume_backend_name")}]
        try:
            listed: dict | None = self._listed_volumes()
        except DriverError:
            listed = None  # the driver has no listing

        def total(key: str) -> Any:
            values = [p.get(key) for p in pools]
            if all(isinstance(v, (int, float)) for v in values):
                return round(sum(values), 2)
            return "unknown" if "unknown" in values or None in values else values[0]

        provisioned = total("provisioned_capacity_gb")
        if not isinstance(provisioned, (int, float)) and listed is not None and \
                all(isinstance(size, (int, float)) for size in listed.values()):
            provisioned = sum(listed.values())  # drivers of pools they own alone leave it to Cinder
        return {
            "driver": self.name,
            "volume_driver": self.class_path,
            "total_capacity_gb": total("total_capacity_gb"),
            "free_capacity_gb": total("free_capacity_gb"),
            "provisioned_capacity_gb": provisioned,
            "volume_count": None if listed is None else len(listed),
            "pools": [{"name": p.get("pool_name") or self.backend_name,
                       "total_capacity_gb": p.get("total_capacity_gb"),
                       "free_capacity_gb": p.get("free_capacity_gb")} for p in pools],
            "cinder": {k: v for k, v in stats.items() if k != "pools"},
        }


# Cinder's RBDDriver clones a volume through a snapshot `<clone>.clone_snap` of its source and
# hides a deleted source that still has one as `<source>.deleted`. It removes that snapshot, and
# the hidden source once it has no snapshot left, only when a clone's delete takes its slow path
# (`_delete_clone_parent_refs`); a clone removed on the fast path leaves both behind for good (and
# its source, deleted later, is then hidden for a clone that no longer exists). The adapter runs
# the driver's own clean-up for a clone that is really gone and whose snapshot has no child left.
def _rbd_driver_module(impl: Any) -> Any:
    """Cinder's rbd driver module when `impl` is its RBDDriver (or a subclass), else None."""
    for cls in type(impl).__mro__:
        if cls.__name__ == "RBDDriver" and cls.__module__ == "cinder.volume.drivers.rbd":
            return importlib.import_module(cls.__module__)
    return None


def _rbd_clone_parents(rbd_driver: Any, impl: Any, name: str, source_id: str | None) -> list[str]:
    """Images that may hold `<name>.clone_snap`: the image's parent as Ceph tells it, and (for a
    delete resumed after the image went) its source's image, hidden or not."""
    found = []
    with rbd_driver.RADOSClient(impl) as client:
        try:
            image = impl.rbd.Image(client.ioctx, name, read_only=True)
        except impl.rbd.ImageNotFound:
            pass
        else:
            try:
                found.append(image.parent_info()[1])
            except impl.rbd.ImageNotFound:  # not a clone
                pass
            finally:
                image.close()
    if source_id:
        found += [f"volume-{source_id}", f"volume-{source_id}{HIDDEN_SUFFIX}"]
    return list(dict.fromkeys(found))


def _rbd_drop_clone_snap(rbd_driver: Any, impl: Any, parent: str, name: str) -> None:
    """Cinder's own `_delete_clone_parent_refs` for `parent@<name>.clone_snap`, when the clone
    `name` is gone (not hidden either) and nothing else was cloned from that snapshot."""
    snap = f"{name}.clone_snap"
    with rbd_driver.RADOSClient(impl) as client:
        existing = set(impl.RBDProxy().list(client.ioctx))
        if name in existing or f"{name}{HIDDEN_SUFFIX}" in existing or parent not in existing:
            return
        image = impl.rbd.Image(client.ioctx, parent)
        try:
            if snap not in {s["name"] for s in image.list_snaps()}:
                return
            image.set_snap(snap)
            children = list(getattr(image, "list_children2", image.list_children)())  # trashed children too
            image.set_snap(None)
        finally:
            image.close()
        if not children:
            impl._delete_clone_parent_refs(client, parent, snap)

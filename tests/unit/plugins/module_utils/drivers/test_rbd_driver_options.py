# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rbd driver as the controller sees it: option validation without the Ceph bindings.

The controller (Python >= 3.12) never has the rados/rbd bindings; building the driver
there must work and must not import them. Operations that need the cluster fail with a
message naming the packages and the interpreter to use.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import DRIVERS, build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.base import Driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import (
    DriverError,
    InvalidParameter,
    MissingDependency,
)
from ansible_collections.blockstore.storage.plugins.module_utils.objects import Snapshot, Volume

BINDINGS_PRESENT = all(importlib.util.find_spec(name) for name in ("rados", "rbd"))


def rbd_backend(**options):
    return {"name": "ceph1", "driver": "rbd", **options}


def test_registered_and_built_without_the_bindings():
    driver = build_driver(rbd_backend())
    assert "rbd" in DRIVERS
    assert driver.name == "rbd"
    assert "rados" not in sys.modules and "rbd" not in sys.modules


def test_defaults_are_cinders():
    conf = build_driver(rbd_backend()).conf
    assert conf == {
        "rbd_pool": "rbd", "rbd_ceph_conf": None, "rbd_user": None, "rbd_keyring_conf": None,
        "rbd_cluster_name": "ceph", "rbd_secret_uuid": None, "rbd_flatten_volume_from_snapshot": False,
        "rbd_max_clone_depth": 5, "rados_connect_timeout": -1,
    }


def test_cinder_conf_style_strings_are_converted():
    conf = build_driver(rbd_backend(rbd_flatten_volume_from_snapshot="True", rbd_max_clone_depth="2",
                                    rados_connect_timeout="5")).conf
    assert conf["rbd_flatten_volume_from_snapshot"] is True
    assert conf["rbd_max_clone_depth"] == 2
    assert conf["rados_connect_timeout"] == 5


@pytest.mark.parametrize(("options", "option", "words"), [
    ({"rbd_pol": "x"}, "backend", "unknown option(s) rbd_pol"),
    ({"rbd_max_clone_depth": -1}, "backend.rbd_max_clone_depth", "below the minimum 0"),
    ({"rbd_max_clone_depth": "deep"}, "backend.rbd_max_clone_depth", "not an integer"),
    ({"rbd_flatten_volume_from_snapshot": "maybe"}, "backend.rbd_flatten_volume_from_snapshot", "not a boolean"),
    ({"rbd_ceph_conf": "ceph.conf"}, "backend.rbd_ceph_conf", "must be an absolute path"),
    ({"rbd_keyring_conf": "etc/k"}, "backend.rbd_keyring_conf", "must be an absolute path"),
    ({"rbd_secret_uuid": "not-a-uuid"}, "backend.rbd_secret_uuid", "is not a UUID"),
    ({"rbd_pool": ""}, "backend.rbd_pool", "non-empty string"),
])
def test_bad_options_name_the_option(options, option, words):
    with pytest.raises(InvalidParameter) as caught:
        build_driver(rbd_backend(**options))
    assert caught.value.option == option
    assert words in str(caught.value)


def test_no_option_is_secret():
    # Keys stay in the keyring file; the options hold paths and names only, and the
    # secret uuid must reach consumers unmasked in the connection info.
    assert not [o.name for o in build_driver(rbd_backend()).options if o.secret]


def test_capabilities_say_how_deletes_and_stats_behave():
    caps = build_driver(rbd_backend()).capabilities
    assert "flattened first" in caps["snapshot_delete_with_dependents"]
    assert "ceph-mgr" in caps["capacity_stats"]
    assert caps["revert_to_snapshot"] is True


@pytest.mark.skipif(BINDINGS_PRESENT, reason="this interpreter has the Ceph bindings")
def test_missing_bindings_name_the_packages_and_the_interpreter():
    driver = build_driver(rbd_backend())
    volume = Volume(id="6f0c6a3c-0b7e-4d0b-9d7e-3f1d1c2b4a5e", name="v", backend="ceph1", size=1)
    for call in (driver.check_setup, lambda: driver.create_volume(volume), driver.get_stats):
        with pytest.raises(MissingDependency) as caught:
            call()
        text = str(caught.value)
        assert "python3-rados" in text and "python3-rbd" in text
        assert "/usr/bin/python3.11" in text and sys.executable in text


def test_revert_is_optional_in_the_driver_interface():
    class Bare(Driver):
        name = "bare"

    with pytest.raises(DriverError, match="driver 'bare' cannot revert a volume to a snapshot"):
        Bare("b", {}).revert_to_snapshot(None, None)


VOLUME_ID = "6f0c6a3c-0b7e-4d0b-9d7e-3f1d1c2b4a5e"
SNAPSHOT_ID = "0e6c7a63-8d4e-4b6e-9d55-0c0a56a1a001"


def test_backups_read_the_snapshot_and_write_the_volume_as_the_driver_reaches_the_cluster():
    driver = build_driver(rbd_backend(rbd_pool="volumes", rbd_ceph_conf="/etc/ceph/ceph.conf", rbd_user="cinder",
                                      rbd_keyring_conf="/etc/ceph/ceph.client.cinder.keyring",
                                      rados_connect_timeout=20))
    settings = (":conf=/etc/ceph/ceph.conf:id=cinder:keyring=/etc/ceph/ceph.client.cinder.keyring"
                ":client_mount_timeout=20:rados_mon_op_timeout=20:rados_osd_op_timeout=20")
    volume = Volume(id=VOLUME_ID, name="db", backend="ceph1", size=1)
    snapshot = Snapshot(id=SNAPSHOT_ID, name="backup-x", backend="ceph1", volume_id=VOLUME_ID, volume_size=1)
    assert driver.image_of(volume) == (f"rbd:volumes/volume-{VOLUME_ID}{settings}", "raw")
    # the snapshot, never the volume it is of: a backup is one point in time
    assert driver.image_of(snapshot) == (f"rbd:volumes/volume-{VOLUME_ID}@snapshot-{SNAPSHOT_ID}{settings}", "raw")
    driver.refuse_without_backups()  # rbd backs up; no bindings are needed to say so
    assert "rados" not in sys.modules and "rbd" not in sys.modules


def test_backup_filenames_escape_what_qemu_splits_at_and_leave_out_what_is_not_set():
    driver = build_driver(rbd_backend(rbd_pool="a/b@c:d", rbd_keyring_conf="/k/x:y\\w.keyring"))
    name, _fmt = driver.image_of(Volume(id=VOLUME_ID, name="db", backend="ceph1", size=1))
    assert name == f"rbd:a\\/b\\@c\\:d/volume-{VOLUME_ID}:keyring=/k/x\\:y\\\\w.keyring"
    # librados' defaults (ceph.conf, client.admin, no timeout) when the backend sets nothing
    assert build_driver(rbd_backend()).image_of(Volume(id=VOLUME_ID, name="db", backend="ceph1", size=1))[0] == \
        f"rbd:rbd/volume-{VOLUME_ID}"
    # another cluster: its configuration file (qemu refuses a `cluster` setting)
    other = build_driver(rbd_backend(rbd_cluster_name="backup"))
    assert other.image_of(Volume(id=VOLUME_ID, name="db", backend="ceph1", size=1))[0] == \
        f"rbd:rbd/volume-{VOLUME_ID}:conf=/etc/ceph/backup.conf"


@pytest.mark.parametrize("option", ["rbd_keyring_conf", "rbd_ceph_conf", "rbd_user"])
def test_a_backup_filename_value_with_an_at_sign_is_refused_naming_its_option(option):
    # qemu takes the first '@' after the pool for a snapshot's, escaped or not (the image's name would be wrong)
    driver = build_driver(rbd_backend(**{option: "/etc/ceph/a@b"}))
    with pytest.raises(DriverError, match=rf"^{option}: '/etc/ceph/a@b' holds an '@': qemu-img cannot") as caught:
        driver.image_of(Volume(id=VOLUME_ID, name="db", backend="ceph1", size=1))
    assert caught.value.option == option


@pytest.mark.parametrize("name", ["lvm", "cinder"])
def test_drivers_without_backups_still_refuse_them_naming_the_ones_that_can(name):
    from ansible_collections.blockstore.storage.plugins.module_utils.drivers import driver_class

    cls = driver_class(name)
    assert cls.image_of is Driver.image_of
    refusal = rf"driver '{name}' cannot back up or restore volumes yet \(the file and rbd drivers can\)"
    with pytest.raises(DriverError, match=refusal) as caught:
        Driver.refuse_without_backups(cls.__new__(cls))
    assert caught.value.option == "backend.driver"

# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_volume's volume_type, extra_specs, qos and pool on the real file driver in a temp directory:
what the record keeps, check mode, idempotence, a qos change, and every refusal (naming the option and the
driver, changing nothing); what each driver accepts; the connection info and the attach path a volume
with QoS gets; and a real qemu-storage-daemon throttled to the volume's limits."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils import connectors
from ansible_collections.blockstore.storage.plugins.module_utils.connectors import qsd
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import Conflict, InvalidParameter
from ansible_collections.blockstore.storage.plugins.module_utils.objects import Connection, from_record
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.transaction import perform, run_task
from ansible_collections.blockstore.storage.tests.unit.plugins.module_utils.test_resources import Lab as ResourceLab

TYPES = {"gold": {"extra_specs": {}, "qos": {"total_iops_sec": 500}},
         "fast": {"extra_specs": {"replication_enabled": "<is> True"}, "qos": {}}}


class Lab(ResourceLab):
    def run(self, handler, check_mode: bool = False, **params) -> dict:
        # As the action plugin does: the controller's plan knows the driver too.
        def execute(records: list, new_ids: list):
            return perform(handler, self.driver, params, records, new_ids, check_mode)
        return run_task(self.store, handler, "lab", params, check_mode, execute, driver=self.driver)


@pytest.fixture(params=["raw", "qcow2"])
def lab(request, tmp_path) -> Lab:
    made = Lab(str(tmp_path / "backend"), request.param, MemoryStore())
    made.driver = build_driver({"name": "lab", "driver": "file", "path": made.path, "format": request.param,
                                "volume_types": TYPES})
    return made


def state(lab: Lab) -> tuple:
    return sorted(json.dumps(r, sort_keys=True) for r in lab.store.all_records()), lab.files()


def test_a_volume_keeps_the_type_and_qos_it_was_created_with(lab):
    planned = lab.volume(name="v", size=1, volume_type="gold", qos={"write_iops_sec": 200}, check_mode=True)
    assert planned["changed"] and lab.files() == [] and lab.store.all_records() == []
    assert planned["actions"] == ["create volume 'v' of 1 GiB (type 'gold'; qos write_iops_sec=200)"]
    done = lab.volume(name="v", size=1, volume_type="gold", qos={"write_iops_sec": 200})
    # The task's qos replaces the type's; the record says what the volume was made with.
    expected = {"name": "gold", "extra_specs": {}, "qos_specs": {"write_iops_sec": 200}}
    assert done["volume"]["volume_type"] == expected and done["volume"]["pool"] is None
    assert lab.record("volume", "v")["volume_type"] == expected
    again = lab.volume(name="v", size=1, volume_type="gold", qos={"write_iops_sec": 200})
    assert not again["changed"] and again["actions"] == []
    # Options left out leave the volume as it is.
    assert not lab.volume(name="v")["changed"]


def test_a_type_alone_gives_its_qos_and_a_volume_without_one_records_none(lab):
    assert lab.volume(name="g", size=1, volume_type="gold")["volume"]["volume_type"] == {
        "name": "gold", "extra_specs": {}, "qos_specs": {"total_iops_sec": 500}}
    assert lab.volume(name="plain", size=1)["volume"]["volume_type"] is None


def test_the_file_drivers_qos_changes_in_the_record_for_the_next_attach(lab):
    lab.volume(name="v", size=1, qos={"total_bytes_sec": 1048576})
    before = state(lab)
    planned = lab.volume(name="v", qos={"read_bytes_sec": 2097152}, check_mode=True)
    assert planned["changed"] and state(lab) == before
    assert planned["actions"] == ["volume 'v': set qos read_bytes_sec=2097152 (applies at its next attach)"]
    assert planned["diff"]["before"]["volume_type"]["qos_specs"] == {"total_bytes_sec": 1048576}
    assert planned["diff"]["after"]["volume_type"]["qos_specs"] == {"read_bytes_sec": 2097152}
    lab.volume(name="v", qos={"read_bytes_sec": 2097152})
    assert lab.record("volume", "v")["volume_type"]["qos_specs"] == {"read_bytes_sec": 2097152}
    assert not lab.volume(name="v", qos={"read_bytes_sec": 2097152})["changed"]
    removed = lab.volume(name="v", qos={})
    assert removed["actions"] == ["volume 'v': remove its qos limits (applies at its next attach)"]
    assert lab.record("volume", "v")["volume_type"]["qos_specs"] == {}


@pytest.mark.parametrize(("params", "option", "words"), [
    ({"volume_type": "silver"}, "volume_type", "'silver' is not a volume type of backend 'lab'; defined: fast, gold"),
    ({"volume_type": "fast"}, "extra_specs", "driver 'file' honours no extra specs (given replication_enabled)"),
    ({"extra_specs": {"thin": True}}, "extra_specs", "driver 'file' honours no extra specs (given thin)"),
    ({"pool": "p1"}, "pool", "driver 'file' has no pools to choose from"),
    ({"pool": ""}, "pool", "must be a non-empty pool name"),
    ({"qos": {"total_iops_sec": 5, "read_iops_sec": 4}}, "qos", "total_iops_sec cannot be combined with read_iops_sec"),
    ({"qos": {"iops": 5}}, "qos", "unknown key(s) iops"),
    ({"qos": {"read_bytes_sec": 0}}, "qos.read_bytes_sec", "0 must be a positive integer"),
    ({"qos": {"read_bytes_sec": True}}, "qos.read_bytes_sec", "True must be a positive integer"),
    ({"extra_specs": "x"}, "extra_specs", "must be a dict of text keys and values"),
])
def test_what_cannot_be_honoured_is_refused_naming_the_option_and_nothing_changes(lab, params, option, words):
    with pytest.raises(InvalidParameter) as err:
        lab.volume(name="v", size=1, **params)
    assert words in str(err.value) and err.value.option == option
    assert lab.files() == [] and lab.store.all_records() == []
    lab.volume(name="v", size=1)  # the same task without it: the volume is made
    assert lab.files() and lab.record("volume", "v")["volume_type"] is None


def test_type_and_extra_specs_of_an_existing_volume_do_not_change(lab):
    lab.volume(name="v", size=1, volume_type="gold")
    lab.volume(name="plain", size=1)
    before = state(lab)
    with pytest.raises(Conflict, match=r"volume_type: volume 'plain' was created with no volume type; the "
                                       r"volume_type of an existing volume cannot change"):
        lab.volume(name="plain", volume_type="gold")
    with pytest.raises(InvalidParameter, match="pool: driver 'file' has no pools"):
        lab.volume(name="v", pool="x")
    with pytest.raises(InvalidParameter, match=r"volume_type: not with source\.existing"):
        lab.volume(name="w", source={"existing": "volume-x"}, volume_type="gold")
    assert state(lab) == before
    # The type it has, given again, is no change; its qos alone can change.
    assert not lab.volume(name="v", volume_type="gold")["changed"]
    assert lab.volume(name="v", qos={"total_iops_sec": 100})["changed"]
    assert lab.record("volume", "v")["volume_type"]["name"] == "gold"


def test_the_file_drivers_connection_info_carries_the_qos_and_only_userspace_takes_it(lab):
    lab.volume(name="v", size=1, qos={"total_iops_sec": 50})
    lab.volume(name="plain", size=1)
    volume, plain = (from_record(lab.record("volume", n)) for n in ("v", "plain"))
    connection = Connection(id="c", backend="lab", volume_id=volume.id, host="h")
    info = lab.driver.initialize_connection(volume, connection)
    assert info["data"]["qos_specs"] == {"total_iops_sec": 50}
    assert "qos_specs" not in lab.driver.initialize_connection(plain, connection)["data"]
    fmt = info["data"]["format"]
    assert connectors.choose("local", fmt, "auto", False, qos=True) == "userspace"
    assert connectors.choose("local", "raw", "auto", False, qos=False) == "loop"  # positive control
    with pytest.raises(Conflict, match="method: the volume has QoS limits") as err:
        connectors.choose("local", fmt, "kernel", False, qos=True)
    assert err.value.option == "method"
    with pytest.raises(Conflict, match="fc connections have no userspace path; remove the volume's qos"):
        connectors.choose("fc", "raw", "auto", True, qos=True)  # not "use method auto": auto is what failed
    assert connectors.choose("rbd", "raw", "auto", True, qos=True) == "userspace"  # rbd: krbd would ignore it


def test_rbd_and_cinder_accept_what_they_honour():
    rbd = build_driver({"name": "c", "driver": "rbd", "rbd_pool": "volumes", "volume_types": TYPES})
    rbd.check_spec({"name": None, "extra_specs": {}, "qos_specs": {"total_iops_sec": 5}}, "volumes")
    assert rbd.default_pool() == "volumes" and rbd.qos_change == "backend"
    with pytest.raises(InvalidParameter, match="pool: driver 'rbd' places volumes in its backend's rbd_pool "
                                               "'volumes' only; 'other' is refused") as err:
        rbd.check_spec(None, "other")
    assert err.value.option == "pool"
    with pytest.raises(InvalidParameter, match="extra_specs: driver 'rbd' honours no extra specs"):
        rbd.check_spec({"name": "fast", "extra_specs": TYPES["fast"]["extra_specs"], "qos_specs": {}}, None)
    cinder = build_driver({"name": "c", "driver": "cinder", "volume_driver": "cinder.volume.drivers.rbd.RBDDriver",
                           "volume_types": TYPES})
    cinder.check_spec({"name": "fast", "extra_specs": {"replication_enabled": "<is> True"},
                       "qos_specs": {"total_iops_sec": 5}}, None)
    assert cinder.qos_change is None
    with pytest.raises(InvalidParameter, match="pool: driver 'cinder' has no pools to choose from"):
        cinder.check_spec(None, "p")


@pytest.mark.parametrize(("types", "option"), [
    ([], "backend.volume_types"),
    ({"gold": {"qos": {"total_iops_sec": 1}, "size": 1}}, "backend.volume_types.gold"),
    ({"gold": {"qos": {"total_iops_sec": -1}}}, "backend.volume_types.gold.qos.total_iops_sec"),
])
def test_bad_backend_volume_types_are_refused(tmp_path, types, option):
    with pytest.raises(InvalidParameter) as err:
        build_driver({"name": "lab", "driver": "file", "path": str(tmp_path), "volume_types": types})
    assert err.value.option == option
    assert build_driver({"name": "lab", "driver": "file", "path": str(tmp_path),
                         "volume_types": {"gold": {"qos": {"total_iops_sec": 1}}}}).volume_types


def _read_rate(path: str, size: int) -> float:
    started = time.monotonic()
    with open(path, "rb", buffering=0) as handle:
        done = 0
        while done < size:
            chunk = handle.read(min(65536, size - done))
            assert chunk
            done += len(chunk)
    return size / (time.monotonic() - started)


@pytest.mark.skipif(not shutil.which("qemu-storage-daemon") or not os.path.exists("/dev/fuse"),
                    reason="needs qemu-storage-daemon and FUSE")
def test_qemu_storage_daemon_enforces_the_volumes_qos(tmp_path):
    image = tmp_path / "img"
    image.write_bytes(b"\0" * (4 << 20))
    blockdev = {"driver": "file", "filename": str(image), "read-only": True, "cache": {"direct": False}}
    limit = 1 << 20
    daemon = qsd.start(str(tmp_path / "d"), blockdev, writable=False, qos_specs={"read_bytes_sec": limit})
    try:
        assert qsd.throttle_limits(daemon) == {"bps-read": limit}
        assert _read_rate(daemon["export"], 2 * limit) < 1.5 * limit  # about 1 MiB/s, not disk speed
    finally:
        qsd.stop(daemon)
    free = qsd.start(str(tmp_path / "e"), blockdev, writable=False)  # positive control: no limits
    try:
        assert qsd.throttle_limits(free) == {}
        assert _read_rate(free["export"], 2 * limit) > 3 * limit
    finally:
        qsd.stop(free)

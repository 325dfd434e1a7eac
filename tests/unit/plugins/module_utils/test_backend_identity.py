# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A backend is more than its name: the store remembers the options that locate its data, and the
backend remembers which store owns it. Real file driver in temp directories, real JSON stores, each
task run as a module run without the action plugin (dispatch with a store)."""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils import backend_identity
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import DRIVERS, build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.base import Driver
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.file.owner import OWNER_MARKER
from ansible_collections.blockstore.storage.plugins.module_utils.errors import Conflict, InvalidParameter
from ansible_collections.blockstore.storage.plugins.module_utils.handler import Task, dispatch
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.jsonfile import JsonFileStore
from ansible_collections.blockstore.storage.plugins.module_utils.queries import BackendInfo, VolumeInfo
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource


def run(store, handler, backend: dict, check_mode: bool = False, **params) -> dict:
    driver = build_driver({"name": "lab", "driver": "file", **backend})
    return dispatch(handler, Task(params, check_mode, driver=driver), store=store)[0]


def state(store, *dirs) -> tuple:
    """Everything a refused task must leave alone: the records and the directories' files."""
    files = {str(d): sorted(os.listdir(d)) if os.path.isdir(d) else None for d in dirs}
    return sorted(json.dumps(r, sort_keys=True) for r in store.all_records()), files


def objects(store) -> list[dict]:
    return [r for r in store.all_records() if r["kind"] != "backend"]


@pytest.fixture
def store(tmp_path):
    return JsonFileStore(str(tmp_path / "state.json"))


def test_a_backend_name_reused_with_another_path_or_format_is_refused_naming_both_values(store, tmp_path):
    first, other = tmp_path / "a", tmp_path / "b"
    assert run(store, VolumeResource, {"path": str(first)}, name="v1", size=1)["changed"]
    # Positive control: the same options (a trailing slash is the same directory) are this backend.
    assert not run(store, VolumeResource, {"path": f"{first}/"}, name="v1", size=1)["changed"]
    before = state(store, first, other)
    with pytest.raises(Conflict) as refused:
        run(store, VolumeResource, {"path": str(other)}, name="v1", size=1)
    assert refused.value.option == "backend.path"
    assert f"path {str(first)!r}" in str(refused.value) and f"path {str(other)!r}" in str(refused.value)
    assert "backend 'lab'" in str(refused.value) and store.identity in str(refused.value)
    with pytest.raises(Conflict) as by_format:
        run(store, VolumeResource, {"path": str(first), "format": "qcow2"}, name="v2", size=1)
    assert by_format.value.option == "backend.format"
    assert "format 'raw'" in str(by_format.value) and "format 'qcow2'" in str(by_format.value)
    # A read-only task and check mode are refused as well: their answers would come from another place.
    with pytest.raises(Conflict):
        run(store, VolumeInfo, {"path": str(other)})
    with pytest.raises(Conflict):
        run(store, VolumeResource, {"path": str(other)}, check_mode=True, name="v3", size=1)
    assert state(store, first, other) == before and not other.exists()


def test_the_first_task_records_the_backend_and_check_mode_or_a_query_records_nothing(store, tmp_path):
    run(store, VolumeResource, {"path": str(tmp_path / "a")}, check_mode=True, name="v1", size=1)
    run(store, VolumeInfo, {"path": str(tmp_path / "a")})
    assert store.all_records() == []
    run(store, VolumeResource, {"path": str(tmp_path / "a")}, name="v1", size=1)
    (record,) = store.find("lab", "backend")
    assert record["locator"] == {"path": str(tmp_path / "a"), "format": "raw"} and record["driver"] == "file"
    assert record["adopted"] is False


def test_a_store_from_before_fingerprints_adopts_the_first_options_seen(store, tmp_path):
    run(store, VolumeResource, {"path": str(tmp_path / "a")}, name="v1", size=1)
    store.apply(deletes=store.find("lab", "backend"))  # as written by a collection without backend records
    assert run(store, VolumeResource, {"path": str(tmp_path / "a")}, name="v1", size=1)["changed"] is False
    assert run(store, VolumeResource, {"path": str(tmp_path / "a")}, name="v2", size=1)["changed"]
    (record,) = store.find("lab", "backend")
    assert record["adopted"] is True
    with pytest.raises(Conflict):
        run(store, VolumeResource, {"path": str(tmp_path / "b")}, name="v2", size=1)


def test_a_backend_emptied_by_its_tasks_leaves_nothing_and_may_point_elsewhere(store, tmp_path):
    run(store, VolumeResource, {"path": str(tmp_path / "a")}, name="v1", size=1)
    run(store, VolumeResource, {"path": str(tmp_path / "a")}, name="v2", size=1)
    run(store, VolumeResource, {"path": str(tmp_path / "a")}, name="v1", state="absent")
    # Positive control: while a volume is left, the record and the marker stay.
    assert store.find("lab", "backend") and os.listdir(tmp_path / "a") != []
    run(store, VolumeResource, {"path": str(tmp_path / "a")}, name="v2", state="absent")
    assert store.all_records() == [] and os.listdir(tmp_path / "a") == []
    # Nothing of anybody's is there any more: another store may use the directory.
    other = JsonFileStore(str(tmp_path / "other.json"))
    assert run(other, VolumeResource, {"path": str(tmp_path / "a")}, name="w", size=1)["changed"]
    assert run(store, VolumeResource, {"path": str(tmp_path / "b")}, name="v1", size=1)["changed"]
    (record,) = store.find("lab", "backend")
    assert record["locator"]["path"] == str(tmp_path / "b")
    assert os.listdir(tmp_path / "b") != []


def test_every_driver_declares_locating_options_that_are_its_own_and_never_secret():
    for name, load in DRIVERS.items():
        cls = load()
        declared = {o.name: o for o in cls.options}
        assert cls.locating_options, name
        for option in cls.locating_options:
            assert option in declared and not declared[option].secret, (name, option)


def test_the_cinder_adapter_is_located_by_its_class_and_that_class_options_never_a_secret():
    backend = {"name": "c", "driver": "cinder", "volume_driver": "cinder.volume.drivers.rbd.RBDDriver",
               "rbd_pool": "volumes", "rbd_user": "cinder", "rbd_secret_uuid": "x", "san_password": "pw"}
    expected = {"volume_driver": "cinder.volume.drivers.rbd.RBDDriver", "rbd_pool": "volumes"}
    assert build_driver(backend).locator() == expected
    other = {"name": "c", "driver": "cinder", "volume_driver": "acme.volume.ArrayDriver", "san_ip": "10.0.0.9",
             "san_login": "admin", "san_password": "pw"}
    assert build_driver(other).locator() == {"volume_driver": "acme.volume.ArrayDriver", "san_ip": "10.0.0.9"}


class _SecretLocated(Driver):
    name = "vault"

    @classmethod
    def secret_option_names(cls, given: dict) -> list[str]:
        return ["token"]

    def locator(self) -> dict:
        return {"token": self.conf["token"]}


def test_a_refusal_masks_the_values_of_secret_options(store):
    recorded = _SecretLocated("lab", {"token": "recorded-secret"})
    backend_identity.save(store, backend_identity.settle(store, recorded, claim=True)[1])
    store.apply(upserts=[{"kind": "volume", "id": "v", "backend": "lab", "name": "v", "size": 1}])
    with pytest.raises(Conflict) as refused:
        backend_identity.settle(store, _SecretLocated("lab", {"token": "given-secret"}), claim=True)
    assert "recorded-secret" not in str(refused.value) and "given-secret" not in str(refused.value)
    assert refused.value.option == "backend.token" and "********" in str(refused.value)


# Which store owns a backend directory ---------------------------------------------------------


def drift(store, path) -> dict:
    return run(store, BackendInfo, {"path": str(path)}, check_drift=True)["drift"]


def test_the_first_store_marks_the_directory_and_a_second_store_is_refused_there(tmp_path):
    shared = tmp_path / "shared"
    first = JsonFileStore(str(tmp_path / "first.json"))
    second = JsonFileStore(str(tmp_path / "second.json"))
    run(first, VolumeResource, {"path": str(shared)}, name="v1", size=1)
    marker = json.loads((shared / OWNER_MARKER).read_text())
    assert marker["store"] == backend_identity.store_label(first) and marker["backend"] == "lab"
    assert first.identity not in json.dumps(marker)  # no path or URL of the store reaches a host
    before = sorted(os.listdir(shared))
    with pytest.raises(Conflict) as refused:
        run(second, VolumeResource, {"path": str(shared)}, name="v2", size=1)
    assert refused.value.option == "backend.path"
    labels = backend_identity.store_label(first), backend_identity.store_label(second)
    assert all(label in str(refused.value) for label in labels)
    assert sorted(os.listdir(shared)) == before and second.all_records() == []
    # Positive control: the owner goes on using it.
    assert run(first, VolumeResource, {"path": str(shared)}, name="v2", size=1)["changed"]


def test_drift_from_another_store_says_whose_the_objects_are_and_never_to_remove_them(tmp_path):
    shared = tmp_path / "shared"
    first = JsonFileStore(str(tmp_path / "first.json"))
    second = JsonFileStore(str(tmp_path / "second.json"))
    volume_id = run(first, VolumeResource, {"path": str(shared)}, name="v1", size=1)["volume"]["id"]
    report = drift(second, shared)
    assert report["owner"] == {"store": backend_identity.store_label(first), "backend": "lab"}
    assert report["unknown_objects"] == [{"kind": "volume", "id": volume_id}]
    (line,) = report["problems"]
    assert backend_identity.store_label(first) in line and "another state store" in line
    assert "remove" not in line
    # Positive control: an object no record knows in the owner's own directory gets the usual advice.
    (shared / "volume-0b6e2f5c-1111-4222-8333-944455556666").write_bytes(b"")
    own = drift(first, shared)
    assert own["owner"] is None
    assert any("remove it or import it" in p for p in own["problems"])


def test_a_store_that_shared_the_directory_before_markers_goes_on_and_its_drift_spares_the_other(tmp_path):
    shared = tmp_path / "shared"
    first = JsonFileStore(str(tmp_path / "first.json"))
    second = JsonFileStore(str(tmp_path / "second.json"))
    mine = run(second, VolumeResource, {"path": str(shared)}, name="mine", size=1)["volume"]["id"]
    # As before owner markers: the second store's records have no backend record, the directory no marker.
    second.apply(deletes=second.find("lab", "backend"))
    os.unlink(shared / OWNER_MARKER)
    theirs = run(first, VolumeResource, {"path": str(shared)}, name="theirs", size=1)["volume"]["id"]
    assert run(second, VolumeResource, {"path": str(shared)}, name="more", size=1)["changed"]
    report = drift(second, shared)
    assert report["unknown_objects"] == [{"kind": "volume", "id": theirs}]
    assert all("remove" not in p for p in report["problems"]) and mine not in json.dumps(report["problems"])


def test_a_query_or_check_mode_leaves_the_store_as_it_is_even_a_backend_record_with_no_objects(store, tmp_path):
    run(store, VolumeResource, {"path": str(tmp_path / "a")}, name="v1", size=1)
    # The object records gone outside a task (edited by hand, or a task that failed after deleting them):
    # only a task that deletes records may release the backend record.
    store.apply(deletes=objects(store))
    before = state(store, tmp_path / "a")
    assert store.find("lab", "backend")
    run(store, VolumeInfo, {"path": str(tmp_path / "a")})
    run(store, VolumeResource, {"path": str(tmp_path / "a")}, check_mode=True, name="v2", size=1)
    assert state(store, tmp_path / "a") == before


def test_a_backends_host_says_where_its_work_runs_and_is_not_part_of_its_identity(store, tmp_path):
    path = str(tmp_path / "a")
    driver = build_driver({"name": "lab", "driver": "file", "path": path, "host": "stor1"})
    assert driver.backend_host == "stor1" and "host" not in driver.conf
    assert build_driver({"name": "lab", "driver": "file", "path": path}).backend_host is None
    # The same backend named with or without its host, or with another one: one backend, not a reuse.
    assert run(store, VolumeResource, {"path": path, "host": "stor1"}, name="v1", size=1)["changed"]
    assert not run(store, VolumeResource, {"path": path}, name="v1", size=1)["changed"]
    assert not run(store, VolumeResource, {"path": path, "host": "stor2"}, name="v1", size=1)["changed"]
    before = state(store, tmp_path / "a")
    for bad in ("", " ", 7, ["stor1"], "stor1\nok: true"):
        with pytest.raises(InvalidParameter) as refused:
            run(store, VolumeResource, {"path": path, "host": bad}, name="v2", size=1)
        assert refused.value.option == "backend.host" and "name of an inventory host" in str(refused.value)
    assert state(store, tmp_path / "a") == before

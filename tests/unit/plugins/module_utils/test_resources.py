# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan-then-apply for volumes and snapshots, on the real file driver in a temp directory.

Each task runs as a module without the action plugin does: run_task() on a store,
with perform() as the executor.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import (
    Conflict,
    InvalidParameter,
    NotFound,
)
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.jsonfile import JsonFileStore
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.plugins.module_utils.transaction import perform, run_task
from ansible_collections.blockstore.storage.plugins.module_utils.units import GiB
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource

FORMATS = ["raw", "qcow2"]


class Lab:
    """One file backend in a temp directory and a store: runs tasks as modules do."""

    def __init__(self, path: str, fmt: str, store) -> None:
        self.path = path
        self.format = fmt
        self.store = store
        self.driver = build_driver({"name": "lab", "driver": "file", "path": path, "format": fmt})

    def run(self, handler, check_mode: bool = False, **params) -> dict:
        def execute(records: list, new_ids: list):
            return perform(handler, self.driver, params, records, new_ids, check_mode)
        return run_task(self.store, handler, "lab", params, check_mode, execute)

    def volume(self, **params) -> dict:
        return self.run(VolumeResource, **params)

    def snapshot(self, **params) -> dict:
        return self.run(SnapshotResource, **params)

    def record(self, kind: str, name: str) -> dict | None:
        found = self.store.find("lab", kind, name=name)
        assert len(found) <= 1
        return found[0] if found else None

    def files(self) -> list[str]:
        if not os.path.isdir(self.path):
            return []
        return sorted(n for n in os.listdir(self.path) if not n.endswith(".tmp"))

    def size_gib(self, volume_id: str) -> int:
        path = os.path.join(self.path, f"volume-{volume_id}")
        if self.format == "qcow2":
            info = subprocess.run(["qemu-img", "info", "--output=json", "-U", path], capture_output=True, text=True,
                                  check=True)
            return json.loads(info.stdout)["virtual-size"] // GiB
        return os.path.getsize(path) // GiB

    def snapshot_of_state(self) -> tuple:
        """Everything a user could see: the records and the backend's files with their sizes."""
        files = {n: os.path.getsize(os.path.join(self.path, n)) for n in self.files()}
        return sorted(json.dumps(r, sort_keys=True) for r in self.store.all_records()), files


@pytest.fixture(params=FORMATS)
def lab(request, tmp_path) -> Lab:
    if request.param == "qcow2" and not shutil.which("qemu-img"):
        pytest.skip("qemu-img is not installed (Debian package qemu-utils)")
    return Lab(str(tmp_path / "lab"), request.param, MemoryStore())


def test_create_then_rerun_changes_nothing(lab):
    result = lab.volume(name="data1", size=1, description="first", metadata={"team": "a"})
    assert result["changed"] is True
    volume = result["volume"]
    assert volume["name"] == "data1" and volume["size"] == 1 and volume["status"] == "available"
    assert volume["backend"] == "lab" and volume["description"] == "first" and volume["metadata"] == {"team": "a"}
    assert lab.files() == [f"volume-{volume['id']}"]
    assert lab.size_gib(volume["id"]) == 1
    assert lab.record("volume", "data1")["status"] == "available"

    before = lab.snapshot_of_state()
    again = lab.volume(name="data1", size=1, description="first", metadata={"team": "a"})
    assert again["changed"] is False
    assert again["actions"] == []
    assert again["volume"]["id"] == volume["id"]
    assert lab.snapshot_of_state() == before


def test_extend_with_units_then_rerun(lab):
    volume = lab.volume(name="data1", size=1)["volume"]
    result = lab.volume(name="data1", size="2GiB")
    assert result["changed"] is True
    assert result["volume"]["size"] == 2
    assert result["diff"]["before"]["size"] == 1 and result["diff"]["after"]["size"] == 2
    assert lab.size_gib(volume["id"]) == 2
    assert lab.volume(name="data1", size=2)["changed"] is False
    assert lab.volume(name="data1")["changed"] is False  # no size: keep it


def test_shrink_is_refused_and_changes_nothing(lab):
    volume = lab.volume(name="data1", size=2)["volume"]
    before = lab.snapshot_of_state()
    with pytest.raises(Conflict) as error:
        lab.volume(name="data1", size="1G")
    assert error.value.option == "size"
    assert "only grow" in str(error.value)
    assert lab.snapshot_of_state() == before
    assert lab.size_gib(volume["id"]) == 2


def test_rename_by_id_keeps_the_volume_and_its_file(lab):
    volume = lab.volume(name="old", size=1)["volume"]
    result = lab.volume(id=volume["id"], name="new")
    assert result["changed"] is True
    assert result["volume"]["id"] == volume["id"] and result["volume"]["name"] == "new"
    assert lab.record("volume", "old") is None
    assert lab.record("volume", "new")["id"] == volume["id"]
    assert lab.files() == [f"volume-{volume['id']}"]
    assert lab.volume(id=volume["id"], name="new")["changed"] is False


def test_rename_onto_a_taken_name_is_refused(lab):
    first = lab.volume(name="first", size=1)["volume"]
    lab.volume(name="second", size=1)
    before = lab.snapshot_of_state()
    with pytest.raises(Conflict, match=f"'second' already names volume .*, not {first['id']}"):
        lab.volume(id=first["id"], name="second")
    assert lab.snapshot_of_state() == before


def test_snapshot_and_volume_from_it(lab):
    volume = lab.volume(name="data1", size=1)["volume"]
    snap = lab.snapshot(volume="data1", name="before-upgrade")
    assert snap["changed"] is True
    assert snap["snapshot"]["volume_id"] == volume["id"] and snap["snapshot"]["status"] == "available"
    assert lab.snapshot(volume="data1", name="before-upgrade")["changed"] is False
    copy = lab.volume(name="copy", source={"snapshot": "before-upgrade"})["volume"]
    assert copy["source_snapshot_id"] == snap["snapshot"]["id"] and copy["size"] == 1
    clone = lab.volume(name="clone", size=2, source={"volume": volume["id"]})["volume"]
    assert clone["source_volume_id"] == volume["id"] and lab.size_gib(clone["id"]) == 2
    shown = lab.volume(name="data1")["volume"]
    assert shown["snapshot_ids"] == [snap["snapshot"]["id"]]


def test_deleting_a_volume_with_snapshots_needs_cascade(lab):
    volume = lab.volume(name="data1", size=1)["volume"]
    lab.snapshot(volume="data1", name="s1")
    lab.snapshot(volume="data1", name="s2")
    before = lab.snapshot_of_state()
    with pytest.raises(Conflict) as error:
        lab.volume(name="data1", state="absent")
    assert error.value.option == "cascade"
    assert "'s1', 's2'" in str(error.value) and "cascade: true" in str(error.value)
    assert lab.snapshot_of_state() == before

    result = lab.volume(name="data1", state="absent", cascade=True)
    assert result["changed"] is True
    assert result["volume"]["id"] == volume["id"] and result["volume"]["status"] == "deleted"
    assert lab.store.all_records() == []
    assert [n for n in lab.files() if n.startswith(("volume-", "snapshot-", "clone-base-"))] == []
    assert lab.volume(name="data1", state="absent")["changed"] is False


def test_check_mode_says_what_would_change_and_changes_nothing(lab):
    result = lab.volume(check_mode=True, name="data1", size=1)
    assert result["changed"] is True
    assert result["volume"]["name"] == "data1" and result["volume"]["size"] == 1
    assert lab.store.all_records() == [] and lab.files() == []

    lab.volume(name="data1", size=1)
    lab.snapshot(volume="data1", name="s1")
    before = lab.snapshot_of_state()
    for handler, params in [
        (VolumeResource, {"name": "data1", "size": 3}),
        (VolumeResource, {"name": "data1", "description": "new"}),
        (VolumeResource, {"name": "data1", "state": "absent", "cascade": True}),
        (VolumeResource, {"name": "copy", "source": {"snapshot": "s1"}}),
        (SnapshotResource, {"volume": "data1", "name": "s2"}),
        (SnapshotResource, {"name": "s1", "state": "absent"}),
    ]:
        result = lab.run(handler, check_mode=True, **params)
        assert result["changed"] is True, params
        assert result["actions"], params
        assert lab.snapshot_of_state() == before, params
    shown = lab.run(VolumeResource, check_mode=True, name="data1", size=3)["volume"]
    assert shown["size"] == 3  # the volume as it would be


@pytest.mark.parametrize("params, error_type, option", [
    ({"name": "v", "size": 1, "source": {"snapshot": "ghost"}}, NotFound, "source.snapshot"),
    ({"name": "v", "source": {"volume": "ghost"}}, NotFound, "source.volume"),
    ({"name": "v", "size": 1, "source": {"snapshot": "a", "volume": "b"}}, InvalidParameter, "source"),
    ({"name": "v", "size": "1.5G"}, InvalidParameter, "size"),
    ({"name": "v"}, InvalidParameter, "size"),
    ({"size": 1}, InvalidParameter, "name"),
    ({"name": "v", "size": 1, "state": "gone"}, InvalidParameter, "state"),
    ({"name": "v", "size": 1, "metadata": ["x"]}, InvalidParameter, "metadata"),
    ({"id": "not-a-uuid", "size": 1}, InvalidParameter, "id"),
    ({"id": "6f1c2b9e-3f1a-4c55-9e55-0c1d2e3f4a5b", "size": 1}, NotFound, "id"),
])
def test_bad_input_is_refused_and_changes_nothing(lab, params, error_type, option):
    lab.volume(name="existing", size=1)
    before = lab.snapshot_of_state()
    with pytest.raises(error_type) as error:
        lab.volume(**params)
    assert error.value.option == option
    assert lab.snapshot_of_state() == before


def test_snapshot_of_a_missing_volume_is_refused(lab):
    with pytest.raises(NotFound) as error:
        lab.snapshot(volume="ghost", name="s1")
    assert error.value.option == "volume"
    assert lab.store.all_records() == [] and lab.files() == []


def test_the_state_file_store_gives_the_same_results(tmp_path):
    lab = Lab(str(tmp_path / "lab"), "raw", JsonFileStore(str(tmp_path / "state.json")))
    volume = lab.volume(name="data1", size=1)["volume"]
    assert lab.volume(name="data1", size=1)["changed"] is False
    lab.volume(name="data1", size=2)
    assert lab.record("volume", "data1")["size"] == 2
    reopened = JsonFileStore(str(tmp_path / "state.json"))
    assert reopened.find("lab", "volume", id=volume["id"])[0]["size"] == 2


@pytest.fixture
def raw_lab(tmp_path) -> Lab:
    return Lab(str(tmp_path / "lab"), "raw", MemoryStore())


def test_a_snapshot_name_of_another_volume_is_refused_whichever_volume_is_named(raw_lab):
    # Ids on both sides of the snapshot's volume id: the check is "another volume", not an order.
    for volume_id, name in (("55555555-5555-4555-8555-555555555555", "v1"),
                            ("11111111-1111-4111-8111-111111111111", "low"),
                            ("99999999-9999-4999-8999-999999999999", "high")):
        raw_lab.volume(id=volume_id, name=name, size=1)
    raw_lab.snapshot(volume="v1", name="s1")
    before = raw_lab.snapshot_of_state()
    for other in ("low", "high", "nonexistent"):
        with pytest.raises(Conflict, match="exists but belongs to volume 55555555"):
            raw_lab.snapshot(volume=other, name="s1")
    assert raw_lab.snapshot_of_state() == before
    assert raw_lab.snapshot(volume="v1", name="s1")["changed"] is False


def test_a_snapshot_keeps_its_description_and_metadata_and_can_be_renamed(raw_lab):
    raw_lab.volume(name="v1", size=1)
    plain = raw_lab.snapshot(volume="v1", name="plain")["snapshot"]
    assert plain["description"] == "" and plain["metadata"] == {}
    made = raw_lab.snapshot(volume="v1", name="m", description="before upgrade", metadata={"ticket": "42"})
    assert made["snapshot"]["description"] == "before upgrade" and made["snapshot"]["metadata"] == {"ticket": "42"}
    renamed = raw_lab.snapshot(id=made["snapshot"]["id"], name="z")
    assert renamed["changed"] is True and renamed["snapshot"]["name"] == "z"
    assert raw_lab.record("snapshot", "m") is None and raw_lab.record("snapshot", "z")["id"] == made["snapshot"]["id"]


def test_a_snapshot_left_creating_whose_volume_is_gone_is_refused_with_the_way_out(raw_lab):
    raw_lab.volume(name="v1", size=1)
    snapshot = dict(raw_lab.snapshot(volume="v1", name="s1")["snapshot"], status="creating")
    raw_lab.store.apply(upserts=[dict(raw_lab.store.find("lab", "snapshot")[0], status="creating")],
                        deletes=[raw_lab.record("volume", "v1")])
    with pytest.raises(Conflict, match="left in status creating and its volume is gone; delete it with state: absent"):
        raw_lab.snapshot(name="s1")
    assert raw_lab.record("snapshot", "s1")["id"] == snapshot["id"]


def test_multiattach_is_set_and_cleared_on_an_existing_volume(raw_lab):
    raw_lab.volume(name="v1", size=1)
    result = raw_lab.volume(name="v1", multiattach=True)
    assert result["changed"] is True and result["volume"]["multiattach"] is True
    assert raw_lab.volume(name="v1", multiattach=True)["changed"] is False
    assert raw_lab.volume(name="v1")["volume"]["multiattach"] is True  # not given: kept
    assert raw_lab.volume(name="v1", multiattach=False)["volume"]["multiattach"] is False


def test_a_clone_left_creating_whose_source_is_gone_is_refused_with_the_way_out(raw_lab):
    source = raw_lab.volume(name="src", size=1)["volume"]
    raw_lab.volume(name="copy", source={"volume": "src"})
    raw_lab.store.apply(upserts=[dict(raw_lab.record("volume", "copy"), status="creating")],
                        deletes=[raw_lab.record("volume", "src")])
    with pytest.raises(Conflict, match=f"left in status creating and its source volume {source['id']} is gone"):
        raw_lab.volume(name="copy")


@pytest.mark.parametrize("option", ["name", "id"])
def test_a_name_or_id_that_is_not_text_is_refused_naming_the_option(raw_lab, option):
    with pytest.raises(InvalidParameter) as error:
        raw_lab.volume(**{option: 5}, size=1)
    assert error.value.option == option
    assert raw_lab.store.all_records() == [] and raw_lab.files() == []


def test_a_qcow2_volume_its_daemon_holds_open_is_not_cloned_but_a_snapshot_of_it_is_copied(lab, monkeypatch):
    # A clone freezes a qcow2 image under an overlay: the daemon that serves the attached image would go on
    # writing to the frozen file. Whether a daemon here holds it is the host's to say (stood in for here).
    from ansible_collections.blockstore.storage.plugins.module_utils.host_devices import LocalHost
    monkeypatch.setattr(LocalHost, "owns_image", lambda self, device: bool(device))
    volume = lab.volume(name="data1", size=1)["volume"]
    lab.snapshot(volume="data1", name="s1")
    lab.store.apply(upserts=[{"kind": "connection", "id": "c0000000-0000-4000-8000-000000000001", "backend": "lab",
                              "volume_id": volume["id"], "host": "here", "status": "attached", "connector": {},
                              "connection_info": {}, "driver_data": {},
                              "device": {"path": "/dev/nbd0", "type": "block", "method": "userspace"}}])
    if lab.format == "qcow2":
        with pytest.raises(Conflict, match="'data1' is a qcow2 image attached on here as /dev/nbd0; detach it"):
            lab.volume(name="copy", source={"volume": "data1"})
        assert lab.record("volume", "copy") is None
    else:  # a raw clone is a copy: the image is not frozen
        assert lab.volume(name="copy", source={"volume": "data1"})["changed"]
    assert lab.volume(name="from-s1", source={"snapshot": "s1"})["changed"]  # the snapshot's file is not held


def qcow2_volume(tmp_path) -> tuple:
    """A qcow2 lab of its own with one volume data1: (lab, the volume, its image's path)."""
    if not (shutil.which("qemu-img") and shutil.which("qemu-io")):
        pytest.skip("qemu-img or qemu-io is not installed (Debian package qemu-utils)")
    lab = Lab(str(tmp_path / "lab"), "qcow2", MemoryStore())
    volume = lab.volume(name="data1", size=1)["volume"]
    return lab, volume, os.path.join(lab.path, f"volume-{volume['id']}")


def test_a_qcow2_delete_waits_for_a_task_reading_the_chain(tmp_path):
    # Another task cloning or snapshotting in this backend holds the chain lock shared (an flock on the
    # directory): a delete, which may merge or remove frozen images, waits for it to finish.
    import fcntl
    import threading
    lab, _volume, image = qcow2_volume(tmp_path)
    reader = os.open(lab.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(reader, fcntl.LOCK_SH)
        deleting = threading.Thread(target=lab.volume, kwargs={"name": "data1", "state": "absent"})
        deleting.start()
        deleting.join(1.0)
        assert deleting.is_alive() and os.path.exists(image)
    finally:
        os.close(reader)  # the reader is done
    deleting.join(30)
    assert not deleting.is_alive() and not os.path.exists(image)


def test_deleting_a_snapshot_keeps_the_data_of_a_clone_made_after_it(tmp_path):
    # qcow2: the snapshot freezes the volume's image; a later clone freezes the volume again, on top of the
    # snapshot's image. Deleting the snapshot must merge its image into the clone's base, not drop it.
    lab, volume, image = qcow2_volume(tmp_path)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 1M", image], check=True, capture_output=True)
    lab.snapshot(volume="data1", name="s1")
    clone = lab.volume(name="copy", source={"volume": "data1"})["volume"]
    assert lab.snapshot(volume="data1", name="s1", state="absent")["changed"]
    for name in (f"volume-{clone['id']}", f"volume-{volume['id']}"):
        read = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "read -P 0xab 0 1M", os.path.join(lab.path, name)],
                              capture_output=True, text=True, check=False)
        assert read.returncode == 0 and "Pattern verification failed" not in read.stdout, read.stdout + read.stderr

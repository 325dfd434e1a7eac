# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drift report (storage_backend_info check_drift) and the file driver's recovery from
interrupted steps, on the real file driver (raw and qcow2) in a temp directory.

Interrupted steps are reproduced by leaving the files exactly as a killed process
leaves them; the integration target storage_crash kills real module processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils import drift
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import DriverError, InvalidParameter
from ansible_collections.blockstore.storage.plugins.module_utils.objects import RecordSet, from_record
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.jsonfile import JsonFileStore
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.queries import BackendInfo
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.plugins.module_utils.transaction import perform, run_task
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource


class Lab:
    def __init__(self, path: str, fmt: str) -> None:
        self.path = path
        self.store = MemoryStore()
        self.driver = build_driver({"name": "lab", "driver": "file", "path": path, "format": fmt})

    def run(self, handler, **params) -> dict:
        def execute(records, new_ids):
            return perform(handler, self.driver, params, records, new_ids, False)
        return run_task(self.store, handler, "lab", params, False, execute)

    def drift(self) -> dict:
        return drift.check(RecordSet("lab", self.store.find("lab")), self.driver, devices=False)

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def records(self, kind: str) -> list:
        return self.store.find("lab", kind)

    def set_status(self, kind: str, name: str, status: str) -> dict:
        record = dict(self.store.find("lab", kind, name=name)[0], status=status)
        self.store.apply(upserts=[record])
        return record


def qemu_io_read(path: str, pattern: int) -> bool:
    proc = subprocess.run(["qemu-io", "-f", "qcow2", "-r", "-c", f"read -P {pattern} 0 64k", path],
                          capture_output=True, text=True, check=False)
    return proc.returncode == 0 and "verification failed" not in proc.stdout


def qemu_io_write(path: str, pattern: int) -> None:
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P {pattern} 0 64k", path], capture_output=True,
                   check=True)


@pytest.fixture(params=["raw", "qcow2"])
def lab(request, tmp_path) -> Lab:
    if request.param == "qcow2" and not shutil.which("qemu-img"):
        pytest.skip("qemu-img is not installed (Debian package qemu-utils)")
    return Lab(str(tmp_path / "lab"), request.param)


@pytest.fixture
def qcow2(tmp_path) -> Lab:
    if not shutil.which("qemu-io"):
        pytest.skip("qemu-io is not installed (Debian package qemu-utils)")
    return Lab(str(tmp_path / "lab"), "qcow2")


def test_in_sync_after_every_kind_of_object(lab):
    lab.run(VolumeResource, name="v1", size=1)
    lab.run(SnapshotResource, volume="v1", name="s1")
    lab.run(VolumeResource, name="c1", source={"volume": "v1"})
    lab.run(VolumeResource, name="f1", source={"snapshot": "s1"})
    report = lab.drift()
    assert report["in_sync"], report["problems"]
    assert report["checked"] == {"volumes": True, "snapshots": True, "exports": False, "devices": False}


def test_hidden_qcow2_snapshot_is_not_unknown_until_nothing_needs_it(qcow2):
    qcow2.run(VolumeResource, name="v1", size=1)
    qcow2.run(SnapshotResource, volume="v1", name="s1")
    qcow2.run(VolumeResource, name="f1", source={"snapshot": "s1"})
    qcow2.run(SnapshotResource, name="s1", state="absent")  # kept hidden: v1 and f1 both depend on it
    assert any(n.endswith(".deleted") for n in os.listdir(qcow2.path))
    assert qcow2.drift()["in_sync"]


def test_every_kind_of_finding(lab):
    v1 = lab.run(VolumeResource, name="v1", size=1)["volume"]
    lab.run(VolumeResource, name="v2", size=1)
    lab.run(SnapshotResource, volume="v1", name="s1")
    unknown = "0e5d4c3b-2a19-4807-b6f5-4e3d2c1b0a99"
    open(lab.file(f"volume-{unknown}"), "w").close()
    open(lab.file(f"snapshot-{unknown}"), "w").close()
    open(lab.file("volume-leftover.tmp"), "w").close()
    os.unlink(lab.file(f"volume-{v1['id']}"))  # v1 gone behind the store's back (qcow2: s1 still there)
    lab.set_status("volume", "v2", "creating")
    orphan = dict(lab.records("snapshot")[0], id="9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", name="orphan",
                  volume_id="11111111-2222-4333-8444-555555555555")
    twin = dict(lab.records("snapshot")[0], id="aaaaaaaa-2222-4333-8444-555555555555")  # s1 again
    lab.store.apply(upserts=[orphan, twin])
    report = lab.drift()
    assert not report["in_sync"]
    assert {"kind": "volume", "id": unknown} in report["unknown_objects"]
    assert {"kind": "snapshot", "id": unknown} in report["unknown_objects"]
    assert [(m["kind"], m["name"]) for m in report["missing_objects"]] == [
        ("volume", "v1"), ("snapshot", "orphan"), ("snapshot", "s1")]  # twin: same name, no file
    assert [(t["name"], t["status"]) for t in report["transient_records"]] == [("v2", "creating")]
    assert [d["name"] for d in report["dangling_records"]] == ["orphan"]
    assert report["duplicate_names"] == [{"kind": "snapshot", "name": "s1", "ids": sorted([twin["id"],
                                                                                          lab.records("snapshot")[0]["id"]])}]
    assert report["leftovers"] == ["volume-leftover.tmp"]
    assert len(report["problems"]) == 9


def test_check_drift_must_be_a_boolean():
    with pytest.raises(InvalidParameter, match=r"check_drift: must be a boolean or one of backend, host, both"):
        BackendInfo.select(MemoryStore(), "lab", {"check_drift": "maybe"})


def test_without_check_drift_no_records_are_read(lab):
    lab.run(VolumeResource, name="v1", size=1)
    assert BackendInfo.select(lab.store, "lab", {}) == []
    assert len(BackendInfo.select(lab.store, "lab", {"check_drift": True})) == 1


# Interrupted qcow2 freezes: the volume's name never goes missing --------------
def test_freeze_interrupted_after_the_link_is_finished_by_a_rerun(qcow2):
    v1 = qcow2.run(VolumeResource, name="v1", size=1)["volume"]
    qemu_io_write(qcow2.file(f"volume-{v1['id']}"), 0xAB)
    qcow2.run(SnapshotResource, volume="v1", name="s1")
    snap = qcow2.records("snapshot")[0]
    # As a kill right after the hard link leaves it: two names, one image, a record 'creating'.
    os.unlink(qcow2.file(f"volume-{v1['id']}"))
    os.rename(qcow2.file(f"snapshot-{snap['id']}"), qcow2.file(f"volume-{v1['id']}"))
    os.chmod(qcow2.file(f"volume-{v1['id']}"), 0o644)
    os.link(qcow2.file(f"volume-{v1['id']}"), qcow2.file(f"snapshot-{snap['id']}"))
    qcow2.set_status("snapshot", "s1", "creating")
    assert qcow2.run(SnapshotResource, volume="v1", name="s1")["changed"]
    assert not os.path.samefile(qcow2.file(f"volume-{v1['id']}"), qcow2.file(f"snapshot-{snap['id']}"))
    assert os.stat(qcow2.file(f"snapshot-{snap['id']}")).st_mode & 0o777 == 0o400
    assert qemu_io_read(qcow2.file(f"volume-{v1['id']}"), 0xAB)
    assert qcow2.drift()["in_sync"]


def test_clone_interrupted_after_the_freeze_and_then_deleted_leaves_the_source_whole(qcow2):
    v1 = qcow2.run(VolumeResource, name="v1", size=1)["volume"]
    qemu_io_write(qcow2.file(f"volume-{v1['id']}"), 0xCD)
    clone = qcow2.run(VolumeResource, name="c1", source={"volume": "v1"})["volume"]
    # As a kill between the freeze and the clone's own overlay leaves it.
    os.unlink(qcow2.file(f"volume-{clone['id']}"))
    qcow2.set_status("volume", "c1", "creating")
    report = qcow2.drift()
    assert [t["name"] for t in report["transient_records"]] == ["c1"]
    qcow2.run(VolumeResource, name="c1", state="absent")
    assert sorted(os.listdir(qcow2.path)) == [f"volume-{v1['id']}"]  # clone-base merged back into v1
    assert qemu_io_read(qcow2.file(f"volume-{v1['id']}"), 0xCD)
    assert qcow2.drift()["in_sync"]


def test_a_collection_interrupted_midway_is_finished_by_the_resumed_delete(qcow2):
    v1 = qcow2.run(VolumeResource, name="v1", size=1)["volume"]
    qemu_io_write(qcow2.file(f"volume-{v1['id']}"), 0xEF)
    qcow2.run(SnapshotResource, volume="v1", name="s1")
    f1 = qcow2.run(VolumeResource, name="f1", source={"snapshot": "s1"})["volume"]
    qcow2.run(SnapshotResource, name="s1", state="absent")  # kept hidden: v1 and f1 depend on it
    hidden = [n[:-len(".deleted")] for n in os.listdir(qcow2.path) if n.endswith(".deleted")]
    assert len(hidden) == 1
    # As a kill inside the delete of f1 leaves it: f1's image removed, v1 rebased off the hidden
    # snapshot (its data merged in), the hidden snapshot not removed yet, f1's record 'deleting'.
    os.unlink(qcow2.file(f"volume-{f1['id']}"))
    subprocess.run(["qemu-img", "rebase", "-q", "-f", "qcow2", "-b", "", qcow2.file(f"volume-{v1['id']}")],
                   check=True)
    qcow2.set_status("volume", "f1", "deleting")
    assert qcow2.drift()["leftovers"] == hidden
    qcow2.run(VolumeResource, name="f1", state="absent")
    assert os.listdir(qcow2.path) == [f"volume-{v1['id']}"]
    assert qemu_io_read(qcow2.file(f"volume-{v1['id']}"), 0xEF)
    assert qcow2.drift()["in_sync"]


def test_a_mark_left_by_an_interrupted_collection_goes_with_the_resumed_delete(qcow2):
    qcow2.run(VolumeResource, name="v1", size=1)
    qcow2.run(SnapshotResource, volume="v1", name="s1")
    snap = qcow2.records("snapshot")[0]
    qcow2.run(SnapshotResource, name="s1", state="absent")
    open(qcow2.file(f"snapshot-{snap['id']}.deleted"), "w").close()  # image merged and removed, mark not yet
    qcow2.store.apply(upserts=[dict(snap, status="deleting")])
    assert qcow2.drift()["leftovers"] == [f"snapshot-{snap['id']}.deleted"]
    qcow2.run(SnapshotResource, name="s1", state="absent")
    assert qcow2.drift()["in_sync"]
    assert not any(n.startswith("snapshot-") for n in os.listdir(qcow2.path))


def test_a_temp_file_left_by_a_killed_writer_goes_with_the_next_write(tmp_path):
    store = JsonFileStore(str(tmp_path / "state.json"))
    store.apply(upserts=[{"kind": "volume", "id": "a", "backend": "lab", "name": "a", "size": 1}])
    # killed before its rename
    (tmp_path / ".state.json.k1ll3d_x.blockstore-tmp").write_text('{"schema_version": 1, "rec')
    (tmp_path / ".other.json-busy").write_text("another store's writer")
    store.apply(upserts=[{"kind": "volume", "id": "b", "backend": "lab", "name": "b", "size": 1}])
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".other.json-busy"]
    assert {r["id"] for r in store.all_records()} == {"a", "b"}


def test_devices_of_this_host_that_no_connection_records(tmp_path):
    from ansible_collections.blockstore.storage.plugins.module_utils.host_devices import LocalHost
    lab = Lab(str(tmp_path / "lab"), "raw")
    v1 = lab.run(VolumeResource, name="v1", size=1)["volume"]
    v2 = lab.run(VolumeResource, name="v2", size=1)["volume"]
    recorded = {"path": "/dev/loop3", "type": "block", "method": "loop", "backing_file": lab.file(f"volume-{v1['id']}")}
    gone = {"path": "/dev/loop9", "type": "block", "method": "loop", "backing_file": lab.file(f"volume-{v2['id']}")}
    for conn_id, volume, device in (("c1", v1, recorded), ("c2", v2, gone)):
        lab.store.apply(upserts=[{"kind": "connection", "id": f"0000000{conn_id[1]}-0000-4000-8000-000000000000",
                                  "backend": "lab", "volume_id": volume["id"], "host": "here", "status": "attached",
                                  "device": device, "connector": {}, "connection_info": {}}])
    bound = {"/dev/loop3": recorded["backing_file"],                              # recorded: fine
             "/dev/loop5": lab.file(f"volume-{v1['id']}"),                       # left by a killed attach
             "/dev/loop6": str(tmp_path / "run" / v2["id"] / "export"),          # a daemon's export
             "/dev/loop7": "/somewhere/else"}                                     # not this backend's

    class Host(LocalHost):
        """This host as a stand-in: its loop devices are `bound`."""

        def name(self):
            return "here"

        def run_dir(self):
            return str(tmp_path / "run")

        def bound_loops(self):
            return dict(bound)

        def bound_here(self, device, backing):
            return True

        def present(self, device):
            return device["path"] in bound

    report = drift.check(RecordSet("lab", lab.store.find("lab")), lab.driver, host=Host())
    assert [(d["device"], d["volume_id"]) for d in report["unknown_devices"]] == [
        ("/dev/loop5", v1["id"]), ("/dev/loop6", v2["id"])]
    assert [d["device"] for d in report["lost_devices"]] == ["/dev/loop9"]
    assert not report["in_sync"]


class CannotListSnapshots:
    """The lab's driver as a backend that cannot list its snapshots (as a Cinder driver through the adapter)."""

    def __init__(self, driver) -> None:
        self.driver = driver

    def __getattr__(self, name: str):
        return getattr(self.driver, name)

    def list_snapshot_ids(self) -> None:
        return None


def test_a_backend_that_cannot_list_snapshots_has_its_volumes_checked_and_no_snapshot_reported(tmp_path):
    lab = Lab(str(tmp_path / "lab"), "raw")
    lab.run(VolumeResource, name="v1", size=1)
    lab.run(SnapshotResource, volume="v1", name="s1")
    unknown = "0e5d4c3b-2a19-4807-b6f5-4e3d2c1b0a99"
    open(lab.file(f"volume-{unknown}"), "w").close()
    os.unlink(lab.file(f"snapshot-{lab.records('snapshot')[0]['id']}"))
    records = RecordSet("lab", lab.store.find("lab"))
    assert [m["name"] for m in drift.check(records, lab.driver, devices=False)["missing_objects"]] == ["s1"]
    report = drift.check(records, CannotListSnapshots(lab.driver), devices=False)
    assert report["checked"] == {"volumes": True, "snapshots": False, "exports": False, "devices": False}
    assert report["unknown_objects"] == [{"kind": "volume", "id": unknown}]
    assert report["missing_objects"] == []


def test_a_connection_written_before_its_host_is_known_is_named_so(tmp_path):
    lab = Lab(str(tmp_path / "lab"), "raw")
    volume = lab.run(VolumeResource, name="v1", size=1)["volume"]
    connections = [{"kind": "connection", "id": f"{n}1111111-2222-4333-8444-555555555555", "backend": "lab",
                    "volume_id": volume["id"], "host": host, "status": "connecting"}
                   for n, host in ((1, ""), (2, "h2"))]
    lab.store.apply(upserts=connections)
    report = lab.drift()
    assert [t["name"] for t in report["transient_records"]] == ["(host not known yet)", "h2"]


def test_the_hints_name_a_way_out_each_module_has(lab):
    """storage_attachment has no state absent: its records are removed with state detached."""
    volume = lab.run(VolumeResource, name="v1", size=1)["volume"]
    lab.set_status("volume", "v1", "error")
    pending = {"kind": "connection", "id": "5f2c1d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", "backend": "lab",
               "volume_id": volume["id"], "host": "", "status": "attaching", "connector": {}, "connection_info": {}}
    failed = dict(pending, id="6f2c1d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", host="here", status="error")
    lab.store.apply(upserts=[pending, failed])
    problems = lab.drift()["problems"]
    attaching = [p for p in problems if p.startswith("connection '(host not known yet)'")]
    assert attaching == [f"connection '(host not known yet)' ({pending['id']}) was left attaching by an "
                         "interrupted task; run that task again (or storage_attachment state: detached) to finish it"]
    assert [p for p in problems if p.startswith("connection 'here'")] == [
        f"connection 'here' ({failed['id']}) is error; run its task again or delete it with storage_attachment "
        "state: detached"]
    # Control: a volume's way out is its module's state absent.
    assert f"volume 'v1' ({volume['id']}) is error; run its task again or delete it with state: absent" in problems


# Two views (issue 13 item 7): the backend's, where the backend is, and a host's, on that host ---------------
class Consumer:
    """A consumer host as a stand-in: its name, the loop devices its kernel shows (`bound`: device -> file) and
    those whose file is this host's (`mine`; default all: hosts sharing a kernel see each other's in /sys)."""

    def __init__(self, name: str, run_dir: str, bound: dict | None = None, mine: set | None = None) -> None:
        self.host_name, self.run, self.bound = name, run_dir, dict(bound or {})
        self.mine = set(self.bound) if mine is None else mine

    def bound_here(self, device: str, backing: str) -> bool:
        return device in self.mine

    def name(self) -> str:
        return self.host_name

    def run_dir(self) -> str:
        return self.run

    def bound_loops(self) -> dict:
        return dict(self.bound)

    def present(self, device) -> bool:
        return device.get("path") in self.bound

    def daemon_pid(self, directory: str) -> None:
        return None


def _connection(volume: dict, host: str, device: dict | None, n: int = 1) -> dict:
    return {"kind": "connection", "id": f"{n}0000000-0000-4000-8000-000000000000", "backend": "lab",
            "volume_id": volume["id"], "host": host, "status": "attached" if device else "connected",
            "device": device, "connector": {"host": host}, "connection_info": {"driver_volume_type": "iscsi"}}


@pytest.mark.parametrize("value, views", [
    (True, ("backend", "host")), ("both", ("backend", "host")), ("true", ("backend", "host")),
    ("backend", ("backend",)), ("host", ("host",)), (False, ()), (None, ()), ("no", ())])
def test_check_drift_takes_a_boolean_or_a_view(value, views):
    assert drift.views_of(value) == views


@pytest.mark.parametrize("value", ["maybe", "Backend", 1, ["host"]])
def test_check_drift_refuses_anything_else_naming_the_choices(value):
    with pytest.raises(InvalidParameter, match="check_drift: must be a boolean or one of backend, host, both"):
        drift.views_of(value)


def test_on_a_consumer_live_volumes_are_not_called_gone_and_the_backend_view_refuses_to_guess(tmp_path):
    lab = Lab(str(tmp_path / "stor1"), "raw")
    volume = lab.run(VolumeResource, name="v1", size=1)["volume"]
    export = str(tmp_path / "run" / volume["id"] / "export")
    device = {"path": "/dev/loop4", "type": "block", "method": "userspace", "protocol": "iscsi",
              "daemon": {"dir": str(tmp_path / "run" / volume["id"])}}
    lab.store.apply(upserts=[_connection(volume, "app1", device)])
    records = RecordSet("lab", lab.store.find("lab"))
    # The consumer has the device, not the backend's directory.
    consumer_driver = build_driver({"name": "lab", "driver": "file", "path": str(tmp_path / "app1" / "srv")})
    app1 = Consumer("app1", str(tmp_path / "run"), {"/dev/loop4": export})
    mine = drift.host_view(records, consumer_driver, app1)
    assert mine["in_sync"] and mine["views"] == {"host": "app1"}, mine["problems"]
    assert mine["missing_objects"] == [] and mine["checked"]["volumes"] is False
    with pytest.raises(DriverError, match=r"backend.path: .*/app1/srv is not a directory on this host \(app1\)"):
        drift.backend_view(records, consumer_driver, app1)
    assert not (tmp_path / "app1").exists()  # nothing made on the consumer
    # Where the backend is: in sync, and a volume really gone is reported there, with the advice to drop its record.
    assert drift.backend_view(records, lab.driver, Consumer("stor1", str(tmp_path / "run")))["in_sync"]
    os.unlink(lab.file(f"volume-{volume['id']}"))
    there = drift.backend_view(records, lab.driver, Consumer("stor1", str(tmp_path / "run")))
    assert [m["name"] for m in there["missing_objects"]] == ["v1"] and there["views"] == {"backend": "stor1"}
    assert there["problems"] == [f"volume 'v1' ({volume['id']}) is available in the store but gone from the backend; "
                                 "delete its record with state: absent"]


def test_a_device_is_judged_by_the_view_of_the_host_it_is_on(tmp_path):
    lab = Lab(str(tmp_path / "stor1"), "raw")
    volume = lab.run(VolumeResource, name="v1", size=1)["volume"]
    export = str(tmp_path / "run" / volume["id"] / "export")
    device = {"path": "/dev/loop4", "type": "block", "method": "userspace",
              "daemon": {"dir": str(tmp_path / "run" / volume["id"])}}
    lab.store.apply(upserts=[_connection(volume, "app1", device)])
    consumer_driver = build_driver({"name": "lab", "driver": "file", "path": str(tmp_path / "nowhere")})
    app1 = Consumer("app1", str(tmp_path / "run"), {"/dev/loop4": export})
    # app2 shares app1's kernel: it sees app1's loop device, bound to the same path in app1's own /run.
    app2 = Consumer("app2", str(tmp_path / "run"), {"/dev/loop4": export}, mine=set())
    records = RecordSet("lab", lab.store.find("lab"))
    assert drift.host_view(records, consumer_driver, app1)["in_sync"]
    # Its record removed by hand: app1's device is stale, and only app1's view can say so.
    lab.store.apply(deletes=[{"kind": "connection", "id": "10000000-0000-4000-8000-000000000000"}])
    records = RecordSet("lab", lab.store.find("lab"))
    mine = drift.host_view(records, consumer_driver, app1)
    assert [(d["device"], d["volume_name"]) for d in mine["unknown_devices"]] == [("/dev/loop4", "v1")]
    assert mine["problems"][0].startswith("/dev/loop4 on app1 serves volume 'v1'")
    assert drift.host_view(records, consumer_driver, app2)["in_sync"]


@pytest.mark.parametrize(("watchdog", "named"), [(4343, "qemu-storage-daemon pid 4242 (watchdog pid 4343)"),
                                                 (None, "qemu-storage-daemon pid 4242")])
def test_a_daemon_no_connection_records_is_reported_with_its_watchdog(tmp_path, watchdog, named):
    lab = Lab(str(tmp_path / "stor1"), "raw")
    volume = lab.run(VolumeResource, name="v1", size=1)["volume"]
    left = str(tmp_path / "run" / volume["id"])

    class Left(Consumer):
        """A daemon (and maybe its watchdog) left in v1's directory by a killed attach."""

        def daemon_pid(self, directory: str) -> int | None:
            return 4242 if directory == left else None

        def watchdog_pid(self, directory: str) -> int | None:
            return watchdog if directory == left else None

    report = drift.host_view(RecordSet("lab", lab.store.find("lab")), lab.driver, Left("app1", str(tmp_path / "run")))
    assert [(d["device"], d["backing_file"]) for d in report["unknown_devices"]] == [(named, left)]
    assert report["problems"][0].startswith(f"{named} on app1 serves volume 'v1'")


def test_the_host_view_alone_measures_nothing_and_makes_nothing_on_the_host(tmp_path):
    from ansible_collections.blockstore.storage.plugins.module_utils.handler import Task
    path = tmp_path / "srv" / "volumes"
    driver = build_driver({"name": "lab", "driver": "file", "path": str(path)})
    app1 = Consumer("app1", str(tmp_path / "run"))
    result, _changes = BackendInfo.on_host(Task({"check_drift": "host"}, driver=driver, records=[], host=app1))
    assert "stats" not in result["backend"] and result["drift"]["views"] == {"host": "app1"}
    assert not path.exists()
    # Control: the stats are measured where the backend is (the file driver makes its directory there).
    result, _changes = BackendInfo.on_host(Task({"check_drift": "backend"}, driver=driver, records=[], host=app1))
    assert result["backend"]["stats"]["volume_count"] == 0 and path.is_dir()
    assert result["drift"]["views"] == {"backend": "app1"} and result["drift"]["in_sync"]


def test_the_host_view_of_a_named_host_is_sent_that_hosts_connections_only(lab):
    volume = lab.run(VolumeResource, name="v1", size=1)["volume"]
    lab.store.apply(upserts=[_connection(volume, "app1", None, 1), _connection(volume, "app2", None, 2)])
    sent = BackendInfo.select(lab.store, "lab", {"check_drift": "host", "_blockstore_drift_host": "app1"})
    assert sorted((r["kind"], r.get("host")) for r in sent) == [("connection", "app1"), ("volume", None)]
    # Control: the backend view is sent every record.
    assert len(BackendInfo.select(lab.store, "lab", {"check_drift": "both", "_blockstore_drift_host": "app1"})) == 3


def test_views_merge_into_one_report_that_says_where_each_ran():
    backend = dict(drift._empty(), views={"backend": "stor1"}, missing_objects=[{"id": "x"}], problems=["gone"],
                   checked={"volumes": True, "snapshots": True, "exports": True, "devices": False})
    host = dict(drift._empty(), views={"host": "app1"}, problems=[],
                checked={"volumes": False, "snapshots": False, "exports": False, "devices": True})
    merged = drift.merge([backend, host])
    assert merged["views"] == {"backend": "stor1", "host": "app1"} and not merged["in_sync"]
    assert merged["checked"] == {"volumes": True, "snapshots": True, "exports": True, "devices": True}
    assert merged["problems"] == ["gone"]
    assert drift.merge([host])["in_sync"]


def test_exports_on_a_real_tgtd_are_compared_with_the_connection_records(tmp_path, request):
    if os.geteuid() != 0 or not shutil.which("tgtd"):
        pytest.skip("needs root and tgt (tgtd, tgtadm; Debian package tgt)")
    from ansible_collections.blockstore.storage.plugins.module_utils.attachments import AttachmentResource
    from ansible_collections.blockstore.storage.plugins.module_utils.handler import Task, dispatch
    tgt = request.getfixturevalue("tgt")  # a tgtd of its own (conftest.py)
    lab = Lab(str(tmp_path / "stor1"), "raw")
    lab.driver = build_driver({"name": "lab", "driver": "file", "path": lab.path, "target": "iscsi",
                               "tgt_control_port": tgt.control_port})
    lab.run(VolumeResource, name="v1", size=1)
    connector = {"host": "app1", "initiator": "iqn.2005-03.org.blockstore.lab:app1"}
    stor1 = Consumer("stor1", str(tmp_path / "run"))
    dispatch(AttachmentResource, Task({"volume": "v1", "state": "connected", "connector": connector},
                                      driver=lab.driver, host=stor1), store=lab.store)
    conn = lab.records("connection")[0]
    report = drift.backend_view(RecordSet("lab", lab.store.find("lab")), lab.driver, stor1)
    assert report["in_sync"] and report["checked"]["exports"], report["problems"]
    # The record removed by hand: its export is unknown to the store.
    lab.store.apply(deletes=[conn])
    report = drift.backend_view(RecordSet("lab", lab.store.find("lab")), lab.driver, stor1)
    assert [(e["connection_id"], e["volume_name"]) for e in report["unrecorded_exports"]] == [(conn["id"], "v1")]
    assert "no connection record knows it" in report["problems"][0]
    # The record back, the target gone (tgtd restarted, or removed by hand): the connection has no export.
    lab.store.apply(upserts=[conn])
    tgt.remove(conn["connection_info"]["data"]["target_iqn"], lab.driver.chap_user(from_record(conn)))
    report = drift.backend_view(RecordSet("lab", lab.store.find("lab")), lab.driver, stor1)
    assert [(m["id"], m["name"]) for m in report["missing_exports"]] == [(conn["id"], "app1")]
    assert report["unrecorded_exports"] == []
    assert "run storage_attachment for that volume on app1 again" in report["problems"][0]


def test_exports_of_a_host_without_tgtd_are_none_and_another_tgtadm_failure_is_told(tmp_path, monkeypatch):
    """Only a tgtd that is not there means no target: a tgtadm that fails otherwise (permissions, a broken
    daemon) must not make every iSCSI connection look unexported."""
    from ansible_collections.blockstore.storage.plugins.module_utils.drivers import tgt as tgt_module
    driver = build_driver({"name": "lab", "driver": "file", "path": str(tmp_path), "target": "iscsi",
                           "tgt_control_port": 1})

    def failing(error):
        def targets(self):
            raise error
        monkeypatch.setattr(tgt_module.Tgt, "targets", targets)
    failing(tgt_module.TgtdUnreachable("file driver: tgtadm failed: can't send the request to the tgt daemon"))
    assert driver.list_exports() == []
    failing(DriverError("file driver: tgtadm --mode target --op show failed: Permission denied"))
    with pytest.raises(DriverError, match="Permission denied"):
        driver.list_exports()


def test_a_loop_device_is_this_hosts_only_when_its_file_is_here(tmp_path):
    """On a real loop device: /sys shows other hosts' devices too (hosts sharing a kernel)."""
    if os.geteuid() != 0 or not shutil.which("losetup"):
        pytest.skip("needs root and losetup")
    from ansible_collections.blockstore.storage.plugins.module_utils.connectors import loop
    image, twin = tmp_path / "export", tmp_path / "twin"
    image.write_bytes(b"\0" * 1048576)
    twin.write_bytes(b"\0" * 1048576)
    device = loop.attach(str(image), read_only=True)
    try:
        assert loop.bound_here(device, str(image))
        assert not loop.bound_here(device, str(twin))  # another file at that path: another host's /run
        assert not loop.bound_here(device, str(tmp_path / "absent"))  # a path not on this host
    finally:
        subprocess.run(["losetup", "-d", device], check=True)
    assert loop.bound_here("/dev/not-a-loop", str(image))  # cannot tell: counted as this host's, as before


def test_a_reflink_probe_is_a_leftover_only_once_no_live_task_can_own_it(tmp_path):
    """Two tasks on one backend at once: one's stats probe is not the other's drift finding."""
    driver = build_driver({"name": "lab", "driver": "file", "path": str(tmp_path)})
    probe = tmp_path / ".reflink-probe-4242"
    probe.write_bytes(b"x")
    assert driver.list_leftovers() == []  # a live probe (milliseconds old)
    os.utime(probe, (time.time() - 3600, time.time() - 3600))
    assert driver.list_leftovers() == [".reflink-probe-4242"]  # positive control: one a killed task left

# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_snapshot's group snapshots on the real file driver (raw and qcow2): each member holds its
volume's data as of the group, check mode, diff, re-runs, delete of every member, info, refusals."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.errors import Conflict, InvalidParameter, NotFound
from ansible_collections.blockstore.storage.plugins.module_utils.handler import Task, dispatch
from ansible_collections.blockstore.storage.plugins.module_utils.objects import Connection
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.queries import SnapshotInfo
from ansible_collections.blockstore.storage.plugins.module_utils.serialization import check_record
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.tests.unit.plugins.module_utils.test_resources import Lab


@pytest.fixture(params=["raw", "qcow2"])
def lab(request, tmp_path) -> Lab:
    if not shutil.which("qemu-io"):
        pytest.skip("qemu-io is not installed (Debian package qemu-utils)")
    made = Lab(str(tmp_path / "lab"), request.param, MemoryStore())
    made.volume(name="db", size=1)
    made.volume(name="logs", size=1)
    return made


def volume_path(lab: Lab, name: str) -> str:
    return os.path.join(lab.path, f"volume-{lab.record('volume', name)['id']}")


def write(lab: Lab, name: str, byte: int) -> None:
    subprocess.run(["qemu-io", "-f", lab.format, "-c", f"write -P {byte} 0 64k", volume_path(lab, name)],
                   check=True, capture_output=True)


def holds(lab: Lab, name: str, byte: int) -> bool:
    done = subprocess.run(["qemu-io", "-f", lab.format, "-c", f"read -P {byte} 0 64k", volume_path(lab, name)],
                          check=False, capture_output=True, text=True)
    return done.returncode == 0 and "Pattern verification failed" not in done.stdout


def group_run(lab: Lab, check_mode: bool = False, **params) -> dict:
    return lab.run(SnapshotResource, check_mode=check_mode, **{"group": "nightly", **params})


def test_a_group_snapshot_holds_each_volume_as_of_the_group(lab):
    write(lab, "db", 0x11)
    write(lab, "logs", 0x22)
    before = lab.snapshot_of_state()
    planned = group_run(lab, check_mode=True, volumes=["db", "logs"])
    assert lab.snapshot_of_state() == before  # check mode changed nothing
    assert planned["changed"] and planned["actions"] == [
        "create snapshot 'nightly/db' of volume 'db' (group 'nightly')",
        "create snapshot 'nightly/logs' of volume 'logs' (group 'nightly')"]
    assert planned["diff"]["before"] == {} and planned["diff"]["after"]["volumes"] == ["db", "logs"]

    done = group_run(lab, volumes=["db", "logs"])
    assert done["changed"] and done["actions"] == planned["actions"]
    shown = done["group_snapshot"]
    assert shown["name"] == "nightly" and shown["volumes"] == ["db", "logs"]
    assert [(s["name"], s["group"], s["status"]) for s in shown["snapshots"]] == [
        ("nightly/db", "nightly", "available"), ("nightly/logs", "nightly", "available")]
    for record in lab.store.find("lab", "snapshot"):
        check_record(record, "test")  # the store's reader accepts the new field

    # the volumes change after the group; volumes made from its members hold the data of the group's time
    write(lab, "db", 0x33)
    write(lab, "logs", 0x44)
    lab.volume(name="db-then", source={"snapshot": "nightly/db"})
    lab.volume(name="logs-then", source={"snapshot": "nightly/logs"})
    assert holds(lab, "db-then", 0x11) and holds(lab, "logs-then", 0x22)
    assert not holds(lab, "db-then", 0x33)  # positive control of the check itself
    assert holds(lab, "db", 0x33) and holds(lab, "logs", 0x44)

    after = lab.snapshot_of_state()
    again = group_run(lab, volumes=["db", "logs"])
    assert not again["changed"] and again["actions"] == []
    assert again["group_snapshot"]["name"] == "nightly" and len(again["group_snapshot"]["snapshots"]) == 2
    assert lab.snapshot_of_state() == after


def test_delete_removes_every_member_and_only_them(lab):
    lab.snapshot(volume="db", name="by-hand")
    group_run(lab, volumes=["db", "logs"])
    ids = [r["id"] for r in lab.store.find("lab", "snapshot", group="nightly")]
    assert len(ids) == 2 and all(f"snapshot-{i}" in lab.files() for i in ids)
    before = lab.snapshot_of_state()
    planned = group_run(lab, check_mode=True, state="absent")
    assert planned["changed"] and len(planned["actions"]) == 2 and planned["diff"]["after"] == {}
    assert lab.snapshot_of_state() == before

    done = group_run(lab, state="absent")
    assert done["changed"] and done["group_snapshot"]["status"] == "deleted"
    assert [r["name"] for r in lab.store.find("lab", "snapshot")] == ["by-hand"]
    assert not any(f"snapshot-{i}" in lab.files() for i in ids)
    again = group_run(lab, state="absent")
    assert not again["changed"] and again["group_snapshot"] is None


def test_info_lists_the_members_of_a_group(lab):
    lab.snapshot(volume="db", name="by-hand")
    group_run(lab, volumes=["db", "logs"])

    def info(**params) -> list[str]:
        result, _changes = dispatch(SnapshotInfo, Task(params=params, driver=lab.driver), lab.store)
        return [s["name"] for s in result["snapshots"]]

    assert info(group="nightly") == ["nightly/db", "nightly/logs"]
    assert info() == ["by-hand", "nightly/db", "nightly/logs"]  # positive control: the filter is what hides it
    assert info(group="weekly") == []


CONNECTION_ID = "c0ffee00-0000-4000-8000-000000000001"


def attach_record(lab: Lab, name: str, mode: str, status: str = "attached") -> None:
    volume = lab.record("volume", name)
    conn = Connection(id=CONNECTION_ID, backend="lab", volume_id=volume["id"],
                      host="app1", mode=mode, status=status)
    lab.store.apply(upserts=[dataclasses.asdict(conn)])


def test_a_volume_attached_read_write_is_refused_and_nothing_changes(lab):
    attach_record(lab, "logs", "rw")
    before = lab.snapshot_of_state()
    with pytest.raises(Conflict) as error:
        group_run(lab, volumes=["db", "logs"])
    assert error.value.option == "volumes"
    assert "volume 'logs' is attached read-write to app1" in str(error.value)
    assert lab.snapshot_of_state() == before
    # positive controls: attached read-only, or a stale record (its host was force-detached), nothing writes
    attach_record(lab, "logs", "ro")
    assert group_run(lab, volumes=["db", "logs"])["changed"]
    attach_record(lab, "logs", "rw", status="stale")
    assert group_run(lab, group="weekly", volumes=["db", "logs"])["changed"]


@pytest.mark.parametrize(("params", "option"), [
    ({"group": "nightly"}, "volumes"),
    ({"group": "nightly", "volumes": []}, "volumes"),
    ({"group": "nightly", "volumes": ["db", ""]}, "volumes"),
    ({"group": "nightly", "volumes": ["db", "db"]}, "volumes"),
    ({"group": "nightly", "volumes": "db"}, "volumes"),
    ({"group": "", "volumes": ["db"]}, "group"),
    ({"group": "nightly", "volumes": ["db"], "name": "x"}, "name"),
    ({"group": "nightly", "volumes": ["db"], "volume": "db"}, "volume"),
    ({"group": "nightly", "volumes": ["db"], "retention": {"prefix": "n", "keep": 1}}, "retention"),
    ({"volumes": ["db"], "name": "x"}, "volumes"),
])
def test_bad_values_are_refused_naming_the_option_and_change_nothing(lab, params, option):
    before = lab.snapshot_of_state()
    with pytest.raises(InvalidParameter) as error:
        lab.run(SnapshotResource, **params)
    assert error.value.option == option
    assert lab.snapshot_of_state() == before


def test_an_unknown_volume_is_named(lab):
    with pytest.raises(NotFound) as error:
        group_run(lab, volumes=["db", "nope"])
    assert error.value.option == "volumes"
    assert lab.store.find("lab", "snapshot") == []


def test_a_group_keeps_its_volumes_and_a_hand_made_name_is_not_taken_over(lab):
    group_run(lab, volumes=["db"])
    before = lab.snapshot_of_state()
    with pytest.raises(Conflict) as error:
        group_run(lab, volumes=["db", "logs"])
    assert error.value.option == "volumes" and "holds snapshots of 'db'" in str(error.value)
    assert lab.snapshot_of_state() == before

    lab.snapshot(volume="logs", name="weekly/logs")
    before = lab.snapshot_of_state()
    with pytest.raises(Conflict) as error:
        group_run(lab, group="weekly", volumes=["db", "logs"])
    assert error.value.option == "group" and "'weekly/logs'" in str(error.value)
    assert lab.snapshot_of_state() == before
    # positive control: another group name is free
    assert group_run(lab, group="weekly2", volumes=["db", "logs"])["changed"]


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the collection catches it."""


@pytest.mark.parametrize("killed_at", [1, 2])
def test_a_killed_group_is_finished_by_the_next_run(lab, monkeypatch, killed_at):
    write(lab, "db", 0x11)
    write(lab, "logs", 0x22)
    create, calls = lab.driver.create_snapshot, []

    def dies(snapshot, volume):
        calls.append(snapshot.name)
        if len(calls) == killed_at:
            raise Killed()
        return create(snapshot, volume)

    monkeypatch.setattr(lab.driver, "create_snapshot", dies)
    with pytest.raises(Killed):
        group_run(lab, volumes=["db", "logs"])
    # the records were written before the driver ran: both members are visible, creating
    assert sorted((r["name"], r["status"]) for r in lab.store.find("lab", "snapshot")) == [
        ("nightly/db", "creating"), ("nightly/logs", "creating")]
    monkeypatch.setattr(lab.driver, "create_snapshot", create)
    # finishing a member takes its volume as it is now: refused while it is attached read-write
    attach_record(lab, "logs", "rw")
    with pytest.raises(Conflict) as error:
        group_run(lab, volumes=["db", "logs"])
    assert error.value.option == "volumes" and "'logs' is attached read-write" in str(error.value)
    lab.store.apply(deletes=[{"kind": "connection", "id": CONNECTION_ID}])
    done = group_run(lab, volumes=["db", "logs"])
    assert done["changed"] and done["actions"] == ["finish snapshot 'nightly/db'", "finish snapshot 'nightly/logs'"]
    assert [s["status"] for s in done["group_snapshot"]["snapshots"]] == ["available", "available"]
    lab.volume(name="db-then", source={"snapshot": "nightly/db"})
    lab.volume(name="logs-then", source={"snapshot": "nightly/logs"})
    assert holds(lab, "db-then", 0x11) and holds(lab, "logs-then", 0x22)
    assert holds(lab, "db", 0x11) and holds(lab, "logs", 0x22)
    assert not group_run(lab, volumes=["db", "logs"])["changed"]


def test_a_store_written_before_groups_loads_and_its_snapshots_are_in_no_group(tmp_path):
    if not shutil.which("qemu-io"):
        pytest.skip("qemu-io is not installed (Debian package qemu-utils)")
    from ansible_collections.blockstore.storage.plugins.module_utils.persistence.jsonfile import JsonFileStore
    path = str(tmp_path / "state.json")
    lab = Lab(str(tmp_path / "lab"), "raw", JsonFileStore(path))
    lab.volume(name="db", size=1)
    lab.snapshot(volume="db", name="old")
    # as an older version wrote it: no group field
    with open(path, encoding="utf-8") as state:
        document = json.load(state)
    snapshot = next(r for r in document["records"].values() if r["kind"] == "snapshot")
    assert snapshot.pop("group") == ""
    with open(path, "w", encoding="utf-8") as state:
        json.dump(document, state)
    reopened = Lab(lab.path, "raw", JsonFileStore(path))
    assert "group" not in reopened.record("snapshot", "old")
    assert reopened.snapshot(volume="db", name="old")["snapshot"]["group"] == ""
    assert not reopened.snapshot(volume="db", name="old")["changed"]
    assert group_run(reopened, volumes=["db"])["changed"]
    assert [r["name"] for r in reopened.store.find("lab", "snapshot", group="nightly")] == ["nightly/db"]


@pytest.mark.parametrize("check_mode", [True, False])
def test_a_thick_lvm_group_without_room_for_every_member_is_refused_before_any(tmp_path, monkeypatch, check_mode):
    from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
    from ansible_collections.blockstore.storage.plugins.module_utils.drivers.lvm import lvm as lvm_module
    from ansible_collections.blockstore.storage.plugins.module_utils.errors import DriverError
    from ansible_collections.blockstore.storage.tests.unit.plugins.module_utils.drivers.test_lvm_driver import (
        FakeLvm,
    )
    # Two 1 GiB thick volumes (256 extents each) and room for one snapshot as large as one of them.
    fake = FakeLvm(extents=2 * 256 + 300)
    monkeypatch.setattr(lvm_module, "run", fake)
    lab = Lab(str(tmp_path / "lab"), "raw", MemoryStore())
    lab.driver = build_driver({"name": "lab", "driver": "lvm", "volume_group": "vg0"})
    lab.volume(name="db", size=1)
    lab.volume(name="logs", size=1)
    made = fake.changes()
    with pytest.raises(DriverError, match=r"backend.volume_group: group snapshot 'nightly' .* needs 512 extents "
                                          r".* has 300 free .* nothing was changed") as caught:
        group_run(lab, check_mode=check_mode, volumes=["db", "logs"])
    assert caught.value.option == "backend.volume_group"
    assert fake.changes() == made and lab.store.find("lab", "snapshot") == []
    # positive control: a group of one of them fits
    done = group_run(lab, check_mode=check_mode, volumes=["db"])
    assert done["changed"] and [s["name"] for s in done["group_snapshot"]["snapshots"]] == ["nightly/db"]


def test_retention_of_one_volume_keeps_its_group_member_and_the_group_stays_whole(lab):
    group_run(lab, group="n-g", volumes=["db", "logs"])
    lab.snapshot(volume="db", name="n-old")
    done = lab.snapshot(volume="db", name="n-new", retention={"prefix": "n-", "keep": 1})
    assert [p["name"] for p in done["pruned"]] == ["n-old"]  # positive control: an ordinary one goes
    assert {k["name"]: k["reason"] for k in done["kept"]}["n-g/db"].startswith("a member of group snapshot 'n-g'")
    again = group_run(lab, group="n-g", volumes=["db", "logs"])
    assert not again["changed"] and [s["name"] for s in again["group_snapshot"]["snapshots"]] == ["n-g/db",
                                                                                                  "n-g/logs"]

# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_state's import of dumps real cinderlib 5.2.0 wrote (tests/fixtures/cinderlib/, made by make_dumps.py
there against the test Ceph with Cinder's RBD driver; db/ with cinderlib's db persistence, and that database):
what a user finds in the store afterwards."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.rbd.images import is_clone_base
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
from ansible_collections.blockstore.storage.plugins.module_utils.sources import read_source
from ansible_collections.blockstore.storage.plugins.module_utils.transfer import StateTransfer

HERE = os.path.dirname(os.path.abspath(__file__))
REAL = os.path.join(HERE, "..", "..", "..", "fixtures", "cinderlib")
# Each made twice: with cinderlib's default (memory) persistence, and in db/ with its db persistence.
BACKEND_FILES = ("backend.json", "backend-all-info.json", "cinderlib.json")
BACKEND_DUMPS = [d + n for d in ("", "db/") for n in BACKEND_FILES]
ONE_OBJECT_DUMPS = [d + n for d in ("", "db/") for n in ("volume.json", "snapshot.json", "connection.json")]
DATABASE = "db/cinderlib.sqlite"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\Z")


def path(name: str) -> str:
    return os.path.join(REAL, name)


def source(name: str, tmp_path) -> str:
    """What storage_state's src would be: the file, or a URL of a copy of the database."""
    if not name.endswith(".sqlite"):
        return path(name)
    pytest.importorskip("sqlalchemy")
    shutil.copyfile(path(name), tmp_path / "cinderlib.sqlite")
    return f"sqlite:///{tmp_path}/cinderlib.sqlite"


def ovo_data(name: str) -> dict:
    with open(path(name), encoding="utf-8") as handle:
        return json.load(handle)["ovo"]["versioned_object.data"]


def named(records: list) -> dict:
    """{name (volumes, snapshots) or 'connection@host': record}."""
    return {r["name"] if "name" in r else f"connection@{r['host']}": r for r in records}


@pytest.mark.parametrize("name", [*BACKEND_DUMPS, DATABASE])
def test_a_backend_dump_gives_every_volume_snapshot_and_connection(name, tmp_path):
    records, unmapped = read_source(source(name, tmp_path), "mine", None)
    found = named(records)
    data1, snap, conn = found["data1"], found["nightly"], found["connection@node1"]
    unnamed = [r for n, r in found.items() if n.startswith("volume-")]
    assert len(unnamed) == 1  # display_name "" in cinderlib: named after its id
    assert unnamed[0]["name"] == f"volume-{unnamed[0]['id']}"
    assert sorted(found) == sorted(["data1", "nightly", "connection@node1", "restored", "data1-clone",
                                    unnamed[0]["name"]])
    assert {r["backend"] for r in records} == {"mine"}
    assert (data1["size"], data1["status"], data1["description"], data1["metadata"]) == (
        1, "in-use", "database disk", {"owner": "dba"})
    assert (unnamed[0]["size"], unnamed[0]["status"]) == (2, "available")
    assert (snap["volume_id"], snap["volume_size"], snap["status"]) == (data1["id"], 1, "available")
    assert found["restored"]["source_snapshot_id"] == snap["id"]
    assert found["data1-clone"]["source_volume_id"] == data1["id"]
    assert (conn["volume_id"], conn["mode"], conn["status"]) == (data1["id"], "rw", "connected")
    assert conn["connector"]["ip"] == "192.0.2.21"
    assert conn["connection_info"]["driver_volume_type"] == "rbd"
    assert unmapped == []


@pytest.mark.parametrize("folder", ["", "db/"])
def test_the_backend_dumps_give_the_same_records(folder, tmp_path):
    """cinderlib.dumps(), Backend.dumps and the same with output_all_backend_info differ only in form; so does
    the database behind them (db/)."""
    names = [folder + n for n in BACKEND_FILES] + ([DATABASE] if folder else [])
    results = [sorted(read_source(source(name, tmp_path), "mine", None)[0], key=lambda r: r["id"])
               for name in names]
    assert len(results) == (4 if folder else 3) and all(r == results[0] for r in results)
    with open(path("backend-all-info.json"), encoding="utf-8") as handle:
        assert "rbd_pool" in json.load(handle)["backend"]  # positive control: the dumps do differ
    with open(path("backend.json"), encoding="utf-8") as handle:
        assert json.load(handle)["backend"] == {"volume_backend_name": "ceph"}


@pytest.mark.parametrize("name", ONE_OBJECT_DUMPS)
def test_one_objects_dump_imports_it_with_its_volume(name):
    """A Snapshot's or a Connection's dump embeds its volume (ovo.data.volume): both are imported."""
    records, unmapped = read_source(path(name), "mine", None)
    found = named(records)
    assert unmapped == []
    data1 = found["data1"]
    assert found["nightly"]["volume_id"] == data1["id"]
    assert found["connection@node1"]["volume_id"] == data1["id"]
    assert sorted(found) == ["connection@node1", "data1", "nightly"]
    # The dump's own object is there, as what it is.
    mine = next(r for r in records if r["id"] == ovo_data(name)["id"])
    assert mine["kind"] == {"volume.json": "volume", "snapshot.json": "snapshot",
                            "connection.json": "connection"}[os.path.basename(name)]


@pytest.mark.parametrize("name", [*BACKEND_DUMPS, *ONE_OBJECT_DUMPS, DATABASE])
def test_imported_times_are_utc_to_the_second_as_records_made_here(name, tmp_path):
    records, _unmapped = read_source(source(name, tmp_path), "mine", None)
    assert records
    for record in records:
        assert TIME.match(record["created_at"]), record["created_at"]
        assert TIME.match(record["updated_at"]), record["updated_at"]
    data1 = named(records)["data1"]
    folder = os.path.dirname(name)
    with open(path(os.path.join(folder, "backend.json")), encoding="utf-8") as handle:
        volumes = json.load(handle)["volumes"]
    dumped = next(v["ovo"]["versioned_object.data"] for v in volumes
                  if v["ovo"]["versioned_object.data"]["display_name"] == "data1")
    assert dumped["created_at"].endswith("Z")  # cinderlib writes Z and microseconds
    assert data1["created_at"] == dumped["created_at"][:19] + "+00:00"


def test_importing_one_dump_then_the_backend_dump_into_a_store(tmp_path):
    state = tmp_path / "state.json"
    store = open_store({"storage": "file", "path": str(state)})
    first = StateTransfer.run_on_store(store, "ceph", {"state": "imported", "src": path("snapshot.json")}, False)
    assert first["changed"] and first["imported"] == {"volumes": 1, "snapshots": 1, "connections": 1}
    assert [v["name"] for v in store.find("ceph", "volume")] == ["data1"]
    second = StateTransfer.run_on_store(store, "ceph", {"state": "imported", "src": path("backend.json")}, False)
    assert second["changed"] and second["imported"] == {"volumes": 4, "snapshots": 1, "connections": 1}
    assert len(store.find("ceph", "volume")) == 4
    again = StateTransfer.run_on_store(store, "ceph", {"state": "imported", "src": path("cinderlib.json")}, False)
    assert not again["changed"] and again["actions"] == []
    # The connection info carries the Ceph keyring (a placeholder here): sealed in the store, not in clear.
    assert "AQBPLACEHOLDER" in open(path("connection.json")).read()
    assert "AQBPLACEHOLDER" not in state.read_text()


def test_cinders_clone_snapshots_in_a_real_pool_are_clone_bases():
    """pool.json: the images Cinder's RBD driver left in the pool; a clone's parent snapshot is its own."""
    with open(path("pool.json"), encoding="utf-8") as handle:
        pool = json.load(handle)
    data1 = ovo_data("volume.json")
    parents = [e["parent"].split("@", 1)[1] for e in pool if e["parent"]]
    assert sorted(is_clone_base(p) for p in parents) == [False, True]  # the snapshot's volume, the clone
    cinder_snap = next(p for p in parents if is_clone_base(p))
    assert cinder_snap.endswith(".clone_snap") and cinder_snap.startswith("volume-")
    snaps = [s["name"] for e in pool if e["image"] == f"volume-{data1['id']}" for s in e["snapshots"]]
    assert cinder_snap in snaps and all(s.startswith("snapshot-") or is_clone_base(s) for s in snaps)

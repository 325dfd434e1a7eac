# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_state: cinderlib JSON and db persistence mapped into records, reports, idempotence, export."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.errors import InvalidParameter
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
from ansible_collections.blockstore.storage.plugins.module_utils.sealing import is_sealed
from ansible_collections.blockstore.storage.plugins.module_utils.sources import read_source
from ansible_collections.blockstore.storage.plugins.module_utils.transfer import StateTransfer

HERE = os.path.dirname(os.path.abspath(__file__))
# Hand-written in the shape of real cinderlib 5.2.0 output (tests/fixtures/cinderlib/ holds real dumps and
# test_cinderlib_real_dumps.py their import), for what the test Ceph cannot cheaply give: a status and a volume
# type with no equivalent here, a CHAP secret, a local attachment, two backends (the first dumped with
# output_all_backend_info).
DUMPS = os.path.join(HERE, "fixtures", "cinderlib_dumps.json")
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
VOL1, VOL2 = "6b7c4c1e-3f0a-4b51-9a36-2f8e1d0c9a11", "7c8d5d2f-4a1b-4c62-8b47-3a9f2e1d0b22"
SNAP, CONN = "0f5e8d55-9a4a-4f0b-8d1e-6b1f2a3c4d5e", "a1b2c3d4-0000-4000-8000-000000000001"


def by_id(records):
    return {r["id"]: r for r in records}


def reasons(unmapped, object_id):
    return " | ".join(u["reason"] for u in unmapped if u["id"] == object_id)


def test_cinderlib_dumps_map_to_records_of_the_given_backend():
    records, _unmapped = read_source(DUMPS, "mine", "ceph")
    found = by_id(records)
    assert set(found) == {VOL1, VOL2, SNAP, CONN}
    assert {r["backend"] for r in records} == {"mine"}
    vol1 = found[VOL1]
    assert (vol1["name"], vol1["size"], vol1["status"], vol1["description"], vol1["metadata"]) == (
        "data1", 10, "in-use", "database disk", {"owner": "dba"})
    assert vol1["created_at"].startswith("2023-03-01T10:00:00")
    snap = found[SNAP]
    assert (snap["name"], snap["volume_id"], snap["volume_size"], snap["status"]) == ("nightly", VOL1, 10, "available")
    vol2 = found[VOL2]
    assert vol2["name"] == f"volume-{VOL2}"  # unnamed in cinderlib
    assert vol2["source_snapshot_id"] == SNAP
    assert vol2["driver_data"]["model"] == {"provider_location": '{"saved_features": 61}',
                                            "provider_auth_secret": "CHAP user s3cret"}
    conn = found[CONN]
    assert (conn["volume_id"], conn["host"], conn["mode"], conn["status"]) == (VOL1, "node1", "rw", "connected")
    assert conn["connection_info"]["driver_volume_type"] == "rbd"
    assert conn["connector"]["ip"] == "192.0.2.21"
    assert conn["device"] is None


def test_what_cannot_be_mapped_is_reported():
    _records, unmapped = read_source(DUMPS, "mine", "ceph")
    assert "status 'maintenance' has no equivalent here; imported as error" in reasons(unmapped, VOL2)
    assert "volume type 'fast'" in reasons(unmapped, VOL2) and "multiattach" in reasons(unmapped, VOL2)
    assert "local attachment '/dev/rbd0' is not imported" in reasons(unmapped, CONN)
    assert "belongs to cinderlib backend 'lvm'" in reasons(unmapped, "9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b")
    assert not reasons(unmapped, VOL1) and not reasons(unmapped, SNAP)


def test_choice_of_backend():
    records, _unmapped = read_source(DUMPS, "mine", "lvm")
    assert [(r["name"], r["size"]) for r in records] == [("lvm-disk", 1)]
    with pytest.raises(InvalidParameter, match="several cinderlib backends \\(ceph, lvm\\)"):
        read_source(DUMPS, "mine", None)


def test_one_object_dump_and_orphans(tmp_path):
    # A snapshot's dump without the volume real ones embed: the snapshot alone is an orphan.
    document = json.load(open(DUMPS))
    snapshot_only = {"class": "Snapshot", "backend": {"volume_backend_name": "ceph"},
                     "ovo": document[0]["volumes"][0]["ovo"]["versioned_object.data"]["snapshots"][
                         "versioned_object.data"]["objects"][0]}
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snapshot_only))
    records, unmapped = read_source(str(path), "mine", None)
    assert records == []
    assert f"its volume {VOL1} is not in the source" in reasons(unmapped, SNAP)


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "is not JSON"),
    ('[{"no": "class"}]', "is not a cinderlib object"),
    ('[{"class": "Volume", "backend": {}, "ovo": {}}]', "has no versioned object data"),
    ('[{"class": "Group", "backend": {}, "ovo": {"versioned_object.data": {"id": "x"}}}]', "unknown cinderlib class"),
])
def test_bad_sources_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InvalidParameter, match=message):
        read_source(str(path), "mine", None)
    with pytest.raises(InvalidParameter, match="does not exist"):
        read_source(str(tmp_path / "missing.json"), "mine", None)


def test_import_is_idempotent_seals_secrets_and_respects_check_mode(tmp_path):
    store = open_store({"storage": "file", "path": str(tmp_path / "state.json")})
    params = {"state": "imported", "src": DUMPS, "src_backend": "ceph"}
    checked = StateTransfer.run_on_store(store, "mine", params, check_mode=True)
    assert checked["changed"] and len(checked["actions"]) == 4
    assert store.find("mine", "volume") == []
    first = StateTransfer.run_on_store(store, "mine", params, check_mode=False)
    assert first["changed"] and first["imported"] == {"volumes": 2, "snapshots": 1, "connections": 1}
    assert len(first["unmapped"]) == 4
    stored = by_id(store.find("mine", "volume"))
    assert is_sealed(stored[VOL2]["driver_data"]["model"]["provider_auth_secret"])
    assert "s3cret" not in (tmp_path / "state.json").read_text()
    assert "AQBfake" not in (tmp_path / "state.json").read_text()  # the keyring in the connection info
    second = StateTransfer.run_on_store(store, "mine", params, check_mode=False)
    assert not second["changed"] and second["actions"] == []


def test_export_then_import_round_trip(tmp_path):
    store = open_store({"storage": "file", "path": str(tmp_path / "state.json")})
    StateTransfer.run_on_store(store, "mine", {"state": "imported", "src": DUMPS, "src_backend": "ceph"}, False)
    dest = str(tmp_path / "export.json")
    exported = StateTransfer.run_on_store(store, "mine", {"state": "exported", "dest": dest}, False)
    assert exported["changed"] and exported["count"] == 4
    assert oct(os.stat(dest).st_mode & 0o777) == "0o600"
    again = StateTransfer.run_on_store(store, "mine", {"state": "exported", "dest": dest}, False)
    assert not again["changed"]
    other = open_store({"storage": "file", "path": str(tmp_path / "other.json")})
    other.sealer = store.sealer  # the same key: sealed fields stay readable
    moved = StateTransfer.run_on_store(other, "copy", {"state": "imported", "src": dest}, False)
    assert moved["changed"] and sorted(r["id"] for r in other.find("copy", "volume")) == sorted([VOL1, VOL2])


def _cinder_python():
    for candidate in (os.environ.get("BLOCKSTORE_TEST_RBD_PYTHON"), os.path.join(REPO, ".venv-rbd", "bin", "python")):
        if candidate and os.path.exists(candidate) and subprocess.run(
                [candidate, "-W", "ignore", "-c", "import cinder.db.models"], check=False,
                capture_output=True).returncode == 0:
            return candidate
    return None


def test_cinderlib_db_persistence_in_cinders_own_schema(tmp_path):
    python = _cinder_python()
    if python is None:
        pytest.skip("needs a Python with cinder (scripts/setup-cinder.sh) to make Cinder's schema")
    path = tmp_path / "cinderlib.sqlite"
    subprocess.run([python, os.path.join(REPO, "tests", "utils", "cinder_db_fixture.py"), str(path)], check=True)
    records, unmapped = read_source(f"sqlite:///{path}", "mine", None)
    from_json, _unmapped = read_source(DUMPS, "mine", "ceph")
    found, expected = by_id(records), by_id(from_json)
    assert set(found) == set(expected)  # the soft-deleted volume is not there
    for object_id, record in expected.items():
        for field in ("kind", "name", "size", "status", "volume_id", "host", "mode", "metadata", "source_snapshot_id"):
            assert found[object_id].get(field) == record.get(field), (object_id, field)
    assert "status 'maintenance'" in reasons(unmapped, VOL2) and "volume type 'fast'" in reasons(unmapped, VOL2)
    # The database's naive times are UTC; they are imported in the one form records carry.
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00\Z", r["created_at"]) for r in records)


def test_a_database_without_cinders_tables_is_refused(tmp_path):
    pytest.importorskip("sqlalchemy")
    import sqlite3
    path = tmp_path / "other.sqlite"
    sqlite3.connect(path).execute("create table something (id text)").connection.commit()
    with pytest.raises(InvalidParameter, match="no table 'volumes'"):
        read_source(f"sqlite:///{path}", "mine", None)


def test_an_export_is_rewritten_whenever_the_store_changed_and_check_mode_writes_nothing(tmp_path):
    store = open_store({"storage": "memory"})
    dest = tmp_path / "export.json"

    def export(check_mode=False):
        return StateTransfer.run_on_store(store, "lab", {"state": "exported", "dest": str(dest)}, check_mode)

    def volume(volume_id):
        return {"kind": "volume", "id": volume_id, "backend": "lab", "name": volume_id[:4], "size": 1,
                "status": "available"}
    low, high = volume("11111111-1111-4111-8111-111111111111"), volume("99999999-9999-4999-8999-999999999999")
    store.apply(upserts=[low])
    assert export()["changed"]
    one = dest.read_text()
    store.apply(upserts=[high])
    planned = export(check_mode=True)
    assert planned["changed"] is True and planned["count"] == 2
    assert dest.read_text() == one  # check mode wrote nothing
    assert export()["changed"] and json.loads(dest.read_text())["records"].keys() == {low["id"], high["id"]}
    store.apply(deletes=[high])
    assert export()["changed"] and dest.read_text() == one
    assert not export()["changed"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_an_export_to_a_directory_or_a_missing_one_is_refused_in_check_mode_too(tmp_path, check_mode):
    store = open_store({"storage": "memory"})
    (tmp_path / "export.json").mkdir()  # a directory where the export should go

    def export(dest):
        return StateTransfer.run_on_store(store, "lab", {"state": "exported", "dest": str(dest)}, check_mode)

    with pytest.raises(InvalidParameter, match="is a directory; give the path of the JSON file") as error:
        export(tmp_path / "export.json")
    assert error.value.option == "dest"
    with pytest.raises(InvalidParameter, match=r"directory .*/missing does not exist"):
        export(tmp_path / "missing" / "export.json")
    assert [p.name for p in tmp_path.iterdir()] == ["export.json"]  # no temp file, nothing made
    assert export(tmp_path / "fine.json")["changed"]  # positive control: a file path beside them is taken


def test_a_missing_sqlite_source_is_named_and_not_created(tmp_path):
    pytest.importorskip("sqlalchemy")
    path = tmp_path / "cinderlib.sqlite"
    with pytest.raises(InvalidParameter) as caught:
        read_source(f"sqlite:///{path}", "mine", None)
    assert caught.value.option == "src"
    assert f"src: the SQLite database {path} does not exist" in caught.value.msg
    assert not path.exists()
    # Control: the same URL once the file exists is opened and read (here: not Cinder's schema).
    import sqlite3
    sqlite3.connect(path).execute("create table something (id text)").connection.commit()
    with pytest.raises(InvalidParameter, match="no table 'volumes'"):
        read_source(f"sqlite:///{path}", "mine", None)


def test_a_changed_record_after_unchanged_ones_is_updated_and_named(tmp_path):
    store = open_store({"storage": "file", "path": str(tmp_path / "state.json")})
    ids = ["00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"]
    records = {i: {"kind": "volume", "id": i, "backend": "src", "name": f"v{n}", "size": 1, "status": "available",
                   "description": ""} for n, i in enumerate(ids)}
    src = tmp_path / "export.json"
    src.write_text(json.dumps({"schema_version": 1, "records": records}))
    params = {"state": "imported", "src": str(src)}
    assert StateTransfer.run_on_store(store, "mine", params, False)["changed"]
    records[ids[1]]["description"] = "moved"  # the first record stays as it was imported
    src.write_text(json.dumps({"schema_version": 1, "records": records}))
    again = StateTransfer.run_on_store(store, "mine", params, False)
    assert again["actions"] == [f"update volume 'v1' ({ids[1]})"]
    assert store.by_id(ids[1])["description"] == "moved" and store.by_id(ids[0])["description"] == ""


def test_backups_and_group_snapshots_move_between_stores(tmp_path):
    store = open_store({"storage": "file", "path": str(tmp_path / "state.json")})
    StateTransfer.run_on_store(store, "mine", {"state": "imported", "src": DUMPS, "src_backend": "ceph"}, False)
    # a group member, and a backup whose volume is gone (backups outlive their volume)
    store.apply(upserts=[
        {"kind": "snapshot", "id": "0f5e8d55-9a4a-4f0b-8d1e-6b1f2a3c4d60", "backend": "mine", "name": "g1/vol",
         "volume_id": VOL1, "volume_size": 1, "status": "available", "group": "g1"},
        {"kind": "backup", "id": "0f5e8d55-9a4a-4f0b-8d1e-6b1f2a3c4d61", "backend": "mine", "name": "nightly",
         "volume_id": "0f5e8d55-9a4a-4f0b-8d1e-6b1f2a3c4d62", "volume_name": "gone", "volume_size": 1,
         "location": "/srv/backups", "status": "available", "crash_consistent": False}])
    dest = str(tmp_path / "export.json")
    exported = StateTransfer.run_on_store(store, "mine", {"state": "exported", "dest": dest}, False)
    assert exported["count"] == 6
    other = open_store({"storage": "file", "path": str(tmp_path / "other.json")})
    other.sealer = store.sealer
    moved = StateTransfer.run_on_store(other, "copy", {"state": "imported", "src": dest}, False)
    assert moved["changed"] and moved["imported"]["backups"] == 1
    assert [(b["name"], b["location"]) for b in other.find("copy", "backup")] == [("nightly", "/srv/backups")]
    assert [s["name"] for s in other.find("copy", "snapshot", group="g1")] == ["g1/vol"]
    again = StateTransfer.run_on_store(other, "copy", {"state": "imported", "src": dest}, False)
    assert not again["changed"] and again["actions"] == []
    # a record that differs only by its group is updated
    with open(dest, encoding="utf-8") as handle:
        document = json.load(handle)
    document["records"]["0f5e8d55-9a4a-4f0b-8d1e-6b1f2a3c4d60"]["group"] = ""
    with open(dest, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    changed = StateTransfer.run_on_store(other, "copy", {"state": "imported", "src": dest}, False)
    assert changed["changed"] and other.find("copy", "snapshot", group="g1") == []

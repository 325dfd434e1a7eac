# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Records never clobber each other: ids unique across the store, ids safe, state validated on load.

Each task runs on the real file driver as a module without the action plugin does; every refusal is
checked to leave the store and the backends' files exactly as they were.
"""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import Conflict, StateStoreError
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.plugins.module_utils.transaction import perform, run_task
from ansible_collections.blockstore.storage.plugins.module_utils.transfer import StateTransfer
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource

STORES = ["file", "sqlite", "memory"]
TAKEN = "6f1c2b9e-3f1a-4c55-9e55-0c1d2e3f4a5b"
FRESH = "0b6a3c1d-2e4f-4a5b-8c6d-7e8f9a0b1c2d"


def _open(kind: str, tmp_path):
    if kind == "file":
        return open_store({"storage": "file", "path": str(tmp_path / "state.json")})
    if kind == "sqlite":
        pytest.importorskip("sqlalchemy")
        return open_store({"storage": "db", "connection": f"sqlite:///{tmp_path}/state.db"})
    return open_store({"storage": "memory"})


class Site:
    """Two file backends, a and b, sharing one store."""

    def __init__(self, store, tmp_path) -> None:
        self.store = store
        self.root = tmp_path
        self.drivers = {b: build_driver({"name": b, "driver": "file", "path": str(tmp_path / b)}) for b in "ab"}

    def run(self, handler, backend: str, check_mode: bool = False, **params) -> dict:
        def execute(records, new_ids):
            return perform(handler, self.drivers[backend], params, records, new_ids, check_mode)
        return run_task(self.store, handler, backend, params, check_mode, execute)

    def state(self) -> tuple:
        files = sorted(os.path.relpath(os.path.join(d, n), self.root) for b in "ab"
                       for d, _s, names in os.walk(self.root / b) for n in names)
        return sorted(json.dumps(r, sort_keys=True) for r in self.store.all_records()), files


@pytest.fixture(params=STORES)
def site(request, tmp_path):
    store = _open(request.param, tmp_path)
    yield Site(store, tmp_path)
    store.close()


@pytest.mark.parametrize("check_mode", [False, True])
def test_an_id_of_another_backends_volume_is_refused(site, check_mode):
    site.run(VolumeResource, "a", id=TAKEN, name="data", size=1)
    before = site.state()
    with pytest.raises(Conflict, match=f"id: {TAKEN} already belongs to volume 'data' of backend 'a'") as error:
        site.run(VolumeResource, "b", check_mode=check_mode, id=TAKEN, name="other", size=1)
    assert error.value.option == "id"
    assert site.state() == before
    # Positive control: a fresh id on backend b is fine, and a's volume is still there.
    assert site.run(VolumeResource, "b", id=FRESH, name="other", size=1)["changed"]
    assert site.store.find("a", "volume", id=TAKEN)[0]["name"] == "data"


def test_an_id_of_a_snapshot_is_refused_for_a_volume_and_back(site):
    site.run(VolumeResource, "a", name="data", size=1)
    site.run(SnapshotResource, "a", id=TAKEN, volume="data", name="snap")
    before = site.state()
    with pytest.raises(Conflict, match=f"id: {TAKEN} already belongs to snapshot 'snap'"):
        site.run(VolumeResource, "a", id=TAKEN, name="vol2", size=1)
    volume_id = site.store.find("a", "volume", name="data")[0]["id"]
    with pytest.raises(Conflict, match=f"id: {volume_id} already belongs to volume 'data'"):
        site.run(SnapshotResource, "a", id=volume_id, volume="data", name="snap2")
    assert site.state() == before
    assert site.run(SnapshotResource, "a", id=FRESH, volume="data", name="snap2")["changed"]


def test_the_store_itself_refuses_an_upsert_over_another_object(site):
    site.run(VolumeResource, "a", id=TAKEN, name="data", size=1)
    before = site.state()
    intruder = {"kind": "snapshot", "id": TAKEN, "backend": "a", "name": "s", "volume_id": FRESH, "volume_size": 1}
    with pytest.raises(Conflict, match="already belongs to volume 'data'"):
        site.store.apply(upserts=[intruder])
    assert site.state() == before


def test_import_into_another_backend_of_the_same_store_is_refused(site, tmp_path):
    site.run(VolumeResource, "a", name="data", size=1)
    dest = str(tmp_path / "export.json")
    StateTransfer.run_on_store(site.store, "a", {"state": "exported", "dest": dest}, False)
    before = site.state()
    with pytest.raises(Conflict, match="already belongs to volume 'data' of backend 'a'"):
        StateTransfer.run_on_store(site.store, "b", {"state": "imported", "src": dest}, False)
    with pytest.raises(Conflict, match="already belongs to volume 'data' of backend 'a'"):
        StateTransfer.run_on_store(site.store, "b", {"state": "imported", "src": dest}, True)
    assert site.state() == before
    # Positive control: importing into its own backend again is a no-op.
    assert not StateTransfer.run_on_store(site.store, "a", {"state": "imported", "src": dest}, False)["changed"]


def _state_file(path, records: dict) -> str:
    text = json.dumps({"schema_version": 1, "records": records})
    path.write_text(text)
    return text


def test_an_import_with_a_path_like_id_is_refused_before_any_path(tmp_path):
    store = _open("file", tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    bad_id = "x/../../victim"
    src = tmp_path / "evil.json"
    _state_file(src, {bad_id: {"kind": "volume", "id": bad_id, "backend": "a", "name": "v", "size": 1,
                               "status": "available"}})
    with pytest.raises(StateStoreError, match=r"record 'x/\.\./\.\./victim'.*id 'x/\.\./\.\./victim' is not a UUID"):
        StateTransfer.run_on_store(store, "a", {"state": "imported", "src": str(src)}, False)
    assert store.all_records() == [] and victim.read_text() == "keep me"
    # Positive control: the same record with a UUID id imports.
    _state_file(src, {FRESH: {"kind": "volume", "id": FRESH, "backend": "a", "name": "v", "size": 1,
                              "status": "available"}})
    assert StateTransfer.run_on_store(store, "a", {"state": "imported", "src": str(src)}, False)["changed"]


def test_a_state_file_with_a_repeated_id_is_refused(tmp_path):
    path = tmp_path / "state.json"
    one = json.dumps({"kind": "volume", "id": TAKEN, "backend": "a", "name": "v1", "size": 1})
    two = json.dumps({"kind": "volume", "id": TAKEN, "backend": "a", "name": "v2", "size": 2})
    text = '{"schema_version": 1, "records": {"' + TAKEN + '": ' + one + ', "' + TAKEN + '": ' + two + "}}"
    path.write_text(text)
    store = _open("file", tmp_path)
    with pytest.raises(StateStoreError, match=f"not valid JSON \\(key '{TAKEN}' appears twice in one object"):
        store.find("a", "volume")
    assert path.read_text() == text
    # Positive control: without the repeat it reads.
    path.write_text('{"schema_version": 1, "records": {"' + TAKEN + '": ' + one + "}}")
    assert [r["name"] for r in store.find("a", "volume")] == ["v1"]


GOOD = {"kind": "volume", "id": TAKEN, "backend": "a", "name": "data", "size": 1, "status": "available"}
BAD_RECORDS = {
    "volume without name": ({k: v for k, v in GOOD.items() if k != "name"}, "lacks field 'name'"),
    "volume without size": ({k: v for k, v in GOOD.items() if k != "size"}, "lacks field 'size'"),
    "size as a string": (dict(GOOD, size="10"), "field 'size' must be an integer number of GiB, got '10'"),
    "unknown status": (dict(GOOD, status="melted"), "field 'status' must be one of creating"),
    "snapshot size as a string": ({"kind": "snapshot", "id": TAKEN, "backend": "a", "name": "s", "volume_id": FRESH,
                                   "volume_size": "1"}, "field 'volume_size' must be an integer"),
}


@pytest.mark.parametrize("record, message", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_records_of_the_wrong_shape_are_refused_naming_store_record_and_field(tmp_path, record, message):
    path = tmp_path / "state.json"
    text = _state_file(path, {TAKEN: record})
    site = Site(_open("file", tmp_path), tmp_path)
    for params in ({"name": "data", "size": 2}, {"id": TAKEN, "size": 2}, {"name": "new", "size": 1}):
        with pytest.raises(StateStoreError) as error:
            site.run(VolumeResource, "a", **params)
        shown = str(error.value)
        assert f"state file {path}" in shown and f"record '{TAKEN}'" in shown and message in shown, shown
    assert path.read_text() == text
    assert not os.path.exists(tmp_path / "a") or os.listdir(tmp_path / "a") == []
    # Positive control: the well-formed record works.
    _state_file(path, {TAKEN: GOOD})
    assert site.run(VolumeResource, "a", name="new", size=1)["changed"]


def test_a_bad_record_in_a_database_store_names_the_database_and_the_record(tmp_path):
    store = _open("sqlite", tmp_path)
    store.apply(upserts=[GOOD])
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE blockstore_records SET data = ?", (json.dumps(dict(GOOD, size="10")),))
    with pytest.raises(StateStoreError, match=f"database sqlite:///.*state.db: record '{TAKEN}'.*field 'size'"):
        store.find("a", "volume")
    store.close()

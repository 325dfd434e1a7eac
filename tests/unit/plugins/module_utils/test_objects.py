# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names, records and RecordSet lookups."""

from __future__ import annotations

import uuid

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.errors import Ambiguous, InvalidParameter, NotFound
from ansible_collections.blockstore.storage.plugins.module_utils.objects import (
    SNAPSHOT,
    VOLUME,
    Connection,
    RecordSet,
    Snapshot,
    Volume,
    check_name,
    from_record,
    is_uuid,
    to_record,
)


@pytest.mark.parametrize("name", ["data1", "a", "x" * 255, "with space", "données", "日本", "a/b", "../etc",
                                  "$(rm -rf /)", "12345678-1234-1234-1234-12345678901"])
def test_names_are_labels_and_may_hold_almost_anything(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name, message", [
    ("", "must be a non-empty string"),
    ("   ", "must be a non-empty string"),
    (None, "must be a non-empty string"),
    (5, "must be a non-empty string"),
    (["a"], "must be a non-empty string"),
    ("x" * 256, "longer than 255 characters"),
    ("a\nb", "control characters"),
    ("tab\there", "control characters"),
    ("del\x7f", "control characters"),
    # fixed values: test ids must be the same in every pytest-xdist worker
    ("0f8e9c2a-5b1d-4c3e-9a7f-2d6b8e4c1a03", "looks like an id"),
    ("0F8E9C2A-5B1D-4C3E-9A7F-2D6B8E4C1A03", "looks like an id"),
])
def test_bad_names_are_refused_naming_the_option(name, message):
    with pytest.raises(InvalidParameter) as error:
        check_name(name, "snapshot.name")
    assert message in str(error.value)
    assert error.value.option == "snapshot.name"


def test_is_uuid():
    value = str(uuid.uuid4())
    assert is_uuid(value) and is_uuid(value.upper())
    assert not is_uuid(value.replace("-", ""))  # only the canonical form is an id
    assert not is_uuid("data1") and not is_uuid(None) and not is_uuid("")


def vol(name: str, backend: str = "lab", **fields) -> Volume:
    return Volume(id=str(uuid.uuid4()), name=name, backend=backend, size=1, **fields)


def test_record_round_trip_ignores_unknown_fields():
    volume = vol("data1", metadata={"k": "v"})
    record = to_record(volume)
    assert from_record(record) == volume
    assert from_record(dict(record, added_by_a_newer_minor="x")) == volume


def test_lookup_by_name_and_by_id():
    data1, data2 = vol("data1"), vol("data2")
    records = RecordSet("lab", [to_record(data1), to_record(data2)])
    assert records.lookup(VOLUME, "data1", "name") == data1
    assert records.lookup(VOLUME, data2.id, "id") == data2
    assert records.lookup(VOLUME, data2.id.upper(), "id") == data2
    assert records.lookup(SNAPSHOT, data2.id, "id", required=False) is None  # an id of another kind


def test_lookup_of_an_ambiguous_name_asks_for_the_id():
    first, second = vol("twin"), vol("twin")
    records = RecordSet("lab", [to_record(first), to_record(second)])
    with pytest.raises(Ambiguous) as error:
        records.lookup(VOLUME, "twin", "source.volume")
    message = str(error.value)
    assert message.startswith("source.volume: several volumes are named 'twin' on backend 'lab'")
    assert first.id in message and second.id in message
    assert "give the id" in message
    assert error.value.option == "source.volume"
    # The id still picks one.
    assert records.lookup(VOLUME, first.id, "source.volume") == first


def test_lookup_of_a_missing_object():
    records = RecordSet("lab", [])
    with pytest.raises(NotFound, match="volume: no volume 'ghost' on backend 'lab'") as error:
        records.lookup(VOLUME, "ghost", "volume")
    assert error.value.option == "volume"
    assert records.lookup(VOLUME, "ghost", "volume", required=False) is None


def test_records_of_other_backends_are_not_seen():
    records = RecordSet("lab", [to_record(vol("data1", backend="other"))])
    assert records.lookup(VOLUME, "data1", "name", required=False) is None
    assert records.all(VOLUME) == []


def test_changes_name_each_record_once_with_its_last_state():
    keep, gone = vol("keep"), vol("gone")
    records = RecordSet("lab", [to_record(keep), to_record(gone)])
    keep.size = 5
    records.put(keep)
    records.remove(gone)
    created = vol("created")
    records.put(created)
    records.remove(created)  # created then removed in one task: only a delete
    snap = Snapshot(id=str(uuid.uuid4()), name="s", backend="lab", volume_id=keep.id, volume_size=5)
    records.remove(snap)
    records.put(snap)  # removed then put back: only an upsert
    changes = records.changes()
    assert {r["id"]: r["size"] for r in changes["upserts"] if r["kind"] == VOLUME} == {keep.id: 5}
    assert [r["id"] for r in changes["upserts"] if r["kind"] == SNAPSHOT] == [snap.id]
    assert sorted(d["id"] for d in changes["deletes"]) == sorted([gone.id, created.id])
    assert records.get(VOLUME, keep.id).size == 5
    assert records.get(VOLUME, gone.id) is None


def test_a_record_set_holds_only_its_backend_and_lists_each_kind_apart():
    def volume(backend: str, name: str) -> dict:
        return to_record(Volume(id=str(uuid.uuid4()), name=name, backend=backend, size=1))
    mine = volume("lab2", "mine")
    snapshot = to_record(Snapshot(id=str(uuid.uuid4()), name="s", backend="lab2", volume_id=mine["id"], volume_size=1))
    connection = to_record(Connection(id=str(uuid.uuid4()), backend="lab2", volume_id=mine["id"], host="h1"))
    records = RecordSet("lab2", [volume("lab1", "lower"), mine, snapshot, connection, volume("lab3", "higher")])
    assert [v.name for v in records.all(VOLUME)] == ["mine"]
    assert [s.name for s in records.all(SNAPSHOT)] == ["s"]  # "snapshot" sorts after "connection", before "volume"

# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The versioned JSON state document: round trip, and what it refuses."""

from __future__ import annotations

import json
import uuid

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils import serialization
from ansible_collections.blockstore.storage.plugins.module_utils.errors import StateStoreError
from ansible_collections.blockstore.storage.plugins.module_utils.objects import (
    Connection,
    Snapshot,
    Volume,
    to_record,
)


def sample_records() -> list[dict]:
    volume = Volume(id=str(uuid.uuid4()), name="données-1", backend="lab", size=10,
                    metadata={"a": [1, {"b": None}]}, driver_data={"format": "qcow2"})
    snapshot = Snapshot(id=str(uuid.uuid4()), name="before", backend="lab", volume_id=volume.id, volume_size=10)
    connection = Connection(id=str(uuid.uuid4()), backend="lab", volume_id=volume.id, host="web1",
                            connection_info={"driver_volume_type": "local", "data": {"device_path": "/x"}})
    return [to_record(volume), to_record(snapshot), to_record(connection)]


def test_round_trip_keeps_every_record_exactly():
    records = sample_records()
    text = serialization.dumps(records)
    assert serialization.loads(text) == {r["id"]: r for r in records}
    assert serialization.dumps(serialization.loads(text)) == text  # stable, sorted output


def test_document_carries_its_schema_version():
    document = json.loads(serialization.dumps([]))
    assert document == {"schema_version": serialization.SCHEMA_VERSION, "records": {}}


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text_is_an_empty_state(text):
    assert serialization.loads(text) == {}


def _document(records: object = None, **extra) -> str:
    document = {"schema_version": serialization.SCHEMA_VERSION, "records": {} if records is None else records}
    document.update(extra)
    return json.dumps(document)


VOLUME_ID = str(uuid.uuid4())
REFUSED = {
    "not json": ("{", "not valid JSON"),
    "truncated": (serialization.dumps(sample_records())[:-5], "not valid JSON"),
    "a list": ("[]", "not a blockstore state document"),
    "no records key": ('{"schema_version": 1}', "not a blockstore state document"),
    "newer schema": (_document(schema_version=serialization.SCHEMA_VERSION + 1), "written by a newer"),
    "schema zero": (_document(schema_version=0), "schema_version 0 is not valid"),
    "schema as text": (_document(schema_version="1"), "schema_version must be an integer"),
    "schema as bool": (_document(schema_version=True), "schema_version must be an integer"),
    "no schema": ('{"records": {}}', "schema_version must be an integer"),
    "records as a list": (_document([]), "'records' must be an object keyed by id"),
    "record not an object": (_document({VOLUME_ID: "x"}), "a record must be a JSON object"),
    "record without backend": (_document({VOLUME_ID: {"kind": "volume", "id": VOLUME_ID}}), "lacks backend"),
    "record without kind and id": (_document({VOLUME_ID: {"backend": "b"}}), "lacks kind, id"),
    "unknown kind": (_document({VOLUME_ID: {"kind": "pool", "id": VOLUME_ID, "backend": "b"}}),
                     "unknown record kind 'pool'"),
    "id mismatch": (_document({VOLUME_ID: {"kind": "volume", "id": "other", "backend": "b", "name": "v", "size": 1}}),
                    f"record '{VOLUME_ID}' carries id 'other'"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_documents_are_refused_with_where_and_why(case):
    text, message = REFUSED[case]
    with pytest.raises(StateStoreError) as error:
        serialization.loads(text, where="state file /x/state.json")
    assert str(error.value).startswith("state file /x/state.json: ")
    assert message in str(error.value)


def test_newer_schema_message_says_what_to_do():
    with pytest.raises(StateStoreError) as error:
        serialization.check_version(serialization.SCHEMA_VERSION + 1, "state file s.json")
    assert "upgrade the collection" in str(error.value)
    assert "left untouched" in str(error.value)


def test_dumps_accepts_a_mapping_or_an_iterable():
    records = sample_records()
    assert serialization.dumps(records) == serialization.dumps({r["id"]: r for r in records})
    assert serialization.dumps(iter(records)) == serialization.dumps(records)


def test_the_same_records_give_the_same_text_whatever_their_order():
    # A state file kept under version control changes only where a record changed.
    records = sample_records()
    shuffled = [dict(reversed(list(r.items()))) for r in reversed(records)]
    assert serialization.dumps(shuffled) == serialization.dumps(records)
    assert serialization.dumps(records).index('"backend"') < serialization.dumps(records).index('"id"')


def test_state_written_today_is_schema_1_which_every_release_reads():
    assert json.loads(serialization.dumps(sample_records()))["schema_version"] == 1


def test_a_record_id_is_a_uuid_or_a_short_safe_name_and_sizes_start_at_zero():
    good = {"kind": "volume", "id": str(uuid.uuid4()), "backend": "b", "name": "v", "size": 1, "status": "available"}
    # Short safe ids (what an import or a store plugin may give) and size 0 (the store conformance suite's
    # counters) are records like any other.
    for record in (dict(good, id="lab-volume_1"), dict(good, size=0)):
        assert serialization.check_record(record, "here") is record
    for record, message in ((dict(good, id="../etc"), "id '../etc' is not a UUID"),
                            (dict(good, size=-1), "field 'size' must be an integer number of GiB, got -1")):
        with pytest.raises(StateStoreError, match=message):
            serialization.check_record(record, "here")

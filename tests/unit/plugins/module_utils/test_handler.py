# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The handler contract: which side runs what, and the secret gate in front of every host half."""

from __future__ import annotations

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils import sealing
from ansible_collections.blockstore.storage.plugins.module_utils.attachments import AttachmentResource
from ansible_collections.blockstore.storage.plugins.module_utils.errors import StateStoreError
from ansible_collections.blockstore.storage.plugins.module_utils.handler import Handler, SecretGate, Task, dispatch
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
from ansible_collections.blockstore.storage.plugins.module_utils.queries import BackendInfo, HostInfo, VolumeInfo
from ansible_collections.blockstore.storage.plugins.module_utils.sealing import Sealer
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource

SEALER = Sealer(key=sealing.new_key())
RECORD = {"kind": "connection", "id": "c", "backend": "lab", "volume_id": "v", "host": "h1",
          "connection_info": {"data": {"auth_password": "pw"}}}


class Echo(Handler):
    """A host half that shows what it was handed and hands back what it made."""

    needs_secrets = True

    @classmethod
    def on_host(cls, task):
        return {"seen": task.records}, {"upserts": [dict(RECORD, id="new")], "deletes": []}


def test_the_gate_opens_sealed_secrets_for_the_host_half_and_seals_what_comes_back():
    sealed = SEALER.seal_tree(RECORD)
    result, changes = dispatch(Echo, Task({}, records=[sealed], sealer=SEALER))
    assert result["seen"] == [RECORD]
    assert sealing.is_sealed(changes["upserts"][0]["connection_info"]["data"]["auth_password"])


def test_the_key_goes_only_where_sealed_secrets_are_needed():
    sealed = SEALER.seal_tree(RECORD)
    assert VolumeResource.wants_key([sealed]) and not VolumeResource.wants_key([{"kind": "volume", "id": "v"}])
    assert AttachmentResource.wants_key([])  # it seals the credentials a new export makes
    assert not VolumeInfo.wants_key([sealed])


def test_the_controller_side_ships_the_host_half_and_a_storeless_handler_without_records():
    shipped = []

    def ship(records, new_ids, key):
        shipped.append(records)
        return {"changed": False, "connector": {}}, None

    dispatch(HostInfo, Task({}), ship=ship)
    store = open_store({"storage": "memory"})
    dispatch(VolumeInfo, Task({}, driver=_Driver()), store=store, ship=ship)
    assert shipped == [None, []]


def test_a_module_run_alone_runs_both_halves_here():
    store = open_store({"storage": "memory"})
    result, changes = dispatch(VolumeInfo, Task({}, driver=_Driver()), store=store)
    assert result == {"changed": False, "volumes": []} and changes is None


class _Driver:
    backend_name = "lab"
    name = "stub"
    owner = None

    @staticmethod
    def locator():
        return {}


class EchoFromStore(Echo):
    @classmethod
    def select(cls, store, backend, params):
        return store.find(backend)


def test_a_module_run_alone_opens_the_secrets_its_host_half_needs_with_the_stores_key():
    store = open_store({"storage": "memory"})
    store.apply(upserts=[store.sealer.seal_tree(RECORD)])
    result, _changes = dispatch(EchoFromStore, Task({}, driver=_Driver()), store=store)
    assert result["seen"] == [RECORD]


def test_a_storeless_handler_answers_with_its_host_halfs_result():
    def ship(records, new_ids, key):
        return {"changed": False, "connector": {"host": "h1"}}, {"upserts": []}

    assert dispatch(HostInfo, Task({}), ship=ship) == ({"changed": False, "connector": {"host": "h1"}}, None)


def test_a_task_with_nothing_to_do_is_answered_on_the_controller_only_by_handlers_that_allow_it():
    store = open_store({"storage": "memory"})
    shipped = []

    def ship(records, new_ids, key):
        shipped.append(records)
        return {"changed": False, "shipped": True}, None

    def answer_noop(result):
        return dict(result, answered_on_the_controller=True)

    result, _changes = dispatch(VolumeInfo, Task({}, driver=_Driver()), store=store, ship=ship, answer_noop=answer_noop)
    assert result == {"changed": False, "volumes": [], "answered_on_the_controller": True} and shipped == []
    result, _changes = dispatch(EchoFromStore, Task({}, driver=_Driver()), store=store, ship=ship,
                                answer_noop=answer_noop)
    assert result == {"changed": False, "shipped": True} and shipped == [[]]


def test_a_task_does_its_work_unless_check_mode_is_asked_for(tmp_path):
    from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
    driver = build_driver({"name": "lab", "driver": "file", "path": str(tmp_path)})
    store = open_store({"storage": "memory"})
    result, _changes = dispatch(VolumeResource, Task({"name": "v1", "size": 1}, driver=driver), store=store)
    assert result["changed"] and (tmp_path / f"volume-{result['volume']['id']}").exists()
    result, _changes = dispatch(VolumeResource, Task({"name": "v2", "size": 1}, True, driver=driver), store=store)
    assert result["changed"] and not (tmp_path / f"volume-{result['volume']['id']}").exists()


def test_only_the_host_facts_need_no_backend():
    assert not HostInfo.needs_backend
    assert VolumeResource.needs_backend and AttachmentResource.needs_backend and VolumeInfo.needs_backend


def test_the_host_half_works_on_the_records_the_controller_sent(tmp_path):
    from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
    driver = build_driver({"name": "lab", "driver": "file", "path": str(tmp_path)})
    store = open_store({"storage": "memory"})
    made, _changes = dispatch(VolumeResource, Task({"name": "v1", "size": 1}, driver=driver), store=store)
    sent = Task({"name": "v1", "size": 1}, driver=driver, records=store.find("lab"))
    result, _changes = dispatch(VolumeResource, sent)
    assert result["changed"] is False and result["volume"]["id"] == made["volume"]["id"]


def test_a_snapshot_task_gets_the_key_to_its_volumes_secrets():
    # Cinder's drivers read the volume's model, credentials included, to snapshot it.
    sealed = SEALER.seal_tree(RECORD)
    assert SnapshotResource.wants_key([sealed]) and not SnapshotResource.wants_key([{"kind": "volume", "id": "v"}])


def _sealed_record_in_store():
    store = open_store({"storage": "memory"})
    store.apply(upserts=[store.sealer.seal_tree(RECORD)])
    return store


def test_a_host_half_is_sent_a_key_of_its_task_never_the_stores():
    store = _sealed_record_in_store()
    sent = []

    def ship(records, new_ids, key):  # the module's side, as runner.py runs it with what it was sent
        sent.append((records, key))
        return dispatch(EchoFromStore, Task({}, records=records, sealer=Sealer(key=key)))

    result, _changes = dispatch(EchoFromStore, Task({}, driver=_Driver()), store=store, ship=ship)
    dispatch(EchoFromStore, Task({}, driver=_Driver()), store=store, ship=ship)
    (records, key), (_records, other_key) = sent
    assert result["seen"] == [RECORD]  # the host half opened its secret with the key it was sent
    assert key not in (store.sealer.key(), other_key)  # a key of that task alone
    token = records[0]["connection_info"]["data"]["auth_password"]
    assert sealing.is_sealed(token) and Sealer(key=key).unseal(token) == "pw"
    with pytest.raises(StateStoreError, match="does not open"):
        store.sealer.unseal(token)  # no token the store's key opens goes out either


def test_what_a_host_half_hands_back_is_sealed_with_the_stores_key_on_the_store_side():
    store = _sealed_record_in_store()
    task_key = Sealer(key=sealing.new_key())
    gate = SecretGate(Echo, Task({}), store.sealer, task_key)

    def ship(records, new_ids, key):
        assert key == task_key.key()
        return {}, {"upserts": [task_key.seal_tree(dict(RECORD, id="new"))], "deletes": []}

    _result, changes = gate.guard(ship)(store.find("lab"), [])
    token = changes["upserts"][0]["connection_info"]["data"]["auth_password"]
    assert sealing.is_sealed(token) and store.sealer.unseal(token) == "pw"


class Owned(Echo):
    """Works for one host's connections, and hands back every record it was sent."""

    own_connections_only = True

    @classmethod
    def on_host(cls, task):
        return {"seen": task.records}, {"upserts": task.records, "deletes": []}


def _never_asked():
    raise AssertionError("asked which host the module runs on")


def test_a_host_is_sent_its_own_connection_whole_and_only_who_else_is_connected():
    other = dict(RECORD, id="c2", host="h2", connector={"host": "h2", "initiator": "iqn.h2", "wwpns": ["w"]},
                 device={"path": "/dev/sdb"})
    store = open_store({"storage": "memory"})
    store.apply(upserts=[store.sealer.seal_tree(r) for r in (RECORD, other)])
    task = Task({}, whoami=lambda: "h1")
    gate = SecretGate(Owned, task, store.sealer, None)  # in one process: the same records, in clear
    sent = gate.open(store.find("lab"))
    assert RECORD in sent  # its own, whole, its secret open
    assert {"kind": "connection", "id": "c2", "backend": "lab", "volume_id": "v", "host": "h2",
            "connector": {"host": "h2", "initiator": "iqn.h2"}} in sent
    assert "pw" not in str([r for r in sent if r["id"] == "c2"]) and gate.partial == {"c2"}
    # A task that names a connector works for that host, without asking which host it runs on.
    gate = SecretGate(Owned, Task({"connector": {"host": "h2"}}, whoami=_never_asked), store.sealer, None)
    sent = gate.open(store.find("lab"))
    assert other in sent and gate.partial == {"c"}


def test_a_record_sent_only_in_part_is_never_written_back():
    other = dict(RECORD, id="c2", host="h2")
    store = open_store({"storage": "memory"})
    store.apply(upserts=[store.sealer.seal_tree(r) for r in (RECORD, other)])
    gate = SecretGate(Owned, Task({}, whoami=lambda: "h1"), store.sealer, None)
    _result, changes = gate.guard(lambda records, new_ids, key: Owned.on_host(Task({}, records=records[:1])))(
        store.find("lab"), [])
    assert [r["id"] for r in changes["upserts"]] == ["c"]  # handing back its own record is fine
    with pytest.raises(StateStoreError, match=r"sent only in part \(c2\)"):
        gate.guard(lambda records, new_ids, key: Owned.on_host(Task({}, records=records)))(store.find("lab"), [])


def test_a_handler_that_needs_no_secrets_is_sent_them_masked():
    store = _sealed_record_in_store()
    shipped = []

    def ship(records, new_ids, key):
        shipped.append((records, key))
        return {"changed": False}, None

    dispatch(BackendInfo, Task({"check_drift": True}, driver=_Driver()), store=store, ship=ship)
    assert shipped == [([dict(RECORD, connection_info={"data": {"auth_password": "********"}})], None)]


def test_a_snapshot_task_is_sent_connections_without_their_credentials():
    volume = {"kind": "volume", "id": "v", "backend": "lab", "driver_data": {"model": {"auth_password": "vpw"}}}
    sent, partial = SnapshotResource.host_records([volume, RECORD], {}, lambda: "h1")
    assert sent[0] == volume  # the volume's own (Cinder's model) it does need
    assert sent[1]["connection_info"]["data"]["auth_password"] == "********" and partial == {"c"}

# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The handler contract: which side runs what, and the secret gate in front of every host half."""

from __future__ import annotations

from ansible_collections.blockstore.storage.plugins.module_utils import sealing
from ansible_collections.blockstore.storage.plugins.module_utils.attachments import AttachmentResource
from ansible_collections.blockstore.storage.plugins.module_utils.handler import Handler, SecretGate, Task, dispatch
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
from ansible_collections.blockstore.storage.plugins.module_utils.queries import HostInfo, VolumeInfo
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


def test_without_the_key_the_gate_lets_records_through_as_they_are():
    sealed = SEALER.seal_tree(RECORD)
    gate = SecretGate(None)
    assert gate.open([sealed]) == [sealed] and gate.close({"upserts": [RECORD]}) == {"upserts": [RECORD]}


def test_the_key_goes_only_where_sealed_secrets_are_needed():
    sealed = SEALER.seal_tree(RECORD)
    assert VolumeResource.wants_key([sealed]) and not VolumeResource.wants_key([{"kind": "volume", "id": "v"}])
    assert AttachmentResource.wants_key([])  # it seals the credentials a new export makes
    assert not VolumeInfo.wants_key([sealed])


def test_the_controller_side_ships_the_host_half_and_a_storeless_handler_without_records():
    shipped = []

    def ship(records, new_ids):
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
    def ship(records, new_ids):
        return {"changed": False, "connector": {"host": "h1"}}, {"upserts": []}

    assert dispatch(HostInfo, Task({}), ship=ship) == ({"changed": False, "connector": {"host": "h1"}}, None)


def test_a_task_with_nothing_to_do_is_answered_on_the_controller_only_by_handlers_that_allow_it():
    store = open_store({"storage": "memory"})
    shipped = []

    def ship(records, new_ids):
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

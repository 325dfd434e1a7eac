# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of the action plugin's state bridge: how a task with nothing to do is answered."""

from __future__ import annotations

import types

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.backends_file import resolve_backend
from ansible_collections.blockstore.storage.plugins.module_utils.errors import InvalidParameter
from ansible_collections.blockstore.storage.plugins.module_utils.queries import VolumeInfo
from ansible_collections.blockstore.storage.plugins.module_utils.snapshots import SnapshotResource
from ansible_collections.blockstore.storage.plugins.module_utils.volumes import VolumeResource

# A stand-in for the action plugin: only its templar is read (variables arrive templated here).
ACTION = types.SimpleNamespace(_templar=types.SimpleNamespace(template=lambda value: value))
VALIDATED = types.SimpleNamespace(_warnings=[], _deprecations=[])


@pytest.fixture(name="state_bridge")
def fixture_state_bridge():
    # Imported here, not at the top: the action plugin's code imports ansible, which the non-root leg's venv
    # lacks, and a module-level import would break that leg's collection of every test file.
    from ansible_collections.blockstore.storage.plugins.plugin_utils import state_bridge
    return state_bridge


def answered_here(handler, **task_vars) -> str | None:
    from ansible_collections.blockstore.storage.plugins.plugin_utils import state_bridge
    return state_bridge.noop_answered_here(ACTION, task_vars, handler, VALIDATED)


@pytest.mark.parametrize("handler", [VolumeResource, SnapshotResource])
def test_volume_and_snapshot_tasks_check_the_backend_unless_the_store_answer_is_asked_for(handler):
    assert answered_here(handler) == "probe"
    assert answered_here(handler, blockstore_noop_answer="backend") == "probe"
    assert answered_here(handler, blockstore_noop_answer="store") == "store"
    # blockstore_always_run_module still runs the module, whatever else is set.
    assert answered_here(handler, blockstore_always_run_module=True) is None
    assert answered_here(handler, blockstore_noop_answer="store", blockstore_always_run_module=True) is None


def test_info_tasks_answer_from_the_store_unless_the_module_must_run():
    assert answered_here(VolumeInfo) == "store"
    assert answered_here(VolumeInfo, blockstore_always_run_module="true") is None


@pytest.mark.parametrize("value", ["Store", "records", "", True, ["store"]])
def test_a_bad_noop_answer_is_refused_naming_the_variable(value):
    with pytest.raises(InvalidParameter) as refused:
        answered_here(VolumeResource, blockstore_noop_answer=value)
    assert refused.value.option == "blockstore_noop_answer"
    assert refused.value.msg.startswith(f"blockstore_noop_answer: {value!r} is not one of backend, store")


@pytest.mark.parametrize("params", [
    {"backend": {"name": "b", "driver": "file", "path": "/srv/b"}},
    {"backend": {"name": "b", "driver": "file", "path": "/srv/b"}, "backends_file": None},
])
def test_an_inline_backend_is_what_resolve_backend_makes_of_it(params, state_bridge):
    assert state_bridge.task_backend(params) == resolve_backend(params["backend"], params.get("backends_file"))


def test_a_backend_naming_a_section_goes_through_the_backends_file(tmp_path, state_bridge):
    conf = tmp_path / "backends.conf"
    conf.write_text("[DEFAULT]\nenabled_backends = lab\n\n[lab]\ndriver = file\npath = /srv/lab\n")
    params = {"backend": "lab", "backends_file": str(conf)}
    assert state_bridge.task_backend(params) == resolve_backend("lab", str(conf))
    assert state_bridge.task_backend(params)["path"] == "/srv/lab"


def backend_side_of(state_bridge, short_name, backend, inventory_hostname="app1", delegate_to=None):
    """(the connection chosen for the backend-side work, what the module is sent as `backend`)."""
    from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
    action = types.SimpleNamespace(_task=types.SimpleNamespace(delegate_to=delegate_to))
    module_args = {"backend": dict(backend)}
    where = state_bridge.backend_side(action, {"inventory_hostname": inventory_hostname}, short_name,
                                      build_driver(backend), module_args)
    return where, module_args["backend"]


def test_backend_side_work_runs_on_the_backends_host_for_the_modules_that_have_some(state_bridge, monkeypatch):
    # Connecting is stubbed (the integration target storage_multihost connects for real): it names the host.
    monkeypatch.setattr(state_bridge, "connect_to", lambda _action, host, _vars: f"connection to {host}")
    plain = {"name": "lab", "driver": "file", "path": "/srv/volumes", "target": "iscsi"}
    hosted = dict(plain, host="stor1")
    for module in ("storage_attachment", "storage_volume", "storage_snapshot", "storage_backend_info"):
        assert backend_side_of(state_bridge, module, hosted) == ("connection to stor1", plain)
        # Positive controls: without a host, or run on that host (or delegated there), all runs where the task runs.
        assert backend_side_of(state_bridge, module, plain) == (None, plain)
        assert backend_side_of(state_bridge, module, hosted, inventory_hostname="stor1") == (None, plain)
        assert backend_side_of(state_bridge, module, hosted, delegate_to="stor1") == (None, plain)
    # Delegated to a consumer from the storage host's play: the consumer is the task's host.
    assert backend_side_of(state_bridge, "storage_attachment", hosted, "stor1", "app2") == \
        ("connection to stor1", plain)
    # Modules without backend-side steps run where the task runs; none is sent the host.
    for module in ("storage_volume_info", "storage_snapshot_info"):
        assert backend_side_of(state_bridge, module, hosted) == (None, plain)


def test_a_split_tasks_result_has_both_halves_actions_and_is_changed_if_either_was(state_bridge):
    backend = {"changed": True, "actions": ["connect volume 'v' to app1", "volume 'v': status in-use"]}
    host = {"changed": False, "actions": [], "attachment": {"host": "app1"}}
    assert state_bridge.merged(backend, host) == {"changed": True, "attachment": {"host": "app1"},
                                                  "actions": backend["actions"]}
    again = {"changed": True, "actions": ["attach volume 'v' on app1", "volume 'v': status in-use"]}
    assert state_bridge.merged(backend, again)["actions"] == [*backend["actions"], "attach volume 'v' on app1"]
    assert state_bridge.merged({"changed": False}, {"changed": False})["changed"] is False
    # The diff goes from before the first half to after the second (a detach: the device, then the export).
    attached, connected = {"status": "attached", "device": {"path": "/dev/loop0"}}, {"status": "connected"}
    detach = state_bridge.merged({"changed": True, "diff": {"before": attached, "after": connected}},
                                 {"changed": True, "diff": {"before": connected, "after": {}}})
    assert detach["diff"] == {"before": attached, "after": {}}

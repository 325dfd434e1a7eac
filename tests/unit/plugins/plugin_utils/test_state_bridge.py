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

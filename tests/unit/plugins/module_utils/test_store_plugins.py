# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plugin state stores: found by entry point or collection FQCN, and refused clearly when they are
missing, fail to import, speak another contract version or get bad options (persistence/plugins.py).

Entry points are real: a package's dist-info is written into a directory put on sys.path, as
pip would install it.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import textwrap

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.errors import BlockstoreError
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.base import CONTRACT_VERSION
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore
from ansible_collections.blockstore.storage.plugins.module_utils.persistence.plugins import secret_values

STORE_MODULE = textwrap.dedent('''
    from ansible_collections.blockstore.storage.plugins.module_utils.persistence.memory import MemoryStore

    OPENED = []


    class FakeStore(MemoryStore):
        contract_version = {version}
        options = {{
            "url": {{"type": "str", "required": True, "no_log": True, "env": ["FAKE_STORE_URL"]}},
            "retries": {{"type": "int", "default": 3}},
            "mode": {{"type": "str", "choices": ["fast", "safe"], "default": "safe"}},
        }}

        def __init__(self, url, retries=3, mode="safe"):
            super().__init__()
            OPENED.append({{"url": url, "retries": retries, "mode": mode}})
            self.url = url

        @property
        def identity(self):
            return "fake store"
''')


def install_package(root, module: str, source: str, entry_points: dict[str, str]) -> None:
    """What `pip install` leaves: the module and a dist-info naming its entry points."""
    (root / f"{module}.py").write_text(source)
    dist = root / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[blockstore.storage.stores]\n{lines}")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on sys.path to install packages into; their modules are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("BLOCKSTORE_SECRET_KEY", "x" * 43 + "=")
    monkeypatch.delenv("FAKE_STORE_URL", raising=False)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith(("fake_", "broken_")):
            del sys.modules[name]


def test_a_store_found_by_entry_point_gets_its_validated_options(site):
    install_package(site, "fake_store_ok", STORE_MODULE.format(version=CONTRACT_VERSION),
                    {"fake": "fake_store_ok:FakeStore"})
    store = open_store({"storage": "fake", "url": "fake://user:pw@host", "retries": "5"})
    opened = sys.modules["fake_store_ok"].OPENED
    assert opened == [{"url": "fake://user:pw@host", "retries": 5, "mode": "safe"}]
    record = {"kind": "volume", "id": "6c1b5f3e-0000-4000-8000-000000000001", "backend": "b1", "name": "v", "size": 1}
    store.apply(upserts=[record])
    assert store.find("b1", "volume", name="v") == [record]
    assert store.identity == "fake (fake store)"
    # Sealing stays in the core: the store gets a sealer with the persistent key.
    assert store.sealer.unseal(store.sealer.seal("secret")) == "secret"


def test_a_store_option_comes_from_its_environment_variable(site, monkeypatch):
    install_package(site, "fake_store_env", STORE_MODULE.format(version=CONTRACT_VERSION),
                    {"fake": "fake_store_env:FakeStore"})
    monkeypatch.setenv("FAKE_STORE_URL", "fake://from-env")
    open_store({"storage": "fake"})
    assert sys.modules["fake_store_env"].OPENED[0]["url"] == "fake://from-env"


def test_a_store_found_by_collection_fqcn(site, monkeypatch):
    # What Ansible's collection loader gives for mycorp.cmdb's plugins/plugin_utils/state_store.py.
    source = STORE_MODULE.format(version=CONTRACT_VERSION) + "\nSTORE = FakeStore\n"
    (site / "fake_collection_store.py").write_text(source)
    module = importlib.import_module("fake_collection_store")
    monkeypatch.setitem(sys.modules, "ansible_collections.mycorp.cmdb.plugins.plugin_utils.state_store", module)
    store = open_store({"storage": "mycorp.cmdb.state_store", "url": "fake://x"})
    assert module.OPENED == [{"url": "fake://x", "retries": 3, "mode": "safe"}]
    assert store.identity == "mycorp.cmdb.state_store (fake store)"


def test_a_store_class_given_from_python():
    store = open_store({"storage": MemoryStore})
    record = {"kind": "volume", "id": "i1", "backend": "b1", "name": "v1", "size": 1}
    store.apply(upserts=[record])
    assert store.find("b1") == [record]


def error_of(persistence: dict) -> BlockstoreError:
    with pytest.raises(BlockstoreError) as caught:
        open_store(persistence)
    return caught.value


def test_an_unknown_store_name_is_refused_naming_what_exists(site):
    install_package(site, "fake_store_listed", STORE_MODULE.format(version=CONTRACT_VERSION),
                    {"fake": "fake_store_listed:FakeStore"})
    error = error_of({"storage": "nosuch", "url": "x"})
    assert error.option == "persistence.storage"
    assert "no store named 'nosuch'" in str(error)
    assert "built-in store (file, db, memory)" in str(error)
    assert "blockstore.storage.stores (installed: fake" in str(error)
    # Positive control: the name that is installed opens.
    open_store({"storage": "fake", "url": "x"})


def test_a_collection_store_that_is_not_installed_is_refused():
    error = error_of({"storage": "nosuchns.nosuchcoll.state_store"})
    assert "no store 'nosuchns.nosuchcoll.state_store'" in str(error)
    assert "is the collection nosuchns.nosuchcoll installed, with plugins/plugin_utils/state_store.py?" in str(error)


def test_a_store_that_fails_to_import_is_refused_naming_it(site):
    install_package(site, "broken_store", "import fake_missing_client_library\n",
                    {"broken": "broken_store:BrokenStore"})
    error = error_of({"storage": "broken", "url": "x"})
    assert error.option == "persistence.storage"
    assert str(error).startswith("persistence.storage: store 'broken' (entry point broken = broken_store:BrokenStore "
                                 "(group blockstore.storage.stores)) failed to import: ModuleNotFoundError")
    assert "fake_missing_client_library" in str(error)


def test_a_store_published_for_contract_version_1_opens(site):
    # Stores on PyPI declare the number itself (docs/stores.md: contract version 1); this collection must keep
    # opening them for as long as it speaks version 1.
    install_package(site, "fake_store_v1", STORE_MODULE.format(version=1), {"published": "fake_store_v1:FakeStore"})
    store = open_store({"storage": "published", "url": "fake://host"})
    assert sys.modules["fake_store_v1"].OPENED == [{"url": "fake://host", "retries": 3, "mode": "safe"}]
    assert store.identity == "published (fake store)"


def test_a_store_of_another_contract_version_is_refused_and_never_opened(site):
    install_package(site, "fake_store_v2", STORE_MODULE.format(version=CONTRACT_VERSION + 1),
                    {"future": "fake_store_v2:FakeStore"})
    error = error_of({"storage": "future", "url": "x"})
    assert (f"implements store contract version {CONTRACT_VERSION + 1}; this blockstore.storage speaks version "
            f"{CONTRACT_VERSION}") in str(error)
    assert sys.modules["fake_store_v2"].OPENED == []


def test_what_is_not_a_store_class_is_refused(site):
    install_package(site, "fake_not_store", "class NotAStore:\n    pass\n\nnothing = 1\n",
                    {"plain": "fake_not_store:NotAStore", "value": "fake_not_store:nothing"})
    for name in ("plain", "value"):
        assert "is not a store class: expected a subclass of" in str(error_of({"storage": name}))


def test_a_store_that_misses_part_of_the_contract_is_refused(site):
    source = textwrap.dedent('''
        from ansible_collections.blockstore.storage.plugins.module_utils.persistence.base import Store


        class HalfStore(Store):
            def find(self, backend, kind=None, **filters):
                return []
    ''')
    install_package(site, "fake_half", source, {"half": "fake_half:HalfStore"})
    assert "does not implement all_records, apply, locked of the store contract" in str(
        error_of({"storage": "half"})).replace("apply, all_records", "all_records, apply")


@pytest.mark.parametrize("options, option, message", [
    ({"url": "x", "colour": "red"}, "persistence",
     "persistence: unknown option(s) colour for store 'fake'; allowed: storage, mode, retries, url"),
    ({}, "persistence.url", "persistence.url: required by store 'fake' (or set FAKE_STORE_URL)"),
    ({"url": "x", "retries": "many"}, "persistence.retries", "persistence.retries: must be of type int (got 'many')"),
    ({"url": "x", "mode": "slow"}, "persistence.mode", "persistence.mode: 'slow' is not one of fast, safe"),
    ({"url": ["a", "list"]}, "persistence.url", "persistence.url: must be of type str (the value is not shown)"),
])
def test_bad_store_options_are_refused_before_the_store_opens(site, options, option, message):
    install_package(site, "fake_store_opts", STORE_MODULE.format(version=CONTRACT_VERSION),
                    {"fake": "fake_store_opts:FakeStore"})
    error = error_of({"storage": "fake", **options})
    assert error.option == option
    assert message in str(error)
    assert sys.modules["fake_store_opts"].OPENED == []


def test_secret_option_values_are_known_for_masking(site):
    install_package(site, "fake_store_mask", STORE_MODULE.format(version=CONTRACT_VERSION),
                    {"fake": "fake_store_mask:FakeStore"})
    assert secret_values("fake", {"url": "fake://u:hunter2@h", "retries": 2}, {}) == {"fake://u:hunter2@h"}
    # From the environment too, and even when another option is bad (its message may follow).
    assert secret_values("fake", {"retries": "many"}, {"FAKE_STORE_URL": "fake://env"}) == {"fake://env"}
    # A store that cannot be loaded never saw its options: nothing to mask.
    assert secret_values("nosuch", {"url": "fake://u:hunter2@h"}, {}) == set()


def test_a_plugin_failure_becomes_a_store_error_without_its_secrets(site):
    source = STORE_MODULE.format(version=CONTRACT_VERSION) + textwrap.dedent('''

        class FailingStore(FakeStore):
            def find(self, backend, kind=None, **filters):
                raise ConnectionError(f"cannot reach {self.url}")
    ''')
    install_package(site, "fake_store_fail", source, {"failing": "fake_store_fail:FailingStore"})
    store = open_store({"storage": "failing", "url": "fake://u:hunter2@db"})
    with pytest.raises(BlockstoreError) as caught:
        store.find("b1")
    assert str(caught.value) == ("persistence: store failing (fake store): find failed: ConnectionError: "
                                 "cannot reach ********")
    with contextlib.suppress(BlockstoreError):
        store.close()


def test_built_in_suboptions_left_unset_by_ansible_do_not_reach_the_store(site):
    # Ansible's validation fills `persistence`'s built-in suboptions with None.
    install_package(site, "fake_store_none", STORE_MODULE.format(version=CONTRACT_VERSION),
                    {"fake": "fake_store_none:FakeStore"})
    open_store({"storage": "fake", "url": "fake://x", "path": None, "connection": None})
    assert sys.modules["fake_store_none"].OPENED == [{"url": "fake://x", "retries": 3, "mode": "safe"}]

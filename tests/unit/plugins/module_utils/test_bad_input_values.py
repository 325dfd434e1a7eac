# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad values the core refuses, naming the option, before anything is written (issue 12's list; the
end-to-end rows are in tests/integration/targets/storage_bad_input_table)."""

from __future__ import annotations

import os

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import BlockstoreError
from ansible_collections.blockstore.storage.plugins.module_utils.objects import check_name


@pytest.mark.parametrize("name", ["a\u0085b", "a\u009b31mb", "a\u0080", "a\x9fb"])
def test_c1_control_characters_are_refused_in_names(name):
    with pytest.raises(BlockstoreError, match="contains control characters") as error:
        check_name(name)
    assert error.value.option == "name"


def test_printable_unicode_names_are_fine():
    assert check_name("données-é✓ 1") == "données-é✓ 1"  # positive control: not every non-ASCII character


@pytest.mark.parametrize("backend, option, message", [
    ({"name": "ta\nble", "driver": "file", "path": "/tmp/x"}, "backend.name", "contains control characters"),
    ({"name": "t\u009bble", "driver": "file", "path": "/tmp/x"}, "backend.name", "contains control characters"),
    ({"name": "t", "driver": "file", "path": "/tmp/back\x00end"}, "backend.path", "contains a NUL character"),
    ({"name": "t", "driver": {"file": True}, "path": "/tmp/x"}, "backend.driver", "is not a known driver"),
    ({"name": "t", "driver": ["file"], "path": "/tmp/x"}, "backend.driver", "is not a known driver"),
])
def test_bad_backend_values_are_refused_naming_the_option(backend, option, message):
    with pytest.raises(BlockstoreError, match=message) as error:
        build_driver(backend)
    assert error.value.option == option


def test_a_good_backend_builds():
    assert build_driver({"name": "table", "driver": "file", "path": "/tmp/x"}).backend_name == "table"


def test_text_options_given_a_list_or_dict_are_refused_before_validation():
    # runner is the one core file importing Ansible: imported here, so that collecting this file needs no Ansible.
    from ansible_collections.blockstore.storage.plugins.module_utils.runner import non_text_option

    spec = {"name": {"type": "str"}, "description": {}, "metadata": {"type": "dict"}, "size": {"type": "raw"}}
    assert non_text_option(spec, {"name": ["a", "b"]}) == ("name: must be a string, got list", "name")
    assert non_text_option(spec, {"description": {"a": 1}}) == ("description: must be a string, got dict",
                                                                "description")
    # Positive controls: text, and options that take lists or dicts.
    assert non_text_option(spec, {"name": "a", "metadata": {"a": 1}, "size": [1]}) is None


@pytest.mark.parametrize("url, message", [
    ("sqlite:///{tmp}/db/state.db?timeout=soon", "must be a number of seconds"),
    ("sqlite+pysqlcipher:///{tmp}/db/state.db", "is not installed"),
])
def test_a_refused_sqlite_url_creates_nothing(tmp_path, url, message):
    db = pytest.importorskip("ansible_collections.blockstore.storage.plugins.module_utils.persistence.db")
    pytest.importorskip("sqlalchemy")
    with pytest.raises(BlockstoreError, match=message) as error:
        db.DbStore(url.replace("{tmp}", str(tmp_path)))
    assert error.value.option == "persistence.connection"
    assert os.listdir(tmp_path) == []

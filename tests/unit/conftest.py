# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make `ansible_collections.blockstore.storage` importable when pytest runs from a checkout,
and give the tests the test services' settings under ansible-test.

ansible-test units already runs inside a collections tree; plain pytest does not,
so a temporary tree whose blockstore/storage links to this checkout is put on sys.path.

ansible-test units passes no environment variables through, so scripts/test.sh writes the
BLOCKSTORE_TEST_* settings (PostgreSQL URL, test Ceph cluster...) to environment.json
beside this file, in the tree it tests; variables set in the environment win.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SETTINGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "environment.json")

if os.path.exists(SETTINGS):
    with open(SETTINGS, encoding="utf-8") as settings:
        for key, value in json.load(settings).items():
            os.environ.setdefault(key, value)


def _collection_importable() -> bool:
    try:
        return importlib.util.find_spec("ansible_collections.blockstore.storage") is not None
    except ModuleNotFoundError:
        return False


if not _collection_importable():
    _root = tempfile.mkdtemp(prefix="blockstore-collections-")
    os.makedirs(os.path.join(_root, "ansible_collections", "blockstore"))
    os.symlink(REPO, os.path.join(_root, "ansible_collections", "blockstore", "storage"))
    sys.path.insert(0, _root)


# Tests that only mean something for a user other than root (permission bits do not stop root).
# As root they are skipped; scripts/test.sh runs them again as the unprivileged user nobody
# (the units-non-root leg), so CI runs them too.
NON_ROOT_REASON = "needs a user other than root: scripts/test.sh runs it as nobody (units-non-root)"


def pytest_configure(config):
    config.addinivalue_line("markers", f"non_root: {NON_ROOT_REASON}")


def pytest_collection_modifyitems(config, items):
    import pytest

    if os.geteuid() != 0:
        return
    for item in items:
        if item.get_closest_marker("non_root") is not None:
            item.add_marker(pytest.mark.skip(reason=NON_ROOT_REASON))

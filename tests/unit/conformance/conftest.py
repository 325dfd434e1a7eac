# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which stores the conformance suite runs against (docs/stores.md, "Testing a store").

A store's author runs it against their own store:

    python -m pytest tests/unit/conformance --store '{"storage": "mycorp.cmdb.state_store", "url": "..."}'

(or sets BLOCKSTORE_CONFORMANCE_STORE to that JSON). Without one, the suite runs against the
built-in stores, PostgreSQL when BLOCKSTORE_TEST_PG_URL is set and the Redis example store when
BLOCKSTORE_TEST_REDIS_URL is set (scripts/test.sh starts both servers).
"""

from __future__ import annotations

import json
import os


def pytest_addoption(parser):
    parser.addoption("--store", action="append", default=[], metavar="PERSISTENCE_JSON",
                     help="the `persistence` of a store to test, as JSON (may be given several times)")
    parser.addoption("--listing-seconds", type=float, default=None,
                     help="the most one listing of 10,000 records may take (default 5)")


def pytest_generate_tests(metafunc):
    if "store_spec" not in metafunc.fixturenames:
        return
    given = list(metafunc.config.getoption("--store", default=[]) or [])
    if not given and os.environ.get("BLOCKSTORE_CONFORMANCE_STORE"):
        given = [os.environ["BLOCKSTORE_CONFORMANCE_STORE"]]
    if given:
        specs = [json.loads(text) for text in given]
        ids = [str(spec.get("storage")) for spec in specs]
    else:
        specs = ["memory", "file", "sqlite", "postgresql", "redis"]
        ids = specs
    metafunc.parametrize("store_spec", specs, ids=ids, indirect=True)

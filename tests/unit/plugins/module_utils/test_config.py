# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backend options as drivers declare them: what each type takes from a task or a backends file, and
how it is described in messages and docs."""

from __future__ import annotations

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.config import Opt, describe_type, validate_options
from ansible_collections.blockstore.storage.plugins.module_utils.errors import InvalidParameter

OPTS = [Opt("thin", "bool", default=True, help="thin"), Opt("port", "int", default=3260, min=1, help="port"),
        Opt("pool", "str", default="rbd", help="pool"), Opt("path", "path", default="/srv", help="path")]


@pytest.mark.parametrize("given, expected", [
    ({"thin": "yes"}, {"thin": True}), ({"thin": "False"}, {"thin": False}), ({"thin": "0"}, {"thin": False}),
    ({"thin": False}, {"thin": False}), ({"port": "3261"}, {"port": 3261}), ({"port": 1}, {"port": 1}),
    ({"pool": "volumes"}, {"pool": "volumes"}), ({}, {"thin": True, "port": 3260}),
])
def test_options_take_their_type_from_text_or_values(given, expected):
    options = validate_options(OPTS, given, "backend", "lab")
    assert {k: options[k] for k in expected} == expected


@pytest.mark.parametrize("given, message", [
    ({"thin": "maybe"}, "backend.thin: 'maybe' is not a boolean"),
    ({"thin": 1}, "backend.thin: 1 is not a boolean"),
    ({"port": True}, "backend.port: True is not an integer"),
    ({"port": 1.5}, "backend.port: 1.5 is not an integer"),
    ({"port": "0"}, "backend.port: 0 is below the minimum 1"),
    ({"pool": 5}, "backend.pool: 5 must be a non-empty string"),
    ({"pool": ""}, "backend.pool: '' must be a non-empty string"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_the_option(given, message):
    with pytest.raises(InvalidParameter, match=message) as error:
        validate_options(OPTS, given, "backend", "lab")
    assert error.value.option == "backend." + next(iter(given))


def test_each_type_is_described_in_words():
    assert [describe_type(o) for o in OPTS] == ["a boolean (true/false)", "an integer >= 1", "a string",
                                                "an absolute path"]
    assert describe_type(Opt("mode", "str", choices=("ro", "rw"))) == "one of ro, rw"

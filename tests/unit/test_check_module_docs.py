# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""tests/utils/check_module_docs.py: which lines of ansible-doc's stderr fail the docs check."""

from __future__ import annotations

import importlib.util
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location("check_module_docs", os.path.join(REPO, "tests", "utils",
                                                                                 "check_module_docs.py"))
check_module_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_module_docs)

CRYPTOGRAPHY_NOISE = (
    "/venv/lib/python3.12/site-packages/ansible/_internal/_ssh/_ssh_agent.py:18: CryptographyDeprecationWarning: "
    "DSA is deprecated and support will be removed in a future release. Use a more modern signature algorithm.\n"
    "  from cryptography.hazmat.primitives.asymmetric.dsa import (\n")


def test_third_party_python_warning_is_not_a_problem():
    problems, noise = check_module_docs.split_stderr(CRYPTOGRAPHY_NOISE)
    assert problems == []
    assert noise == [CRYPTOGRAPHY_NOISE.splitlines()[0]]


def test_ansible_doc_warning_is_a_problem_even_beside_noise():
    warning = "[WARNING]: module blockstore.storage.storage_volume has a documentation error"
    problems, noise = check_module_docs.split_stderr(CRYPTOGRAPHY_NOISE + warning + "\n")
    assert problems == [warning]
    assert len(noise) == 1


def test_python_warning_in_the_collection_is_a_problem():
    own = ("/tmp/tree/ansible_collections/blockstore/storage/plugins/modules/storage_volume.py:12: "
           "DeprecationWarning: invalid escape sequence")
    problems, noise = check_module_docs.split_stderr(own + "\n  x = '\\d'\n")
    assert problems[0] == own
    assert noise == []


def test_a_traceback_is_a_problem():
    problems, _noise = check_module_docs.split_stderr("Traceback (most recent call last):\n  File \"x\", line 1\n")
    assert problems == ["Traceback (most recent call last):", '  File "x", line 1']

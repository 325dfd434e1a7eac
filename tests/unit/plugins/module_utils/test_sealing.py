# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets sealed at rest, masked in results; the key kept beside the store."""

from __future__ import annotations

import os
import stat

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils import sealing
from ansible_collections.blockstore.storage.plugins.module_utils.errors import StateStoreError
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
from ansible_collections.blockstore.storage.plugins.module_utils.sealing import MASK, Sealer

RECORD = {"kind": "connection", "id": "c1", "backend": "b",
          "connection_info": {"driver_volume_type": "iscsi",
                              "data": {"auth_username": "bs1", "auth_password": "Secret123",
                                       "discovery_auth_password": "Other456", "target_lun": 1}},
          "driver_data": {"keyring": "AQB==", "pool": "rbd", "nested": [{"chap_secret": "x9"}]}}


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch):
    monkeypatch.delenv(sealing.ENV_KEY, raising=False)
    monkeypatch.delenv(sealing.ENV_KEY_FILE, raising=False)


def test_seal_and_unseal_round_trip():
    sealer = Sealer(key=sealing.new_key())
    sealed = sealer.seal_tree(RECORD)
    data = sealed["connection_info"]["data"]
    assert sealing.is_sealed(data["auth_password"]) and "Secret123" not in str(sealed)
    assert data["auth_username"] == "bs1" and data["target_lun"] == 1
    assert sealing.is_sealed(sealed["driver_data"]["nested"][0]["chap_secret"])
    assert sealer.unseal_tree(sealed) == RECORD
    assert sealer.seal_tree(sealed) == sealed  # sealing twice changes nothing


def test_mask_hides_every_secret_field_and_nothing_else():
    masked = sealing.mask(RECORD)
    assert masked["connection_info"]["data"]["auth_password"] == MASK
    assert masked["connection_info"]["data"]["discovery_auth_password"] == MASK
    assert masked["driver_data"]["keyring"] == MASK
    assert masked["driver_data"]["nested"][0]["chap_secret"] == MASK
    assert masked["driver_data"]["pool"] == "rbd" and masked["connection_info"]["data"]["auth_username"] == "bs1"
    assert RECORD["connection_info"]["data"]["auth_password"] == "Secret123"  # the input is untouched


def test_clear_values_finds_only_clear_secrets():
    sealer = Sealer(key=sealing.new_key())
    assert sorted(sealing.clear_values(RECORD)) == ["AQB==", "Other456", "Secret123", "x9"]
    assert sealing.clear_values(sealer.seal_tree(RECORD)) == []


def test_key_file_is_made_0600_beside_the_file_store_and_shared(tmp_path):
    state = str(tmp_path / "state.json")
    first = open_store({"storage": "file", "path": state}).sealer
    token = first.seal("Secret123")
    key_file = state + ".key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    second = open_store({"storage": "file", "path": state}).sealer  # another fork, same key
    assert second.unseal(token) == "Secret123"


def test_env_key_wins(monkeypatch, tmp_path):
    key = sealing.new_key()
    monkeypatch.setenv(sealing.ENV_KEY, key)
    sealer = open_store({"storage": "file", "path": str(tmp_path / "s.json")}).sealer
    assert Sealer(key=key).unseal(sealer.seal("abc")) == "abc"
    assert not os.path.exists(str(tmp_path / "s.json.key"))


def test_a_replaced_key_is_reported_not_ignored():
    token = Sealer(key=sealing.new_key()).seal("Secret123")
    with pytest.raises(StateStoreError, match="does not open"):
        Sealer(key=sealing.new_key()).unseal(token)


def test_a_malformed_key_is_reported(tmp_path):
    key_file = tmp_path / "bad.key"
    key_file.write_text("not-a-key\n")
    with pytest.raises(StateStoreError, match="not a valid key"):
        Sealer(key_file=str(key_file)).seal("x")

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


def test_a_database_store_seals_with_the_key_in_the_home_directory(monkeypatch, tmp_path):
    # A database has no file to put its key beside: every database store of the controller user shares one key.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    url = f"sqlite:///{tmp_path}/state.db"
    token = open_store({"storage": "db", "connection": url}).sealer.seal("Secret123")
    key_file = tmp_path / "home" / ".ansible" / "blockstore" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert Sealer(key=key_file.read_text().strip()).unseal(token) == "Secret123"
    other = open_store({"storage": "db", "connection": f"sqlite:///{tmp_path}/other.db"})
    assert other.sealer.unseal(token) == "Secret123"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".key")] == []  # none beside the database


def test_the_key_file_variable_wins_over_the_file_beside_the_store(monkeypatch, tmp_path):
    chosen = tmp_path / "chosen.key"
    chosen.write_text(sealing.new_key() + "\n")
    monkeypatch.setenv(sealing.ENV_KEY_FILE, str(chosen))
    token = open_store({"storage": "file", "path": str(tmp_path / "s.json")}).sealer.seal("abc")
    assert Sealer(key_file=str(chosen)).unseal(token) == "abc"
    assert not os.path.exists(str(tmp_path / "s.json.key"))


@pytest.mark.parametrize("secret", ["!Secret123", "#x", " leading space", "zz"])
def test_secrets_are_sealed_whatever_character_they_start_with(secret):
    sealer = Sealer(key=sealing.new_key())
    record = {"kind": "connection", "connection_info": {"data": {"auth_password": secret}}}
    sealed = sealer.seal_tree(record)["connection_info"]["data"]["auth_password"]
    assert sealing.is_sealed(sealed) and sealing.is_sealed(sealer.seal(secret))
    assert sealer.unseal(sealed) == secret


def test_a_memory_store_seals_with_a_key_of_its_own_and_writes_none(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    token = open_store({"storage": "memory"}).sealer.seal("Secret123")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(StateStoreError, match="does not open"):
        open_store({"storage": "memory"}).sealer.unseal(token)

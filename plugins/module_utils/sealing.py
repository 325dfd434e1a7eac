# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets in records: sealed at rest and in transit, masked in results.

A record field is secret by its name (`is_secret_field`): CHAP passwords,
keyrings, anything ending in `_password` or `_secret`, wherever it sits in the
record (connection_info, driver_data, device...). Such a value is stored only
sealed, as `sealed:v1:<Fernet token>` (AES-128-CBC + HMAC-SHA256, from the
`cryptography` package that ansible-core already requires), and shown only as
`********`.

The key is, in this order: the env var BLOCKSTORE_SECRET_KEY (a Fernet key),
the file named by BLOCKSTORE_SECRET_KEY_FILE, or a file kept beside the store
(`<state file>.key`, or `~/.ansible/blockstore/secret.key` for a database or a plugin store),
created 0600 on first use. That key never leaves the controller: a module that
must seal or unseal is sent its records' secrets sealed with a key made for that
task alone (a no_log argument), and what it returns is sealed again with the
store's key on the controller (handler.SecretGate).
"""

from __future__ import annotations

import base64
import copy
import os
import tempfile
from typing import Any

from .errors import MissingDependency, StateStoreError

SEALED_PREFIX = "sealed:v1:"
MASK = "********"
ENV_KEY = "BLOCKSTORE_SECRET_KEY"
ENV_KEY_FILE = "BLOCKSTORE_SECRET_KEY_FILE"
DEFAULT_KEY_FILE = "~/.ansible/blockstore/secret.key"
SECRET_FIELDS = frozenset({"password", "keyring", "auth_key", "chap_secret", "secret_key"})
SECRET_SUFFIXES = ("_password", "_secret")


def is_secret_field(name: object) -> bool:
    return isinstance(name, str) and (name in SECRET_FIELDS or name.endswith(SECRET_SUFFIXES))


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def _walk(obj: Any, change: Any) -> Any:
    """A copy of `obj` whose secret fields are replaced by change(value)."""
    if isinstance(obj, dict):
        return {k: (change(v) if is_secret_field(k) and isinstance(v, str) and v else _walk(v, change))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_walk(v, change) for v in obj]
    return copy.deepcopy(obj)


def mask(obj: Any) -> Any:
    """For results and diffs: every secret field shown as ********."""
    return _walk(obj, lambda _value: MASK)


def clear_values(obj: Any) -> list[str]:
    """Secret values found in clear (not sealed) in `obj`."""
    found: list[str] = []

    def note(value: str) -> str:
        if not is_sealed(value) and value != MASK:
            found.append(value)
        return value

    _walk(obj, note)
    return found


def holds_sealed(obj: Any) -> bool:
    """Whether a secret field anywhere in `obj` is sealed."""
    found = []
    _walk(obj, lambda value: found.append(value) if is_sealed(value) else value)
    return bool(found)


def new_key() -> str:
    # The same format as Fernet.generate_key(), without importing cryptography.
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def _read_or_create_key(path: str) -> str:
    path = os.path.abspath(os.path.expanduser(path))
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StateStoreError(f"persistence: cannot read the secret key {path}: {exc.strerror}") from None
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".key-", dir=directory)  # 0600
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(new_key() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # atomic and never replaces: two forks agree on one key
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
        with open(path, encoding="ascii") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise StateStoreError(f"persistence: cannot create the secret key {path}: {exc.strerror}") from None


class Sealer:
    """Seals and unseals secret values with one key, loaded on first use."""

    def __init__(self, key: str | None = None, key_file: str | None = None) -> None:
        self._key = key
        self.key_file = key_file
        self._fernet = None

    @classmethod
    def for_persistence(cls, options: dict) -> Sealer:
        """The sealer of a store, from its normalized `persistence` options."""
        if os.environ.get(ENV_KEY):
            return cls(key=os.environ[ENV_KEY])
        if os.environ.get(ENV_KEY_FILE):
            return cls(key_file=os.environ[ENV_KEY_FILE])
        if options.get("storage") == "file":
            return cls(key_file=options["path"] + ".key")
        if options.get("storage") == "memory":
            return cls(key=new_key())  # nothing outlives the process, nor may its key
        return cls(key_file=DEFAULT_KEY_FILE)  # db and plugin stores

    def key(self) -> str:
        if self._key is None:
            self._key = _read_or_create_key(self.key_file or DEFAULT_KEY_FILE)
        return self._key

    def _cipher(self):
        if self._fernet is None:
            try:
                from cryptography.fernet import Fernet
            except ImportError:
                raise MissingDependency("sealing secrets needs the Python package cryptography "
                                        "(a dependency of ansible-core)", "cryptography") from None
            try:
                self._fernet = Fernet(self.key().encode())
            except ValueError:
                where = self.key_file or ENV_KEY
                raise StateStoreError(f"persistence: the secret key from {where} is not a valid key "
                                      "(32 url-safe base64-encoded bytes)") from None
        return self._fernet

    def seal(self, value: str) -> str:
        if is_sealed(value) or value == MASK:
            return value
        return SEALED_PREFIX + self._cipher().encrypt(value.encode()).decode()

    def unseal(self, value: str) -> str:
        if not is_sealed(value):
            return value
        from cryptography.fernet import InvalidToken
        try:
            return self._cipher().decrypt(value[len(SEALED_PREFIX):].encode()).decode()
        except InvalidToken:
            where = self.key_file or ENV_KEY
            raise StateStoreError(f"persistence: a sealed secret does not open with the key from {where}; "
                                  "was the key file replaced?") from None

    def seal_tree(self, obj: Any) -> Any:
        """A copy of `obj` with every secret field sealed; cheap when there is none."""
        if not clear_values(obj):
            return obj
        return _walk(obj, self.seal)

    def unseal_tree(self, obj: Any) -> Any:
        return _walk(obj, self.unseal)

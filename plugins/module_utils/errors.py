# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors of the blockstore core.

Every error a user can cause is a BlockstoreError whose message names the option,
what was wrong and what is allowed. Modules turn them into fail_json; nothing else
is caught broadly, so a bug still shows its traceback.
"""

from __future__ import annotations


class BlockstoreError(Exception):
    """Base of all expected failures."""

    def __init__(self, msg: str, option: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.option = option

    def __str__(self) -> str:
        return self.msg


class InvalidParameter(BlockstoreError):
    """A task parameter or backend option is malformed."""


class NotFound(BlockstoreError):
    """A referenced volume or snapshot does not exist."""


class Ambiguous(BlockstoreError):
    """A name matches several records; the user must give the id."""


class Conflict(BlockstoreError):
    """The request contradicts the current state (shrink, delete with snapshots...)."""


class StateStoreError(BlockstoreError):
    """The state store is unreadable, corrupt, from a newer schema, or unreachable."""


class DriverError(BlockstoreError):
    """The storage backend refused or failed an operation."""


class MissingDependency(BlockstoreError):
    """An optional Python library or system command is missing."""

    def __init__(self, msg: str, library: str, option: str | None = None) -> None:
        super().__init__(msg, option)
        self.library = library

# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The owner marker of the file driver: `.blockstore-owner` in the directory names the state store that uses it.

Written by the first task that changes something in the directory (check_setup), from the
owner the controller sends (backend_identity.owner_of): the id of that store's backend
record, the store's name and the backend's name there. Another store is then refused in the
directory, and its drift check names the objects there as the owner's (drivers/base.py).
A directory that holds nothing else belongs to nobody: the marker goes with the last image
(`release`), and one found alone is replaced by the next store's.
"""

from __future__ import annotations

import json
import os

from ...errors import DriverError

OWNER_MARKER = ".blockstore-owner"


def read_marker(driver) -> dict | None:
    """The marker of `driver`'s directory (a FileDriver); None when there is none."""
    path = driver.file(OWNER_MARKER)
    try:
        with open(path, encoding="utf-8") as handle:
            marker = json.loads(handle.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise DriverError(f"backend.path: cannot read the owner marker {path} ({reason}); "
                          "it names the state store this directory belongs to: repair or remove it",
                          "backend.path") from None
    if not isinstance(marker, dict) or not isinstance(marker.get("id"), str):
        raise DriverError(f"backend.path: the owner marker {path} is not one blockstore wrote; it names the state "
                          "store this directory belongs to: repair or remove it", "backend.path")
    return marker


def claim(driver) -> None:
    """Mark the directory as this task's store's at first use; refuse one another store owns."""
    marker = read_marker(driver)
    if marker is not None and _alone(driver):
        release(driver)  # nothing of anybody's is there to tell apart
        marker = None
    driver.refuse_foreign_owner(marker, "backend.path")
    if marker is not None or driver.owner is None:
        return
    path = driver.file(OWNER_MARKER)
    tmp = f"{path}.{os.getpid()}.tmp"
    text = json.dumps({k: driver.owner.get(k) for k in ("id", "store", "backend")}, sort_keys=True) + "\n"
    try:
        with driver.private(), open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # never replaces: of two first tasks, one marker wins
        except FileExistsError:
            pass
    except OSError as exc:
        raise DriverError(f"backend.path: cannot write the owner marker {path}: {exc.strerror}",
                          "backend.path") from None
    finally:
        driver.unlink(tmp)
    driver.refuse_foreign_owner(read_marker(driver), "backend.path")


def _alone(driver) -> bool:
    try:
        return os.listdir(driver.path) == [OWNER_MARKER]
    except OSError:
        return False


def release(driver) -> None:
    """After a delete: a directory left with nothing but its marker belongs to nobody any more."""
    if _alone(driver):
        driver.unlink(driver.file(OWNER_MARKER))

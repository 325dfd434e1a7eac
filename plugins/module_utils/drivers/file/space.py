# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A full backend directory: what the file driver's makes do when a step fails, and how ENOSPC is said.

A create, clone or snapshot that fails removes what it began, with the format that began it
(the step's own undo sees a record without a format yet), and a full filesystem or quota is
reported as such, naming the directory and its free space, instead of cp's or qemu-img's words.
"""

from __future__ import annotations

import contextlib
import errno
import os
from typing import Callable, Iterator

from ...errors import DriverError

# A full filesystem (or quota), as an errno or in the words of qemu-img and cp.
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded")


def is_no_space(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return exc.errno in NO_SPACE_ERRNOS
    return any(text in str(exc) for text in NO_SPACE_TEXTS)


@contextlib.contextmanager
def undone_on_failure(directory: str, what: str, undo: Callable[[], None], kept: str = "") -> Iterator[None]:
    """Run a make; on failure run `undo`, and turn a full `directory` into a clear error."""
    try:
        yield
    except (DriverError, OSError) as exc:
        with contextlib.suppress(DriverError, OSError):
            undo()
        if not is_no_space(exc):
            raise
        try:
            fs = os.statvfs(directory)
            free = f"{fs.f_bavail * fs.f_frsize / (1 << 20):.1f} MiB free"
        except OSError:
            free = "free space unknown"
        raise DriverError(f"backend.path: no space left in {directory} ({free}) to make {what}; what it began "
                          f"is removed{kept}: free space there (or grow the filesystem) and run the task again",
                          "backend.path") from None

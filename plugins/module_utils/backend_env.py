# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secret backend options from the environment: `BLOCKSTORE_BACKEND_<OPTION>`.

AWX (and any CI) hands credentials to a job as environment variables of the controller
process, which is where the action plugin resolves a task's `backend`. So a secret option the
task's backend leaves out (san_password of a Cinder SAN driver, ...) is taken from the
variable named after it: `BLOCKSTORE_BACKEND_SAN_PASSWORD` fills `san_password`.

Only options the backend's driver declares secret (masked in results and logs) are read this
way: the same credential may serve tasks on several backends and drivers, so a variable that
is not a secret option of this task's driver is left alone. A value in the task or in its
backends file section always wins over the environment; empty variables count as unset.
"""

from __future__ import annotations

from typing import Mapping

from .errors import BlockstoreError

ENV_PREFIX = "BLOCKSTORE_BACKEND_"


def env_name(option: str) -> str:
    """The variable that may hold a secret option: `san_password` -> BLOCKSTORE_BACKEND_SAN_PASSWORD."""
    return ENV_PREFIX + option.upper()


def offered_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """{option: value} of every non-empty BLOCKSTORE_BACKEND_<OPTION> variable."""
    return {key[len(ENV_PREFIX):].lower(): value for key, value in environ.items()
            if key.startswith(ENV_PREFIX) and len(key) > len(ENV_PREFIX) and value != ""}


def fill_secrets_from_env(backend: object, environ: Mapping[str, str]) -> object:
    """`backend` with the secret options it leaves out taken from the environment.

    Anything that is not a dict naming a known driver comes back unchanged: build_driver
    reports what is wrong with it.
    """
    from .drivers import driver_class

    if not isinstance(backend, dict):
        return backend
    offered = offered_secrets(environ)
    if not offered:
        return backend
    try:
        cls = driver_class(backend.get("driver"))
    except BlockstoreError:
        return backend
    # The Cinder adapter knows its secrets by name only (san_password, ...): ask with the names offered.
    secret = set(cls.secret_option_names({**offered, **backend}))
    filled = {name: value for name, value in offered.items()
              if name in secret and backend.get(name) in (None, "")}
    return {**backend, **filled} if filled else backend

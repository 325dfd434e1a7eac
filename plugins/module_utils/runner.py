# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bridge from AnsibleModule to the core: the one module_utils file importing Ansible.

Modules declare ARGUMENT_SPEC and call run_module(). Records arrive from the
action plugin in the internal argument `_blockstore_records`; the changed records
go back in `_blockstore_changes`, which the action plugin removes from the result.
Run without the action plugin, the module opens the store named by `persistence`.
"""

from __future__ import annotations

import json
import os

from ansible.module_utils.basic import AnsibleModule, env_fallback

from .drivers import build_driver, driver_class
from .errors import BlockstoreError
from .handler import Handler, Task, dispatch

# The stores, the backends file and the sealing of secrets are imported where they are used: sent its
# records by the action plugin, a module needs none of them (AnsiballZ compiles what is imported, on
# every run; docs/performance.md).
ENV_BACKENDS_FILE = "BLOCKSTORE_BACKENDS_FILE"  # backends_file.ENV_BACKENDS_FILE, checked by a unit test
INTERNAL_ARGS = ("_blockstore_records", "_blockstore_ids", "_blockstore_key", "_blockstore_owner", "_blockstore_half")
COMMON_SPEC = {
    # Not required here: a linter checking tasks against this spec cannot see module_defaults;
    # resolve_backend refuses a missing backend where the task runs.
    "backend": {"type": "raw"},
    # A cinder.conf-style file whose sections `backend` may name (backends_file.py).
    "backends_file": {"type": "path", "fallback": (env_fallback, [ENV_BACKENDS_FILE])},
    "persistence": {"type": "dict", "options": {
        # A built-in store (file, db, memory) or a plugin store's name: persistence/plugins.py.
        "storage": {"type": "str"},
        "path": {"type": "path"},
        "connection": {"type": "str", "no_log": True},
    }},
}


def non_text_option(spec: dict, args: dict) -> tuple[str, str] | None:
    """(message, option) for a string option given a list or a dict, which Ansible's validation would
    turn into its repr ("['a', 'b']") and the module would store; None when there is none."""
    for name, value in args.items():
        entry = spec.get(name)
        if isinstance(entry, dict) and entry.get("type", "str") == "str" and isinstance(value, (list, dict)):
            given = "list" if isinstance(value, list) else "dict"
            return f"{name}: must be a string, got {given}", name
    return None


class BlockstoreModule(AnsibleModule):
    """An AnsibleModule that takes the action plugin's internal arguments out before validation.

    `_blockstore_records`, `_blockstore_ids`, `_blockstore_key` (the key to the records' sealed secrets,
    made by the controller for this task alone: the store's key never leaves it, handler.SecretGate),
    `_blockstore_owner` (the store the task runs for) and `_blockstore_half` (the half of a
    task split between two hosts, attachments.py) are not options: the action
    plugin refuses them from tasks and sets them itself. So they are neither in the argument spec nor
    in the docs, and never in the invocation the module logs on the target host.

    A plugin store's own `persistence` options are taken out too: its own spec validates them
    (persistence/plugins.py), and the values of its secret ones are masked.
    """

    internal: dict
    store_options: dict

    def _load_params(self) -> None:
        super()._load_params()
        self.internal = {key: self.params.pop(key, None) for key in INTERNAL_ARGS}
        self.store_options = {}
        if self.params.get("persistence") is not None:  # the action plugin sends none
            from .persistence import split_plugin_options
            self.params["persistence"], self.store_options = split_plugin_options(self.params["persistence"])
        # Checked on the arguments as given, before validation stringifies them.
        self.refused = non_text_option(self.argument_spec, self.params)
        # AnsibleModule logs "Invoked with ..." (syslog or journal of the target host) at the end of
        # its __init__: the backend's secret options (san_password of a Cinder driver, nested in
        # `backend`) must be known no_log values before that, not only when run_module starts.
        self.no_log_values.update(backend_secret_values(self.params.get("backend")))


def full_spec(argument_spec: dict) -> dict:
    return {**COMMON_SPEC, **argument_spec}


def backend_secret_values(backend: object) -> set[str]:
    """Values of the secret driver options in `backend`, masked wherever they would show."""
    if isinstance(backend, str) and backend.lstrip().startswith("{"):
        try:  # ad-hoc commands pass the backend as JSON text
            backend = json.loads(backend)
        except ValueError:
            return set()
    if not isinstance(backend, dict):
        return set()
    try:
        names = driver_class(backend.get("driver")).secret_option_names(backend)
    except BlockstoreError:
        return set()
    return {str(backend[n]) for n in names if backend.get(n) not in (None, "")}


def hide_backend_secrets(module: AnsibleModule, backend: object) -> None:
    """Secret driver options are known only once the driver is: mask them by value."""
    module.no_log_values.update(backend_secret_values(backend))


def run_module(handler: type[Handler], argument_spec: dict) -> None:
    module = BlockstoreModule(argument_spec=full_spec(argument_spec), supports_check_mode=True)
    if module.refused:
        module.fail_json(msg=module.refused[0], option=module.refused[1])
    records = module.internal["_blockstore_records"]
    key = module.internal["_blockstore_key"]
    if key:
        module.no_log_values.add(key)
    if module.store_options:
        from .persistence.plugins import secret_values
        module.no_log_values.update(secret_values(module.params["persistence"]["storage"], module.store_options,
                                                  os.environ))
    params = dict(module.params)
    if module.internal["_blockstore_half"]:
        # Which half of a task the action plugin split (attachments.HALF_PARAM): the handler reads it.
        params["_blockstore_half"] = module.internal["_blockstore_half"]
    backends_file = params.pop("backends_file", None)
    if handler.needs_backend and records is None:
        # Sent by the action plugin already resolved (secrets from the controller's environment
        # included) with the records; resolved here for a handler sent none, or a module run alone.
        from .backend_env import fill_secrets_from_env
        from .backends_file import resolve_backend
        try:
            params["backend"] = fill_secrets_from_env(resolve_backend(params["backend"], backends_file), os.environ)
        except BlockstoreError as exc:
            module.fail_json(msg=str(exc), option=exc.option)
    hide_backend_secrets(module, params["backend"])
    sealer = None
    if key:
        from .sealing import Sealer
        sealer = Sealer(key=key)
    task = Task(params, module.check_mode, records=records, new_ids=module.internal["_blockstore_ids"] or [],
                sealer=sealer)
    store = None
    try:
        if handler.needs_backend:
            task.driver = build_driver(params["backend"])
            # Which store the controller runs this task for (backend_identity.owner_of): drivers mark the backend.
            task.driver.owner = module.internal["_blockstore_owner"]
        if records is None and handler.needs_store:
            # Run without the action plugin: the store is opened (and closed) here.
            from .persistence import open_store
            store = open_store({**params["persistence"], **module.store_options})
        result, changes = dispatch(handler, task, store=store)
    except BlockstoreError as exc:
        # Records were sent, so the action plugin waits for changes: "none" (not
        # a missing key, which means the module died) puts back what it pre-wrote.
        failed_changes = getattr(exc, "changes", None)
        if failed_changes is None and records is not None:
            failed_changes = {"upserts": [], "deletes": []}
        module.fail_json(msg=str(exc), option=exc.option, _blockstore_changes=failed_changes)
    finally:
        if store is not None:
            store.close()
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(_blockstore_changes=changes, **result)

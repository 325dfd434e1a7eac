# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of every blockstore module: the state bridge.

Validates the task's arguments with the module's own argument spec, opens the
store (env fallbacks read on the controller), and runs the core's transaction
with the module as its executor: records go to the module, changes come back
and are written here. The store's connection never leaves the controller.
"""

from __future__ import annotations

import importlib
import os

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.blockstore.storage.plugins.module_utils.backend_env import fill_secrets_from_env
from ansible_collections.blockstore.storage.plugins.module_utils.backends_file import resolve_backend
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import BlockstoreError
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store
from ansible_collections.blockstore.storage.plugins.module_utils.queries import Query
from ansible_collections.blockstore.storage.plugins.module_utils.runner import full_spec
from ansible_collections.blockstore.storage.plugins.module_utils.sealing import sealer_of
from ansible_collections.blockstore.storage.plugins.module_utils.transaction import run_task

COLLECTION = "blockstore.storage"


def _failure(msg: str, option: str | None = None) -> dict:
    result = {"failed": True, "changed": False, "msg": msg}
    if option:
        result["option"] = option
    return result


def _strip_internal(result: dict) -> dict:
    """The records and the key sent to the module are no business of the task's output (-vvv shows
    invocation.module_args): only the user's own arguments are echoed."""
    module_args = (result.get("invocation") or {}).get("module_args")
    if isinstance(module_args, dict):
        for key in [k for k in module_args if k.startswith("_blockstore")]:
            del module_args[key]
    return result


def run_action(action, task_vars: dict) -> dict:
    task = action._task
    module_name = task.resolved_action or task.action
    short_name = module_name.rsplit(".", 1)[-1]
    args = dict(task.args)
    internal = sorted(k for k in args if k.startswith("_blockstore"))
    if internal:
        return _failure(f"{', '.join(internal)}: internal to {COLLECTION} and cannot be set in a task")

    module = importlib.import_module(f"ansible_collections.blockstore.storage.plugins.modules.{short_name}")
    # Internal arguments were refused above; leave them out of "Supported parameters include".
    public_spec = {k: v for k, v in full_spec(module.ARGUMENT_SPEC).items() if not k.startswith("_blockstore")}
    validated = ArgumentSpecValidator(public_spec).validate(args)
    if validated.error_messages:
        return _failure("; ".join(validated.error_messages))
    params = validated.validated_parameters
    check_mode = bool(action._play_context.check_mode)
    # The store's URL may hold a password: it stays here, the module gets records.
    # The backends file is read here (in AWX it lives on the controller): the module gets the
    # resolved backend dict.
    module_args = {k: v for k, v in args.items() if k not in ("persistence", "backends_file")}

    def execute(records: list, new_ids: list) -> tuple[dict, dict | None]:
        internal = {"_blockstore_records": records, "_blockstore_ids": new_ids}
        if getattr(module.HANDLER, "needs_key", False):
            internal["_blockstore_key"] = sealer_of(store).key()
        result = action._execute_module(module_name=module_name, task_vars=task_vars,
                                        module_args={**module_args, **internal})
        return _strip_internal(result), result.pop("_blockstore_changes", None)

    if not getattr(module.HANDLER, "needs_backend", True):
        result = _strip_internal(action._execute_module(module_name=module_name, task_vars=task_vars,
                                                        module_args=module_args))
        result.pop("diff", None)
        return result
    store = None
    try:
        # Secret options left out come from BLOCKSTORE_BACKEND_<OPTION> here, where AWX injects credentials.
        module_args["backend"] = fill_secrets_from_env(
            resolve_backend(params["backend"], params.get("backends_file")), os.environ)
        driver = build_driver(module_args["backend"])  # fails on bad options before any write
        store = open_store(params.get("persistence"))
        if getattr(module.HANDLER, "runs_on_controller", False):
            result = module.HANDLER.run_on_store(store, driver.backend_name, params, check_mode)
        elif issubclass(module.HANDLER, Query):
            result = execute(module.HANDLER.select(store, driver.backend_name, params), [])[0]
        else:
            result = run_task(store, module.HANDLER, driver.backend_name, params, check_mode, execute)
    except BlockstoreError as exc:
        return _failure(str(exc), exc.option)
    finally:
        if store is not None:
            store.close()
    if not task.diff:
        result.pop("diff", None)
    return result

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
import json
import os

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.blockstore.storage.plugins.module_utils.backend_env import fill_secrets_from_env
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import BlockstoreError, InvalidParameter
from ansible_collections.blockstore.storage.plugins.module_utils.handler import Task, dispatch
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store, split_plugin_options
from ansible_collections.blockstore.storage.plugins.module_utils.runner import (
    backend_secret_values,
    full_spec,
    non_text_option,
)
from ansible_collections.blockstore.storage.plugins.plugin_utils.host_probe import host_probe

COLLECTION = "blockstore.storage"
# Set true (a play, host or task variable) to ship the module even when the controller's plan
# has nothing to do, for every module (the info modules too): the task then also fails when the
# host cannot be reached.
ALWAYS_RUN_MODULE_VAR = "blockstore_always_run_module"
# How a storage_volume/storage_snapshot task with nothing to do is answered: `backend` (the default)
# runs the module, which checks the object on the backend; `store` answers from the records alone,
# without the host (fast, but blind to what changed on the backend: docs/performance.md).
NOOP_ANSWER_VAR = "blockstore_noop_answer"
NOOP_ANSWERS = ("backend", "store")


def _failure(msg: str, option: str | None = None) -> dict:
    result = {"failed": True, "changed": False, "msg": msg}
    if option:
        result["option"] = option
    return result


def _hide(result: dict, secrets: set[str]) -> dict:
    """The result with a plugin store's secret option values masked (remove_values, as no_log does)."""
    if not secrets:
        return result
    preserved = {k: v for k, v in result.items() if v is None or isinstance(v, bool)}
    result = remove_values(result, secrets)
    result.update(preserved)
    return result


def _strip_internal(result: dict) -> dict:
    """The records and the key sent to the module are no business of the task's output (-vvv shows
    invocation.module_args): only the user's own arguments are echoed."""
    module_args = (result.get("invocation") or {}).get("module_args")
    if isinstance(module_args, dict):
        for key in [k for k in module_args if k.startswith("_blockstore")]:
            del module_args[key]
    return result


def noop_answer(action, task_vars: dict) -> str:
    """The task's `blockstore_noop_answer`, checked: one of NOOP_ANSWERS."""
    value = task_vars.get(NOOP_ANSWER_VAR, NOOP_ANSWERS[0])
    if isinstance(value, str):
        value = action._templar.template(value)
    if value not in NOOP_ANSWERS:
        raise InvalidParameter(f"{NOOP_ANSWER_VAR}: {value!r} is not one of {', '.join(NOOP_ANSWERS)} (a variable: "
                               "how a storage_volume or storage_snapshot task with nothing to do is answered)",
                               NOOP_ANSWER_VAR)
    return value


def noop_answered_here(action, task_vars: dict, handler: type, validated: object) -> str | None:
    """How a task with nothing to do is answered here, without shipping the module: "store" (from the
    records), "probe" (from the records, once the driver's probe of the object on the task's host
    agrees with them), or None (the module runs).

    Only for handlers whose such tasks need nothing else from the host (`noop_on_controller`); "probe"
    for those whose module checks the object on the backend (`noop_checks_backend`), unless the task
    opts in with `blockstore_noop_answer: store`; and only when the module's result would hold nothing
    this side cannot make: no `invocation` (ansible-core < 2.21 always adds it, later ones when
    INJECT_INVOCATION is on) and no warnings about aliases or deprecated options.
    docs/performance.md explains the choice.
    """
    if not handler.noop_on_controller:
        return None
    answer = noop_answer(action, task_vars)
    always = task_vars.get(ALWAYS_RUN_MODULE_VAR, False)
    if isinstance(always, str):
        always = action._templar.template(always)
    if boolean(always, strict=False):
        return None
    try:
        inject_invocation = C.config.get_config_value("INJECT_INVOCATION", variables=task_vars)
    except AnsibleError:  # ansible-core before 2.21: modules always return their invocation
        inject_invocation = True
    if inject_invocation or validated._warnings or validated._deprecations:
        return None
    return "probe" if handler.noop_checks_backend and answer != "store" else "store"


def answers_noop_here(action, task_vars: dict, handler: type, validated: object, driver: object) -> bool:
    """noop_answered_here as a yes or no; for a "probe" answer, hands `driver` its runner of probes on the
    task's host (no runner yet, no interpreter known there: the module runs)."""
    how = noop_answered_here(action, task_vars, handler, validated)
    if how == "probe":
        probe = host_probe(action, task_vars) if driver is not None else None
        if probe is None:
            return False
        driver.probe_on_host = probe
    return how is not None


def task_backend(params: dict) -> object:
    """The task's `backend`, resolved through the backends file when it names a section.

    An inline backend (a dict with its `driver`, no `section`, no backends file) is what
    resolve_backend returns unchanged: backends_file.py is then not imported. Ansible compiles
    the collection's code again in the worker of every task (docs/performance.md)."""
    backend = params["backend"]
    if isinstance(backend, dict) and "driver" in backend and "section" not in backend \
            and not params.get("backends_file"):
        return backend
    from ansible_collections.blockstore.storage.plugins.module_utils.backends_file import resolve_backend
    return resolve_backend(backend, params.get("backends_file"))


def module_result(result: dict, backend: object) -> dict:
    """A result made here in the shape the module would have returned it: JSON values only, and
    the backend's secret values masked as AnsibleModule.exit_json masks its no_log values."""
    preserved = {k: v for k, v in result.items() if v is None or isinstance(v, bool)}
    result = remove_values(json.loads(json.dumps(result)), backend_secret_values(backend))
    result.update(preserved)
    return result


def module_fqcn(action) -> str:
    """The FQCN of the module the task names, found as Ansible finds modules.

    Not `task.resolved_action`: ansible-core before 2.19 resolves the task's action through the action
    plugin routing first, so there it names this collection's shared action plugin, not the module.
    """
    task = action._task
    context = action._shared_loader_obj.module_loader.find_plugin_with_context(
        task.action, collection_list=task.collections)
    return context.resolved_fqcn if context.resolved else task.action


def validation_message(errors, module_name: str) -> str:
    """The validation errors as AnsibleModule words them: an unknown option gets Ansible's usual
    "Unsupported parameters for (MODULE) module:" prefix, so a typo reads as it does for any module."""
    messages = []
    for error in errors.errors:
        if isinstance(error, UnsupportedError):
            messages.append(f"Unsupported parameters for ({module_name}) module: {error.msg}")
        else:
            messages.append(error.msg)
    return "; ".join(messages)


def run_action(action, task_vars: dict) -> dict:
    task = action._task
    module_name = module_fqcn(action)
    short_name = module_name.rsplit(".", 1)[-1]
    args = dict(task.args)
    internal = sorted(k for k in args if k.startswith("_blockstore"))
    if internal:
        return _failure(f"{', '.join(internal)}: internal to {COLLECTION} and cannot be set in a task")

    module = importlib.import_module(f"ansible_collections.blockstore.storage.plugins.modules.{short_name}")
    # Internal arguments were refused above; leave them out of "Supported parameters include".
    public_spec = {k: v for k, v in full_spec(module.ARGUMENT_SPEC).items() if not k.startswith("_blockstore")}
    refused = non_text_option(public_spec, args)
    if refused:
        return _failure(*refused)
    # A plugin store's own options are validated by its own spec when it is opened; their secret
    # values are masked in everything this task returns, as no_log masks the built-in ones.
    persistence, store_options = split_plugin_options(args.get("persistence"))
    store_secrets = set()
    if store_options:  # a plugin store's: its module is imported only then
        from ansible_collections.blockstore.storage.plugins.module_utils.persistence.plugins import secret_values
        store_secrets = secret_values(persistence["storage"], store_options, os.environ)
    validated = ArgumentSpecValidator(public_spec).validate({**args, "persistence": persistence})
    if validated.error_messages:
        return _hide(_failure(validation_message(validated.errors, module_name)), store_secrets)
    params = validated.validated_parameters
    check_mode = bool(action._play_context.check_mode)
    # The store's URL may hold a password: it stays here, the module gets records.
    # The backends file is read here (in AWX it lives on the controller): the module gets the
    # resolved backend dict.
    module_args = {k: v for k, v in args.items() if k not in ("persistence", "backends_file")}

    handler = module.HANDLER

    def ship(records: list | None, new_ids: list) -> tuple[dict, dict | None]:
        """Run the module where Ansible runs it, with the records the controller selected."""
        internal = {} if records is None else {"_blockstore_records": records, "_blockstore_ids": new_ids}
        if handler.wants_key(records):
            internal["_blockstore_key"] = store.sealer.key()
        if job.driver is not None and job.driver.owner is not None:
            internal["_blockstore_owner"] = job.driver.owner  # set by dispatch (backend_identity.py)
        result = action._execute_module(module_name=module_name, task_vars=task_vars,
                                        module_args={**module_args, **internal})
        return _strip_internal(result), result.pop("_blockstore_changes", None)

    store = None
    try:
        job = Task(params, check_mode)
        if handler.needs_backend:
            # Secret options left out come from BLOCKSTORE_BACKEND_<OPTION> here, where AWX injects credentials.
            module_args["backend"] = fill_secrets_from_env(
                task_backend(params), os.environ)
            job.driver = build_driver(module_args["backend"])  # fails on bad options before any write
        if handler.needs_store:
            store = open_store({**(params.get("persistence") or {}), **store_options})

        def answer_noop(noop_result: dict) -> dict:
            return module_result(noop_result, module_args["backend"])

        answer_here = answers_noop_here(action, task_vars, handler, validated, job.driver)
        result = dispatch(handler, job, store=store, ship=ship, answer_noop=answer_noop if answer_here else None)[0]
    except BlockstoreError as exc:
        return _hide(_failure(str(exc), exc.option), store_secrets)
    finally:
        if store is not None:
            store.close()
    if not task.diff:
        result.pop("diff", None)
    return _hide(result, store_secrets)

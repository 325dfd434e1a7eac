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

import dataclasses
import importlib
import json
import os

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.blockstore.storage.plugins.module_utils import drift
from ansible_collections.blockstore.storage.plugins.module_utils.backend_env import fill_secrets_from_env
from ansible_collections.blockstore.storage.plugins.module_utils.drivers import HOST_KEY, build_driver
from ansible_collections.blockstore.storage.plugins.module_utils.errors import (
    BlockstoreError,
    Conflict,
    DriverError,
    InvalidParameter,
)
from ansible_collections.blockstore.storage.plugins.module_utils.handler import HALF_PARAM, HOST_HALF, Task, dispatch
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import open_store, split_plugin_options
from ansible_collections.blockstore.storage.plugins.module_utils.queries import DRIFT_HOST_PARAM
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
# With a backend `host` (the inventory host where its backend-side work runs, docs/architecture.md): these
# modules' steps are all backend-side, so they run there whatever host the task is for...
BACKEND_SIDE_MODULES = ("storage_volume", "storage_snapshot", "storage_backup")
# ...and this one's task is split: the export on the backend's host, the device on the task's host.
SPLIT_MODULE = "storage_attachment"
# ...and this one's stats and drift backend view run there, its drift host view on the task's host.
DRIFT_MODULE = "storage_backend_info"
HOST_INFO_MODULE = f"{COLLECTION}.storage_host_info"


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


class _OtherHost(ActionBase):
    """Runs modules through another inventory host's connection (the backend's host)."""

    def run(self, tmp=None, task_vars=None):  # never run as a task
        raise NotImplementedError


def task_host(action, task_vars: dict) -> str:
    """The inventory host the task works on: the one it is delegated to, else its own."""
    return action._task.delegate_to or task_vars.get("inventory_hostname")


def _plugin_vars(plugin_type: str, plugin: object, variables: dict) -> dict:
    return {k: variables[k] for k in C.config.get_plugin_vars(plugin_type, plugin._load_name) if k in variables}


def connect_to(action, host: str, task_vars: dict) -> ActionBase:
    """An action bound to a connection to inventory host `host`, built from its variables the way Ansible
    builds one for a task delegated there (its ansible_host, port, user, connection and interpreter)."""
    hostvars = task_vars.get("hostvars")
    if hostvars is None or host not in hostvars:
        raise InvalidParameter(f"backend.host: {host!r} is not a host of the inventory (the backend's host, where "
                               "its backend-side work runs: name it as the inventory does)", "backend.host")
    host_vars = hostvars[host]
    # Connection, shell, become and interpreter settings only: templated in that host's context.
    variables = {k: host_vars[k] for k in host_vars if k.startswith("ansible_")}
    variables["inventory_hostname"] = host
    task = action._task.copy()
    task.delegate_to = None
    play_context = action._play_context.set_task_and_variable_override(
        task=task, variables=variables, templar=action._templar)
    play_context.remote_addr = variables.get("ansible_host", host)
    conn_type = variables.get("ansible_connection") or action._connection._load_name
    connection = action._shared_loader_obj.connection_loader.get(conn_type, play_context, new_stdin=None)
    if connection is None:
        raise InvalidParameter(f"backend.host: the connection plugin {conn_type!r} of {host} was not found",
                               "backend.host")
    connection.set_become_plugin(action._connection.become)  # the task's become, as for a delegated task
    task_keys = task.dump_attrs()
    task_keys["timeout"] = play_context.timeout
    task_keys.pop("retries", None)
    # The variables are templated already; each plugin takes those that set its options (any ansible-core).
    connection.set_options(task_keys=task_keys, var_options=_plugin_vars("connection", connection, variables))
    connection._shell.set_options(var_options=_plugin_vars("shell", connection._shell, variables))
    other = _OtherHost(task, connection, play_context, action._loader, action._templar, action._shared_loader_obj)
    other.host_vars = {**variables, "hostvars": hostvars, "omit": task_vars.get("omit")}
    return other


def backend_side(action, task_vars: dict, short_name: str, driver: object, module_args: dict) -> ActionBase | None:
    """Where the task's backend-side steps run when not where the task runs: the backend's `host`, for the
    modules that have such steps (None: all of the task runs where Ansible runs it)."""
    host = driver.backend_host if driver is not None else None
    if host is None:
        return None
    # Not a driver option: the module is not sent it.
    module_args["backend"] = {k: v for k, v in module_args["backend"].items() if k != HOST_KEY}
    if host == task_host(action, task_vars) or short_name not in (SPLIT_MODULE, DRIFT_MODULE, *BACKEND_SIDE_MODULES):
        return None
    return connect_to(action, host, task_vars)


def run_there(other: ActionBase, module_name: str, module_args: dict) -> dict:
    """The module's result, run through `other`'s connection; its temporary directory removed."""
    try:
        result = other._execute_module(module_name=module_name, module_args=module_args, task_vars=other.host_vars)
    finally:
        other._remove_tmp_path(other._connection._shell.tmpdir)
        other._connection.close()  # made for this task alone (Ansible closes only the task's own)
    # An interpreter discovered there is that host's fact, not the task host's.
    result.pop("ansible_facts", None)
    return result


def made_export(result: dict) -> bool:
    """Whether a backend half's result says it made an export (its connect step ran)."""
    return bool(result.get("changed")) and any(a.startswith("connect volume") for a in result.get("actions") or [])


def merged(first: dict, second: dict) -> dict:
    """One task's result from its two halves: the second's, with both halves' actions, changed if either was,
    and a diff from before the first to after the second."""
    actions = list(first.get("actions") or [])
    actions += [a for a in second.get("actions") or [] if a not in actions]
    result = dict(second, changed=bool(first.get("changed") or second.get("changed")), actions=actions)
    if "diff" in first and "diff" in second:
        result["diff"] = {"before": first["diff"].get("before", {}), "after": second["diff"].get("after", {})}
    return result


class _Shipping:
    """How one task's module is run: where Ansible runs it, or through another host's connection."""

    def __init__(self, action, task_vars: dict, handler: type, module_name: str, module_args: dict) -> None:
        self.action, self.task_vars, self.handler = action, task_vars, handler
        self.module_name, self.module_args = module_name, module_args
        self.store = None  # opened by run_action
        self.host_name: str | None = None  # found by whoami

    def shipper(self, job: Task, where: ActionBase | None = None, extra: dict | None = None):
        """A `ship` for `job`: runs the module where Ansible runs it (or through `where`, another host's
        connection) with the records the controller selected, and `extra` arguments of a split task."""
        def ship(records: list | None, new_ids: list, key: str | None) -> tuple[dict, dict | None]:
            internal = {} if records is None else {"_blockstore_records": records, "_blockstore_ids": new_ids}
            if key is not None:  # made for this task by the secret gate (handler.py), never the store's
                internal["_blockstore_key"] = key
            if job.driver is not None and job.driver.owner is not None:
                internal["_blockstore_owner"] = job.driver.owner  # set by dispatch (backend_identity.py)
            args = {**self.module_args, **(extra or {}), **internal}
            if where is None:
                result = self.action._execute_module(module_name=self.module_name, task_vars=self.task_vars,
                                                     module_args=args)
            else:
                result = run_there(where, self.module_name, args)
            return _strip_internal(result), result.pop("_blockstore_changes", None)
        return ship

    def whoami(self) -> str:
        """The name of the host the task's module runs on, as its connector says (storage_host_info run there
        once): which of a volume's connections are its own (handler.Handler.host_records)."""
        if self.host_name is None:
            found = self.action._execute_module(module_name=HOST_INFO_MODULE, module_args={}, task_vars=self.task_vars)
            if found.get("failed"):
                raise DriverError(f"storage_host_info on the task's host failed: {found.get('msg')}")
            self.host_name = found["connector"]["host"]
        return self.host_name

    def split(self, job: Task, backend_side: ActionBase) -> dict:
        """storage_attachment with the backend on another host: the export there, the device here, each
        half one transaction of its own (docs/architecture.md)."""
        if job.params.get("force"):
            # A forced detach is for a host that is gone: nothing runs here, only the backend half there.
            return self.half(job, backend_side, {})
        state = job.params.get("state") or "attached"
        connector = job.params.get("connector")
        if connector is None or state == "attached":  # this host's, as the module would gather it
            found = self.action._execute_module(module_name=HOST_INFO_MODULE, module_args={},
                                                task_vars=self.task_vars)
            if found.get("failed"):
                return found
            if connector is not None and connector.get("host") != found["connector"]["host"]:
                # Refused before the export is made for that other host on the backend's host.
                raise Conflict(f"connector: state attached makes a device on the host the task runs on "
                               f"({found['connector']['host']}), but the connector describes "
                               f"{connector.get('host')!r}; use state connected to export to another host", "connector")
            connector = connector or found["connector"]
        if state == "attached":
            halves = ((backend_side, {"state": "connected", "connector": connector}),
                      (None, {"connector": connector, HALF_PARAM: HOST_HALF}))
        else:  # the device goes first, then the connection (detached) or nothing more (connected)
            halves = ((None, {"state": "connected", "connector": connector, HALF_PARAM: HOST_HALF}),
                      (backend_side, {"connector": connector}))
        results = []
        for where, extra in halves:
            results.append(self.half(job, where, extra))
            if results[-1].get("failed"):
                break
        if len(results) == 1:
            return results[0]
        if state == "attached" and results[1].get("failed") and made_export(results[0]):
            return self.undo_export(job, backend_side, connector, results)
        return merged(*results)

    def drift_split(self, job: Task, backend_side: ActionBase) -> dict:
        """storage_backend_info with the backend on another host: its stats and the drift check's backend view
        there, the host view (this host's devices) here, with this host's connections only; one result."""
        views = drift.views_of(job.params.get("check_drift"))
        if drift.HOST_VIEW not in views:
            return self.half(job, backend_side, {})
        found = self.action._execute_module(module_name=HOST_INFO_MODULE, module_args={}, task_vars=self.task_vars)
        if found.get("failed"):
            return found
        here = {"check_drift": drift.HOST_VIEW}
        name = found["connector"]["host"]
        host_part = dataclasses.replace(job, params={**job.params, **here, DRIFT_HOST_PARAM: name})
        if drift.BACKEND_VIEW not in views:
            return self.half(host_part, None, here)
        there = self.half(job, backend_side, {"check_drift": drift.BACKEND_VIEW})
        if there.get("failed"):
            return there
        mine = self.half(host_part, None, here)
        if mine.get("failed"):
            return dict(mine, msg=f"the drift check's host view failed (its backend view ran): {mine['msg']}")
        return dict(there, drift=drift.merge([there["drift"], mine["drift"]]))

    def half(self, job: Task, where: ActionBase | None, extra: dict) -> dict:
        """One half of a split task, a transaction of its own; a refusal on this side is its failed result."""
        part = dataclasses.replace(job, params={**job.params, **extra})
        try:
            return dispatch(self.handler, part, store=self.store, ship=self.shipper(part, where, extra))[0]
        except BlockstoreError as exc:
            return _failure(str(exc), exc.option)

    def undo_export(self, job: Task, backend_side: ActionBase, connector: dict, results: list) -> dict:
        """A failed attach leaves nothing behind, split or not: the export its backend half made goes again."""
        undone = self.half(job, backend_side, {"state": "detached", "connector": connector})
        result = dict(merged(*results), failed=True, changed=bool(undone.get("failed")))
        if undone.get("failed"):
            result["msg"] = (f"{results[1]['msg']}; removing the export made for it failed too ({undone['msg']}), "
                             "it stays recorded for state detached")
        else:
            result["msg"] = f"{results[1]['msg']}; the export made for it on the backend's host was removed again"
        return result


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
    run = _Shipping(action, task_vars, handler, module_name, module_args)
    store = None
    try:
        job = Task(params, check_mode, whoami=run.whoami)
        if handler.needs_backend:
            # Secret options left out come from BLOCKSTORE_BACKEND_<OPTION> here, where AWX injects credentials.
            module_args["backend"] = fill_secrets_from_env(
                task_backend(params), os.environ)
            job.driver = build_driver(module_args["backend"])  # fails on bad options before any write
        if handler.needs_store:
            store = run.store = open_store({**(params.get("persistence") or {}), **store_options})

        def answer_noop(noop_result: dict) -> dict:
            return module_result(noop_result, module_args["backend"])

        where = backend_side(action, task_vars, short_name, job.driver, module_args)
        # The probe runs on the task's host: a backend whose work runs elsewhere is checked by the module there.
        answer_here = answers_noop_here(action, task_vars, handler, validated, job.driver if where is None else None)
        if where is not None and short_name == SPLIT_MODULE and not check_mode:
            result = run.split(job, where)
        elif where is not None and short_name == DRIFT_MODULE:
            result = run.drift_split(job, where)
        elif where is not None and short_name == SPLIT_MODULE:
            # Check mode: the whole plan, made where the device is; nothing runs, so no backend-side step either.
            result = dispatch(handler, job, store=store, ship=run.shipper(job))[0]
        else:
            result = dispatch(handler, job, store=store, ship=run.shipper(job, where),
                              answer_noop=answer_noop if answer_here else None)[0]
    except BlockstoreError as exc:
        return _hide(_failure(str(exc), exc.option), store_secrets)
    finally:
        if store is not None:
            store.close()
    if not task.diff:
        result.pop("diff", None)
    return _hide(result, store_secrets)

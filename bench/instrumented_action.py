# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's action plugin with timers, for bench/forks.py only.

bench/forks.py copies the collection into a tree of its own and puts this file in
place of plugins/action/storage.py there (the checkout is never changed). Each
task appends one JSON line to $BENCH_TASK_LOG: wall and CPU of the worker process
(the controller side: Ansible's task executor, this plugin, the store), CPU of the
processes it waited for (the module and the shell commands around it), time spent
waiting for resource locks and the state file's lock, and time in the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import time

from ansible.plugins.action import ActionBase
from ansible_collections.blockstore.storage.plugins.module_utils.persistence import base as store_base
from ansible_collections.blockstore.storage.plugins.plugin_utils import state_bridge

TIMES = {"lock_wait": 0.0, "store": 0.0, "module": 0.0}


def timing(key, function):
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            TIMES[key] += time.perf_counter() - started
    return timed


real_flock = fcntl.flock


def flock(fd, operation):
    started = time.perf_counter()
    try:
        return real_flock(fd, operation)
    finally:
        TIMES["lock_wait"] += time.perf_counter() - started


# Every lock of the file store and of SQLite is an flock() in persistence/base.py.
store_base.fcntl = type("fcntl", (), {"flock": staticmethod(flock), "LOCK_EX": fcntl.LOCK_EX})
real_open_store = state_bridge.open_store


def open_store(persistence):
    """The store the task uses, with its reads and writes timed (the file lock's wait included)."""
    store = real_open_store(persistence)
    for name in ("find", "apply"):
        setattr(store, name, timing("store", getattr(store, name)))
    return store


state_bridge.open_store = open_store


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        started = time.perf_counter()
        real_execute = self._execute_module
        self._execute_module = timing("module", real_execute)
        result = super().run(tmp, task_vars)
        try:
            result.update(state_bridge.run_action(self, task_vars or {}))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        line = {
            "pid": os.getpid(),
            "action_wall": time.perf_counter() - started,
            "worker_cpu": own.ru_utime + own.ru_stime,
            "children_cpu": children.ru_utime + children.ru_stime,
            "failed": bool(result.get("failed")),
            **TIMES,
        }
        # lock_wait counts every flock: resource locks and the state file's lock (inside apply()).
        with contextlib.suppress(OSError), open(os.environ["BENCH_TASK_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\n")
        return result

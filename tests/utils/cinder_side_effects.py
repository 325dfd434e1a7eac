# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What running driver `cinder` changes in its process, measured; printed as JSON.

    <python with cinder and rados> tests/utils/cinder_side_effects.py '<backend JSON>'

Takes a snapshot of process-wide state (environment, logging, sys.modules, signal handlers,
warnings filters, oslo.config's global CONF, eventlet patching, threads), loads the Cinder
driver through the adapter, asks it for stats (read-only), and prints what differs. Used by
tests/unit/plugins/module_utils/drivers/test_cinder_driver.py with Cinder's RBDDriver.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import warnings

from ansible_collections.blockstore.storage.plugins.module_utils.drivers import build_driver


def snapshot() -> dict:
    root = logging.getLogger()
    return {
        "environ": dict(os.environ),
        "root_handlers": [repr(h) for h in root.handlers],
        "root_level": root.level,
        "logging_disable": logging.root.manager.disable,
        # Libraries' own NullHandlers are the logging HOWTO's advice, not a configuration.
        "loggers_with_handlers": sorted(name for name, logger in logging.root.manager.loggerDict.items()
                                        if isinstance(logger, logging.Logger) and any(
                                            not isinstance(h, logging.NullHandler) for h in logger.handlers)),
        "signals": {name: repr(signal.getsignal(getattr(signal, name))) for name in ("SIGINT", "SIGTERM", "SIGHUP")},
        "warning_filters": len(warnings.filters),
        "stdout": id(sys.stdout), "stderr": id(sys.stderr),
        # A fake package (cinderlib's way) is a module object with no spec and no file whose
        # parent package has no file either; extension submodules (pyexpat.errors, cffi's
        # lib) and private aliases (__mp_main__, cython_runtime) are not fakes.
        "modules_without_spec": sorted(
            name for name, module in list(sys.modules.items())
            if module is not None and getattr(module, "__spec__", None) is None
            and getattr(module, "__file__", None) is None and not name.startswith("_")
            and name not in ("builtins", "sys", "cython_runtime")
            and name.rpartition(".")[0] not in sys.builtin_module_names
            and getattr(sys.modules.get(name.rpartition(".")[0]), "__file__", None) is None),
        "threads": threading.active_count(),
    }


def main() -> None:
    backend = json.loads(sys.argv[1])
    before = snapshot()
    driver = build_driver(backend)
    stats = driver.get_stats()
    after = snapshot()
    import eventlet.patcher
    from oslo_config import cfg
    changes = {
        "environ_added": sorted(set(after["environ"]) - set(before["environ"])),
        "environ_changed": sorted(k for k in before["environ"] if after["environ"].get(k) != before["environ"][k]),
        "root_handlers_added": [h for h in after["root_handlers"] if h not in before["root_handlers"]],
        "root_level_changed": after["root_level"] != before["root_level"],
        "logging_disabled_changed": after["logging_disable"] != before["logging_disable"],
        "loggers_with_handlers_added": sorted(set(after["loggers_with_handlers"])
                                              - set(before["loggers_with_handlers"])),
        "signals_changed": sorted(k for k in before["signals"] if after["signals"][k] != before["signals"][k]),
        "warning_filters_added": after["warning_filters"] - before["warning_filters"],
        "stdout_or_stderr_replaced": (after["stdout"], after["stderr"]) != (before["stdout"], before["stderr"]),
        "fake_modules_added": sorted(set(after["modules_without_spec"]) - set(before["modules_without_spec"])),
        "eventlet_monkey_patched": [m for m in ("os", "select", "socket", "thread", "time")
                                    if eventlet.patcher.is_monkey_patched(m)],
        # Private attributes, read only here: whether cfg.CONF was ever called (parsed) and what
        # values were set on it (overrides or defaults changed in its DEFAULT group).
        "global_conf_parsed": cfg.CONF._args is not None,
        "global_conf_overrides": sorted(name for name, info in cfg.CONF._opts.items()
                                        if info.get("override") is not None),
        "threads_added": after["threads"] - before["threads"],
        "cinder_modules_imported": sum(1 for name in sys.modules if name.startswith("cinder")),
    }
    print(json.dumps({"changes": changes, "stats_driver": stats.get("driver"),
                      "total_capacity_gb": stats.get("total_capacity_gb")}))


if __name__ == "__main__":
    main()

# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""os-brick, imported here only and only when used (about 0.4-0.6 s).

As root, privsep runs in-process (`set_client_mode(False)`): no sudo and no
privsep-helper on the PATH are needed. Not root, os-brick's default applies
(sudo privsep-helper), as in any OpenStack service. os-brick takes external
locks (one attach at a time per target) in a lock_path, and wants
`os_brick.setup(conf)` before use: both are done once, here.
"""

from __future__ import annotations

import logging
import os
import warnings

from ..errors import DriverError, MissingDependency

_loaded: dict = {}


def load():
    """The os_brick.initiator.connector module, ready to run as this user."""
    if "connector" not in _loaded:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # eventlet's deprecation notice on import
            try:
                from os_brick import privileged
                from os_brick.initiator import connector
            except ImportError as exc:
                raise MissingDependency(f"os-brick is needed on this host for connector properties and kernel "
                                        f"attachments (pip install os-brick): {exc}", "os-brick") from None
        for name in ("os_brick", "oslo_privsep", "oslo.privsep.daemon"):
            logging.getLogger(name).setLevel(logging.ERROR)
        _setup()
        if os.geteuid() == 0:
            privileged.default.set_client_mode(False)
        _loaded["connector"] = connector
    return _loaded["connector"]


def _setup() -> None:
    """os-brick's configuration: a lock_path for its external locks and os_brick.setup (without them it
    warns that it "will break on the next release" and takes no lock between two tasks on one host)."""
    import os_brick
    from oslo_concurrency import lockutils
    from oslo_config import cfg
    # Shared by every task on this host (root: beside the connectors' run directory, connectors.run_dir).
    lock_path = os.path.join(os.environ.get("BLOCKSTORE_RUN_DIR") or "/run/blockstore", "os-brick-locks") \
        if os.geteuid() == 0 else os.path.expanduser("~/.cache/blockstore/os-brick-locks")
    os.makedirs(lock_path, mode=0o700, exist_ok=True)
    lockutils.set_defaults(lock_path)
    # os-brick registers its options on the global cfg.CONF and reads them there.
    cfg.CONF([], project="blockstore", default_config_files=[], default_config_dirs=[])
    if hasattr(os_brick, "setup"):  # os-brick >= 6.0
        os_brick.setup(cfg.CONF)


def properties(ip: str, multipath: bool = False) -> dict:
    connector = load()
    try:
        return connector.get_connector_properties(None, ip, multipath, False)
    except Exception as exc:  # oslo.privsep's failures have no common base class
        if os.geteuid() == 0:
            raise
        # Not root: privsep tried `sudo privsep-helper` and failed ("privsep helper command exited non-zero").
        raise DriverError(f"os-brick could not gather this host's connector properties as uid {os.geteuid()}: "
                          f"its privileged commands (privsep) need root, run the task with become: true "
                          f"({type(exc).__name__}: {exc})") from None


def _initiator(protocol: str, multipath: bool):
    return load().InitiatorConnector.factory(protocol.upper(), None, use_multipath=multipath,
                                             device_scan_attempts=5)


class _Errors(logging.Handler):
    """The errors os-brick logs during one call (why each portal failed), secrets of the call's data taken out."""

    def __init__(self, data: dict) -> None:
        super().__init__(logging.ERROR)
        self.secrets = [str(v) for k, v in data.items() if "password" in k and v]
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        for secret in self.secrets:
            text = text.replace(secret, "********")
        self.lines.append(" ".join(text.split()))

    def told(self) -> str:
        return f" (os-brick logged: {'; '.join(self.lines[-3:])})" if self.lines else ""


def connect(protocol: str, data: dict, multipath: bool = False) -> dict:
    errors = _Errors(data)
    logging.getLogger("os_brick").addHandler(errors)
    try:
        return dict(_initiator(protocol, multipath).connect_volume(data))
    except Exception as exc:  # os-brick raises many unrelated types; report, never swallow
        raise DriverError(f"attach: os-brick could not connect the {protocol} volume: {exc}{errors.told()}") from None
    finally:
        logging.getLogger("os_brick").removeHandler(errors)


def disconnect(protocol: str, data: dict, device_info: dict, multipath: bool = False) -> None:
    try:
        _initiator(protocol, multipath).disconnect_volume(data, device_info, force=True, ignore_errors=True)
    except Exception as exc:
        raise DriverError(f"detach: os-brick could not disconnect the {protocol} volume: {exc}") from None


def extend(protocol: str, data: dict, multipath: bool = False) -> None:
    try:
        _initiator(protocol, multipath).extend_volume(data)
    except Exception as exc:
        raise DriverError(f"attach: os-brick could not resize the {protocol} device: {exc}") from None

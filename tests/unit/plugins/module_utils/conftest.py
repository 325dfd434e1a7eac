# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real tgtd of the test's own (its own control port and portal), for the tests that need one."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import time

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.drivers.tgt import Tgt


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclasses.dataclass
class Tgtd:
    control: int
    portal: str  # 127.0.0.1:PORT

    def tgtadm(self, *args: str) -> str:
        return subprocess.run(["tgtadm", "-C", str(self.control), "--lld", "iscsi", *args], capture_output=True,
                              text=True, check=True).stdout


@pytest.fixture(name="tgtd")
def fixture_tgtd(tmp_path):
    control = _free_port() % 30000 + 1000  # a signed short in tgtd
    daemon = Tgtd(control, f"127.0.0.1:{_free_port()}")
    pidfile = tmp_path / "tgtd.pid"
    subprocess.run(["tgtd", "-C", str(control), "--iscsi", f"portal={daemon.portal}", "--pid-file", str(pidfile)],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True)
    for _attempt in range(50):
        if subprocess.run(["tgtadm", "-C", str(control), "--mode", "system", "--op", "show"],
                          capture_output=True, check=False).returncode == 0:
            break
        time.sleep(0.2)
    try:
        yield daemon
    finally:  # tgtd ignores SIGTERM and stops only without targets: what a failed test left goes first
        for tid in Tgt(control).targets().values():
            subprocess.run(["tgtadm", "-C", str(control), "--lld", "iscsi", "--mode", "target", "--op", "delete",
                            "--force", "--tid", str(tid["tid"])], capture_output=True, check=False)
        subprocess.run(["tgtadm", "-C", str(control), "--mode", "system", "--op", "delete"],
                       capture_output=True, check=False)
        pid = int(pidfile.read_text()) if pidfile.exists() else None
        for _attempt in range(50):
            if pid is None or not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, 9)


@pytest.fixture(name="tgt")
def fixture_tgt(tgtd):
    return Tgt(tgtd.control)

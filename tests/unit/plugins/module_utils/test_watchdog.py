# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dead-export watchdog of userspace devices: when I/O counts as dead, and the process's own bounds."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from ansible_collections.blockstore.storage.plugins.module_utils.connectors import qsd, watchdog


def _run(stall: watchdog.Stall, samples: list[tuple[float, int, int]]) -> float | None:
    """The time of the first sample that finds the device stuck, or None."""
    for now, completed, in_flight in samples:
        if stall.observe(now, completed, in_flight):
            return now
    return None


def test_requests_in_flight_that_never_complete_are_dead_after_the_bound():
    # A read on a dead export: one request in flight from t=10 on, nothing completes.
    samples = [(float(t), 500, 0) for t in range(10)] + [(float(t), 500, 1) for t in range(10, 100)]
    assert _run(watchdog.Stall(30), samples) == 40.0


def test_throttled_io_that_completes_slowly_is_never_dead():
    # QoS at about one request every 5 s: always requests in flight, for ten minutes, but progress each time.
    samples = [(float(t), 500 + t // 5, 128) for t in range(600)]
    assert _run(watchdog.Stall(30), samples) is None
    # Positive control: the same queue once completions stop (the last one at t=595).
    stalled = samples + [(float(t), 500 + 599 // 5, 128) for t in range(600, 700)]
    assert _run(watchdog.Stall(30), stalled) == 625.0


def test_an_idle_device_is_never_dead_and_idleness_restarts_the_clock():
    idle = [(float(t), 7, 0) for t in range(300)]
    assert _run(watchdog.Stall(30), idle) is None
    # Busy 20 s, idle, busy 20 s again with no completion in between: neither stretch reaches 30 s.
    bursts = [(float(t), 7, 1 if (t < 20 or 25 <= t < 45) else 0) for t in range(60)]
    assert _run(watchdog.Stall(30), bursts) is None
    assert _run(watchdog.Stall(30), [(float(t), 7, 1) for t in range(60)]) == 30.0


def test_device_stat_counts_completed_requests_and_in_flight():
    # /sys/block/loopN/stat of a 6.x kernel: reads, writes, discards and flushes completed; 3 in flight.
    line = "   35723   6 2636688 453501  9112 45583 11659896 16666  3 455132 472592  408 0 962593720 41  4059 2383\n"
    assert watchdog.parse_stat(line) == (35723 + 9112 + 408 + 4059, 3)
    assert watchdog.parse_stat("  1 2 3 4 5 6 7 8 9 10 11\n") == (1 + 5, 9)  # an older kernel: no discard fields
    assert watchdog.parse_stat("") is None
    assert watchdog.parse_stat("garbage here") is None


MOUNTINFO = """\
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
412 27 0:77 / /run/blockstore/v1/export rw,nosuid,nodev,relatime - fuse /dev/fuse rw,user_id=0,group_id=0
413 27 0:78 / /run/blockstore/v2/export rw,nosuid,nodev,relatime - fuse /dev/fuse rw,user_id=0,group_id=0
414 23 0:79 / /sys/fs/fuse/connections rw,relatime - fusectl fusectl rw
415 27 8:1 / /run/blockstore/v3/export rw,relatime - ext4 /dev/sda1 rw
"""


def test_the_fuse_connection_of_an_export_is_its_mount_minor():
    assert watchdog.fuse_connection(MOUNTINFO, "/run/blockstore/v2/export") == 78
    assert watchdog.fuse_connection(MOUNTINFO, "/run/blockstore/v1/export") == 77
    # Not FUSE, not mounted, fusectl itself: none.
    assert watchdog.fuse_connection(MOUNTINFO, "/run/blockstore/v3/export") is None
    assert watchdog.fuse_connection(MOUNTINFO, "/run/blockstore/v4/export") is None
    assert watchdog.fuse_connection(MOUNTINFO, "/sys/fs/fuse/connections") is None


def _fake_daemon(directory: str) -> subprocess.Popen:
    # A process whose command line reads like the daemon of `directory` (what qsd.running and the watchdog check).
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "qemu-storage-daemon", directory])


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not os.path.exists(f"/proc/{pid}/cmdline") or not open(f"/proc/{pid}/cmdline", "rb").read():
            return True
        time.sleep(0.05)
    return False


def _a_block_device() -> str:
    # Any block device of this machine: the watchdog only reads its counters.
    return next(d for d in sorted(os.listdir("/sys/block")) if d.startswith(("loop", "sd", "vd", "nvme")))


@pytest.fixture
def watched(tmp_path):
    """A daemon directory, a stand-in daemon in it and a real watchdog of it (on a device of this machine)."""
    directory = str(tmp_path / "vol")
    os.makedirs(directory)
    device = _a_block_device()
    daemon = _fake_daemon(directory)
    try:
        pid = watchdog.spawn(daemon.pid, directory, f"/dev/{device}", 0, dead_after=3600)
        # Under ansible-test the interpreter may be a wrapper that execs Python: its command line shows the
        # watchdog's marker once that exec is done, not when spawn returns.
        deadline = time.monotonic() + 10
        while watchdog.pid(directory) != pid and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watchdog.pid(directory) == pid
        yield directory, daemon, pid
    finally:
        daemon.kill()
        daemon.wait()


def test_the_watchdog_process_exits_when_its_daemon_does(watched):
    directory, daemon, pid = watched
    time.sleep(1.5)
    assert watchdog.pid(directory) == pid  # positive control: it watches while the daemon runs
    daemon.kill()
    daemon.wait()
    assert _gone(pid, 5), "the watchdog outlived its daemon"
    assert watchdog.pid(directory) is None


def test_stopping_a_daemon_stops_its_watchdog(watched):
    directory, _daemon, pid = watched
    qsd.stop({"dir": directory, "pid": None})  # the teardown of every path: detach, sweep, stale clean-up
    assert _gone(pid, 5)
    assert not os.path.exists(directory)


def test_the_watchdog_source_runs_on_its_own():
    # It runs from its source alone (stdin), away from the collection: no import of it may remain.
    source = watchdog._source()
    proc = subprocess.run([sys.executable, "-c", watchdog.RUN, watchdog.MARKER, "1", "/nonexistent", "/dev/null",
                           "0", "30"], input=source, text=True, capture_output=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "ansible_collections" not in source


def test_the_source_is_text_whichever_loader_imported_it(monkeypatch):
    # Ansible's collection loader (ansible-test, the controller) gives bytes; zipimport (AnsiballZ) gives text.
    class Loader:
        def __init__(self, source):
            self.source = source

        def get_source(self, name):
            return self.source

    for given in (b"# the watchdog\n", "# the watchdog\n"):
        monkeypatch.setattr(watchdog, "__loader__", Loader(given))
        assert watchdog._source() == "# the watchdog\n"

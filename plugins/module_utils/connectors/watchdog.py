# -*- coding: utf-8 -*-
# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dead-export watchdog: fails I/O on a userspace device whose export stopped answering.

A qemu-storage-daemon whose iSCSI target or Ceph cluster is gone retries for ever, and I/O
on its loop device would block for ever too (qemu's own timeouts do not end it). One small
process per userspace attachment watches the loop device: once it has had requests in flight
and completed none of them for DEAD_AFTER seconds, it aborts the daemon's FUSE connection, so
blocked and later I/O fail with an I/O error. Throttled (QoS) I/O completes requests, however
slowly, so it is never taken for dead. The watchdog exits when its daemon does, or after the
abort; it lives in the daemon's directory (`watchdog` holds its pid), and stopping the daemon
(qsd.stop) stops it.

This file also runs on its own (a Python reading this source on stdin): standard library only,
no imports from the collection.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time

# Long enough for a network blip or a backend fail-over, short enough that an application sees the failure.
DEAD_AFTER = 30.0
POLL = 1.0
PIDFILE = "watchdog"
FUSECTL = "/sys/fs/fuse/connections"
MARKER = "blockstore-watchdog"
RUN = f"import sys; exec(compile(sys.stdin.read(), {MARKER!r}, 'exec'))"


class Stall:
    """Whether a device's I/O is stuck: requests in flight and none completed for `dead_after` seconds."""

    def __init__(self, dead_after: float = DEAD_AFTER) -> None:
        self.dead_after = dead_after
        self.since: float | None = None  # when the device was last seen making progress, while busy
        self.completed: int | None = None

    def observe(self, now: float, completed: int, in_flight: int) -> bool:
        """Take one sample of the device's counters; True once it is stuck."""
        if in_flight <= 0 or completed != self.completed or self.since is None:
            # Idle, or a request completed since the last sample (slow I/O too): the clock starts again.
            self.completed = completed
            self.since = now if in_flight > 0 else None
            return False
        return now - self.since >= self.dead_after


def parse_stat(text: str) -> tuple[int, int] | None:
    """(requests completed, requests in flight) from a /sys/block/<dev>/stat line."""
    fields = text.split()
    try:
        numbers = [int(f) for f in fields]
    except ValueError:
        return None
    if len(numbers) < 11:
        return None
    # reads, writes completed (0, 4), in flight (8), then discards (11) and flushes (15) on newer kernels.
    completed = numbers[0] + numbers[4] + sum(numbers[i] for i in (11, 15) if i < len(numbers))
    return completed, numbers[8]


def fuse_connection(mountinfo: str, mount_point: str) -> int | None:
    """The FUSE connection number of the mount at `mount_point` (its device minor), from /proc/*/mountinfo.

    Read from mountinfo, never by stat() of the mount point: on a dead export that would block too.
    """
    found = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4 and fields[4] == mount_point and "-" in fields:
            kind = fields[fields.index("-") + 1]
            if kind.startswith("fuse") and kind != "fusectl":
                major, _colon, minor = fields[2].partition(":")
                if major == "0" and minor.isdigit():
                    found = int(minor)  # the last one: the mount on top
    return found


def abort(connection: int, scratch: str) -> bool:
    """Abort FUSE connection `connection`; True when done. Mounts fusectl in `scratch` for the moment
    when the host has it nowhere (containers): nothing stays mounted."""
    if os.path.isdir(os.path.join(FUSECTL, str(connection))):
        return _write_abort(os.path.join(FUSECTL, str(connection), "abort"))
    mount = tempfile.mkdtemp(prefix="fusectl.", dir=scratch)
    try:
        if subprocess.call(["mount", "-t", "fusectl", "fusectl", mount],  # pylint: disable=ansible-bad-function
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            return False
        try:
            return _write_abort(os.path.join(mount, str(connection), "abort"))
        finally:
            subprocess.call(["umount", "-l", mount],  # pylint: disable=ansible-bad-function
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(mount)


def _write_abort(path: str) -> bool:
    try:
        with open(path, "w", encoding="ascii") as handle:
            handle.write("1")
        return True
    except OSError:
        return False


def _alive(pid: int, directory: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read().decode("utf-8", "replace")
    except OSError:
        return False
    return "qemu-storage-daemon" in cmdline and directory in cmdline


def _sample(device: str) -> tuple[int, int] | None:
    try:
        with open(f"/sys/block/{os.path.basename(device)}/stat", encoding="ascii") as handle:
            return parse_stat(handle.read())
    except OSError:
        return None


def watch(daemon_pid: int, directory: str, device: str, connection: int, dead_after: float) -> None:
    """Watch until the daemon exits; abort its FUSE connection once the device is stuck."""
    stall = Stall(dead_after)
    while _alive(daemon_pid, directory):
        sample = _sample(device)
        if sample is None:
            return  # the loop device is gone: nothing left to unblock
        if stall.observe(time.monotonic(), *sample):
            abort(connection, directory)
            return
        time.sleep(POLL)


def _source() -> str:
    loader = globals().get("__loader__")
    with contextlib.suppress(Exception):
        text = loader.get_source(__name__) if loader is not None else None
        if text:
            # Ansible's collection loader gives bytes, zipimport (AnsiballZ) text.
            return text.decode("utf-8") if isinstance(text, bytes) else text
    with open(__file__, encoding="utf-8") as handle:
        return handle.read()


def start(daemon: dict, device: str, dead_after: float = DEAD_AFTER) -> int | None:
    """Start the watchdog of a daemon's export served by loop `device`; its pid, or None when the export's
    FUSE connection cannot be found (then nothing is started)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            connection = fuse_connection(handle.read(), daemon["export"])
    except OSError:
        connection = None
    if connection is None:
        return None
    return spawn(daemon["pid"], daemon["dir"], device, connection, dead_after)


def spawn(daemon_pid: int, directory: str, device: str, connection: int, dead_after: float = DEAD_AFTER) -> int:
    """Start a watchdog process (see watch()); writes its pid file in `directory` and returns its pid."""
    # Its own session, its output nowhere: it outlives the task like the daemon does, and holds no pipe of it.
    # The source goes in on stdin: the command line stays short and names no daemon (pgrep of daemons).
    proc = subprocess.Popen(  # pylint: disable=ansible-bad-function,consider-using-with
        [sys.executable, "-c", RUN, MARKER, str(daemon_pid), directory, device, str(connection), str(dead_after)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
        start_new_session=True, cwd="/", text=True)
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(_source())
    proc.stdin.close()
    with open(os.path.join(directory, PIDFILE), "w", encoding="ascii") as handle:
        handle.write(str(proc.pid))
    proc.returncode = 0  # never waited for here: no warning that it still runs when the task ends
    return proc.pid


def pid(directory: str) -> int | None:
    """The pid of the live watchdog of the daemon in `directory`, or None."""
    try:
        with open(os.path.join(directory, PIDFILE), encoding="ascii") as handle:
            found = int(handle.read().strip())
        with open(f"/proc/{found}/cmdline", "rb") as handle:
            cmdline = handle.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    return found if MARKER in cmdline and directory in cmdline else None


def stop(directory: str) -> None:
    """Stop the watchdog of the daemon in `directory`, if one runs (it holds nothing: killed at once)."""
    found = pid(directory)
    if found is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(found, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while pid(directory) == found and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(found, os.WNOHANG)
            time.sleep(0.02)


def main(argv: list[str]) -> None:
    _marker, daemon_pid, directory, device, connection, dead_after = argv
    watch(int(daemon_pid), directory, device, int(connection), float(dead_after))


if __name__ == "__main__":
    main(sys.argv[1:])

# Copyright: blockstore.storage contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A CHAP account is made on a real tgtd with its password on no command line (issue 12, "secrets and exposure").

Every local user can read a process's arguments (`ps`, /proc/PID/cmdline): a watcher reads every process's
arguments in a loop while accounts are made, and must never see the password. The positive control: the same
watcher, while tgtadm is given the password as an argument (the way used before), sees it.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("tgtd"),
                                reason="needs root and tgt (tgtd, tgtadm; Debian package tgt)")
ROUNDS = 40


class Watcher(threading.Thread):
    """Reads the arguments of every process, again and again, until stopped; notes those holding `secret`."""

    def __init__(self, secret: str) -> None:
        super().__init__(daemon=True)
        self.secret = secret.encode()
        self.seen: list[str] = []
        self.sweeps = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        own = str(os.getpid())
        while not self.stopping.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == own:
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        args = handle.read()
                except OSError:
                    continue
                if self.secret in args:
                    self.seen.append(args.replace(b"\0", b" ").decode(errors="replace"))
            self.sweeps += 1

    def __enter__(self) -> Watcher:
        self.start()
        while not self.sweeps:  # watching before the first account is made
            time.sleep(0.001)
        return self

    def __exit__(self, *_exc) -> None:
        last = self.sweeps
        while self.sweeps < last + 2:  # and a whole sweep after the last one
            time.sleep(0.001)
        self.stopping.set()
        self.join()


def test_accounts_are_made_with_the_password_on_no_command_line(tgt):
    assert tgt._speaks_wire(), "the tgt of this machine is a version whose request format is known"
    password = "Pw" + os.urandom(8).hex()
    with Watcher(password) as watcher:
        for number in range(ROUNDS):
            tgt.new_account(f"wire{number}", password)
    assert watcher.seen == []
    assert {f"wire{n}" for n in range(ROUNDS)} <= set(tgt.accounts())

    # Positive control: given to tgtadm as an argument, the password is seen by the same watcher.
    shown = "Pw" + os.urandom(8).hex()
    with Watcher(shown) as watcher:
        for number in range(ROUNDS):
            tgt._tgtadm("--mode", "account", "--op", "new", "--user", f"argv{number}", "--password", shown)
    assert watcher.seen and "--password " + shown in watcher.seen[0]


def test_an_account_that_exists_is_refused_by_tgtd_and_said_so(tgt):
    tgt.new_account("twice", "Pw1")
    with pytest.raises(Exception) as refused:
        tgt.new_account("twice", "Pw2")
    assert "tgtd account new failed: tgtd refused it" in str(refused.value)
